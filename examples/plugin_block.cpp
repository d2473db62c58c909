// How a plugin runs the five models: one models::Processor for the engine it was built with,
// loaded once before real time, then one allocation-free call per audio block. Build it against
// an export (make export), e.g. with the generated int8 engine, which needs nothing else:
//
//   g++ -std=c++17 -O2 -Ibuild/models -DRTMB_MODEL_TABLE='"generated-int8_table.h"'
//       examples/plugin_block.cpp -o plugin_block  (one command line), then ./plugin_block
//
// It feeds each model a block of zeros but for one feature, for a few blocks, and prints the
// first outputs; a real plugin fills the inputs from its analysis of the audio block (the
// manifest's `layout` names every input column and output value).
#include <cstdio>

#include RTMB_MODEL_TABLE

namespace {
models::Processor processor;  // static storage: with RTNeural it holds every model's weights
float inputs[models::kCount][models::kMaxInputSize];
}  // namespace

int main() {
    if (!processor.load()) {  // before real time: RTNeural may allocate while copying weights in
        std::fprintf(stderr, "could not load the models\n");
        return 1;
    }
    const float* in[models::kCount];
    const float* out[models::kCount];
    for (int m = 0; m < models::kCount; ++m) in[m] = inputs[m];

    for (int block = 0; block < 4; ++block) {  // the audio callback: no allocation, lock or I/O in here
        for (int m = 0; m < models::kCount; ++m) inputs[m][block % models::kInfo[m].inputSize] = 1.0f;
        processor.process(in, out);
        for (int m = 0; m < models::kCount; ++m) inputs[m][block % models::kInfo[m].inputSize] = 0.0f;
    }
    for (int m = 0; m < models::kCount; ++m)
        std::printf("%s (%s): %d inputs -> %d outputs, first %.6f\n", models::kInfo[m].name, RTMB_ENGINE_NAME,
                    models::kInfo[m].inputSize, models::kInfo[m].outputSize, double(out[m][0]));
    processor.reset();  // a new song: clear the recurrent state
    return 0;
}
