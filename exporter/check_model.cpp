// Loads one exported model three ways -- RTNeural's dynamic json_parser, ModelT::parseJson, and the
// generated header's loadWeights -- runs the test vectors through each, and prints each path's
// max abs error against PyTorch on a line starting "RESULT ".
// Build: -DMODEL_HEADER='"<name>.h"' -DMODEL_NS=<name>; run: check <name>.json <name>.vectors.json [skip]
// (skip: the model adds its first inputs to its outputs, as models::Processor does for every engine)
#include MODEL_HEADER

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

using Vectors = std::vector<std::vector<float>>;

bool skip = false;

// The largest absolute error; a NaN anywhere makes the result NaN (std::max would drop it).
template <typename Forward>
double maxError(const Vectors& inputs, const Vectors& expected, Forward&& forward) {
    double worst = 0.0;
    for (std::size_t t = 0; t < inputs.size(); ++t) {
        const float* y = forward(inputs[t].data());
        for (std::size_t i = 0; i < expected[t].size(); ++i) {
            const float out = skip ? y[i] + inputs[t][i] : y[i];
            const double err = std::abs(double(out) - double(expected[t][i]));
            if (!std::isnan(worst) && !(err <= worst)) worst = err;
        }
    }
    return worst;
}

// A JSON number as Python's json module reads it, NaN and infinities included.
std::string number(double x) {
    if (std::isnan(x)) return "NaN";
    if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
    std::ostringstream out;
    out.precision(9);
    out << x;
    return out.str();
}

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::cerr << "usage: " << argv[0] << " MODEL.json MODEL.vectors.json [skip]\n";
        return 2;
    }
    skip = argc == 4 && std::string(argv[3]) == "skip";
    nlohmann::json modelJson, vectorsJson;
    std::ifstream(argv[1]) >> modelJson;
    std::ifstream(argv[2]) >> vectorsJson;
    const auto inputs = vectorsJson.at("inputs").get<Vectors>();
    const auto outputs = vectorsJson.at("outputs").get<Vectors>();
    using Model = models::MODEL_NS::Model;

    auto dynamic = RTNeural::json_parser::parseJson<float>(modelJson, true);
    if (!dynamic) {
        std::cerr << argv[1] << ": json_parser::parseJson returned no model\n";
        return 1;
    }
    dynamic->reset();
    const double dynamicError = maxError(inputs, outputs, [&](const float* x) {
        dynamic->forward(x);
        return dynamic->getOutputs();
    });

    auto parsed = std::make_unique<Model>();  // ModelT holds its weights inline: too big for the stack
    parsed->parseJson(modelJson, true);
    parsed->reset();
    const double parsedError = maxError(inputs, outputs, [&](const float* x) {
        parsed->forward(x);
        return parsed->getOutputs();
    });

    auto baked = std::make_unique<Model>();
    models::MODEL_NS::loadWeights(*baked);
    const double bakedError = maxError(inputs, outputs, [&](const float* x) {
        baked->forward(x);
        return baked->getOutputs();
    });

    std::cout << "RESULT {\"json_parser\": " << number(dynamicError)
              << ", \"modelt_parse_json\": " << number(parsedError) << ", \"header\": " << number(bakedError)
              << ", \"steps\": " << inputs.size() << ", \"dynamic_layers\": " << dynamic->layers.size() << "}"
              << std::endl;
    return 0;
}
