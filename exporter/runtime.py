"""A numpy runtime that executes RTNeural Keras-style JSON the way RTNeural does: one input
vector per call, state carried, float64 arithmetic."""

from __future__ import annotations

import numpy as np

from exporter.layers import BY_JSON_TYPE, out_size


class Model:
    def __init__(self, model_json: dict):
        shape = model_json["in_shape"]
        self.in_size = int(shape[-1])
        self.layers = []
        size = self.in_size
        for e in model_json["layers"]:
            if e["type"] not in BY_JSON_TYPE:
                raise ValueError(f"layer type {e['type']!r} is not one RTNeural's JSON loader reads")
            unit = BY_JSON_TYPE[e["type"]]
            self.layers.append(unit.Runtime(e, size))
            size = out_size(e) if e["type"] != "activation" else size
        self.out_size = size

    def reset(self):
        for layer in self.layers:
            layer.reset()

    def forward(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        for layer in self.layers:
            x = layer.step(x)
        return x

    def run(self, inputs) -> np.ndarray:
        """Outputs for a sequence of input vectors, from a reset state."""
        self.reset()
        return np.stack([self.forward(x) for x in np.asarray(inputs, dtype=np.float64)])
