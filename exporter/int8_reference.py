"""The generated int8 engine's arithmetic in numpy, op for op in float32, so its outputs are the
engine's to the bit (up to a rounding of expf and expm1, which only softmax and elu use).

The C++ (rtmb_kernels.h) pins each float step: every multiply-add is one fused operation (madd), the
integer sums are exact, and vectors are quantised by models.quantize.activations. Here a fused
multiply-add is computed in extended precision and rounded once to float32 (the product of two
floats is exact there). A float64 reference cannot stand in: the engine rounds each activation to
one of 255 levels, so an error of 1e-7 upstream can move a value across a rounding boundary, and
that moves the output by a whole level (about 1e-3).

The int8 engine keeps its small layers in float32 (exporter.layers.base.stored); those are summed
here in the engine's own order of fused multiply-adds (FloatMatrix), which every target follows.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from common import manifest
from exporter.layers import batchnorm, conv1d, lstm, prelu, walk
from exporter.layers.base import BLOCK, LANE, partial_sums, stored
from models import quantize

F = np.float32
WIDE = np.longdouble


def header_floats(name: str) -> list[np.float32]:
    """The float constant (or array) `name` as rtmb_kernels.h defines it: the header is the spec."""
    match = re.search(rf"constexpr float {name}(?:\[\d*\])? = \{{?([^;}}]*)\}}?;", KERNELS_SOURCE)
    if match is None:
        raise LookupError(f"rtmb_kernels.h: no constexpr float {name}")
    return [F(float(v.strip().rstrip("f"))) for v in match.group(1).split(",")]


KERNELS = Path(__file__).with_name(manifest.KERNELS)  # the kernels header: the spec this follows
KERNELS_SOURCE = KERNELS.read_text()
# tanh(x) ~ x P(x^2) / Q(x^2), x clamped; sigmoid(x) = 0.5 + the same with coefficients scaled by
# powers of 4 (exact), clamped at twice the bound: kTanh and kSigmoid in the header
TANH = (header_floats("kTanhClamp")[0], header_floats("kTanhP"), header_floats("kTanhQ"))
HALF_TANH_HALF = (
    F(2) * TANH[0],
    [c / F(4 ** (k + 1)) for k, c in enumerate(TANH[1])],
    [c / F(4**k) for k, c in enumerate(TANH[2])],
)


def madd(a, b, c) -> np.ndarray:
    """a * b + c rounded once to float32, as std::fma (the float32 product is exact in WIDE)."""
    return np.add(np.multiply(a, b, dtype=WIDE), c, dtype=WIDE).astype(F)


def odd_rational(x: np.ndarray, rational) -> np.ndarray:
    """rtmb::odd_rational: the clamp keeps a NaN, the polynomials in Estrin's scheme."""
    clamp, a, b = rational
    x = np.asarray(x, F)
    x = np.where(x < -clamp, -clamp, np.where(x > clamp, clamp, x)).astype(F)
    y = x * x
    y2 = y * y
    y4 = y2 * y2
    p = madd(y4, a[4], madd(y2, madd(y, a[3], a[2]), madd(y, a[1], a[0])))
    q = madd(y2, madd(y, b[3], b[2]), madd(y, b[1], b[0]))
    return ((x * p) / q).astype(F)


def tanh(x: np.ndarray) -> np.ndarray:
    return odd_rational(x, TANH)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (F(0.5) + odd_rational(x, HALF_TANH_HALF)).astype(F)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max()).astype(F)
    return (e / np.add.accumulate(e)[-1]).astype(F)  # summed in order, as the C++ loop does


ACTIVATIONS = {
    "tanh": tanh,
    "sigmoid": sigmoid,
    "relu": lambda x: np.where(x < 0, F(0), x).astype(F),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)).astype(F),
    "softmax": softmax,
}


class Matrix:
    """An int8 matrix [in][out] with its scales per output, as the engine stores it."""

    def __init__(self, kernel):
        self.q, self.scale = quantize.int8(kernel)
        self.q = self.q.astype(np.int64)

    def __call__(self, x: np.ndarray, bias=None) -> np.ndarray:
        """b + x W as the engine computes it: x quantised, summed in integers, then one madd."""
        q, xs = quantize.activations(x)
        sums = (q.astype(np.int64) @ self.q).astype(F)
        return madd(sums, F(xs) * self.scale, F(0) if bias is None else np.asarray(bias, F))


class FloatMatrix:
    """A float32 matrix [in][out] as the engine sums it (the int8 engine's small layers): per block of
    BLOCK outputs, its whole vectors of LANE in partial_sums interleaved sums of fused multiply-adds,
    the rest in one (rtmb_kernels.h, accumulate and chains)."""

    def __init__(self, kernel):
        self.W = np.asarray(kernel, F)

    def __call__(self, x: np.ndarray, bias=None) -> np.ndarray:
        x = np.asarray(x, F)
        n_in, n_out = self.W.shape
        b = np.zeros(n_out, F) if bias is None else np.asarray(bias, F)
        y = np.empty(n_out, F)
        for o in range(0, n_out, BLOCK):
            width = min(BLOCK, n_out - o)
            whole = width // LANE * LANE
            for lo, hi, parts in ((o, o + whole, partial_sums(n_in, width // LANE)), (o + whole, o + width, 1)):
                if hi > lo:
                    y[lo:hi] = self.sums(x, self.W[:, lo:hi], b[lo:hi], parts)
        return y

    @staticmethod
    def sums(x: np.ndarray, W: np.ndarray, b: np.ndarray, parts: int) -> np.ndarray:
        even = len(x) // parts * parts
        part = [b.copy()] + [np.zeros_like(b) for _ in range(parts - 1)]
        for i in range(len(x)):
            k = i % parts if i < even else i - even
            part[k] = madd(x[i], W[i], part[k])
        return (part[0] + part[1]) + (part[2] + part[3]) if parts == 4 else part[0]


class Conv1D:
    """rtmb::conv1d: the past frames kept (float32), and per group one Matrix over its k taps' input
    slices, oldest first, quantised as one vector."""

    def __init__(self, e: dict, in_size: int):
        self.k, self.d = int(e["kernel_size"][-1]), int(e["dilation"][-1])
        self.in_size, self.groups = in_size, int(e.get("groups", 1))
        kind = Matrix if stored(e, "int8") == "int8" else FloatMatrix
        self.matrices = [kind(m) for m in conv1d.fused(e)]
        self.bias = np.asarray(e["weights"][1], F).reshape(self.groups, -1)
        self.reset()

    def reset(self):
        self.frames = np.zeros(((self.k - 1) * self.d + 1, self.in_size), F)

    def step(self, x: np.ndarray) -> np.ndarray:
        self.frames = np.vstack([self.frames[1:], np.asarray(x, F)[None]])
        taps = self.frames[:: self.d].reshape(self.k, self.groups, -1)  # [k][group][in/groups]
        return np.concatenate([m(taps[:, g].ravel(), self.bias[g]) for g, m in enumerate(self.matrices)])


class Layer:
    def __init__(self, e: dict, in_size: int):
        self.kind, self.act = e["type"], e.get("activation") or ""
        self.int8 = stored(e, "int8") == "int8"  # else a small layer, kept in float32
        M = Matrix if self.int8 else FloatMatrix
        w = [np.asarray(a, F) for a in e["weights"]]
        if self.kind in ("dense", "time-distributed-dense"):
            self.W, self.b = M(w[0]), (w[1] if len(w) > 1 else None)
        elif self.kind == "lstm":  # int8: W and U apart, x and h quantised apart; float: [W; U] over [x; h]
            self.W, self.U, self.b, self.H = M(w[0]), M(w[1]), w[2], w[1].shape[0]
            self.WU = None if self.int8 else FloatMatrix(np.vstack([w[0], w[1]]))
            self.h0, self.c0 = (v.astype(F) for v in lstm.initial_state(e))
        elif self.kind == "gru":
            self.W, self.U, self.b, self.H = M(w[0]), M(w[1]), w[2], w[1].shape[0]
        elif self.kind == "batchnorm":
            step = batchnorm.engine(e, in_size)
            self.scale, self.shift = (a for _, a in step.arrays)
        elif self.kind == "prelu":
            self.alpha = prelu.Runtime(e, in_size).alpha.astype(F)
        elif self.kind == "conv1d":
            self.conv = Conv1D(e, in_size)
        elif self.kind != "activation":
            raise ValueError(f"the int8 engine has no {self.kind} layer")
        self.reset()

    def reset(self):
        if self.kind == "conv1d":
            self.conv.reset()
        if self.kind == "lstm":  # from the learned initial state, zero where there is none
            self.h, self.c = self.h0.copy(), self.c0.copy()
        if self.kind == "gru":
            self.h = np.zeros(self.H, F)

    def step(self, x: np.ndarray) -> np.ndarray:
        H = getattr(self, "H", 0)
        if self.kind in ("dense", "time-distributed-dense"):
            y = self.W(x, self.b)
            return ACTIVATIONS[self.act](y) if self.act else y
        if self.kind == "lstm":
            if self.int8:
                z = self.U(self.h, self.W(x, self.b))  # madd(sum_h, hs * sU, madd(sum_x, xs * sW, b))
            else:
                z = self.WU(np.concatenate([np.asarray(x, F), self.h]), self.b)
            i, f, g, o = (z[k * H : (k + 1) * H] for k in range(4))
            self.c = madd(sigmoid(f), self.c, sigmoid(i) * tanh(g))
            self.h = sigmoid(o) * tanh(self.c)
            return self.h
        if self.kind == "gru":
            wx, uh = self.W(x, self.b[0]), self.U(self.h, self.b[1])
            update = sigmoid(wx[:H] + uh[:H])
            reset = sigmoid(wx[H : 2 * H] + uh[H : 2 * H])
            candidate = tanh(madd(reset, uh[2 * H :], wx[2 * H :]))
            self.h = madd(update, self.h - candidate, candidate)
            return self.h
        if self.kind == "conv1d":
            y = self.conv.step(x)
            return ACTIVATIONS[self.act](y) if self.act else y
        if self.kind == "batchnorm":
            return madd(self.scale, x, self.shift)
        if self.kind == "prelu":
            return np.where(x < 0, self.alpha * x, x).astype(F)
        return ACTIVATIONS[self.act](x)


class Model:
    """The whole model, one input vector per step, state carried."""

    def __init__(self, model_json: dict):
        self.layers = [Layer(e, size) for e, size in walk(model_json)]
        self.skip = bool(model_json.get("skip"))  # the first inputs added to the outputs, in float32

    def run(self, inputs) -> np.ndarray:
        """Outputs for a sequence of input vectors, from a reset state."""
        for layer in self.layers:
            layer.reset()
        out = []
        for x in np.asarray(inputs, F):
            y = x
            for layer in self.layers:
                y = layer.step(y)
            out.append((y + x[: len(y)]).astype(F) if self.skip else y)
        return np.stack(out)
