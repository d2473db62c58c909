// Compiled into RTNeural's own bench/layer_bench.cpp (bench/rtneural_bench.py), which stays
// unchanged: it keeps each layer's output in a std::vector<double>, whose memory operator new aligns
// to 16 bytes, while RTNeural's xsimd backend built for AVX2 (-march=x86-64-v3, as the suite builds
// RTNeural) writes whole 32-byte registers there with aligned stores, and crashed (SIGSEGV in
// TanhActivation<double>::forward; 7 of 11 layers tried). Every allocation aligned to
// RTMB_NEW_ALIGNMENT (the target's alignment) lets it run; layer_bench allocates before its timed
// loop, so its timing is untouched.
#include <cstdlib>
#include <new>

void* operator new(std::size_t size) {
    constexpr std::size_t kAlign = RTMB_NEW_ALIGNMENT;
    // aligned_alloc wants a size that is a multiple of the alignment (and never 0)
    const std::size_t rounded = size == 0 ? kAlign : (size + kAlign - 1) / kAlign * kAlign;
    if (void* p = std::aligned_alloc(kAlign, rounded)) return p;
    throw std::bad_alloc();
}

void operator delete(void* p) noexcept { std::free(p); }

void operator delete(void* p, std::size_t) noexcept { std::free(p); }
