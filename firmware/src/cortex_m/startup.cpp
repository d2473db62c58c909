// Vector table and reset for a Cortex-M7 with an FPU. The reset handler turns the FPU on (CPACR),
// copies .data to RAM where a loader has not, clears .ext_bss, and hands over to newlib's _start
// (rdimon), which clears .bss, sets up semihosting, runs constructors and calls main.
#include <cstdint>

extern "C" {
extern std::uint32_t __stack_top, __data_load, __data_start, __data_end, __ext_bss_start, __ext_bss_end;
void _start();
void SysTick_Handler();
void Reset_Handler();
}

namespace {
void hang() {
    for (;;) {
    }
}
}  // namespace

extern "C" void Reset_Handler() {
    using std::uint32_t;
    auto* cpacr = reinterpret_cast<volatile uint32_t*>(0xE000ED88);
    *cpacr = *cpacr | (0xFu << 20);  // CP10 and CP11: full access
    __asm volatile("dsb\n isb");
    if (&__data_load != &__data_start)
        for (uint32_t *src = &__data_load, *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
    for (uint32_t* p = &__ext_bss_start; p < &__ext_bss_end;) *p++ = 0;
    _start();
    hang();
}

using Handler = void (*)();
__attribute__((section(".vectors"), used)) const Handler vectors[16] = {
    reinterpret_cast<Handler>(&__stack_top),
    Reset_Handler,
    hang,
    hang,
    hang,
    hang,
    hang,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    hang,
    hang,
    nullptr,
    hang,
    SysTick_Handler,
};
