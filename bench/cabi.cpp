// A small C ABI over the exported models' processor, so Python calls the compiled models through
// cffi (bench/bindings.py). Build with -DRTMB_MODEL_TABLE='"<engine's table>"' (model_table.h for
// RTNeural, generated_table.h and the like for the generated engine). Models are addressed by
// their index in the table; the weights are loaded once, when the library is first used.
#include RTMB_MODEL_TABLE

#include <cstddef>
#include <cstring>

namespace {

// RTNeural's SIMD backends read the input with aligned loads; Python's buffers promise no alignment.
alignas(64) float input[models::kMaxInputSize];
models::Processor processor;  // static: with RTNeural it holds every model's weights
bool loaded = false;

const models::Info* entry(int index) {
    if (index < 0 || index >= models::kCount) return nullptr;
    if (!loaded) loaded = processor.load();
    if (!loaded) return nullptr;  // a model file that could not be read
    return &models::kInfo[index];
}

void step(int index, const float* in, float* out) {
    const models::Info& e = models::kInfo[index];
    std::memcpy(input, in, sizeof(float) * e.inputSize);
    std::memcpy(out, processor.forward(index, input), sizeof(float) * e.outputSize);
}

// A sample-rate model: `samples` steps in one call, as a plugin's audio callback makes it.
void block(int index, const float* in, int samples, float* out) {
    const models::Info& e = models::kInfo[index];
    std::memcpy(out, processor.forward(index, in, samples), sizeof(float) * e.outputSize * samples);
}

}  // namespace

// Built with -fvisibility=hidden: only these functions leave the library. Every library of an
// export holds its own models::kInfo and Processor code (inline, so GNU "unique" symbols by
// default), and two libraries loaded in one process would otherwise share the first one's.
#pragma GCC visibility push(default)
extern "C" {

int rtmb_count() { return models::kCount; }
const char* rtmb_name(int index) { return entry(index) ? entry(index)->name : nullptr; }
int rtmb_input_size(int index) { return entry(index) ? entry(index)->inputSize : -1; }
int rtmb_output_size(int index) { return entry(index) ? entry(index)->outputSize : -1; }
// 1 for a model that takes one step per audio sample, 0 for one step per block, -1 out of range.
int rtmb_per_sample(int index) { return entry(index) ? int(entry(index)->perSample) : -1; }
long long rtmb_parameter_count(int index) {
    return entry(index) ? static_cast<long long>(entry(index)->parameterCount) : -1;
}

// Each returns 0, or -1 for an index out of range.
int rtmb_reset(int index) {
    if (!entry(index)) return -1;
    processor.reset(index);
    return 0;
}

// One block: `in` holds input_size floats, `out` receives output_size floats; state carries over.
int rtmb_forward(int index, const float* in, float* out) {
    if (!entry(index)) return -1;
    step(index, in, out);
    return 0;
}

// `steps` consecutive steps in one call (row-major inputs and outputs), state carried throughout: a
// block-rate model one block each, a sample-rate model in blocks of up to kMaxBlockSize samples.
int rtmb_run(int index, const float* inputs, int steps, float* outputs) {
    const models::Info* e = entry(index);
    if (!e || steps < 0) return -1;
    if (e->perSample) {
        for (int t = 0; t < steps; t += models::kMaxBlockSize) {
            const int n = steps - t < models::kMaxBlockSize ? steps - t : models::kMaxBlockSize;
            block(index, inputs + t * e->inputSize, n, outputs + t * e->outputSize);
        }
        return 0;
    }
    for (int t = 0; t < steps; ++t) step(index, inputs + t * e->inputSize, outputs + t * e->outputSize);
    return 0;
}

}  // extern "C"
#pragma GCC visibility pop
