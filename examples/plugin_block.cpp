// How a plugin runs its models: one models::Processor for the engine it was built with, loaded once
// before real time, then one allocation-free call per audio block. Build it against an export (make
// export, python -m exporter import), e.g. with the generated int8 engine, which needs nothing else:
//
//   g++ -std=c++17 -O2 -Ibuild/models -DRTMB_MODEL_TABLE='"generated-int8_table.h"'
//       examples/plugin_block.cpp -o plugin_block  (one command line), then ./plugin_block
//
// A block-rate model (our five) takes one input vector per block: here zeros but for one feature; a
// real plugin fills it from its analysis of the audio block (the manifest's `layout` names every
// input column and output value). A sample-rate model (an amp capture, an effect) takes the block's
// samples, one row each, its extra inputs (knobs) repeated on every row: here a decaying 220 Hz tone.
#include <cmath>
#include <cstdio>

#include RTMB_MODEL_TABLE

namespace {
constexpr int kBlockSize = 512;  // the host's buffer size

// Each model's input rows for one block: one for a block-rate model, kBlockSize for a sample-rate one.
constexpr int rows(int m) { return models::kInfo[m].perSample ? kBlockSize : 1; }
constexpr int poolSize() {
    int n = 0;
    for (int m = 0; m < models::kCount; ++m) n += rows(m) * models::kInfo[m].inputSize;
    return n;
}

models::Processor processor;  // static storage: with RTNeural it holds every model's weights
float pool[poolSize()];       // every model's inputs, one after the other
float* inputs[models::kCount];
}  // namespace

int main() {
    if (!processor.load()) {  // before real time: RTNeural may allocate while copying weights in
        std::fprintf(stderr, "could not load the models\n");
        return 1;
    }
    const float* out[models::kCount];
    for (int m = 0, at = 0; m < models::kCount; at += rows(m) * models::kInfo[m].inputSize, ++m)
        inputs[m] = pool + at;

    for (int block = 0; block < 4; ++block) {
        // The host hands over its audio (outside the callback's real-time work, here a tone).
        for (int m = 0; m < models::kCount; ++m) {
            const models::Info& e = models::kInfo[m];
            for (int t = 0; t < rows(m); ++t) {
                float* row = inputs[m] + t * e.inputSize;
                const double time = double(block * kBlockSize + t) / 48000.0;
                row[0] = e.perSample ? float(0.5 * std::sin(2 * M_PI * 220.0 * time) * std::exp(-4.0 * time))
                                     : 0.0f;
                for (int k = 1; k < e.inputSize; ++k) row[k] = e.perSample ? 0.5f : 0.0f;  // knobs at noon
                if (!e.perSample) row[block % e.inputSize] = 1.0f;
            }
        }
        // The audio callback: no allocation, lock or I/O in here.
        processor.process(inputs, out, kBlockSize);
    }
    for (int m = 0; m < models::kCount; ++m) {
        const models::Info& e = models::kInfo[m];
        std::printf("%s (%s, %s): %d inputs -> %d outputs, first %.6f\n", e.name, RTMB_ENGINE_NAME,
                    e.perSample ? "per sample" : "per block", e.inputSize, e.outputSize, double(out[m][0]));
    }
    processor.reset();  // a new song: clear the recurrent state
    return 0;
}
