// A small C ABI over the generated models (build/models/models.h), so Python calls the compiled
// RTNeural models through cffi (bench/native.py). Models are addressed by index in the order of
// MODELS_FOR_EACH; each lives in static storage, its weights loaded when the library is loaded.
#include "models.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace {

#define CABI_INPUT_SIZE(name) models::name::kInputSize,
constexpr int kMaxInputSize = std::max({MODELS_FOR_EACH(CABI_INPUT_SIZE) 0});

// RTNeural's SIMD backends read the input with aligned loads; Python's buffers promise no alignment.
alignas(64) float input[kMaxInputSize];

struct Entry {
    const char* name;
    int inputSize;
    int outputSize;
    std::size_t parameterCount;
    void (*reset)();
    const float* (*forward)(const float*);
};

template <typename Model, void (*Load)(Model&)>
struct Instance {
    static Model& get() {
        static Model model;
        static const bool loaded = (Load(model), model.reset(), true);
        (void)loaded;
        return model;
    }
    static void reset() { get().reset(); }
    static const float* forward(const float* x) {
        get().forward(x);
        return get().getOutputs();
    }
};

#define CABI_ENTRY(name)                                                                             \
    {#name, models::name::kInputSize, models::name::kOutputSize, models::name::kParameterCount,     \
     Instance<models::name::Model, models::name::loadWeights>::reset,                                \
     Instance<models::name::Model, models::name::loadWeights>::forward},
const Entry entries[] = {MODELS_FOR_EACH(CABI_ENTRY)};
constexpr int kCount = sizeof(entries) / sizeof(entries[0]);

const Entry* entry(int index) { return index >= 0 && index < kCount ? &entries[index] : nullptr; }

void step(const Entry& e, const float* in, float* out) {
    std::memcpy(input, in, sizeof(float) * e.inputSize);
    std::memcpy(out, e.forward(input), sizeof(float) * e.outputSize);
}

}  // namespace

extern "C" {

int rtmb_count() { return kCount; }
const char* rtmb_name(int index) { return entry(index) ? entry(index)->name : nullptr; }
int rtmb_input_size(int index) { return entry(index) ? entry(index)->inputSize : -1; }
int rtmb_output_size(int index) { return entry(index) ? entry(index)->outputSize : -1; }
long long rtmb_parameter_count(int index) {
    return entry(index) ? static_cast<long long>(entry(index)->parameterCount) : -1;
}

// Each returns 0, or -1 for an index out of range.
int rtmb_reset(int index) {
    if (!entry(index)) return -1;
    entry(index)->reset();
    return 0;
}

// One block: `in` holds input_size floats, `out` receives output_size floats; state carries over.
int rtmb_forward(int index, const float* in, float* out) {
    if (!entry(index)) return -1;
    step(*entry(index), in, out);
    return 0;
}

// `steps` consecutive blocks in one call (row-major inputs and outputs), state carried throughout.
int rtmb_run(int index, const float* inputs, int steps, float* outputs) {
    const Entry* e = entry(index);
    if (!e || steps < 0) return -1;
    for (int t = 0; t < steps; ++t) step(*e, inputs + t * e->inputSize, outputs + t * e->outputSize);
    return 0;
}

}  // extern "C"
