// The benchmark harness: loads the exported models, checks each against its test vectors on the
// target itself, then runs audio blocks -- every model once per block, state carried: a block-rate
// model one step, a sample-rate model one step per sample of the block, in one call -- and prints
// machine-readable results, one JSON object per line.
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
#define MODELS_STORAGE_ATTR __attribute__((section(".ext_bss")))
#endif

#include "alloc_counter.h"
#include "platform.h"
#include "rtmb_engine.h"  // the build's engine: its models::Processor and test vectors (vectors::kTable)

#ifndef MODELS_STORAGE_ATTR
#define MODELS_STORAGE_ATTR
#endif
#ifndef BENCH_MAX_BLOCKS
#define BENCH_MAX_BLOCKS 20000
#endif

namespace {

using models::kCount;
using models::kInfo;

MODELS_STORAGE_ATTR models::Processor processor;  // every model, in static storage (MBs with RTNeural)
static_assert(sizeof(vectors::kTable) / sizeof(vectors::kTable[0]) == kCount, "one vector set per model");

struct Options {
    int blocks = 1000;
    int warmup = 100;
    int blockSize = 512;
    int sampleRate = 48000;
    int cold = 0;  // blocks measured cold: the caches evicted before each (where the platform can)
};

void warn(const char* message, const char* detail) {
    std::printf("{\"type\":\"warning\",\"message\":\"%s %s\"}\n", message, detail);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const int v = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--blocks")) o.blocks = v;
        else if (!std::strcmp(argv[i], "--warmup")) o.warmup = v;
        else if (!std::strcmp(argv[i], "--block-size")) o.blockSize = v;
        else if (!std::strcmp(argv[i], "--sample-rate")) o.sampleRate = v;
        else if (!std::strcmp(argv[i], "--cold")) o.cold = v;
        else warn("unknown option", argv[i]);
    }
    if (o.blocks > BENCH_MAX_BLOCKS) {
        std::printf(
            "{\"type\":\"warning\",\"message\":\"--blocks %d is more than this build records; running "
            "%d\"}\n",
            o.blocks, BENCH_MAX_BLOCKS);
        o.blocks = BENCH_MAX_BLOCKS;
    }
    o.blocks = std::max(1, o.blocks);
    if (o.blockSize < 1 || o.blockSize > models::kMaxBlockSize) {
        std::fprintf(stderr, "--block-size %d: give 1 to %d samples (RTMB_MAX_BLOCK_SIZE)\n", o.blockSize,
                     models::kMaxBlockSize);
        std::exit(2);
    }
    return o;
}

MODELS_STORAGE_ATTR std::uint32_t durations[kCount + 1][BENCH_MAX_BLOCKS];  // ticks; [kCount] is the set

// The largest absolute error against the reference over the test vectors, from a reset state, fed
// as the model runs (a sample-rate model a block of samples per call). A NaN sticks (std::max would
// drop it), so a model that answers NaN fails parity.
double checkParity(int m, int blockSize) {
    const models::Info& e = kInfo[m];
    const vectors::Set& v = vectors::kTable[m];
    processor.reset(m);
    double worst = 0.0;
    for (int t = 0; t < v.steps;) {
        const int n = e.perSample ? std::min(blockSize, v.steps - t) : 1;
        const float* y = processor.forward(m, v.inputs + t * e.inputSize, n);
        for (int i = 0; i < n * e.outputSize; ++i) {
            const double err = std::fabs(double(y[i]) - double(v.outputs[t * e.outputSize + i]));
            if (!std::isnan(worst) && !(err <= worst)) worst = err;
        }
        t += n;
    }
    processor.reset(m);
    return worst;
}

// Where block `block` of model m reads its inputs in the test vectors: a block-rate model one step
// of them in turn, a sample-rate model `blockSize` consecutive steps, the block moving through them.
const float* blockInputs(int m, int block, int blockSize) {
    const vectors::Set& v = vectors::kTable[m];
    if (!kInfo[m].perSample) return v.inputs + (block % v.steps) * kInfo[m].inputSize;
    const int starts = v.steps - blockSize + 1;  // checked >= 1 before any block runs
    return v.inputs + ((long(block) * blockSize) % starts) * kInfo[m].inputSize;
}

double toMicros(std::uint64_t ticks) { return double(ticks) * 1e6 / double(platform::ticksPerSecond()); }

std::uint32_t percentile(const std::uint32_t* sorted, int n, double q) {
    const int index = int(std::ceil(q * n)) - 1;  // nearest rank
    return sorted[std::max(0, std::min(n - 1, index))];
}

void report(const char* kind, const char* name, std::uint32_t* d, int n, double deadlineUs, double blockUs) {
    double sum = 0.0;
    int misses = 0;
    for (int i = 0; i < n; ++i) {
        sum += d[i];
        if (toMicros(d[i]) > deadlineUs) ++misses;
    }
    std::sort(d, d + n);
    const double mean = toMicros(std::uint64_t(sum / n));
    std::printf(
        "{\"type\":\"%s\",\"model\":\"%s\",\"blocks\":%d,\"unit\":\"us\",\"mean\":%.3f,\"p50\":%.3f,"
        "\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"min\":%.3f,\"deadline_misses\":%d,\"real_time_factor\":%."
        "6f}\n",
        kind, name, n, mean, toMicros(percentile(d, n, 0.50)), toMicros(percentile(d, n, 0.95)),
        toMicros(percentile(d, n, 0.99)), toMicros(d[n - 1]), toMicros(d[0]), misses, mean / blockUs);
}

// One audio block: every model once, each timed, inputs taken from its real test vectors in turn.
void runBlock(int block, int blockSize, bool record) {
    std::uint64_t start = platform::ticks(), last = start;
    for (int m = 0; m < kCount; ++m) {
        processor.forward(m, blockInputs(m, block, blockSize), blockSize);
        const std::uint64_t now = platform::ticks();
        if (record) durations[m][block] = std::uint32_t(now - last);
        last = now;
    }
    if (record) durations[kCount][block] = std::uint32_t(last - start);
}

// Stack per model, measured by painting: paintStack() fills a region below the frame that calls the
// model with a pattern, the model runs one block from that same frame (forwardOnce()), and the
// lowest word no longer holding the pattern is the deepest the call wrote. Counted from the bottom
// of the calling frame (at most an alignment above where the call starts: high by that, never low);
// a frame the call reserved but never wrote is not seen, so a call whose deepest write lies near
// the end of the probe may have gone past it unseen, over such a frame (a forward() of 104 bytes read
// as 48 with a 16-byte probe). Such a call is reported as too deep to measure, never as a size.
constexpr std::uint32_t kPaint = 0xA55A5AA5u;
constexpr std::size_t kStackMarginBytes = 1024;  // the least of the probe to stay unwritten (else a quarter)

std::size_t stackMargin(std::size_t probe) { return std::max(kStackMarginBytes, probe / 4); }

std::uintptr_t paintedLow = 0, paintedHigh = 0;  // the region the last paintStack() painted

__attribute__((noinline)) void paintStack(std::size_t bytes) {
    const std::size_t words = bytes / sizeof(std::uint32_t);
    auto* region = static_cast<volatile std::uint32_t*>(__builtin_alloca(words * sizeof(std::uint32_t)));
    for (std::size_t i = 0; i < words; ++i) region[i] = kPaint;
    paintedLow = reinterpret_cast<std::uintptr_t>(region);
    paintedHigh = paintedLow + words * sizeof(std::uint32_t);
}

// Out of line, so that what forward() puts on the stack lies below stackBytes()'s frame.
__attribute__((noinline)) void forwardOnce(int m, int blockSize) {
    processor.forward(m, blockInputs(m, 0, blockSize), blockSize);
}

// The bytes of stack one forward() call of model m used, from its current state; -1 when it came
// within stackMargin() of the end of the `probe` bytes painted (always, for a probe that small).
__attribute__((noinline)) long stackBytes(int m, int blockSize, std::size_t probe) {
    // The stack pointer at entry moves with the size of the environment, and a forward() that aligns
    // its frame (AVX: to 32 bytes) goes deeper or not with it. Padding by the entry's place within 64
    // bytes puts the calls below at one place modulo 64 on every run: the same figure every time.
    volatile char entry = 0;
    const std::size_t pad = reinterpret_cast<std::uintptr_t>(&entry) % 64 + 64;
    const auto top = reinterpret_cast<std::uintptr_t>(__builtin_alloca(pad));  // the calls start under it
    paintStack(probe);
    forwardOnce(m, blockSize);
    const auto* low = reinterpret_cast<const volatile std::uint32_t*>(paintedLow);
    const auto* high = reinterpret_cast<const volatile std::uint32_t*>(paintedHigh);
    const auto* p = low;
    while (p < high && *p == kPaint) ++p;  // up from the bottom: the first word the call changed
    if (std::size_t(p - low) * sizeof(std::uint32_t) < stackMargin(probe)) return -1;  // too near its end
    return long(top - reinterpret_cast<std::uintptr_t>(p));
}

// A JSON number; NaN and infinities as Python's json module reads them.
void printNumber(double x) {
    if (std::isnan(x)) std::printf("NaN");
    else if (std::isinf(x)) std::printf(x > 0 ? "Infinity" : "-Infinity");
    else std::printf("%.9g", x);
}

}  // namespace

int main(int argc, char** argv) {
    platform::init();
    const Options opt = parse(argc, argv);
    const double blockUs = 1e6 * opt.blockSize / opt.sampleRate;  // the deadline: one buffer's duration
    const std::size_t probe = platform::stackProbeBytes();
    std::printf(
        "{\"type\":\"meta\",\"target\":\"%s\",\"engine\":\"%s\",\"models\":%d,\"blocks\":%d,\"warmup\":%d,"
        "\"block_size\":%d,\"sample_rate\":%d,\"deadline_us\":%.3f,\"timer\":\"%s\",\"ticks_per_second\":%lu,"
        "\"stack_probe_bytes\":%lu}\n",
        BENCH_TARGET, BENCH_ENGINE, kCount, opt.blocks, opt.warmup, opt.blockSize, opt.sampleRate, blockUs,
        platform::timerName(), (unsigned long)platform::ticksPerSecond(), (unsigned long)probe);

    for (int m = 0; m < kCount; ++m) {
        if (kInfo[m].perSample && vectors::kTable[m].steps < opt.blockSize) {
            std::fprintf(stderr, "--block-size %d: model %s has test vectors for %d samples only\n",
                         opt.blockSize, kInfo[m].name, vectors::kTable[m].steps);
            return 2;
        }
    }
    for (int m = 0; m < kCount; ++m) {
        const models::Info& e = kInfo[m];
        const auto before = alloc_counter::now();
        const bool loaded = processor.load(m);
        const auto after = alloc_counter::now();
        if (!loaded) {  // only an engine that reads the models' files can fail here
            std::fprintf(stderr, "%s: could not load model %s\n", BENCH_ENGINE, e.name);
            return 2;
        }
        std::printf("{\"type\":\"parity\",\"model\":\"%s\",\"steps\":%d,\"max_abs_error\":", e.name,
                    vectors::kTable[m].steps);
        printNumber(checkParity(m, opt.blockSize));
        std::printf("}\n");
        const long stack = stackBytes(m, opt.blockSize, probe);  // one block, outside any timing
        processor.reset(m);
        if (stack < 0)
            std::printf(
                "{\"type\":\"warning\",\"message\":\"stack of %s not measured: forward() came within "
                "%lu bytes of the end of the %lu-byte stack probe\"}\n",
                e.name, (unsigned long)stackMargin(probe), (unsigned long)probe);
        std::printf(
            "{\"type\":\"model\",\"model\":\"%s\",\"rate\":\"%s\",\"steps_per_block\":%d,\"input_size\":%d,"
            "\"output_size\":%d,\"parameters\":%lu,\"weight_bytes\":%lu,\"model_bytes\":%lu,\"load_heap_"
            "bytes\":%lu,\"stack_bytes\":",
            e.name, e.perSample ? "sample" : "block", e.perSample ? opt.blockSize : 1, e.inputSize,
            e.outputSize, (unsigned long)e.parameterCount, (unsigned long)e.weightBytes,
            (unsigned long)e.modelBytes, (unsigned long)(after.bytes - before.bytes));
        if (stack < 0) std::printf("null}\n");
        else std::printf("%ld}\n", stack);
    }

    for (int b = 0; b < opt.warmup; ++b) runBlock(b, opt.blockSize, false);
    processor.reset();
    const auto before = alloc_counter::now();
    for (int b = 0; b < opt.blocks; ++b) runBlock(b, opt.blockSize, true);
    const auto after = alloc_counter::now();
    std::printf("{\"type\":\"heap\",\"forward_allocations\":%lu,\"forward_bytes\":%lu}\n",
                (unsigned long)(after.allocations - before.allocations),
                (unsigned long)(after.bytes - before.bytes));

    for (int m = 0; m < kCount; ++m)
        report("latency", kInfo[m].name, durations[m], opt.blocks, blockUs, blockUs);
    report("latency", "set", durations[kCount], opt.blocks, blockUs, blockUs);

    // The peak before the cold blocks: their eviction buffer (128 MiB on Linux) is the harness's own,
    // not the models', and would be nearly all of it.
    const long peakRss = platform::peakRssKiB();

    // Cold blocks: in a plugin the rest of the audio graph runs between two blocks and evicts the
    // weights from the caches. Evict them before each block, outside the timed region, and time it.
    const int cold = std::min(opt.cold, BENCH_MAX_BLOCKS);
    if (cold > 0 && platform::evictCaches()) {
        processor.reset();
        for (int b = 0; b < cold; ++b) {
            platform::evictCaches();
            runBlock(b, opt.blockSize, true);
        }
        for (int m = 0; m < kCount; ++m)
            report("latency_cold", kInfo[m].name, durations[m], cold, blockUs, blockUs);
        report("latency_cold", "set", durations[kCount], cold, blockUs, blockUs);
    }
    std::printf(
        "{\"type\":\"process\",\"peak_rss_kib\":%ld,\"peak_rss_covers\":\"all_but_eviction_buffer\"}\n",
        peakRss);
    std::printf("{\"type\":\"done\"}\n");
    return 0;
}
