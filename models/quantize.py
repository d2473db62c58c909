"""Reduced-precision weights: the one definition of each scheme, so the exporter (which writes them)
and the trainer (which measures what they cost on the validation data) apply exactly the same one.

- float16: each weight rounded to IEEE half precision (export refuses weights beyond its range);
- int8: a scale per output (a gate row of a recurrent layer), max |w| / 127, weights rounded to it;
  and each vector entering an int8 matrix quantised too, with one scale for the vector, max |x| / 127
  (computed as the engine does, in float32), so the sums are integer.

Biases and every non-matrix parameter stay float32. Kernels are [in][out], as in RTNeural's JSON.
The int8 engine keeps a layer of fewer than layout.INT8_MIN_PARAMETERS parameters in float32
(layer_precision): its weights unrounded and its inputs not quantised.
"""

from __future__ import annotations

import numpy as np

from common import layout

PRECISIONS = ("float32", "float16", "int8")
HALF_MAX = float(np.finfo(np.float16).max)


def check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    return precision


def layer_precision(precision: str, parameters: int) -> str:
    """The precision the engine at `precision` keeps a layer of `parameters` parameters (counted as
    in its RTNeural JSON entry) in: int8 keeps small layers in float32, as quantising their inputs
    costs more than their int8 sums save."""
    return "float32" if precision == "int8" and parameters < layout.INT8_MIN_PARAMETERS else precision


def int8(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q int8 [in][out], scale float32 [out]) with kernel ~= q * scale.

    >>> q, s = int8(np.array([[1.0, -0.5], [-2.0, 0.25]]))
    >>> q.tolist(), s.tolist()
    ([[64, -127], [-127, 64]], [0.015748031437397003, 0.003937007859349251])
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    top = np.abs(kernel).max(axis=0) if kernel.size else np.zeros(kernel.shape[1], np.float32)
    scale = np.where(top > 0, top / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(kernel / scale), -127, 127).astype(np.int8)
    return q, scale


def activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q int8, scale float32) of each vector along the last axis, x ~= q * scale: scale is
    max |x| / 127 in float32 (0 for a zero vector, NaN for one holding a NaN), q is x * (127 / max|x|)
    rounded to nearest, ties to even -- the engine's arithmetic step for step.

    >>> q, s = activations(np.array([0.5, -1.0, 0.25], np.float32))
    >>> q.tolist(), float(s)
    ([64, -127, 32], 0.007874015718698502)
    """
    x = np.asarray(x, dtype=np.float32)
    top = np.abs(x).max(axis=-1, keepdims=True)  # a NaN propagates through max
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(top > 0, np.float32(127) / top, np.float32(0)).astype(np.float32)
        q = np.rint(x * inverse)
    q = np.where(np.isfinite(q), q, 0).astype(np.int8)
    return q, (top / np.float32(127)).astype(np.float32)[..., 0]


def float16(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float32)
    if np.abs(kernel).max(initial=0.0) > HALF_MAX:
        raise ValueError(f"a weight of {np.abs(kernel).max():g} is beyond float16's range ({HALF_MAX:g})")
    return kernel.astype(np.float16)


def round_trip(kernel: np.ndarray, precision: str) -> np.ndarray:
    """The float32 values the engine computes with at `precision`."""
    if check(precision) == "float16":
        return float16(kernel).astype(np.float32)
    if precision == "int8":
        q, scale = int8(kernel)
        return q.astype(np.float32) * scale
    return np.asarray(kernel, dtype=np.float32)
