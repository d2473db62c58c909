// Runs every exported model of the generated engine through its test vectors, from a reset state
// with the state carried, and prints each model's max abs error against its reference on one line
// starting "RESULT " (a JSON object; NaN when an output is NaN). Needs nothing but the export.
// Build: -I<export folder> -DRTMB_MODEL_TABLE='"generated_table.h"'
//        -DRTMB_MODEL_VECTORS='"model_vectors.h"' (the engine's table and its expected outputs)
#include <cmath>
#include <cstdio>

#include RTMB_MODEL_TABLE
#include RTMB_MODEL_VECTORS

namespace {
models::Processor processor;  // static: with RTNeural it would hold every model's weights
}  // namespace

int main() {
    if (!processor.load()) {
        std::fprintf(stderr, "could not load the models\n");
        return 1;
    }
    std::printf("RESULT {");
    for (int m = 0; m < models::kCount; ++m) {
        const models::Info& e = models::kInfo[m];
        const vectors::Set& v = vectors::kTable[m];
        double worst = 0.0;
        for (int t = 0; t < v.steps;) {  // a sample-rate model a block of 512 samples per call
            const int n = e.perSample ? (v.steps - t < 512 ? v.steps - t : 512) : 1;
            const float* y = processor.forward(m, v.inputs + t * e.inputSize, n);
            for (int i = 0; i < n * e.outputSize; ++i) {
                const double err = std::fabs(double(y[i]) - double(v.outputs[t * e.outputSize + i]));
                if (!std::isnan(worst) && !(err <= worst)) worst = err;  // a NaN sticks
            }
            t += n;
        }
        if (std::isnan(worst)) std::printf("%s\"%s\": NaN", m ? ", " : "", e.name);
        else if (std::isinf(worst)) std::printf("%s\"%s\": Infinity", m ? ", " : "", e.name);
        else std::printf("%s\"%s\": %.9g", m ? ", " : "", e.name, worst);
    }
    std::printf("}\n");
    return 0;
}
