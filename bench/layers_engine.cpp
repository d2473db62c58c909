// One engine's layer models as a shared library, for `bench layers` (bench/layers.py): the benchmark
// program (bench/layers.cpp) loads one such library per engine into one process and interleaves
// them. Build with -DRTMB_MODEL_TABLE='"<engine's table>"' -shared -fPIC -fvisibility=hidden.
//
// Why a library per engine rather than one object per engine linked into one program: every
// engine's table defines models::Processor and models::kInfo, and RTNeural's three backends all
// define RTNeural::DenseT, GRULayerT, ... differently under the same names. Those are inline, and
// a static link keeps one definition of each name (hidden visibility does not stop that: it only
// hides a symbol from other shared objects), so two engines linked into one program would silently
// share one engine's code. A library with hidden visibility, loaded RTLD_LOCAL, keeps its own.
#include RTMB_MODEL_TABLE

namespace {

models::Processor processor;  // static: with RTNeural it holds every model's weights

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

// Loads every model's weights (before any timing); the number of models, or -1 if one failed.
int rtmb_layers_load() { return processor.load() ? models::kCount : -1; }
const char* rtmb_layers_name(int index) { return models::kInfo[index].name; }
int rtmb_layers_input_size(int index) { return models::kInfo[index].inputSize; }
int rtmb_layers_output_size(int index) { return models::kInfo[index].outputSize; }
long long rtmb_layers_parameters(int index) {
    return static_cast<long long>(models::kInfo[index].parameterCount);
}
// One audio block of a sample-rate model, as a plugin runs it: `samples` steps, state carried; the
// outputs stay in the processor (samples x outputSize) until the model's next call.
const float* rtmb_layers_forward(int index, const float* x, int samples) {
    return processor.forward(index, x, samples);
}

}  // extern "C"
#pragma GCC visibility pop
