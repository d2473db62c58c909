// Cortex-M7 on QEMU's mps2-an500. SysTick runs from the 25 MHz system clock; an interrupt on each
// wrap of its 24-bit counter extends it to 64 bits. QEMU does not model the M7's timing: run it
// with -icount shift=0 (1 ns per instruction) and the figures are instruction-based, repeatable
// virtual time, not a real board's.
#include "platform.h"

#include <cstddef>
#include <cstdint>

namespace {
constexpr std::uint32_t kSysClockHz = 25000000;
constexpr std::uint32_t kReload = 0xFFFFFF;
volatile std::uint32_t wraps = 0;

struct SysTickRegs {
    volatile std::uint32_t ctrl, load, val, calib;
};
SysTickRegs& systick = *reinterpret_cast<SysTickRegs*>(0xE000E010);
}  // namespace

extern "C" void SysTick_Handler() { wraps = wraps + 1; }
extern "C" void* sbrk(std::ptrdiff_t increment);  // newlib's; its header hides it under -std=c++17

void platform::init() {
    systick.load = kReload;
    systick.val = 0;
    systick.ctrl = 0x7;  // processor clock, interrupt on wrap, enabled
}

std::uint64_t platform::ticks() {
    std::uint32_t high, low;
    do {  // read again if a wrap came between the two reads
        high = wraps;
        low = systick.val;
    } while (high != wraps);
    return (std::uint64_t(high) << 24) + (kReload - low);
}

std::uint64_t platform::ticksPerSecond() { return kSysClockHz; }

const char* platform::timerName() { return "systick"; }

long platform::peakRssKiB() { return -1; }

// QEMU models no caches (and a Cortex-M7 board keeps weights in tightly coupled or external memory
// whose timing the emulator does not model either): there is nothing to evict.
bool platform::evictCaches() { return false; }

// The stack comes down from the top of RAM towards newlib's heap: paint 32 KiB (the generated
// engine's forward() takes 96 to 2,852 bytes here; a build may set its own), but never more than
// half the room between the heap's end and this frame, so a small RAM's heap is never painted over.
#ifndef BENCH_STACK_PROBE_BYTES
#define BENCH_STACK_PROBE_BYTES (32 << 10)
#endif
std::size_t platform::stackProbeBytes() {
    volatile char here = 0;
    const auto top = reinterpret_cast<std::uintptr_t>(&here);
    const auto heapEnd = reinterpret_cast<std::uintptr_t>(sbrk(0));
    const std::size_t room = top > heapEnd ? (top - heapEnd) / 2 : 0;
    return room < std::size_t(BENCH_STACK_PROBE_BYTES) ? room : std::size_t(BENCH_STACK_PROBE_BYTES);
}
