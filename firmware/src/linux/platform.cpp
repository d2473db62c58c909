#include "platform.h"

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace {
// Larger than any last-level cache this harness runs on (32 MB on the EPYC it was written on).
constexpr std::size_t kEvictBytes = std::size_t(128) << 20;
char* evictBuffer = nullptr;
volatile char evictSink;
}  // namespace

void platform::init() {}

// Writes one byte in every cache line of a buffer larger than the last-level cache, so what the
// next block reads comes from memory. The buffer is allocated on first use, before any timing.
bool platform::evictCaches() {
    if (!evictBuffer) evictBuffer = static_cast<char*>(std::calloc(kEvictBytes, 1));
    if (!evictBuffer) return false;
    char sum = 0;
    for (std::size_t i = 0; i < kEvictBytes; i += 64) sum = char(sum + ++evictBuffer[i]);
    evictSink = sum;
    return true;
}

std::uint64_t platform::ticks() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::uint64_t platform::ticksPerSecond() { return 1000000000ull; }

const char* platform::timerName() { return "steady_clock"; }

// The main thread's stack is 8 MiB (the usual ulimit -s, and qemu-user's own default). The probe
// is a small part of it, as every byte painted stays resident and counts in the peak RSS: 64 KiB,
// against the generated engine's 104 to 1,792 bytes per forward() on x86 (int8 the deepest) and
// up to 7,504 on armv7. A build may set its own.
#ifndef BENCH_STACK_PROBE_BYTES
#define BENCH_STACK_PROBE_BYTES (64 << 10)
#endif
std::size_t platform::stackProbeBytes() { return BENCH_STACK_PROBE_BYTES; }

// VmHWM, not getrusage's ru_maxrss: the latter keeps the peak of the process that exec'd us.
long platform::peakRssKiB() {
    long kib = -1;
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
        std::fclose(f);
    }
    return kib;
}
