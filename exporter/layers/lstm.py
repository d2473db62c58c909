"""LSTM: W = weight_ih.T [in][4H], U = weight_hh.T [H][4H], b = bias_ih + bias_hh.

PyTorch's gate order (i, f, g, o) is Keras's and RTNeural's (i, f, c, o). A stacked LSTM
(num_layers > 1) becomes one RTNeural layer per PyTorch layer.

An entry may carry a learned initial state (Neural Amp Modeler's LSTMs do), a field of this suite's
JSON that RTNeural does not read: "initial_state": {"h": [H floats], "c": [H floats]}. reset()
starts from it (the reference runtimes and the generated engine); absent, the state starts at zero.
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


INITIAL_KEYS = ("h", "c")


def check(e: dict, in_size: int) -> str | None:
    """What is wrong with the entry's optional initial_state, or None (also when it has none)."""
    if "initial_state" not in e:
        return None
    state, H = e["initial_state"], int(e["shape"][-1])
    if not isinstance(state, dict) or sorted(state) != sorted(INITIAL_KEYS):
        return 'initial_state must be {"h": [...], "c": [...]}'
    for key in INITIAL_KEYS:
        value = state[key]
        vector = isinstance(value, list) or (isinstance(value, np.ndarray) and value.ndim == 1)
        if not vector or any(
            isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) for v in value
        ):
            return f"initial_state.{key} must be a list of {H} numbers"
        if len(value) != H:
            return f"initial_state.{key} holds {len(value)} numbers, expected {H} (the hidden size)"
        if not np.isfinite(np.asarray(value, dtype=np.float64)).all():
            return f"initial_state.{key}: a value is NaN or infinite"
    return None


def initial_state(e: dict) -> tuple[np.ndarray, np.ndarray]:
    """(h, c) the layer starts from at reset(), float64: the entry's initial_state, else zeros."""
    H = int(e["shape"][-1])
    state = e.get("initial_state") or {}
    return tuple(np.asarray(state.get(key, np.zeros(H)), dtype=np.float64).reshape(H) for key in INITIAL_KEYS)


def rtneural(e: dict) -> str | None:
    """Why RTNeural cannot run this entry as written, or None: its LSTMLayerT keeps the cell state
    private and reset() zeroes h and c (its JSON loader skips the field), so a non-zero initial
    state is beyond it."""
    if any(np.any(v) for v in initial_state(e)):
        return "an LSTM with a non-zero initial_state: RTNeural's LSTMLayerT always starts from zero"
    return None


class Runtime(rnn.Runtime):
    def __init__(self, e: dict, in_size: int):
        self.h0, self.c0 = initial_state(e)
        super().__init__(e, in_size)

    def reset(self):
        self.h = self.h0.copy()
        self.c = self.c0.copy()

    def step(self, x):
        z = x @ self.W + self.h @ self.U + self.b
        i, f, g, o = (z[k * self.H : (k + 1) * self.H] for k in range(4))
        self.c = sigmoid(f) * self.c + sigmoid(i) * np.tanh(g)
        self.h = sigmoid(o) * np.tanh(self.c)
        return self.h


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    return rnn.cpp(e, slot, prefix, lambda name, b: f"std::vector<float>({name}, {name} + {b.size})")


def rounded(e: dict, precision: str) -> list:
    """W and U rounded apart, as the int8 engine keeps them (each with its own scales per gate row;
    for float16 the same values as rounding them together)."""
    W, U, b = e["weights"]
    return [quantize.round_trip(W, precision), quantize.round_trip(U, precision), b]


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    """float32/float16: one fused matrix [W; U] over [x; h], gates i, f, c, o, read once per step.
    int8: W and U apart, x and h quantised apart, each with its own scale (one scale over [x; h]
    rounded a quiet input to zero against h), their sums meeting block by block. reset() copies the
    initial state in where it is not zero."""
    W, U, b = (np.asarray(w, dtype=np.float32) for w in e["weights"])
    H = U.shape[0]
    h0, c0 = (v.astype(np.float32) for v in initial_state(e))
    if precision == "int8":
        step = EngineStep(
            arrays=[*matrix("W", W, precision), *matrix("U", U, precision), ("b", b)],
            buffers=[
                ("h", H),
                ("c", H),
                ("z", 4 * H),
                ("qx", padded(in_size), "std::int8_t"),
                ("qh", padded(H), "std::int8_t"),
            ],
            state=["h", "c"],
            forward=[
                f"rtmb::lstm<{in_size}, {H}>({weights('W', precision)}, {weights('U', precision)}, {{p}}_b, "
                "{x}, {p}_h, {p}_c, {p}_z, {p}_qx, {p}_qh);"
            ],
            out="{p}_h",
        )
        h_at = ("h", 0)
    else:
        step = EngineStep(
            arrays=[*matrix("WU", np.vstack([W, U]), precision), ("b", b)],
            buffers=[("xh", in_size + H), ("c", H), ("z", 4 * H)],
            state=["xh", "c"],
            forward=[
                f"rtmb::copy<{in_size}>({{x}}, {{p}}_xh);",
                f"rtmb::lstm<{in_size}, {H}>({{p}}_WU, {{p}}_b, {{p}}_xh, {{p}}_c, {{p}}_z);",
            ],
            out=f"{{p}}_xh + {in_size}",
        )
        h_at = ("xh", in_size)
    for (buffer, offset), name, value in ((h_at, "h0", h0), (("c", 0), "c0", c0)):
        if value.any():
            step.arrays.append((name, value))
            step.initial.append((buffer, offset, name))
    return step
