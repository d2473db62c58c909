#include "platform.h"

#include <chrono>
#include <cstdio>

void platform::init() {}

std::uint64_t platform::ticks() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::uint64_t platform::ticksPerSecond() { return 1000000000ull; }

const char* platform::timerName() { return "steady_clock"; }

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
