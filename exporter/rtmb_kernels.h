// The kernels of the generated engine: the maths every generated model header calls. Shipped with
// each export (make export copies it beside the model headers). Dependency-free C++17: no heap, no
// exceptions, no RTTI, no I/O; sizes are template parameters, so the compiler sees constant loops.
//
// Weights are used in place, in the layout the exporter writes them: a dense kernel in blocks of
// kBlock outputs (below), which GCC vectorises on x86-64, aarch64 and armv7 NEON alike and which on
// a scalar FPU (Cortex-M7) keeps the sums in registers. int8 weights meet int8 activations in
// integer dot products: AVX2 pmaddubsw (AVX-VNNI where the CPU has it), NEON vmull.s8, Cortex-M7
// smlad, and a portable loop, all giving the same integers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#elif defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

namespace rtmb {

// Inlined whatever GCC's size heuristics say: the per-model forward() is the one function a step
// is, so its layers' sums and gates stay in registers from one layer to the next.
#define RTMB_INLINE inline __attribute__((always_inline))

#if !defined(__ARM_NEON) && defined(__ARM_FEATURE_DSP)
// sxtb16 with its operand rotated by 8: bytes 1 and 3 (GCC 12's arm_acle.h has no __ror to fold).
inline std::uint32_t sxtb16_ror8(std::uint32_t x) noexcept {
    std::uint32_t y;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(y) : "r"(x));
    return y;
}
#endif

// a * b + c with one rounding on every target. The int8 engine's float arithmetic is pinned op by
// op this way (no choice left to the compiler's contraction), so its reference in numpy
// (exporter/int8_reference.py) reproduces it bit for bit, and every target computes the same bits.
inline float madd(float a, float b, float c) noexcept { return std::fma(a, b, c); }

// Outputs are computed a block of kBlock at a time: the exporter lays a kernel [In][Out] out as
// blocks, for each group of kBlock outputs all its [In][kBlock] weights contiguously (the last block
// holds Out % kBlock), so a block streams through memory once, in order. Within a block the sums
// stay in registers for the whole pass over the inputs, and each input is loaded once.
constexpr int kBlock = 64;
constexpr int kLane = 8;  // outputs per vector, and per group of scalar sums

// Weights come as float or as IEEE half-precision bits (std::uint16_t); either way the sums are
// float32. widen() is exact for every finite half. (int8 weights have their own kernel, below.)
inline float widen(float w) noexcept { return w; }
inline float widen(std::uint16_t h) noexcept {
#if !defined(__ARM_NEON) && defined(__ARM_FP) && (__ARM_FP & 2)
    // A scalar FPU that converts half precision (the Cortex-M7's FPv5): vcvtb, one instruction, on
    // the half in the bottom of a register. (GCC has no __fp16 here without -mfp16-format.)
    const std::uint32_t u = h;
    float bits, f;
    std::memcpy(&bits, &u, sizeof bits);
    __asm__("vcvtb.f32.f16 %0, %1" : "=t"(f) : "t"(bits));
    return f;
#else
    // sign and exponent-mantissa moved into a float's places, then the exponent rebiased (2^112):
    // exact for normal and subnormal halves alike
    const std::uint32_t u = (std::uint32_t(h & 0x8000u) << 16) | (std::uint32_t(h & 0x7fffu) << 13);
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f * 0x1p112f;
#endif
}

#if defined(__AVX__) || defined(__ARM_NEON) || defined(__aarch64__)
// With SIMD, kLane outputs are one GCC vector (one AVX register, two NEON ones) and a block is
// eight of them: per input one broadcast and eight independent fused multiply-adds, enough chains
// to hide the FMA latency. (Plain arrays there make GCC vectorise over the inputs instead, with
// shuffles; one vector at a time waits on each FMA: 2.4x slower on x86.) x86 without AVX takes the
// scalar path: GCC refuses a 32-byte vector passed by value there (its ABI is AVX's).
#define RTMB_VECTOR_LANES 1
typedef float Lanes __attribute__((vector_size(kLane * sizeof(float))));
typedef std::uint16_t HalfLanes __attribute__((vector_size(kLane * 2)));
typedef std::uint32_t WordLanes __attribute__((vector_size(kLane * 4)));

// kLane floats at any alignment. On x86 through GCC's unaligned, may_alias vector type, the plain
// vector load or store: a memcpy went through the stack and general registers when what read the
// floats next was another memcpy (dense 1 -> 8 per sample: 44 instructions, 35 after). On armv7
// the same type gave wrong outputs (GCC 12), so elsewhere it stays a memcpy.
#if defined(__AVX__)
typedef float UnalignedLanes
    __attribute__((vector_size(kLane * sizeof(float)), aligned(alignof(float)), may_alias));
RTMB_INLINE Lanes load(const float* p) noexcept { return *reinterpret_cast<const UnalignedLanes*>(p); }
RTMB_INLINE void store(float* p, Lanes v) noexcept { *reinterpret_cast<UnalignedLanes*>(p) = v; }
#else
RTMB_INLINE Lanes load(const float* p) noexcept {
    Lanes v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
RTMB_INLINE void store(float* p, Lanes v) noexcept { std::memcpy(p, &v, sizeof v); }
#endif

// kLane weights from `w` as floats. (An out-parameter: returning a vector wider than the target's
// registers would change the ABI of a function that is not inlined.)
inline void widen(Lanes& v, const float* w) noexcept { v = load(w); }
// float16: F16C's vcvtph2ps where there is one; else the exact bit rebias, in vector integer ops.
inline void widen(Lanes& v, const std::uint16_t* w) noexcept {
#if defined(__F16C__) && defined(__AVX__)
    v = (Lanes)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
#else
    HalfLanes h;
    std::memcpy(&h, w, sizeof h);
    const WordLanes u = __builtin_convertvector(h, WordLanes);
    v = (Lanes)(((u & 0x8000u) << 16) | ((u & 0x7fffu) << 13)) * 0x1p112f;
#endif
}
#else
// On a scalar FPU (Cortex-M7) kLane plain sums at a time stay in registers.
#define RTMB_VECTOR_LANES 0
#endif

#if RTMB_VECTOR_LANES
// Lanes a * b + c with one rounding per lane, as madd(float) rounds.
RTMB_INLINE Lanes madd(Lanes a, Lanes b, Lanes c) noexcept {
#if defined(__FMA__)
    return (Lanes)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    for (int j = 0; j < kLane; ++j) a[j] = std::fma(a[j], b[j], c[j]);
    return a;
#endif
}
#endif

// A float, or a Lanes with every lane that float: one broadcast. (0 + x is not x for x = -0, and
// x - 0, which is, GCC did not fold for vectors: either cost an instruction per input of every
// product, 7,000 per step of a GRU-256.)
template <typename T>
RTMB_INLINE T splat(float x) noexcept {
    if constexpr (std::is_same_v<T, float>) {
        return x;
    } else {
        static_assert(kLane == 8, "one x per lane");
        return T{x, x, x, x, x, x, x, x};
    }
}

// x limited to [-c, c]; a NaN stays NaN.
RTMB_INLINE float clamp(float x, float c) noexcept {
#if !RTMB_VECTOR_LANES && \
    (defined(__ARM_FEATURE_NUMERIC_MAXMIN) || (defined(__ARM_ARCH_7EM__) && (__ARM_FP & 8)))
    // vmaxnm/vminnm, which an ARMv7E-M FPU with double precision has (FPv5-D16: the Cortex-M7's;
    // no macro names FPv5 itself): two instructions where the selects below take two compares, two
    // flag moves and branches. They return the number when one operand is NaN, so the NaN is kept
    // by a test of its own.
    return x != x ? x : __builtin_fminf(__builtin_fmaxf(x, -c), c);
#else
    return x < -c ? -c : (x > c ? c : x);
#endif
}
#if RTMB_VECTOR_LANES
RTMB_INLINE Lanes clamp(Lanes x, float c) noexcept {
#if defined(__AVX__)
    // max and min return their second operand when one is NaN: x, as the selects above
    const __m256 limit = _mm256_set1_ps(c);
    return (Lanes)_mm256_min_ps(limit, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), limit), (__m256)x));
#else
    const Lanes limit = splat<Lanes>(c);
    return x < -limit ? -limit : (x > limit ? limit : x);
#endif
}
#endif

// tanh(x) ~ x P(x^2) / Q(x^2) for |x| <= kTanhClamp, +-tanh(kTanhClamp) beyond: a rational function
// of degree 9/6, minimax on [0, 7.8] with r(7.8) held to 1 (differential correction), then each
// coefficient rounded to float and nudged by ulps to the least error so evaluated. Max error against
// tanh, evaluated in float as below: 4.4e-7 (Eigen's degree 13/6, which this replaced: 3.0e-7);
// 11 multiplies and multiply-adds and a division where Eigen's takes 13 and one, which on a
// Cortex-M7 (one accumulating FMA, so a copy for every constant term) is what a small recurrent
// step spends most of its instructions on. exporter/int8_reference.py reads these numbers here.
constexpr float kTanhClamp = 7.800000191e+00f;
constexpr float kTanhP[5] = {9.999990463e-01f, 1.269711852e-01f, 2.681861632e-03f, 7.064809779e-06f,
                             -5.988779250e-09f};
constexpr float kTanhQ[4] = {1.000000000e+00f, 4.603010118e-01f, 2.278596163e-02f, 1.949697908e-04f};

// sigmoid(x) = 0.5 + 0.5 tanh(x / 2) = 0.5 + x P(x^2 / 4) / (4 Q(x^2 / 4)): the same function with
// its coefficients scaled by powers of 4 (exact in float), so no halving of x and no final multiply.
struct OddRational {
    float clamp;
    float p[5];
    float q[4];
    float offset;  // added by sigmoid()
};
constexpr OddRational kTanh = {kTanhClamp,
                               {kTanhP[0], kTanhP[1], kTanhP[2], kTanhP[3], kTanhP[4]},
                               {kTanhQ[0], kTanhQ[1], kTanhQ[2], kTanhQ[3]},
                               0.0f};
constexpr OddRational kSigmoid = {
    2.0f * kTanhClamp,
    {kTanhP[0] / 4.0f, kTanhP[1] / 16.0f, kTanhP[2] / 64.0f, kTanhP[3] / 256.0f, kTanhP[4] / 1024.0f},
    {kTanhQ[0], kTanhQ[1] / 4.0f, kTanhQ[2] / 16.0f, kTanhQ[3] / 64.0f},
    0.5f};

// x P(x^2) / Q(x^2) with x clamped; a NaN passes through (the clamp keeps it), so parity sees it.
// One definition for a float and for kLane of them (the same operations lane by lane, so the same
// bits): GCC left loops of scalar calls scalar once it had unrolled them. The polynomials are
// evaluated in Estrin's scheme, not Horner's: a small recurrent layer's step waits on two of these
// one after the other, and the scheme's depth is 3 multiply-adds where Horner's is 4.
template <typename T>
RTMB_INLINE T odd_rational(T x, const OddRational& r) noexcept {
    x = clamp(x, r.clamp);
    const T y = x * x, y2 = y * y, y4 = y2 * y2;
    const T p01 = madd(y, splat<T>(r.p[1]), splat<T>(r.p[0]));
    const T p23 = madd(y, splat<T>(r.p[3]), splat<T>(r.p[2]));
    const T p = madd(y4, splat<T>(r.p[4]), madd(y2, p23, p01));
    const T q01 = madd(y, splat<T>(r.q[1]), splat<T>(r.q[0]));
    const T q23 = madd(y, splat<T>(r.q[3]), splat<T>(r.q[2]));
    return x * p / madd(y2, q23, q01);
}

template <typename T>
RTMB_INLINE T tanh(T x, const OddRational& r = kTanh) noexcept {
    return odd_rational(x, r);
}

template <typename T>
RTMB_INLINE T sigmoid(T x, const OddRational& r = kSigmoid) noexcept {
    return splat<T>(r.offset) + odd_rational(x, r);
}

// An activation's constants for a loop of activations. On an Arm scalar FPU made opaque to GCC, which
// then keeps them in registers across the loop: seeing them, it reloaded each from the literal
// pool every turn (it counts rematerialising a constant as free), on the Cortex-M7 5 to 6
// instructions of 35 per sigmoid. With SIMD they stay constants, folded into the instructions.
RTMB_INLINE OddRational kept_in_registers(OddRational r) noexcept {
#if !RTMB_VECTOR_LANES && defined(__arm__) && defined(__ARM_FP)  // "t": an FPU register
    __asm__("" : "+t"(r.clamp), "+t"(r.p[0]), "+t"(r.p[1]), "+t"(r.p[2]), "+t"(r.p[3]), "+t"(r.p[4]));
    __asm__("" : "+t"(r.q[0]), "+t"(r.q[1]), "+t"(r.q[2]), "+t"(r.q[3]), "+t"(r.offset));
#endif
    return r;
}

// y = f(x) element by element, kLane at a time with SIMD, the rest one by one; y may be x. f takes
// and returns a float or a Lanes (a generic lambda).
template <int N, typename F>
RTMB_INLINE void each(const float* x, float* y, F&& f) noexcept {
    constexpr int kDone = RTMB_VECTOR_LANES ? N / kLane * kLane : 0;
#if RTMB_VECTOR_LANES
#pragma GCC unroll 8
    for (int k = 0; k < kDone; k += kLane) {
        store(y + k, f(load(x + k)));
    }
#endif
    for (int k = kDone; k < N; ++k) y[k] = f(x[k]);
}

// How many partial sums each output of a block of kLanes vectors (Width / kLane) takes over In
// inputs. A narrow product waits on one multiply-add after another (4 cycles each on x86): a
// Conv1D of 8 channels and 3 taps summed 24 inputs into one vector. Four interleaved sums took it
// from 20 to 12 ns per sample; from 3 vectors up there are chains enough (GRU-16's recurrent
// product: no faster with two sums each, and 8% more instructions on the Cortex-M7). The order is part of the
// engine's arithmetic: output o's partial sum k takes the inputs i = k, k + kParts, ... (those past the last
// whole round one each, from sum 0), sum 0 starts at the bias, and they meet as (s0 + s1) + (s2 + s3). Every
// path (SIMD, scalar, every target) sums in this order with fused multiply-adds, so every target computes the
// same bits, and the int8 engine's float32 layers have an exact reference (exporter/int8_reference.py).
constexpr int partial_sums(int In, int kLanes) { return In >= 4 && kLanes <= 2 ? 4 : 1; }

template <int kParts, typename T>
RTMB_INLINE T combine(const T* part) noexcept {
    static_assert(kParts == 1 || kParts == 4, "partial_sums gives 1 or 4");
    if constexpr (kParts == 4) return (part[0] + part[1]) + (part[2] + part[3]);
    else return part[0];
}

#if RTMB_VECTOR_LANES
// acc = b + x W over Width outputs (a multiple of kLane) of a block whose rows are Stride long,
// W [In][Stride]: the sums left in registers for the caller. The loops over them are unrolled
// before anything else looks at them, so the arrays are split into registers: otherwise GCC kept
// them on the stack from 32 outputs up, a load and a store around every multiply-add.
template <int In, int Width, int Stride = Width, typename Wt>
RTMB_INLINE void accumulate(const Wt* __restrict W, const float* __restrict b, const float* __restrict x,
                            Lanes (&acc)[Width / kLane]) noexcept {
    static_assert(Width % kLane == 0 && Width <= Stride, "whole vectors within a row");
    constexpr int kLanes = Width / kLane, kParts = partial_sums(In, kLanes), kEven = In / kParts * kParts;
    Lanes part[kParts][kLanes];
#pragma GCC unroll 16
    for (int v = 0; v < kLanes; ++v) {
#pragma GCC unroll 4
        for (int k = 0; k < kParts; ++k) part[k][v] = Lanes{};
        if (b) widen(part[0][v], b + v * kLane);
    }
    const auto add = [&](int k, int i) {
        const Lanes xi = splat<Lanes>(x[i]);
#pragma GCC unroll 16
        for (int v = 0; v < kLanes; ++v) {
            Lanes w;
            widen(w, W + i * Stride + v * kLane);
            part[k][v] = madd(xi, w, part[k][v]);
        }
    };
    for (int i = 0; i < kEven; i += kParts) {
#pragma GCC unroll 4
        for (int k = 0; k < kParts; ++k) add(k, i + k);
    }
#pragma GCC unroll 4
    for (int i = kEven; i < In; ++i) add(i - kEven, i);
#pragma GCC unroll 16
    for (int v = 0; v < kLanes; ++v) {
        Lanes sums[kParts];
#pragma GCC unroll 4
        for (int k = 0; k < kParts; ++k) sums[k] = part[k][v];
        acc[v] = combine<kParts>(sums);
    }
}
#endif

#if defined(__AVX__)
// The last Rest (< kLane) outputs of a block of float weights as one masked vector: the loads
// read only the row's own Rest weights (and bias), the store writes only y's Rest floats.
template <int In, int Rest, int Stride>
RTMB_INLINE void tail(const float* __restrict W, const float* __restrict b, const float* __restrict x,
                      float* __restrict y) noexcept {
    static_assert(Rest > 0 && Rest < kLane, "a tail");
    const __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(Rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 acc = b ? _mm256_maskload_ps(b, mask) : _mm256_setzero_ps();
    for (int i = 0; i < In; ++i)
        acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i]), _mm256_maskload_ps(W + i * Stride, mask), acc);
    _mm256_maskstore_ps(y, mask, acc);
}
#endif

#if !RTMB_VECTOR_LANES && defined(__ARM_ARCH_7EM__) && defined(__ARM_FP)
// Cortex-M7, float32 weights, eight outputs: their sums stay in s0-s7 for the whole product, eight
// inputs at a time are one vldm into s8-s15, and each row's eight weights one vldm into s16-s23 or
// s24-s31 (the next row's load goes into the other bank while this row is multiplied): 81
// instructions per 8 x 8, 1.27 per multiply-add. In asm because vldm takes a range of named
// registers, which C++ cannot ask for: GCC, given named register variables for the loads, still
// moved the sums about between them and loaded bias and outputs one vldr/vstr each (GRU-16 per
// sample 3,179 instructions; 2,891 with this kernel, the activations as they were then). Each
// vfma is madd(x_i, w, sum): the same order and bits as the loop below.
#define RTMB_M7_ROWS 1
#define RTMB_FMA8(x, w0, w1, w2, w3, w4, w5, w6, w7)                                                   \
    "vfma.f32 %[a0], " x ", " w0 "\n\tvfma.f32 %[a1], " x ", " w1 "\n\tvfma.f32 %[a2], " x ", " w2     \
    "\n\tvfma.f32 %[a3], " x ", " w3 "\n\tvfma.f32 %[a4], " x ", " w4 "\n\tvfma.f32 %[a5], " x ", " w5 \
    "\n\tvfma.f32 %[a6], " x ", " w6 "\n\tvfma.f32 %[a7], " x ", " w7 "\n\t"
#define RTMB_BANK0 "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23"
#define RTMB_BANK1 "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31"
#define RTMB_CALL(macro, ...) macro(__VA_ARGS__)  // the bank expanded into its eight arguments first
#define RTMB_ROW0(x) RTMB_CALL(RTMB_FMA8, x, RTMB_BANK0)
#define RTMB_ROW1(x) RTMB_CALL(RTMB_FMA8, x, RTMB_BANK1)
#define RTMB_LOAD0 "vldmia %[w], {s16-s23}\n\tadd %[w], %[w], %[stride]\n\t"
#define RTMB_LOAD1 "vldmia %[w], {s24-s31}\n\tadd %[w], %[w], %[stride]\n\t"
#define RTMB_SUMS                                                                                            \
    [a0] "+t"(a0), [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3), [a4] "+t"(a4), [a5] "+t"(a5), [a6] "+t"(a6), \
        [a7] "+t"(a7), [w] "+r"(w), [x] "+r"(xp)

template <int In, int Stride>
inline void rows8(const float* __restrict w, const float* __restrict b, const float* __restrict xp,
                  float* __restrict y) noexcept {
    register float a0 __asm__("s0"), a1 __asm__("s1"), a2 __asm__("s2"), a3 __asm__("s3");
    register float a4 __asm__("s4"), a5 __asm__("s5"), a6 __asm__("s6"), a7 __asm__("s7");
    if (b) {
        __asm__("vldmia %8, {s0-s7}"
                : "=t"(a0), "=t"(a1), "=t"(a2), "=t"(a3), "=t"(a4), "=t"(a5), "=t"(a6), "=t"(a7)
                : "r"(b), "m"(*reinterpret_cast<const float(*)[8]>(b)));
    } else {
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0f;
    }
    // "memory": the asm reads x, which the caller may have just written (h, a ring of taps)
    for (int i = 0; i + 8 <= In; i += 8) {
        __asm__("vldmia %[x]!, {s8-s15}\n\t" RTMB_LOAD0 RTMB_LOAD1 RTMB_ROW0("s8") RTMB_LOAD0 RTMB_ROW1("s9")
                    RTMB_LOAD1 RTMB_ROW0("s10") RTMB_LOAD0 RTMB_ROW1("s11") RTMB_LOAD1 RTMB_ROW0("s12")
                        RTMB_LOAD0 RTMB_ROW1("s13") RTMB_LOAD1 RTMB_ROW0("s14") RTMB_ROW1("s15")
                : RTMB_SUMS
                : [stride] "r"(Stride * 4)
                : "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", RTMB_BANK0, RTMB_BANK1, "memory");
    }
    for (int i = In / 8 * 8; i < In; ++i) {
        __asm__("vldmia %[x]!, {s8}\n\t" RTMB_LOAD0 RTMB_ROW0("s8")
                : RTMB_SUMS
                : [stride] "r"(Stride * 4)
                : "s8", RTMB_BANK0, "memory");
    }
    __asm__("vstmia %[y], {s0-s7}"
            : "=m"(*reinterpret_cast<float(*)[8]>(y))
            : "t"(a0), "t"(a1), "t"(a2), "t"(a3), "t"(a4), "t"(a5), "t"(a6), "t"(a7), [y] "r"(y));
}
#undef RTMB_FMA8
#undef RTMB_ROW0
#undef RTMB_ROW1
#undef RTMB_CALL
#undef RTMB_BANK0
#undef RTMB_BANK1
#undef RTMB_LOAD0
#undef RTMB_LOAD1
#undef RTMB_SUMS
#else
#define RTMB_M7_ROWS 0
#endif

// y[0, G) = b + x W for G outputs whose rows are Stride long, in kParts partial sums each: the
// order above, one output at a time (a scalar FPU, and the tails of a block).
template <int In, int G, int Stride, int kParts, typename Wt>
inline void chains(const Wt* __restrict W, const float* __restrict b, const float* __restrict x,
                   float* __restrict y) noexcept {
#if RTMB_M7_ROWS
    if constexpr (G == 8 && kParts == 1 && sizeof(Wt) == sizeof(float)) {
        rows8<In, Stride>(reinterpret_cast<const float*>(W), b, x, y);
        return;
    }
#endif
    constexpr int kEven = In / kParts * kParts;
    float part[kParts][G];
    for (int j = 0; j < G; ++j) {
        for (int k = 0; k < kParts; ++k) part[k][j] = 0.0f;
        if (b) part[0][j] = b[j];
    }
    const auto add = [&](int k, int i) {
        const float xi = x[i];
        for (int j = 0; j < G; ++j) part[k][j] = madd(xi, widen(W[i * Stride + j]), part[k][j]);
    };
    for (int i = 0; i < kEven; i += kParts)
        for (int k = 0; k < kParts; ++k) add(k, i + k);
    for (int i = kEven; i < In; ++i) add(i - kEven, i);
    for (int j = 0; j < G; ++j) {
        float sums[kParts];
        for (int k = 0; k < kParts; ++k) sums[k] = part[k][j];
        y[j] = combine<kParts>(sums);
    }
}

// y[0, Width) = b + x W for one block, W [In][Width].
template <int In, int Width, typename Wt>
inline void block(const Wt* __restrict W, const float* __restrict b, const float* __restrict x,
                  float* __restrict y) noexcept {
    constexpr int kLanes = Width / kLane, kRest = Width % kLane;
#if RTMB_VECTOR_LANES
    if constexpr (kLanes > 0) {
        Lanes acc[kLanes];
        accumulate<In, kLanes * kLane, Width>(W, b, x, acc);
#pragma GCC unroll 16
        for (int v = 0; v < kLanes; ++v) store(y + v * kLane, acc[v]);
    }
#else
    // G outputs at a time: G x kParts sums in registers (16 of a scalar FPU's 32; 8 reloaded x
    // and made dense 8 -> 8 per sample 1.2x RTNeural STL's instructions on the Cortex-M7)
    constexpr int kParts = partial_sums(In, kLanes), G = kParts == 1 ? kLane : 4;
    for (int o = 0; o < kLanes * kLane; o += G)
        chains<In, G, Width, kParts>(W + o, b ? b + o : nullptr, x, y + o);
#endif
#if defined(__AVX__)
    if constexpr (kRest > 0 && sizeof(Wt) == sizeof(float)) {
        constexpr int o = kLanes * kLane;
        tail<In, kRest, Width>(W + o, b ? b + o : nullptr, x, y + o);
        return;
    }
#endif
    if constexpr (kRest > 0) {
        constexpr int o = kLanes * kLane;
        chains<In, kRest, Width, 1>(W + o, b ? b + o : nullptr, x, y + o);
    }
}

// y = b + x W (b may be null), W in blocks as above.
template <int In, int Out, typename Wt>
inline void dense(const Wt* __restrict W, const float* __restrict b, const float* __restrict x,
                  float* __restrict y) noexcept {
    constexpr int kFull = Out / kBlock;
    for (int k = 0; k < kFull; ++k)
        block<In, kBlock>(W + k * In * kBlock, b ? b + k * kBlock : nullptr, x, y + k * kBlock);
    if constexpr (Out % kBlock != 0)
        block<In, Out % kBlock>(W + kFull * In * kBlock, b ? b + kFull * kBlock : nullptr, x,
                                y + kFull * kBlock);
}

// ---- int8: int8 weights times int8 activations, summed exactly in int32 ----
//
// Each input vector is quantised as it enters a matrix, with one scale for the vector (its largest
// magnitude maps to 127); weights carry a scale per output. The integer sums are exact, so the
// only rounding is in the float steps around them, each pinned (madd), the same on every target.
// A kernel [In][Out] is stored in blocks of kBlock outputs as for float, and within a block in
// groups of kGroup inputs: [In / kGroup][Width][kGroup] (In padded with zero weights), so one
// output's four weights are one 32-bit word -- the operand shape of x86 pmaddubsw, NEON
// vmull.s8 + vpadal and the Cortex-M7's smlad alike.
constexpr int kGroup = 4;
constexpr int padded(int n) { return (n + kGroup - 1) / kGroup * kGroup; }

// q[0, N) = x / scale rounded to nearest (ties to even), with scale = max |x| / 127, returned (0
// for a zero vector, NaN when an x is NaN, so the outputs are NaN). q[N, padded(N)) is left zero.
template <int N>
inline float quantize(const float* __restrict x, std::int8_t* __restrict q) noexcept {
    float top = 0.0f;
    bool nan = false;
    int i = 0;
#if defined(__AVX2__)
    if constexpr (N >= 8) {  // (below 8 the lanes' reduction cost ~57 instructions for nothing)
        __m256 top8 = _mm256_setzero_ps(), nan8 = _mm256_setzero_ps();
        const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        for (; i + 8 <= N; i += 8) {
            const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), magnitude);
            top8 = _mm256_max_ps(top8, a);
            nan8 = _mm256_or_ps(nan8, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        }
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, top8);
        for (const float a : lanes) top = a > top ? a : top;
        nan = _mm256_movemask_ps(nan8) != 0;
    }
#endif
    for (; i < N; ++i) {
        const float a = std::fabs(x[i]);
        top = a > top ? a : top;
        nan = nan || a != a;
    }
    if (nan) return __builtin_nanf("");
    if (top == 0.0f) {
        std::memset(q, 0, N);
        return 0.0f;
    }
    const float inverse = 127.0f / top;  // |x * inverse| <= 127 (rounded): no clamp needed
    i = 0;
#if defined(__AVX2__)
    const __m256 inv8 = _mm256_set1_ps(inverse);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (; i + 32 <= N; i += 32) {  // cvtps2dq rounds to nearest even, as nearbyint does
        const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv8));
        const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), inv8));
        const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 16), inv8));
        const __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 24), inv8));
        const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_permutevar8x32_epi32(packed, order));
    }
#elif defined(__aarch64__)
    for (; i + 8 <= N; i += 8) {  // fcvtns rounds to nearest even
        const int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i), inverse));
        const int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 4), inverse));
        vst1_s8(q + i, vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b))));
    }
#endif
    for (; i < N; ++i) q[i] = std::int8_t(std::nearbyint(x[i] * inverse));
    return top / 127.0f;
}

#if !defined(__ARM_NEON) && defined(__ARM_FEATURE_DSP)
// The groups of inputs sums_dsp's stack buffer holds, from a layer's size at compile time: 256
// (1,024 inputs) for every layer up to that, so they all share one copy per width, and a wider
// layer's own count, in a copy of its own. (A buffer the caller passed in instead took a register
// from the inner loop, which then reloaded its end: +1.8% instructions per step of the int8
// EmotionRecognizer.)
constexpr int kDspGroups = 1024 / kGroup;
constexpr int dsp_capacity(int groups) { return groups > kDspGroups ? groups : kDspGroups; }

// Cortex-M7: per output one 32-bit load of its four weights, sign-extended in pairs (sxtb16 takes
// bytes 0 and 2, and with ror #8 bytes 1 and 3) into two dual 16-bit multiply-adds; the
// activations' pairs are extended once per block. Out of line, with run-time sizes: inlined into a
// model's unrolled forward(), GCC spilled the sums to the stack on every group. One copy per block
// width (kBlock and the tails), the number of groups at run time: left to itself GCC cloned it for
// constant sizes as the call sites happened to suggest, and an unrelated model's change moved
// another's instruction count by 5-7%. Sums the outputs [0, width / 4 * 4), four at a time.
// capacity: the groups its buffer of pairs holds, dsp_capacity(groups).
template <int width, int capacity>
__attribute__((noinline, noclone)) void sums_dsp(const std::int8_t* __restrict W,
                                                 const std::int8_t* __restrict q,
                                                 std::int32_t* __restrict acc, int groups) noexcept {
    // Words read in place: the weights are 64-byte aligned and each group of four outputs is 16
    // bytes, so GCC may load them two at a time (ldrd); may_alias, as they are int8 objects.
    typedef std::uint32_t Word __attribute__((may_alias, aligned(4)));
    std::uint32_t pairs[2 * capacity];
    for (int g = 0; g < groups; ++g) {
        const std::uint32_t word = *reinterpret_cast<const Word*>(q + g * kGroup);
        pairs[2 * g] = __sxtb16(word);
        pairs[2 * g + 1] = sxtb16_ror8(word);
    }
    int o = 0;
    for (; o + 4 <= width; o += 4) {
        std::int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const Word* w = reinterpret_cast<const Word*>(W + o * kGroup);
        const std::uint32_t* a = pairs;
        const std::uint32_t* const end = pairs + 2 * groups;
        const auto group = [&](const Word* v, const std::uint32_t* b) {
            s0 = __smlad(sxtb16_ror8(v[0]), b[1], __smlad(__sxtb16(v[0]), b[0], s0));
            s1 = __smlad(sxtb16_ror8(v[1]), b[1], __smlad(__sxtb16(v[1]), b[0], s1));
            s2 = __smlad(sxtb16_ror8(v[2]), b[1], __smlad(__sxtb16(v[2]), b[0], s2));
            s3 = __smlad(sxtb16_ror8(v[3]), b[1], __smlad(__sxtb16(v[3]), b[0], s3));
        };
        if (groups % 2) {
            group(w, a);
            a += 2, w += width;
        }
        for (; a != end; a += 4, w += 2 * width) {  // two groups a turn: half the loop overhead
            group(w, a);
            group(w + width, a + 2);
        }
        acc[o] = s0;
        acc[o + 1] = s1;
        acc[o + 2] = s2;
        acc[o + 3] = s3;
    }
}
#endif

#if defined(__AVX2__)
// vpdpbusd (four byte products summed into each int32 lane in one instruction) is not in
// x86-64-v3: AVX-VNNI has it, and so has AVX-512 VNNI (with AVX-512 VL on 256-bit registers,
// EVEX-encoded: AMD EPYC Zen 4 has this one and not AVX-VNNI). Chosen at run time, once, before
// main(); the sums are the same integers. (-DRTMB_USE_VNNI=0 keeps to AVX2.)
#ifndef RTMB_USE_VNNI
#define RTMB_USE_VNNI 1
#endif
enum class Vnni { none, avx, avx512 };
inline Vnni vnni_here() noexcept {
    if (!RTMB_USE_VNNI) return Vnni::none;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avxvnni")) return Vnni::avx;
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) return Vnni::avx512;
    return Vnni::none;
}
inline const Vnni kVnni = vnni_here();

// vpdpbusd multiplies unsigned by signed bytes: the activations go in as q + 128 (their sign bit
// flipped), one instruction per 32 products with the weights read straight from memory, and
// 128 x each output's weight sum (written by the exporter) comes off at the end. Dot is the
// instruction's form: VEX (AVX-VNNI) or EVEX (AVX-512 VNNI).
template <int Groups, int Width, int kV, typename Dot>
inline void sums_dpbusd(const std::int8_t* __restrict W, const std::int32_t* __restrict wsum,
                        const std::int8_t* __restrict q, __m256i* sum, Dot dot) noexcept {
    for (int g = 0; g < Groups; ++g) {
        std::uint32_t word;
        std::memcpy(&word, q + g * kGroup, sizeof word);
        const __m256i a = _mm256_set1_epi32(std::int32_t(word ^ 0x80808080u));
        const std::int8_t* w = W + g * Width * kGroup;
        for (int v = 0; v < kV; ++v)
            sum[v] = dot(sum[v], a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * 32)));
    }
    for (int v = 0; v < kV; ++v)
        sum[v] = _mm256_sub_epi32(
            sum[v], _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wsum + v * 8)), 7));
}

template <int Groups, int Width, int kV>
__attribute__((target("avxvnni"))) inline void sums_avx_vnni(const std::int8_t* __restrict W,
                                                             const std::int32_t* __restrict wsum,
                                                             const std::int8_t* __restrict q,
                                                             __m256i* sum) noexcept {
    sums_dpbusd<Groups, Width, kV>(
        W, wsum, q, sum, [](__m256i s, __m256i a, __m256i w) __attribute__((target("avxvnni"))) {
            return _mm256_dpbusd_avx_epi32(s, a, w);
        });
}

template <int Groups, int Width, int kV>
__attribute__((target("avx512vnni,avx512vl"))) inline void sums_avx512_vnni(
    const std::int8_t* __restrict W, const std::int32_t* __restrict wsum, const std::int8_t* __restrict q,
    __m256i* sum) noexcept {
    sums_dpbusd<Groups, Width, kV>(
        W, wsum, q, sum, [](__m256i s, __m256i a, __m256i w) __attribute__((target("avx512vnni,avx512vl"))) {
            return _mm256_dpbusd_epi32(s, a, w);
        });
}
#endif

// acc[0, Width) = the integer sums of one block: W [Groups][Width][kGroup], q [Groups * kGroup];
// wsum[0, Width): each output's weight sum.
template <int Groups, int Width>
inline void sums(const std::int8_t* __restrict W, [[maybe_unused]] const std::int32_t* __restrict wsum,
                 const std::int8_t* __restrict q, std::int32_t* __restrict acc) noexcept {
#if defined(__AVX2__)
    constexpr int kDone = Width / 8 * 8;  // the outputs a vector path sums; the loop at the end does the rest
#elif defined(__ARM_NEON)
    constexpr int kDone = Width / 16 * 16;
#elif defined(__ARM_FEATURE_DSP)
    constexpr int kDone = Width / 4 * 4;
#else
    constexpr int kDone = 0;
#endif
#if defined(__AVX2__)
    // 8 outputs per register; pmaddubsw multiplies unsigned by signed bytes, so the activations'
    // signs move onto the weights (|q| * sign(w, q)): pairs then sum to at most 2 * 127 * 127,
    // short of int16's saturation.
    constexpr int kV = Width / 8;
    if constexpr (kV > 0) {
        __m256i sum[kV];
        for (int v = 0; v < kV; ++v) sum[v] = _mm256_setzero_si256();
        const __m256i ones = _mm256_set1_epi16(1);
        if (kVnni == Vnni::avx) sums_avx_vnni<Groups, Width, kV>(W, wsum, q, sum);
        else if (kVnni == Vnni::avx512) sums_avx512_vnni<Groups, Width, kV>(W, wsum, q, sum);
        else
            for (int g = 0; g < Groups; ++g) {
                std::int32_t word;
                std::memcpy(&word, q + g * kGroup, sizeof word);
                const __m256i a = _mm256_set1_epi32(word), magnitude = _mm256_abs_epi8(a);
                const std::int8_t* w = W + g * Width * kGroup;
                for (int v = 0; v < kV; ++v) {
                    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * 32));
                    const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(wv, a));
                    sum[v] = _mm256_add_epi32(sum[v], _mm256_madd_epi16(pairs, ones));
                }
            }
        for (int v = 0; v < kV; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + v * 8), sum[v]);
    }
#elif defined(__ARM_NEON)
    // 16 outputs at a time (8 accumulators of two partial sums per output): vmull.s8 gives int16
    // products (at most 127 * 127), vpadal adds their pairs into int32.
    for (int o = 0; o + 16 <= Width; o += 16) {
        int32x4_t sum[8];
        for (int v = 0; v < 8; ++v) sum[v] = vdupq_n_s32(0);
        for (int g = 0; g < Groups; ++g) {
            std::int32_t word;
            std::memcpy(&word, q + g * kGroup, sizeof word);
            const int8x8_t a = vreinterpret_s8_s32(vdup_n_s32(word));
            const std::int8_t* w = W + (g * Width + o) * kGroup;
            for (int v = 0; v < 4; ++v) {
                const int8x16_t wv = vld1q_s8(w + v * 16);
                sum[2 * v] = vpadalq_s16(sum[2 * v], vmull_s8(vget_low_s8(wv), a));
                sum[2 * v + 1] = vpadalq_s16(sum[2 * v + 1], vmull_s8(vget_high_s8(wv), a));
            }
        }
        for (int v = 0; v < 8; ++v) {  // [o0 o0 o1 o1] -> [o0 o1]
            const int32x2_t both = vpadd_s32(vget_low_s32(sum[v]), vget_high_s32(sum[v]));
            vst1_s32(acc + o + 2 * v, both);
        }
    }
#elif defined(__ARM_FEATURE_DSP)
    sums_dsp<Width, dsp_capacity(Groups)>(W, q, acc, Groups);
#endif
    for (int o = kDone; o < Width; ++o) {  // what the vector paths leave
        std::int32_t sum = 0;
        for (int g = 0; g < Groups; ++g)
            for (int k = 0; k < kGroup; ++k) sum += q[g * kGroup + k] * W[(g * Width + o) * kGroup + k];
        acc[o] = sum;
    }
}

// An int8 matrix as the exporter writes it: the weights in groups, a scale per output, and each
// output's weight sum (for AVX-VNNI).
struct Int8Matrix {
    const std::int8_t* w;
    const float* scale;
    const std::int32_t* sums;
};

// y = b + (x W) as an int8 layer computes it: x already quantised to q with scale xs;
// y[o] = madd(float(sum[o]), xs * scale[o], b[o]) (b may be null).
// y[j] = madd(float(acc[j]), xs * scale[j], b[j]) for j in [0, Width) (b may be null: 0): the sums
// of one block back to float, kLane at a time with SIMD (the same operations lane by lane, so the
// same bits; one at a time this was most of a small int8 layer's step). y may be b.
template <int Width>
RTMB_INLINE void dequantize(const std::int32_t* __restrict acc, float xs, const float* __restrict scale,
                            const float* b, float* y) noexcept {
    constexpr int kDone = RTMB_VECTOR_LANES ? Width / kLane * kLane : 0;
#if RTMB_VECTOR_LANES
    typedef std::int32_t IntLanes __attribute__((vector_size(kLane * 4)));
#pragma GCC unroll 8
    for (int j = 0; j < kDone; j += kLane) {
        IntLanes a;
        Lanes bv{};
        std::memcpy(&a, acc + j, sizeof a);
        const Lanes sv = load(scale + j);
        if (b) bv = load(b + j);
        const Lanes yv = madd(__builtin_convertvector(a, Lanes), splat<Lanes>(xs) * sv, bv);
        store(y + j, yv);
    }
#endif
    for (int j = kDone; j < Width; ++j) y[j] = madd(float(acc[j]), xs * scale[j], b ? b[j] : 0.0f);
}

// y = b + (x W) as an int8 layer computes it: x already quantised to q with scale xs;
// y[o] = madd(float(sum[o]), xs * scale[o], b[o]) (b may be null).
template <int In, int Out>
inline void dense(const Int8Matrix& m, const float* __restrict b, const std::int8_t* __restrict q, float xs,
                  float* __restrict y) noexcept {
    constexpr int kGroups = padded(In) / kGroup, kFull = Out / kBlock * kBlock, kRest = Out % kBlock;
    alignas(32) std::int32_t acc[kBlock];
    for (int o = 0; o < kFull; o += kBlock) {
        sums<kGroups, kBlock>(m.w + o * kGroups * kGroup, m.sums + o, q, acc);
        dequantize<kBlock>(acc, xs, m.scale + o, b ? b + o : nullptr, y + o);
    }
    if constexpr (kRest != 0) {
        sums<kGroups, kRest>(m.w + kFull * kGroups * kGroup, m.sums + kFull, q, acc);
        dequantize<kRest>(acc, xs, m.scale + kFull, b ? b + kFull : nullptr, y + kFull);
    }
}

// Quantise x (In floats) into q, then y = b + x W.
template <int In, int Out>
inline void dense(const Int8Matrix& m, const float* __restrict b, const float* __restrict x,
                  std::int8_t* __restrict q, float* __restrict y) noexcept {
    const float xs = quantize<In>(x, q);
    dense<In, Out>(m, b, q, xs, y);
}

// The activations: y = f(x), y may be x.
template <int N>
RTMB_INLINE void tanh(const float* x, float* y) noexcept {
    const OddRational t = kept_in_registers(kTanh);
    each<N>(x, y, [&](auto v) { return rtmb::tanh(v, t); });
}

template <int N>
RTMB_INLINE void sigmoid(const float* x, float* y) noexcept {
    const OddRational s = kept_in_registers(kSigmoid);
    each<N>(x, y, [&](auto v) { return rtmb::sigmoid(v, s); });
}

// `x < 0 ? 0 : x` keeps a NaN (std::max would drop it).
template <int N>
RTMB_INLINE void relu(const float* x, float* y) noexcept {
    each<N>(x, y, [](auto v) {
        const decltype(v) zero{};
        return v < zero ? zero : v;
    });
}

template <int N>
inline void elu(const float* x, float* y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = x[k] > 0.0f ? x[k] : std::expm1(x[k]);
}

template <int N>
inline void softmax(const float* x, float* y) noexcept {
    float top = x[0];
    for (int k = 1; k < N; ++k) top = x[k] > top ? x[k] : top;
    float sum = 0.0f;
    for (int k = 0; k < N; ++k) sum += (y[k] = std::exp(x[k] - top));
    for (int k = 0; k < N; ++k) y[k] /= sum;
}

// One LSTM unit's gates from their pre-activations (i, f, c, o): c updated, h returned. T is a float
// or a Lanes (the same operations lane by lane).
template <typename T>
RTMB_INLINE T lstm_gates(T in, T forget, T candidate, T out, T& c) noexcept {
    c = madd(rtmb::sigmoid(forget), c, rtmb::sigmoid(in) * rtmb::tanh(candidate));
    return rtmb::sigmoid(out) * rtmb::tanh(c);
}

// One GRU unit's new h from wx = b_W + x W and uh = b_U + h U, gates z, r, n.
template <typename T>
RTMB_INLINE T gru_gates(T wz, T wr, T wn, T uz, T ur, T un, T h) noexcept {
    const T update = rtmb::sigmoid(wz + uz);
    const T reset = rtmb::sigmoid(wr + ur);
    const T candidate = rtmb::tanh(madd(reset, un, wn));
    return madd(update, h - candidate, candidate);  // (1 - update) candidate + update h
}

// The LSTM gates after the product: z = [i, f, c, o] pre-activations (scratch: overwritten); c and
// h updated in place. (Inlined as GCC sees fit: forced into a GRU-256's step it made the step 20%
// more instructions.)
template <int H>
inline void lstm_cell(float* __restrict z, float* __restrict c, float* __restrict h) noexcept {
#if RTMB_VECTOR_LANES
    constexpr int kDone = H / kLane * kLane;
#pragma GCC unroll 8
    for (int k = 0; k < kDone; k += kLane) {
        Lanes g[4], ck;
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) g[j] = load(z + j * H + k);
        ck = load(c + k);
        const Lanes hk = lstm_gates(g[0], g[1], g[2], g[3], ck);
        store(c + k, ck);
        store(h + k, hk);
    }
    for (int k = kDone; k < H; ++k) h[k] = lstm_gates(z[k], z[H + k], z[2 * H + k], z[3 * H + k], c[k]);
#else
    // A scalar FPU: one kind of activation per loop, so its constants stay in registers (a unit's
    // sigmoids and tanhs at once need more than the Cortex-M7's 32: each unit reloaded 16 of them).
    // The same operations as lstm_gates, so the same bits.
    const OddRational s = kept_in_registers(kSigmoid), t = kept_in_registers(kTanh);
#pragma GCC unroll 2
    for (int k = 0; k < 2 * H; ++k) z[k] = rtmb::sigmoid(z[k], s);
#pragma GCC unroll 2
    for (int k = 3 * H; k < 4 * H; ++k) z[k] = rtmb::sigmoid(z[k], s);
    for (int k = 0; k < H; ++k) {
        c[k] = madd(z[H + k], c[k], z[k] * rtmb::tanh(z[2 * H + k], t));
        h[k] = z[3 * H + k] * rtmb::tanh(c[k], t);
    }
#endif
}

// The GRU gates after the two products wx = b_W + x W and uh = b_U + h U (gates z, r, n; uh is
// scratch, overwritten).
template <int H>
inline void gru_cell(const float* __restrict wx, float* __restrict uh, float* __restrict h) noexcept {
#if RTMB_VECTOR_LANES
    constexpr int kDone = H / kLane * kLane;
#pragma GCC unroll 8
    for (int k = 0; k < kDone; k += kLane) {
        Lanes w[3], u[3], hk;
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
            w[j] = load(wx + j * H + k);
            u[j] = load(uh + j * H + k);
        }
        hk = load(h + k);
        hk = gru_gates(w[0], w[1], w[2], u[0], u[1], u[2], hk);
        store(h + k, hk);
    }
    for (int k = kDone; k < H; ++k)
        h[k] = gru_gates(wx[k], wx[H + k], wx[2 * H + k], uh[k], uh[H + k], uh[2 * H + k], h[k]);
#else
    // A scalar FPU: the sigmoids of z and r in one loop, then the tanhs, as lstm_cell does (the
    // same operations as gru_gates, so the same bits).
    const OddRational s = kept_in_registers(kSigmoid), t = kept_in_registers(kTanh);
#pragma GCC unroll 2
    for (int k = 0; k < 2 * H; ++k) uh[k] = rtmb::sigmoid(wx[k] + uh[k], s);
#pragma GCC unroll 2
    for (int k = 0; k < H; ++k) {
        const float candidate = rtmb::tanh(madd(uh[H + k], uh[2 * H + k], wx[2 * H + k]), t);
        h[k] = madd(uh[k], h[k] - candidate, candidate);
    }
#endif
}

// A recurrent layer whose gates are whole vectors and fit one block (LSTM up to 16 units, GRU up
// to 21) is stepped with its sums in registers, from the products through the gates: nothing
// goes through memory but the weights, x and h.
constexpr bool in_registers(int H, int gates) {
    return RTMB_VECTOR_LANES && H % kLane == 0 && gates * H <= kBlock;
}

// One LSTM step. WU is [I + H][4H]: the input kernel W stacked on the recurrent kernel U, gates
// i, f, c, o, read once per step as one matrix over xh = [x; h]. The caller has put x in
// xh[0, I); h lives in xh[I, I + H) and is updated here, c in c; z is scratch.
template <int I, int H, typename Wt>
inline void lstm(const Wt* __restrict WU, const float* __restrict b, float* __restrict xh,
                 float* __restrict c, float* __restrict z) noexcept {
#if RTMB_VECTOR_LANES
    if constexpr (in_registers(H, 4)) {
        constexpr int kV = H / kLane;
        Lanes g[4 * kV];
        accumulate<I + H, 4 * H>(WU, b, xh, g);
#pragma GCC unroll 8
        for (int v = 0; v < kV; ++v) {
            Lanes ck = load(c + v * kLane);
            const Lanes hk = lstm_gates(g[v], g[kV + v], g[2 * kV + v], g[3 * kV + v], ck);
            store(c + v * kLane, ck);
            store(xh + I + v * kLane, hk);
        }
        return;
    }
#endif
    dense<I + H, 4 * H>(WU, b, xh, z);
    lstm_cell<H>(z, c, xh + I);
}

// int8: x and h quantised apart (qx, qh), each with its own scale, into two matrices W [I][4H] and
// U [H][4H], each with its own scales per gate row. (One scale over [x; h] rounded an amp's input
// of peak 3e-4 to zero against h ~ 1: the output was the output for silence.) Both products are
// summed block by block and meet in one pass: z = madd(sum_h, hs * U.scale, madd(sum_x, xs *
// W.scale, b)). h (H floats) is updated here, c in c; z is scratch.
template <int I, int H>
inline void lstm(const Int8Matrix& W, const Int8Matrix& U, const float* __restrict b,
                 const float* __restrict x, float* __restrict h, float* __restrict c, float* __restrict z,
                 std::int8_t* __restrict qx, std::int8_t* __restrict qh) noexcept {
    constexpr int kOut = 4 * H, kFull = kOut / kBlock * kBlock;
    constexpr int kGx = padded(I) / kGroup, kGh = padded(H) / kGroup;
    const float xs = quantize<I>(x, qx), hs = quantize<H>(h, qh);
    alignas(32) std::int32_t ax[kBlock], ah[kBlock];
    const auto block = [&](auto width, int o) {
        sums<kGx, width>(W.w + o * kGx * kGroup, W.sums + o, qx, ax);
        sums<kGh, width>(U.w + o * kGh * kGroup, U.sums + o, qh, ah);
        dequantize<width>(ax, xs, W.scale + o, b + o, z + o);
        dequantize<width>(ah, hs, U.scale + o, z + o, z + o);
    };
    for (int o = 0; o < kFull; o += kBlock) block(std::integral_constant<int, kBlock>{}, o);
    if constexpr (kOut % kBlock != 0) block(std::integral_constant<int, kOut % kBlock>{}, kFull);
    lstm_cell<H>(z, c, h);
}

// One GRU step. W [I][3H] and U [H][3H], gates z, r, n: two products, because the reset gate
// scales the recurrent part of the candidate; b is [2][3H] (input bias, recurrent bias). h is
// updated in place; wx and uh are scratch.
template <int I, int H, typename Wt>
inline void gru(const Wt* __restrict W, const Wt* __restrict U, const float* __restrict b,
                const float* __restrict x, float* __restrict h, float* __restrict wx,
                float* __restrict uh) noexcept {
#if RTMB_VECTOR_LANES
    if constexpr (in_registers(H, 3)) {
        constexpr int kV = H / kLane;
        Lanes w[3 * kV], u[3 * kV];
        accumulate<I, 3 * H>(W, b, x, w);
        accumulate<H, 3 * H>(U, b + 3 * H, h, u);
#pragma GCC unroll 8
        for (int v = 0; v < kV; ++v) {
            const Lanes hk = load(h + v * kLane);
            store(h + v * kLane,
                  gru_gates(w[v], w[kV + v], w[2 * kV + v], u[v], u[kV + v], u[2 * kV + v], hk));
        }
        return;
    }
#endif
    dense<I, 3 * H>(W, b, x, wx);
    dense<H, 3 * H>(U, b + 3 * H, h, uh);
    gru_cell<H>(wx, uh, h);
}

// int8: x and h quantised apart (qx, qh), each with its own scale, as the two products are apart.
template <int I, int H>
inline void gru(const Int8Matrix& W, const Int8Matrix& U, const float* __restrict b,
                const float* __restrict x, float* __restrict h, float* __restrict wx, float* __restrict uh,
                std::int8_t* __restrict qx, std::int8_t* __restrict qh) noexcept {
    dense<I, 3 * H>(W, b, x, qx, wx);
    dense<H, 3 * H>(U, b + 3 * H, h, qh, uh);
    gru_cell<H>(wx, uh, h);
}

// y = scale * x + shift, per feature (batch norm with its statistics folded in at export).
template <int N>
inline void affine(const float* __restrict scale, const float* __restrict shift, const float* __restrict x,
                   float* __restrict y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = madd(scale[k], x[k], shift[k]);
}

template <int N>
inline void prelu(const float* __restrict alpha, const float* __restrict x, float* __restrict y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = x[k] < 0.0f ? alpha[k] * x[k] : x[k];
}

template <int N>
RTMB_INLINE void copy(const float* __restrict x, float* __restrict y) noexcept {
    // vector loads and stores: memcpy's expansion went through general registers
    each<N>(x, y, [](auto v) { return v; });
}

// ---- Conv1D: RTNeural's Conv1DT (causal, stride 1), kernel size K, dilation D, G groups ----
//
// y[t] = b + sum_i x[t - (K - 1 - i) D] W_i over the taps i = 0 .. K-1, oldest first (the JSON
// kernel's order); output o reads input group o / (Out / G). For each group the taps' slices of
// the input are one vector of K * In/G floats and its weights one matrix [K * In/G][Out/G] (the
// JSON kernel's rows for those outputs), stored as a dense kernel (in blocks; int8 in groups with
// a scale per output), group after group: a step is one dense product per group, the k taps fused.
// The past frames are a ring in the model object (conv_history() floats and its position, both
// zeroed by reset()):
// - K == 1: no ring; the input (a group's slice of it) is the vector.
// - D == 1: each frame is written twice, to slots p and p + K of 2K, so the last K frames are
//   always contiguous, oldest first; with G == 1 they are the vector in place, nothing copied.
// - D > 1: (K - 1) D + 1 frames, and each group's taps are gathered into `taps` (K * In/G floats).
constexpr int conv_frames(int K, int D) { return K == 1 ? 0 : D == 1 ? 2 * K : (K - 1) * D + 1; }
constexpr int conv_history(int In, int K, int D) { return conv_frames(K, D) * In; }

// Pushes x into the ring and calls product(g, v) for each group g with its vector v of taps.
template <int In, int K, int D, int G, typename Product>
inline void conv1d_taps(const float* __restrict x, float* __restrict hist, int* pos, float* __restrict taps,
                        Product&& product) noexcept {
    static_assert(K >= 1 && D >= 1 && G >= 1 && In % G == 0, "Conv1D: sizes");
    constexpr int kIn = In / G;
    if constexpr (K == 1) {
        for (int g = 0; g < G; ++g) product(g, x + g * kIn);
    } else {
        constexpr int kRing = D == 1 ? K : conv_frames(K, D);  // distinct slots the position walks
        const int p = *pos;
        std::memcpy(hist + p * In, x, sizeof(float) * In);
        if constexpr (D == 1) std::memcpy(hist + (p + K) * In, x, sizeof(float) * In);
        *pos = p + 1 == kRing ? 0 : p + 1;
        if constexpr (D == 1 && G == 1) {
            product(0, hist + (p + 1) * In);
        } else {
            for (int g = 0; g < G; ++g) {
                for (int i = 0; i < K; ++i) {
                    int slot = p + 1 + i;  // D == 1: in the doubled ring, no wrap
                    if constexpr (D > 1) {
                        slot = p - (K - 1 - i) * D;
                        slot = slot < 0 ? slot + kRing : slot;
                    }
                    std::memcpy(taps + i * kIn, hist + slot * In + g * kIn, sizeof(float) * kIn);
                }
                product(g, static_cast<const float*>(taps));
            }
        }
    }
}

// One Conv1D step, float or float16 weights W (G matrices [K * In/G][Out/G] in blocks), bias b
// [Out]. hist and pos are the ring (null when K == 1), taps the gather buffer (null where none).
template <int In, int Out, int K, int D, int G, typename Wt>
inline void conv1d(const Wt* __restrict W, const float* __restrict b, const float* __restrict x,
                   float* __restrict hist, int* pos, float* __restrict taps, float* __restrict y) noexcept {
    static_assert(Out % G == 0, "Conv1D: Out % G");
    constexpr int kOut = Out / G, kLen = K * (In / G);
    conv1d_taps<In, K, D, G>(x, hist, pos, taps, [&](int g, const float* v) {
        dense<kLen, kOut>(W + g * kLen * kOut, b + g * kOut, v, y + g * kOut);
    });
}

// int8: each group's vector of taps quantised as one (into q, padded(K * In/G) bytes), its own
// scale; each group's matrix padded(K * In/G) x Out/G bytes, its scales and sums per output.
template <int In, int Out, int K, int D, int G>
inline void conv1d(const Int8Matrix& m, const float* __restrict b, const float* __restrict x,
                   float* __restrict hist, int* pos, float* __restrict taps, std::int8_t* __restrict q,
                   float* __restrict y) noexcept {
    static_assert(Out % G == 0, "Conv1D: Out % G");
    constexpr int kOut = Out / G, kLen = K * (In / G);
    conv1d_taps<In, K, D, G>(x, hist, pos, taps, [&](int g, const float* v) {
        const Int8Matrix part{m.w + g * padded(kLen) * kOut, m.scale + g * kOut, m.sums + g * kOut};
        dense<kLen, kOut>(part, b + g * kOut, v, q, y + g * kOut);
    });
}

}  // namespace rtmb
