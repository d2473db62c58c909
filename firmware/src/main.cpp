// The benchmark harness: loads the exported models, checks each against its test vectors on the
// target itself, then runs audio blocks -- one forward() of every model per block, state carried
// -- and prints machine-readable results, one JSON object per line.
//
// usage: program [--blocks N] [--warmup N] [--block-size SAMPLES] [--sample-rate HZ]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// On a board whose weights do not fit its internal memories, the linker script gives sections
// in external memory: the constant weight arrays (.weights) and the model objects (.ext_bss).
#if BENCH_EXTERNAL_MEMORY
#define MODELS_WEIGHTS_ATTR __attribute__((section(".weights")))
#define BENCH_MODEL_STORAGE __attribute__((section(".ext_bss")))
#endif

#include "alloc_counter.h"
#include "models.h"
#include "model_vectors.h"
#include "platform.h"

#ifndef BENCH_MODEL_STORAGE
#define BENCH_MODEL_STORAGE
#endif
#ifndef BENCH_MAX_BLOCKS
#define BENCH_MAX_BLOCKS 20000
#endif

namespace {

struct Options {
    int blocks = 1000;
    int warmup = 100;
    int blockSize = 512;
    int sampleRate = 48000;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const int v = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--blocks")) o.blocks = v;
        else if (!std::strcmp(argv[i], "--warmup")) o.warmup = v;
        else if (!std::strcmp(argv[i], "--block-size")) o.blockSize = v;
        else if (!std::strcmp(argv[i], "--sample-rate")) o.sampleRate = v;
        else std::printf("{\"type\":\"warning\",\"message\":\"unknown option %s\"}\n", argv[i]);
    }
    o.blocks = std::max(1, std::min(o.blocks, BENCH_MAX_BLOCKS));
    return o;
}

// Everything the harness needs of one model, behind plain function pointers.
struct Entry {
    const char* name;
    int inputSize, outputSize;
    std::size_t parameters, modelBytes;
    void (*load)();
    void (*reset)();
    const float* (*forward)(const float*);
    int vectorSteps;
    const float* vectorInputs;
    const float* vectorOutputs;
};

#define BENCH_DECLARE(name)                                                              \
    BENCH_MODEL_STORAGE models::name::Model name##_model;                                \
    void name##_load() { models::name::loadWeights(name##_model); }                     \
    void name##_reset() { name##_model.reset(); }                                        \
    __attribute__((noinline)) const float* name##_forward(const float* x) {               \
        name##_model.forward(x);                                                         \
        return name##_model.getOutputs();                                                \
    }
MODELS_FOR_EACH(BENCH_DECLARE)

#define BENCH_ENTRY(name)                                                                        \
    Entry{#name, models::name::kInputSize, models::name::kOutputSize,                            \
          models::name::kParameterCount, sizeof(models::name::Model), name##_load, name##_reset, \
          name##_forward, vectors::name::kSteps, vectors::name::kInputs, vectors::name::kOutputs},
const Entry entries[] = {MODELS_FOR_EACH(BENCH_ENTRY)};
constexpr int kModels = sizeof(entries) / sizeof(entries[0]);

BENCH_MODEL_STORAGE std::uint32_t durations[kModels + 1][BENCH_MAX_BLOCKS];  // ticks; [kModels] is the set

double checkParity(const Entry& e) {
    e.reset();
    double worst = 0.0;
    for (int t = 0; t < e.vectorSteps; ++t) {
        const float* y = e.forward(e.vectorInputs + t * e.inputSize);
        for (int i = 0; i < e.outputSize; ++i)
            worst = std::max(worst, std::fabs(double(y[i]) - double(e.vectorOutputs[t * e.outputSize + i])));
    }
    e.reset();
    return worst;
}

double toMicros(std::uint64_t ticks) { return double(ticks) * 1e6 / double(platform::ticksPerSecond()); }

std::uint32_t percentile(const std::uint32_t* sorted, int n, double q) {
    const int index = int(std::ceil(q * n)) - 1;  // nearest rank
    return sorted[std::max(0, std::min(n - 1, index))];
}

void report(const char* name, std::uint32_t* d, int n, double deadlineUs, double blockUs) {
    double sum = 0.0;
    int misses = 0;
    for (int i = 0; i < n; ++i) {
        sum += d[i];
        if (toMicros(d[i]) > deadlineUs) ++misses;
    }
    std::sort(d, d + n);
    const double mean = toMicros(std::uint64_t(sum / n));
    std::printf(
        "{\"type\":\"latency\",\"model\":\"%s\",\"blocks\":%d,\"unit\":\"us\",\"mean\":%.3f,\"p50\":%.3f,"
        "\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"min\":%.3f,\"deadline_misses\":%d,\"real_time_factor\":%.6f}\n",
        name, n, mean, toMicros(percentile(d, n, 0.50)), toMicros(percentile(d, n, 0.95)),
        toMicros(percentile(d, n, 0.99)), toMicros(d[n - 1]), toMicros(d[0]), misses, mean / blockUs);
}

// One audio block: every model once, each timed, inputs taken from its real test vectors in turn.
void runBlock(int block, bool record) {
    std::uint64_t start = platform::ticks(), last = start;
    for (int m = 0; m < kModels; ++m) {
        const Entry& e = entries[m];
        e.forward(e.vectorInputs + (block % e.vectorSteps) * e.inputSize);
        const std::uint64_t now = platform::ticks();
        if (record) durations[m][block] = std::uint32_t(now - last);
        last = now;
    }
    if (record) durations[kModels][block] = std::uint32_t(last - start);
}

}  // namespace

int main(int argc, char** argv) {
    platform::init();
    const Options opt = parse(argc, argv);
    const double blockUs = 1e6 * opt.blockSize / opt.sampleRate;  // the deadline: one buffer's duration
    std::printf(
        "{\"type\":\"meta\",\"target\":\"%s\",\"backend\":\"%s\",\"models\":%d,\"blocks\":%d,\"warmup\":%d,"
        "\"block_size\":%d,\"sample_rate\":%d,\"deadline_us\":%.3f,\"timer\":\"%s\",\"ticks_per_second\":%lu}\n",
        BENCH_TARGET, BENCH_BACKEND, kModels, opt.blocks, opt.warmup, opt.blockSize, opt.sampleRate, blockUs,
        platform::timerName(), (unsigned long)platform::ticksPerSecond());

    for (const Entry& e : entries) {
        const auto before = alloc_counter::now();
        e.load();
        const auto after = alloc_counter::now();
        std::printf("{\"type\":\"parity\",\"model\":\"%s\",\"steps\":%d,\"max_abs_error\":%.9g}\n", e.name,
                    e.vectorSteps, checkParity(e));
        std::printf(
            "{\"type\":\"model\",\"model\":\"%s\",\"input_size\":%d,\"output_size\":%d,\"parameters\":%lu,"
            "\"weight_bytes\":%lu,\"model_bytes\":%lu,\"load_heap_bytes\":%lu}\n",
            e.name, e.inputSize, e.outputSize, (unsigned long)e.parameters,
            (unsigned long)(e.parameters * sizeof(float)), (unsigned long)e.modelBytes,
            (unsigned long)(after.bytes - before.bytes));
    }

    for (int b = 0; b < opt.warmup; ++b) runBlock(b, false);
    for (const Entry& e : entries) e.reset();
    const auto before = alloc_counter::now();
    for (int b = 0; b < opt.blocks; ++b) runBlock(b, true);
    const auto after = alloc_counter::now();
    std::printf("{\"type\":\"heap\",\"forward_allocations\":%lu,\"forward_bytes\":%lu}\n",
                (unsigned long)(after.allocations - before.allocations),
                (unsigned long)(after.bytes - before.bytes));

    for (int m = 0; m < kModels; ++m) report(entries[m].name, durations[m], opt.blocks, blockUs, blockUs);
    report("set", durations[kModels], opt.blocks, blockUs, blockUs);
    std::printf("{\"type\":\"process\",\"peak_rss_kib\":%ld}\n", platform::peakRssKiB());
    std::printf("{\"type\":\"done\"}\n");
    return 0;
}
