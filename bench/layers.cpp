// `bench layers`: RTNeural's layer benchmark done the suite's way. Loads one library per engine
// (bench/layers_engine.cpp, each holding the same layer models) into this one process and runs every
// model on every engine one audio block of `--block-size` samples per call, as a plugin does, over
// `--seconds` of audio. The engines are interleaved: each round every model runs a slice of its
// blocks on each engine in turn (the order rotated every round), so the machine's noise hits all
// engines alike; bench/layers.py takes the median over the rounds. Prints one JSON object per line.
//
// usage: layers [--seconds S] [--rounds N] [--block-size SAMPLES] [--sample-rate HZ] [--count BLOCKS]
//               ENGINE=LIBRARY...
// --count BLOCKS: no timing; under callgrind (--collect-atstart=no --toggle-collect=rtmb_layers_counted
// --dump-after=rtmb_layers_counted) each model and engine's BLOCKS blocks become one dump, in the
// order the "counted" lines give.
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

using Forward = const float* (*)(int, const float*, int);

struct Engine {
    std::string name;
    Forward forward = nullptr;
    std::map<std::string, int> index;  // model name -> its index in this engine's table
};

struct Model {
    std::string name;
    int inputSize = 0;
    int outputSize = 0;
    long long parameters = 0;
    std::vector<int> engines;   // the engines that run it
    std::vector<long> blocks;   // per engine: blocks run so far (where in the input it is)
    std::vector<double> check;  // per engine: sum of |outputs| of its last block
};

struct Options {
    double seconds = 5.0;
    int rounds = 15;
    int blockSize = 512;
    int sampleRate = 48000;
    int count = 0;
};

constexpr int kSignalBlocks = 4;  // distinct input blocks per model, cycled

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "layers: %s\n", what.c_str());
    std::exit(2);
}

template <typename T>
T symbol(void* library, const char* name, const std::string& path) {
    void* found = dlsym(library, name);
    if (!found) fail(path + ": no " + name);
    return reinterpret_cast<T>(found);
}

Engine open(const std::string& spec, std::vector<Model>& models) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) fail("expected ENGINE=LIBRARY, got " + spec);
    Engine e;
    e.name = spec.substr(0, eq);
    const std::string path = spec.substr(eq + 1);
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) fail(dlerror());
    const int count = symbol<int (*)()>(library, "rtmb_layers_load", path)();
    if (count < 0) fail(path + ": a model could not be loaded");
    auto name = symbol<const char* (*)(int)>(library, "rtmb_layers_name", path);
    auto inputs = symbol<int (*)(int)>(library, "rtmb_layers_input_size", path);
    auto outputs = symbol<int (*)(int)>(library, "rtmb_layers_output_size", path);
    auto parameters = symbol<long long (*)(int)>(library, "rtmb_layers_parameters", path);
    e.forward = symbol<Forward>(library, "rtmb_layers_forward", path);
    for (int i = 0; i < count; ++i) {
        e.index[name(i)] = i;
        Model* m = nullptr;
        for (auto& known : models)
            if (known.name == name(i)) m = &known;
        if (!m) {
            models.push_back({name(i), inputs(i), outputs(i), parameters(i), {}, {}, {}});
            m = &models.back();
        }
        if (m->inputSize != inputs(i) || m->outputSize != outputs(i))
            fail(path + ": sizes differ for " + name(i));
    }
    return e;
}

// A deterministic audio-like signal at about 0.5 peak: plucked notes of a few harmonics, a new
// note every quarter second, each decaying; input c of a multi-input model is the signal 101 samples
// later per input, so the inputs differ.
float signal(long t, int sampleRate) {
    static const double kNotes[] = {82.41, 110.0, 146.83, 196.0, 246.94, 329.63, 196.0, 110.0};
    const long note = t / (sampleRate / 4);
    const double f = kNotes[note % 8];
    const double s = double(t % (sampleRate / 4)) / sampleRate;
    double y = 0;
    for (int k = 1; k <= 4; ++k) y += std::sin(2 * M_PI * f * k * s) / k;
    return float(0.3 * std::exp(-6 * s) * y);
}

// kSignalBlocks blocks of `inputs` inputs per sample, row-major, 64-byte aligned (SIMD loads).
float* input(int inputs, const Options& o) {
    const std::size_t n = std::size_t(kSignalBlocks) * o.blockSize * inputs;
    auto* x = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
    if (!x) fail("out of memory");
    for (long t = 0; t < long(kSignalBlocks) * o.blockSize; ++t)
        for (int c = 0; c < inputs; ++c) x[t * inputs + c] = signal(t + 101L * c, o.sampleRate);
    return x;
}

// `blocks` blocks of one model on one engine, from where it left off; the sum of |outputs| of the last.
double run(const Engine& e, Model& m, int slot, const float* x, const Options& o, long blocks) {
    const int i = e.index.at(m.name);
    const float* y = nullptr;
    for (long b = 0; b < blocks; ++b) {
        const long at = m.blocks[slot]++ % kSignalBlocks;
        y = e.forward(i, x + at * o.blockSize * m.inputSize, o.blockSize);
    }
    double sum = 0;
    for (long k = 0; y && k < long(o.blockSize) * m.outputSize; ++k) sum += std::fabs(y[k]);
    return sum;
}

struct Job {
    const Engine* engine;
    Model* model;
    int slot;
    const float* x;
    const Options* options;
    long blocks;
};

}  // namespace

// What callgrind counts: collection is toggled on while this runs (see the usage above). `job` is a
// Job; a C name, so callgrind's --toggle-collect can name it.
extern "C" __attribute__((noinline)) double rtmb_layers_counted(const void* job) {
    const Job& j = *static_cast<const Job*>(job);
    return run(*j.engine, *j.model, j.slot, j.x, *j.options, j.blocks);
}

int main(int argc, char** argv) {
    Options o;
    std::vector<Engine> engines;
    std::vector<Model> models;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool valued = a.rfind("--", 0) == 0;
        if (valued && i + 1 >= argc) fail("no value for " + a);
        if (a == "--seconds") o.seconds = std::atof(argv[++i]);
        else if (a == "--rounds") o.rounds = std::atoi(argv[++i]);
        else if (a == "--block-size") o.blockSize = std::atoi(argv[++i]);
        else if (a == "--sample-rate") o.sampleRate = std::atoi(argv[++i]);
        else if (a == "--count") o.count = std::atoi(argv[++i]);
        else if (valued) fail("unknown option " + a);
        else engines.push_back(open(a, models));
    }
    if (engines.empty() || o.rounds < 1 || o.blockSize < 1 || o.sampleRate < 1 || !(o.seconds > 0))
        fail("nothing to run (give ENGINE=LIBRARY... and positive options)");
    for (auto& m : models) {
        for (int e = 0; e < int(engines.size()); ++e)
            if (engines[e].index.count(m.name)) m.engines.push_back(e);
        m.blocks.assign(engines.size(), 0);
        m.check.assign(engines.size(), 0.0);
    }
    std::map<int, float*> inputs;  // one signal per input size
    for (auto& m : models)
        if (!inputs.count(m.inputSize)) inputs[m.inputSize] = input(m.inputSize, o);

    const long total = std::lround(std::ceil(o.seconds * o.sampleRate / o.blockSize));
    const long slice = total / o.rounds > 0 ? total / o.rounds : 1;  // blocks per engine per round
    const long warmup = slice < 4 ? slice : 4;
    std::printf(
        "{\"type\":\"meta\",\"rounds\":%d,\"blocks_per_slice\":%ld,\"warmup_blocks\":%ld,\"block_size\":%d,"
        "\"sample_rate\":%d,\"count\":%d}\n",
        o.rounds, slice, warmup, o.blockSize, o.sampleRate, o.count);
    for (const auto& m : models) {
        std::printf("{\"type\":\"model\",\"name\":\"%s\",\"inputs\":%d,\"outputs\":%d,\"parameters\":%lld}\n",
                    m.name.c_str(), m.inputSize, m.outputSize, m.parameters);
    }
    std::fflush(stdout);

    if (o.count > 0) {
        int seq = 0;
        for (auto& m : models) {
            for (int e : m.engines) {
                run(engines[e], m, e, inputs[m.inputSize], o, 1);  // warm: not counted
                const Job job{&engines[e], &m, e, inputs[m.inputSize], &o, o.count};
                m.check[e] = rtmb_layers_counted(&job);
                std::printf(
                    "{\"type\":\"counted\",\"seq\":%d,\"model\":\"%s\",\"engine\":\"%s\",\"samples\":%ld}\n",
                    ++seq, m.name.c_str(), engines[e].name.c_str(), long(o.count) * o.blockSize);
                std::fflush(stdout);
            }
        }
    } else {
        for (auto& m : models)
            for (int e : m.engines) run(engines[e], m, e, inputs[m.inputSize], o, warmup);
        using Clock = std::chrono::steady_clock;
        for (int r = 0; r < o.rounds; ++r) {
            for (auto& m : models) {
                std::vector<double> ns(engines.size(), 0.0);
                const int n = int(m.engines.size());
                for (int k = 0; k < n; ++k) {
                    const int e = m.engines[(k + r) % n];  // rotated: no engine always runs first
                    const auto t0 = Clock::now();
                    m.check[e] = run(engines[e], m, e, inputs[m.inputSize], o, slice);
                    const auto t1 = Clock::now();
                    ns[e] = std::chrono::duration<double, std::nano>(t1 - t0).count() / (slice * o.blockSize);
                }
                std::printf("{\"type\":\"round\",\"round\":%d,\"model\":\"%s\",\"ns_per_sample\":{", r,
                            m.name.c_str());
                for (int k = 0; k < n; ++k) {
                    std::printf("%s\"%s\":%.6g", k ? "," : "", engines[m.engines[k]].name.c_str(),
                                ns[m.engines[k]]);
                }
                std::printf("}}\n");
            }
            std::fflush(stdout);
        }
    }
    for (const auto& m : models) {
        for (int e : m.engines) {
            const double c = m.check[e];
            std::printf(
                "{\"type\":\"check\",\"model\":\"%s\",\"engine\":\"%s\",\"finite\":%s,\"sum_abs\":%.9g}\n",
                m.name.c_str(), engines[e].name.c_str(), std::isfinite(c) ? "true" : "false",
                std::isfinite(c) ? c : 0.0);
        }
    }
    std::printf("{\"type\":\"done\"}\n");
    return 0;
}
