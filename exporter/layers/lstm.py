"""LSTM: W = weight_ih.T [in][4H], U = weight_hh.T [H][4H], b = bias_ih + bias_hh.

PyTorch's gate order (i, f, g, o) is Keras's and RTNeural's (i, f, c, o). A stacked LSTM
(num_layers > 1) becomes one RTNeural layer per PyTorch layer.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers import rnn
from exporter.layers.base import EngineStep, entry, matrix, padded, weights
from exporter.layers.rnn import sigmoid
from models import quantize

JSON_TYPES = ("lstm",)
TORCH_TYPES = (nn.LSTM,)


def weight_shapes(e: dict, in_size: int) -> list[list[tuple]]:
    H = int(e["shape"][-1])
    return [[(in_size, 4 * H), (H, 4 * H), (4 * H,)]]


def from_torch(module: nn.LSTM, in_size: int) -> list[dict]:
    return [
        entry("lstm", module.hidden_size, [w_ih.T, w_hh.T, b_ih + b_hh], "tanh")
        for w_ih, w_hh, b_ih, b_hh in rnn.torch_layers(module)
    ]


def modelt(e: dict, in_size: int) -> list[str]:
    return [f"RTNeural::LSTMLayerT<float, {in_size}, {int(e['shape'][-1])}>"]


class Runtime(rnn.Runtime):
    def reset(self):
        self.h = np.zeros(self.H)
        self.c = np.zeros(self.H)

    def step(self, x):
        z = x @ self.W + self.h @ self.U + self.b
        i, f, g, o = (z[k * self.H : (k + 1) * self.H] for k in range(4))
        self.c = sigmoid(f) * self.c + sigmoid(i) * np.tanh(g)
        self.h = sigmoid(o) * np.tanh(self.c)
        return self.h


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    return rnn.cpp(e, slot, prefix, lambda name, b: f"std::vector<float>({name}, {name} + {b.size})")


def rounded(e: dict, precision: str) -> list:
    """[W; U] rounded as one matrix (its int8 scales are per fused gate row), then split again."""
    W, U, b = (np.asarray(w, dtype=np.float32) for w in e["weights"])
    WU = quantize.round_trip(np.vstack([W, U]), precision)
    return [WU[: len(W)], WU[len(W) :], b]


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    """One fused matrix [W; U] over [x; h], gates i, f, c, o: read once per step (int8: [x; h]
    quantised as one vector)."""
    W, U, b = (np.asarray(w, dtype=np.float32) for w in e["weights"])
    H = U.shape[0]
    buffers, extra = [("xh", in_size + H), ("c", H), ("z", 4 * H)], ""
    if precision == "int8":
        buffers, extra = [*buffers, ("q", padded(in_size + H), "std::int8_t")], ", {p}_q"
    return EngineStep(
        arrays=[*matrix("WU", np.vstack([W, U]), precision), ("b", b)],
        buffers=buffers,
        state=["xh", "c"],
        forward=[
            f"rtmb::copy<{in_size}>({{x}}, {{p}}_xh);",
            f"rtmb::lstm<{in_size}, {H}>({weights('WU', precision)}, {{p}}_b, {{p}}_xh, {{p}}_c, {{p}}_z{extra});",
        ],
        out=f"{{p}}_xh + {in_size}",
    )
