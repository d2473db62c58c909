"""Activations: a JSON `activation` field on the layer before, or a layer of its own."""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers.base import EngineStep, entry

JSON_TYPES = ("activation",)
TORCH_TYPES = (nn.Tanh, nn.ReLU, nn.Sigmoid, nn.Softmax, nn.ELU)
NAMES = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Softmax: "softmax", nn.ELU: "elu"}
MODELT = {
    "tanh": "TanhActivationT",
    "relu": "ReLuActivationT",
    "sigmoid": "SigmoidActivationT",
    "softmax": "SoftmaxActivationT",
    "elu": "ELuActivationT",
}


def weight_shapes(e: dict, in_size: int) -> list[list[tuple]]:
    return [[]]


def apply(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "softmax":
        e = np.exp(x - x.max())
        return e / e.sum()
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    raise ValueError(f"unknown activation {name!r}")


def check(module: nn.Module) -> str | None:
    """Why RTNeural cannot run this activation as PyTorch configured it, or None."""
    if isinstance(module, nn.ELU) and module.alpha != 1.0:
        return f"ELU with alpha={module.alpha}; RTNeural's ELU from JSON has alpha 1"
    if isinstance(module, nn.Softmax) and module.dim not in (-1, None, 2):
        return f"softmax over dim {module.dim}; RTNeural takes it over the features"
    return None


def from_torch(module: nn.Module, in_size: int) -> list[dict]:
    return [entry("activation", in_size, [], NAMES[type(module)])]


def modelt_type(name: str, size: int) -> str:
    return f"RTNeural::{MODELT[name]}<float, {size}>"


def modelt(e: dict, in_size: int) -> list[str]:
    return [modelt_type(e["activation"], in_size)]


class Runtime:
    def __init__(self, e: dict, in_size: int):
        self.name = e["activation"]

    def reset(self):
        pass

    def step(self, x):
        return apply(self.name, x)


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    return [], []  # nothing to load


# The kernel each activation calls in the generated engine (rtmb_kernels.h).
ENGINE = {"tanh": "tanh", "relu": "relu", "sigmoid": "sigmoid", "elu": "elu", "softmax": "softmax"}


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    return EngineStep(
        buffers=[("y", in_size)],
        forward=[f"rtmb::{ENGINE[e['activation']]}<{in_size}>({{x}}, {{p}}_y);"],
        out="{p}_y",
    )


def rtneural(e: dict) -> str | None:
    """Why RTNeural cannot run this entry as written, or None: it runs every entry of this kind."""
    return None
