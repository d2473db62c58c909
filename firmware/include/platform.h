// The only things that differ per target: the clock and where output goes (Linux: steady_clock and
// stdout; Cortex-M: SysTick and semihosting), the process memory figure, and how much stack the
// harness may paint to measure a model's.
#pragma once
#include <cstddef>
#include <cstdint>

namespace platform {

void init();
std::uint64_t ticks();  // monotonic
std::uint64_t ticksPerSecond();
const char* timerName();  // for the results: which clock the figures come from
long peakRssKiB();        // -1 where the target has no such figure
bool evictCaches();       // evict the data caches before a cold block; false where there are none
// How many bytes below the caller's frame may be painted to measure a model's stack: memory the
// stack may grow into without meeting anything else.
std::size_t stackProbeBytes();

}  // namespace platform
