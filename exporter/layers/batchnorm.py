"""BatchNorm over features (inference form): y = gamma (x - mean) / sqrt(var + eps) + beta.
JSON weights are [gamma, beta, mean, var] when affine, [mean, var] when not."""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers.base import EngineStep, entry, f32

JSON_TYPES = ("batchnorm",)
TORCH_TYPES = (nn.BatchNorm1d,)


def weight_shapes(e: dict, in_size: int) -> list[list[tuple]]:
    return [[(in_size,)] * 4, [(in_size,)] * 2]


def from_torch(module: nn.BatchNorm1d, in_size: int) -> list[dict]:
    if not module.track_running_stats:
        raise ValueError("BatchNorm1d without running statistics cannot run one frame at a time")
    stats = [f32(module.running_mean), f32(module.running_var)]
    weights = ([f32(module.weight), f32(module.bias)] if module.affine else []) + stats
    return [entry("batchnorm", module.num_features, weights, epsilon=float(module.eps))]


def modelt(e: dict, in_size: int) -> list[str]:
    affine = "true" if len(e["weights"]) == 4 else "false"
    return [f"RTNeural::BatchNorm1DT<float, {in_size}, {affine}>"]


class Runtime:
    def __init__(self, e: dict, in_size: int):
        w = [np.asarray(a, dtype=np.float64) for a in e["weights"]]
        gamma, beta, mean, var = w if len(w) == 4 else (1.0, 0.0, *w)
        self.scale = gamma / np.sqrt(var + float(e["epsilon"]))
        self.mean, self.beta = mean, beta

    def reset(self):
        pass

    def step(self, x):
        return self.scale * (x - self.mean) + self.beta


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    names = ["gamma", "beta", "mean", "var"] if len(e["weights"]) == 4 else ["mean", "var"]
    setters = {"gamma": "setGamma", "beta": "setBeta", "mean": "setRunningMean", "var": "setRunningVariance"}
    arrays, code = [], []
    for name, w in zip(names, e["weights"], strict=False):
        w = np.asarray(w, dtype=np.float32)
        arrays.append((f"{prefix}_{name}", w))
        code.append(
            f"model.get<{slot}>().{setters[name]}(std::vector<float>({prefix}_{name}, {prefix}_{name} + {w.size}));"
        )
    code.append(f"model.get<{slot}>().setEpsilon({float(e['epsilon'])!r}f);")
    return arrays, code


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    """The statistics folded into one scale and one shift per feature (in float64, then rounded)."""
    rt = Runtime(e, in_size)
    scale = np.broadcast_to(rt.scale, in_size)
    shift = np.broadcast_to(rt.beta - rt.mean * rt.scale, in_size)
    return EngineStep(
        arrays=[("scale", scale.astype(np.float32)), ("shift", shift.astype(np.float32))],
        buffers=[("y", in_size)],
        forward=[f"rtmb::affine<{in_size}>({{p}}_scale, {{p}}_shift, {{x}}, {{p}}_y);"],
        out="{p}_y",
    )


def rtneural(e: dict) -> str | None:
    """Why RTNeural cannot run this entry as written, or None: it runs every entry of this kind."""
    return None
