#include "platform.h"

#include <sys/resource.h>

#include <chrono>

void platform::init() {}

std::uint64_t platform::ticks() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::uint64_t platform::ticksPerSecond() { return 1000000000ull; }

const char* platform::timerName() { return "steady_clock"; }

long platform::peakRssKiB() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}
