"""PReLU: y = x for x >= 0, alpha x otherwise; JSON weights [[alpha...]] (one alpha is shared)."""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers.base import EngineStep, entry, f32

JSON_TYPES = ("prelu",)
TORCH_TYPES = (nn.PReLU,)


def weight_shapes(e: dict, in_size: int) -> list[list[tuple]]:
    """[[alpha...]]: one alpha per feature, or fewer that RTNeural repeats."""
    n = np.shape(e["weights"][0])[-1] if e["weights"] and np.ndim(e["weights"][0]) == 2 else 0
    return [[(1, n)]] if 1 <= n <= in_size else [[(1, in_size)]]


def from_torch(module: nn.PReLU, in_size: int) -> list[dict]:
    return [entry("prelu", in_size, [f32(module.weight)[None, :]])]


def modelt(e: dict, in_size: int) -> list[str]:
    return [f"RTNeural::PReLUActivationT<float, {in_size}>"]


class Runtime:
    def __init__(self, e: dict, in_size: int):
        alpha = np.asarray(e["weights"][0][0], dtype=np.float64)
        self.alpha = np.resize(alpha, in_size)  # RTNeural repeats a shorter alpha vector

    def reset(self):
        pass

    def step(self, x):
        return np.where(x >= 0, x, self.alpha * x)


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    alpha = np.asarray(e["weights"][0][0], dtype=np.float32)
    return [(f"{prefix}_alpha", alpha)], [
        f"model.get<{slot}>().setAlphaVals(std::vector<float>({prefix}_alpha, {prefix}_alpha + {alpha.size}));"
    ]


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    alpha = Runtime(e, in_size).alpha.astype(np.float32)  # repeated to every feature, as RTNeural does
    return EngineStep(
        arrays=[("alpha", alpha)],
        buffers=[("y", in_size)],
        forward=[f"rtmb::prelu<{in_size}>({{p}}_alpha, {{x}}, {{p}}_y);"],
        out="{p}_y",
    )


def rtneural(e: dict) -> str | None:
    """Why RTNeural cannot run this entry as written, or None: it runs every entry of this kind."""
    return None
