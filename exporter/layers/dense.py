"""Dense (torch Linear): kernel [in][out] and bias in JSON; DenseT takes [out][in]."""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers import activation
from exporter.layers.base import EngineStep, entry, f32, matrix, padded, weights
from models import quantize

JSON_TYPES = ("dense", "time-distributed-dense")
TORCH_TYPES = (nn.Linear,)


def weight_shapes(e: dict, in_size: int) -> list[list[tuple]]:
    """The weight shapes a JSON entry may have (each alternative a list): kernel [in][out], bias."""
    out = int(e["shape"][-1])
    return [[(in_size, out), (out,)], [(in_size, out)]]


def from_torch(module: nn.Linear, in_size: int) -> list[dict]:
    weights = [f32(module.weight).T]
    if module.bias is not None:
        weights.append(f32(module.bias))
    return [entry("dense", module.out_features, weights)]


def modelt(e: dict, in_size: int) -> list[str]:
    out = int(e["shape"][-1])
    bias = "" if len(e["weights"]) >= 2 else ", false"
    types = [f"RTNeural::DenseT<float, {in_size}, {out}{bias}>"]
    if e.get("activation"):
        types.append(activation.modelt_type(e["activation"], out))
    return types


class Runtime:
    def __init__(self, e: dict, in_size: int):
        self.kernel = np.asarray(e["weights"][0], dtype=np.float64)
        self.bias = np.asarray(e["weights"][1], dtype=np.float64) if len(e["weights"]) >= 2 else 0.0
        self.activation = e.get("activation") or None

    def reset(self):
        pass

    def step(self, x):
        y = x @ self.kernel + self.bias
        return activation.apply(self.activation, y) if self.activation else y


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    kernel = np.asarray(e["weights"][0], dtype=np.float32)
    arrays = [(f"{prefix}_kernel", kernel)]
    code = [f"setDenseKernel(model.get<{slot}>(), {prefix}_kernel, {kernel.shape[0]}, {kernel.shape[1]});"]
    if len(e["weights"]) >= 2:
        arrays.append((f"{prefix}_bias", np.asarray(e["weights"][1], dtype=np.float32)))
        code.append(f"model.get<{slot}>().setBias({prefix}_bias);")
    return arrays, code


def rounded(e: dict, precision: str) -> list:
    """The weights as the engine at `precision` computes with them (for the reference)."""
    return [quantize.round_trip(e["weights"][0], precision), *e["weights"][1:]]


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    """y = b + x W, the kernel [in][out] in blocks at `precision` (int8: x quantised into q first);
    the activation applied in place."""
    kernel = np.asarray(e["weights"][0], dtype=np.float32)
    out = kernel.shape[1]
    arrays = matrix("kernel", kernel, precision)
    bias = "nullptr"
    if len(e["weights"]) >= 2:
        arrays.append(("bias", np.asarray(e["weights"][1], dtype=np.float32)))
        bias = "{p}_bias"
    buffers = [("y", out)]
    if precision == "int8":
        buffers.append(("q", padded(in_size), "std::int8_t"))
        forward = [f"rtmb::dense<{in_size}, {out}>({weights('kernel', precision)}, {bias}, {{x}}, {{p}}_q, {{p}}_y);"]
    else:
        forward = [f"rtmb::dense<{in_size}, {out}>({{p}}_kernel, {bias}, {{x}}, {{p}}_y);"]
    if e.get("activation"):
        forward.append(f"rtmb::{activation.ENGINE[e['activation']]}<{out}>({{p}}_y, {{p}}_y);")
    return EngineStep(arrays=arrays, buffers=buffers, forward=forward, out="{p}_y")


def rtneural(e: dict) -> str | None:
    """Why RTNeural cannot run this entry as written, or None: it runs every entry of this kind."""
    return None
