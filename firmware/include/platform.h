// The only things that differ per target: the clock and where output goes (Linux: steady_clock and
// stdout; Cortex-M: SysTick and semihosting), and the process memory figure.
#pragma once
#include <cstdint>

namespace platform {

void init();
std::uint64_t ticks();  // monotonic
std::uint64_t ticksPerSecond();
const char* timerName();  // for the results: which clock the figures come from
long peakRssKiB();        // -1 where the target has no such figure
bool evictCaches();       // evict the data caches before a cold block; false where there are none

}  // namespace platform
