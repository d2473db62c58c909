// The kernels of the generated engine: the maths every generated model header calls. Shipped with
// each export (make export copies it beside the model headers). Dependency-free C++17: no heap, no
// exceptions, no RTTI, no I/O; sizes are template parameters, so the compiler sees constant loops.
//
// Weights are used in place, in the layout the exporter writes them: a dense kernel in blocks of
// kBlock outputs (below), which GCC vectorises on x86-64, aarch64 and armv7 NEON alike and which on
// a scalar FPU (Cortex-M7) keeps the sums in registers.
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
#endif

namespace rtmb {

// tanh as Eigen evaluates it in float: a clamped rational function of degree 13/6. Max error
// 2.9e-7 on [-10, 10]; a NaN passes through (the clamp keeps it), so parity sees it.
inline float tanh(float x) noexcept {
    const float c = 7.90531110763549805f;
    x = x < -c ? -c : (x > c ? c : x);
    const float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    return p / q;
}

inline float sigmoid(float x) noexcept { return 0.5f + 0.5f * rtmb::tanh(0.5f * x); }

// Outputs are computed a block of kBlock at a time: the exporter lays a kernel [In][Out] out as
// blocks, for each group of kBlock outputs all its [In][kBlock] weights contiguously (the last block
// holds Out % kBlock), so a block streams through memory once, in order. Within a block the sums
// stay in registers for the whole pass over the inputs, and each input is loaded once.
constexpr int kBlock = 64;
constexpr int kLane = 8;  // outputs per vector, and per group of scalar sums

// Weights come as float, as IEEE half-precision bits (std::uint16_t) or as std::int8_t with a
// scale per output; either way the sums are float32. widen() is exact for every finite half.
inline float widen(float w) noexcept { return w; }
inline float widen(std::int8_t w) noexcept { return float(w); }
inline float widen(std::uint16_t h) noexcept {
    // sign and exponent-mantissa moved into a float's places, then the exponent rebiased (2^112):
    // exact for normal and subnormal halves alike
    const std::uint32_t u = (std::uint32_t(h & 0x8000u) << 16) | (std::uint32_t(h & 0x7fffu) << 13);
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f * 0x1p112f;
}

template <typename Wt>
constexpr bool kScaled = std::is_same_v<Wt, std::int8_t>;  // int8 weights carry a scale per output

#if defined(__SSE2__) || defined(__ARM_NEON) || defined(__aarch64__)
// With SIMD, kLane outputs are one GCC vector (one AVX register, two NEON or SSE ones) and a block
// is eight of them: per input one broadcast and eight independent fused multiply-adds, enough
// chains to hide the FMA latency. (Plain arrays there make GCC vectorise over the inputs instead,
// with shuffles; one vector at a time waits on each FMA: 2.4x slower on x86.)
#define RTMB_VECTOR_LANES 1
typedef float Lanes __attribute__((vector_size(kLane * sizeof(float))));
typedef std::int8_t Int8Lanes __attribute__((vector_size(kLane)));
typedef std::uint16_t HalfLanes __attribute__((vector_size(kLane * 2)));
typedef std::uint32_t WordLanes __attribute__((vector_size(kLane * 4)));

// kLane weights from `w` as floats. (An out-parameter: returning a vector wider than the target's
// registers would change the ABI of a function that is not inlined.)
inline void widen(Lanes& v, const float* w) noexcept {
    std::memcpy(&v, w, sizeof v);  // an unaligned load, kept defined
}
// int8: GCC scalarises a conversion from an 8-byte vector, so the SIMD extensions' own widening
// instructions are named where there are (AVX2: vpmovsxbd + vcvtdq2ps; NEON: sxtl + scvtf).
inline void widen(Lanes& v, const std::int8_t* w) noexcept {
#if defined(__AVX2__)
    v = (Lanes)_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w))));
#elif defined(__ARM_NEON)
    const int16x8_t h = vmovl_s8(vld1_s8(w));
    const float32x4_t lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))),
                      hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(h)));
    std::memcpy(&v, &lo, sizeof lo);
    std::memcpy(reinterpret_cast<char*>(&v) + sizeof lo, &hi, sizeof hi);
#else
    Int8Lanes q;
    std::memcpy(&q, w, sizeof q);
    v = __builtin_convertvector(q, Lanes);
#endif
}
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

// y[0, Width) = b + x W for one block, W [In][Width] (times scale[0, Width) for int8 weights).
template <int In, int Width, typename Wt>
inline void block(const Wt* __restrict W, const float* __restrict scale, const float* __restrict b,
                  const float* __restrict x, float* __restrict y) noexcept {
    constexpr int kLanes = Width / kLane, kRest = Width % kLane;
#if RTMB_VECTOR_LANES
    if constexpr (kLanes > 0) {
        Lanes acc[kLanes];
        for (int v = 0; v < kLanes; ++v) {
            acc[v] = Lanes{};
            if (b && !kScaled<Wt>) std::memcpy(&acc[v], b + v * kLane, sizeof(Lanes));
        }
        for (int i = 0; i < In; ++i) {
            const float xi = x[i];
            for (int v = 0; v < kLanes; ++v) {
                Lanes w;
                widen(w, W + i * Width + v * kLane);
                acc[v] += xi * w;
            }
        }
        for (int v = 0; v < kLanes; ++v) {
            if constexpr (kScaled<Wt>) {
                Lanes s, bias = Lanes{};
                std::memcpy(&s, scale + v * kLane, sizeof s);
                if (b) std::memcpy(&bias, b + v * kLane, sizeof bias);
                acc[v] = bias + s * acc[v];
            }
            std::memcpy(y + v * kLane, &acc[v], sizeof(Lanes));
        }
    }
#else
    for (int v = 0; v < kLanes; ++v) {
        float acc[kLane];
        for (int j = 0; j < kLane; ++j) acc[j] = b && !kScaled<Wt> ? b[v * kLane + j] : 0.0f;
        for (int i = 0; i < In; ++i) {
            const float xi = x[i];
            for (int j = 0; j < kLane; ++j) acc[j] += xi * widen(W[i * Width + v * kLane + j]);
        }
        for (int j = 0; j < kLane; ++j) {
            const int o = v * kLane + j;
            y[o] = kScaled<Wt> ? (b ? b[o] : 0.0f) + scale[o] * acc[j] : acc[j];
        }
    }
#endif
    if constexpr (kRest > 0) {
        constexpr int o = kLanes * kLane;
        float acc[kRest];
        for (int j = 0; j < kRest; ++j) acc[j] = b && !kScaled<Wt> ? b[o + j] : 0.0f;
        for (int i = 0; i < In; ++i) {
            const float xi = x[i];
            for (int j = 0; j < kRest; ++j) acc[j] += xi * widen(W[i * Width + o + j]);
        }
        for (int j = 0; j < kRest; ++j)
            y[o + j] = kScaled<Wt> ? (b ? b[o + j] : 0.0f) + scale[o + j] * acc[j] : acc[j];
    }
}

// y = b + x W (b may be null), W in blocks as above; `scale` is null except for int8 weights.
template <int In, int Out, typename Wt>
inline void dense(const Wt* __restrict W, const float* __restrict scale, const float* __restrict b,
                  const float* __restrict x, float* __restrict y) noexcept {
    constexpr int kFull = Out / kBlock;
    for (int k = 0; k < kFull; ++k)
        block<In, kBlock>(W + k * In * kBlock, scale ? scale + k * kBlock : nullptr,
                          b ? b + k * kBlock : nullptr, x, y + k * kBlock);
    if constexpr (Out % kBlock != 0)
        block<In, Out % kBlock>(W + kFull * In * kBlock, scale ? scale + kFull * kBlock : nullptr,
                                b ? b + kFull * kBlock : nullptr, x, y + kFull * kBlock);
}

template <int N>
inline void tanh(float* y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = rtmb::tanh(y[k]);
}

template <int N>
inline void sigmoid(float* y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = rtmb::sigmoid(y[k]);
}

// `y < 0 ? 0 : y` keeps a NaN (std::max would drop it).
template <int N>
inline void relu(float* y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = y[k] < 0.0f ? 0.0f : y[k];
}

template <int N>
inline void elu(float* y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = y[k] > 0.0f ? y[k] : std::expm1(y[k]);
}

template <int N>
inline void softmax(float* y) noexcept {
    float top = y[0];
    for (int k = 1; k < N; ++k) top = y[k] > top ? y[k] : top;
    float sum = 0.0f;
    for (int k = 0; k < N; ++k) sum += (y[k] = std::exp(y[k] - top));
    for (int k = 0; k < N; ++k) y[k] /= sum;
}

// One LSTM step. WU is [I + H][4H] (with its scales for int8): the input kernel W stacked on the
// recurrent kernel U, gates i, f, c, o, read once per step as one matrix over xh = [x; h]. The
// caller has put x in xh[0, I); h lives in xh[I, I + H) and is updated here, c in c; z is scratch.
template <int I, int H, typename Wt>
inline void lstm(const Wt* __restrict WU, const float* __restrict scale, const float* __restrict b,
                 float* __restrict xh, float* __restrict c, float* __restrict z) noexcept {
    dense<I + H, 4 * H>(WU, scale, b, xh, z);
    float* __restrict h = xh + I;
    for (int k = 0; k < H; ++k) {
        const float in = rtmb::sigmoid(z[k]), forget = rtmb::sigmoid(z[H + k]);
        const float cell = rtmb::tanh(z[2 * H + k]), out = rtmb::sigmoid(z[3 * H + k]);
        c[k] = forget * c[k] + in * cell;
        h[k] = out * rtmb::tanh(c[k]);
    }
}

// One GRU step. W [I][3H] and U [H][3H] (each with its scales for int8), gates z, r, n: two
// products, because the reset gate scales the recurrent part of the candidate; b is [2][3H]
// (input bias, recurrent bias). h is updated in place; wx and uh are scratch.
template <int I, int H, typename Wt>
inline void gru(const Wt* __restrict W, const float* __restrict w_scale, const Wt* __restrict U,
                const float* __restrict u_scale, const float* __restrict b, const float* __restrict x,
                float* __restrict h, float* __restrict wx, float* __restrict uh) noexcept {
    dense<I, 3 * H>(W, w_scale, b, x, wx);
    dense<H, 3 * H>(U, u_scale, b + 3 * H, h, uh);
    for (int k = 0; k < H; ++k) {
        const float update = rtmb::sigmoid(wx[k] + uh[k]);
        const float reset = rtmb::sigmoid(wx[H + k] + uh[H + k]);
        const float candidate = rtmb::tanh(wx[2 * H + k] + reset * uh[2 * H + k]);
        h[k] = (1.0f - update) * candidate + update * h[k];
    }
}

// y = scale * x + shift, per feature (batch norm with its statistics folded in at export).
template <int N>
inline void affine(const float* __restrict scale, const float* __restrict shift, const float* __restrict x,
                   float* __restrict y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = scale[k] * x[k] + shift[k];
}

template <int N>
inline void prelu(const float* __restrict alpha, const float* __restrict x, float* __restrict y) noexcept {
    for (int k = 0; k < N; ++k) y[k] = x[k] < 0.0f ? alpha[k] * x[k] : x[k];
}

template <int N>
inline void copy(const float* __restrict x, float* __restrict y) noexcept {
    std::memcpy(y, x, sizeof(float) * N);
}

}  // namespace rtmb
