"""RTNeural's Keras-style JSON, as RTNeural's `python/model_utils.py` `save_model_json` writes it and
`RTNeural/model_loader.h` `parseJson` reads it:

    {"in_shape": [null, null, n],
     "layers": [{"type": "dense" | "time-distributed-dense" | "gru" | "lstm" | "conv1d" | "prelu"
                         | "batchnorm" | "activation",
                 "activation": "tanh" | "relu" | "sigmoid" | "softmax" | "elu" | "",
                 "shape": [null, null, out], "weights": [...],
                 "kernel_size": [k], "dilation": [d], "groups": g,   (conv1d)
                 "epsilon": e}, ...]}                                 (batchnorm)

Weights in Keras's layout, which is this suite's: dense kernel [in][out]; LSTM W [in][4H], U [H][4H],
b [4H] (gates i, f, c, o); GRU W [in][3H], U [H][3H], b [2][3H] (z, r, n). Only the last entry of a
shape counts. A layer without "activation" has none (RTNeural's loader checks `contains`), which is
how KlonCentaur's GRU files (jatinchowdhury18/KlonCentaur GainStageTraining/models/*.json, read by
`ModelT::parseJson` in ChowCentaur/GainStageML/RNNModel.cpp) are written; they read as this format.

The file does not say how often the model steps, so the rate is the caller's: by default "sample"
for a model of one input (an audio effect, as RTNeural's examples run it) and "block" otherwise.
"""

from __future__ import annotations

from pathlib import Path

from common.errors import SuiteError
from exporter.formats import Imported
from exporter.formats._shared import as_doc, checked, load_json, name_from, rate_for
from exporter.layers import BY_JSON_TYPE
from exporter.layers.base import f32

FORMAT = "rtneural-json"
# Read by RTNeural's loader but by no unit of this suite: named as such in the error.
RTNEURAL_ONLY = ("conv2d", "batchnorm2d")
# Keys AIDA-X adds to this format (exporter.formats.aida_x reads files that have any of them).
AIDA_KEYS = ("input_batch", "output_batch", "in_skip", "in_gain", "out_gain", "metadata")


def looks_keras(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("in_shape"), list) and isinstance(doc.get("layers"), list)


def detect(doc_or_path) -> bool:
    doc = as_doc(doc_or_path, "RTNeural JSON")
    return looks_keras(doc) and not any(k in doc for k in AIDA_KEYS)


def model_json(doc: dict, path) -> dict:
    """The model in the suite's form (in_shape and shapes [None, None, n], every layer with an
    "activation", weights float32 arrays), checked; SuiteError names the layer index and kind."""
    for i, e in enumerate(doc["layers"]):
        kind = e.get("type") if isinstance(e, dict) else None
        if kind in RTNEURAL_ONLY or (isinstance(kind, str) and kind not in BY_JSON_TYPE):
            supported = ", ".join(sorted(BY_JSON_TYPE))
            why = "RTNeural reads it, this suite does not" if kind in RTNEURAL_ONLY else "unknown layer type"
            raise SuiteError(f"layers[{i}] ({kind}): {why}; supported: {supported}", path)
    checked(doc, path)  # structure, sizes, shapes, finite numbers, on the file as written
    layers = []
    for e in doc["layers"]:
        layer = {k: v for k, v in e.items() if k not in ("weights", "shape", "activation")}
        layer["activation"] = e.get("activation") or ""
        layer["shape"] = [None, None, int(e["shape"][-1])]
        layer["weights"] = [f32(w) for w in e["weights"]]
        layers.append(layer)
    return checked({"in_shape": [None, None, int(doc["in_shape"][-1])], "layers": layers}, path)


def from_doc(doc, path, rate: str | None = None) -> list[Imported]:
    if not looks_keras(doc):
        raise SuiteError("not RTNeural JSON: no in_shape and layers lists", path)
    model = model_json(doc, path)
    in_size = int(model["in_shape"][-1])
    metadata = {"layers": [e["type"] for e in model["layers"]]}
    return [Imported(name_from(path), FORMAT, model, rate_for(rate, in_size, path), metadata=metadata)]


def read(path: str | Path, rate: str | None = None) -> list[Imported]:
    return from_doc(load_json(path, "RTNeural JSON"), path, rate)
