"""GRU: PyTorch's gate blocks (r, z, n) become Keras's (z, r, n) in both weights and both biases;
W = weight_ih.T, U = weight_hh.T, b = [bias_ih, bias_hh] kept as two rows (the reset gate acts
between them, so they cannot be summed)."""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers import rnn
from exporter.layers.base import EngineStep, entry, matrix, padded, weights
from exporter.layers.rnn import sigmoid
from models import quantize

JSON_TYPES = ("gru",)
TORCH_TYPES = (nn.GRU,)


def weight_shapes(e: dict, in_size: int) -> list[list[tuple]]:
    H = int(e["shape"][-1])
    return [[(in_size, 3 * H), (H, 3 * H), (2, 3 * H)]]


def zrn(a: np.ndarray, H: int) -> np.ndarray:
    """Swap PyTorch's first two gate blocks (r, z) along axis 0."""
    return np.concatenate([a[H : 2 * H], a[:H], a[2 * H :]], axis=0)


def from_torch(module: nn.GRU, in_size: int) -> list[dict]:
    H = module.hidden_size
    return [
        entry("gru", H, [zrn(w_ih, H).T, zrn(w_hh, H).T, np.stack([zrn(b_ih, H), zrn(b_hh, H)])], "tanh")
        for w_ih, w_hh, b_ih, b_hh in rnn.torch_layers(module)
    ]


def modelt(e: dict, in_size: int) -> list[str]:
    return [f"RTNeural::GRULayerT<float, {in_size}, {int(e['shape'][-1])}>"]


class Runtime(rnn.Runtime):
    def reset(self):
        self.h = np.zeros(self.H)

    def step(self, x):
        H = self.H
        wx = x @ self.W + self.b[0]
        uh = self.h @ self.U + self.b[1]
        z = sigmoid(wx[:H] + uh[:H])
        r = sigmoid(wx[H : 2 * H] + uh[H : 2 * H])
        n = np.tanh(wx[2 * H :] + r * uh[2 * H :])
        self.h = (1 - z) * n + z * self.h
        return self.h


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    return rnn.cpp(e, slot, prefix, lambda name, b: rnn.rows_code(name, *b.shape))


def rounded(e: dict, precision: str) -> list:
    """W and U rounded apart, as the engine keeps them (each with its own int8 scales)."""
    W, U, b = e["weights"]
    return [quantize.round_trip(W, precision), quantize.round_trip(U, precision), b]


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    """W and U, each with all three gates z, r, n fused; the two products stay apart (the reset
    gate acts between them), and for int8 so do the quantised x and h."""
    W, U, b = (np.asarray(w, dtype=np.float32) for w in e["weights"])
    H = U.shape[0]
    buffers, extra = [("h", H), ("wx", 3 * H), ("uh", 3 * H)], ""
    if precision == "int8":
        buffers += [("qx", padded(in_size), "std::int8_t"), ("qh", padded(H), "std::int8_t")]
        extra = ", {p}_qx, {p}_qh"
    return EngineStep(
        arrays=[*matrix("W", W, precision), *matrix("U", U, precision), ("b", b)],
        buffers=buffers,
        state=["h"],
        forward=[
            f"rtmb::gru<{in_size}, {H}>({weights('W', precision)}, {weights('U', precision)}, {{p}}_b, {{x}}, "
            f"{{p}}_h, {{p}}_wx, {{p}}_uh{extra});"
        ],
        out="{p}_h",
    )


def rtneural(e: dict) -> str | None:
    """Why RTNeural cannot run this entry as written, or None: it runs every entry of this kind."""
    return None
