"""Conv1D, run causally one frame at a time as RTNeural does: y[t] = b + sum_i K[i] x[t - (k-1-i)d].

That equals a torch Conv1d with stride 1 and no padding applied to the stream left-padded with
(k-1)*dilation zeros, which is the only Conv1d form RTNeural's streaming layer can run.
JSON kernel is [k][in/groups][out].
"""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers import activation
from exporter.layers.base import EngineStep, entry, f32, matrix, padded, weights
from models import quantize

JSON_TYPES = ("conv1d",)
TORCH_TYPES = (nn.Conv1d,)


def weight_shapes(e: dict, in_size: int) -> list[list[tuple]]:
    out, groups = int(e["shape"][-1]), int(e.get("groups", 1))
    return [[(int(e["kernel_size"][-1]), in_size // groups, out), (out,)]]


def from_torch(module: nn.Conv1d, in_size: int) -> list[dict]:
    if module.stride != (1,):
        raise ValueError(f"Conv1d stride {module.stride[0]}: RTNeural's streaming Conv1D runs stride 1 only")
    if module.padding not in ((0,), "valid") or module.padding_mode != "zeros":
        raise ValueError(
            f"Conv1d padding {module.padding!r} ({module.padding_mode}): RTNeural's streaming Conv1D "
            "is causal; use padding=0 and feed the stream"
        )
    kernel = f32(module.weight).transpose(2, 1, 0)  # [out][in/g][k] -> [k][in/g][out]
    bias = f32(module.bias) if module.bias is not None else np.zeros(module.out_channels, np.float32)
    return [
        entry(
            "conv1d",
            module.out_channels,
            [kernel, bias],
            kernel_size=[module.kernel_size[0]],
            dilation=[module.dilation[0]],
            groups=module.groups,
        )
    ]


def modelt(e: dict, in_size: int) -> list[str]:
    out = int(e["shape"][-1])
    types = [
        f"RTNeural::Conv1DT<float, {in_size}, {out}, {e['kernel_size'][-1]}, {e['dilation'][-1]}, {e.get('groups', 1)}>"
    ]
    if e.get("activation"):
        types.append(activation.modelt_type(e["activation"], out))
    return types


class Runtime:
    def __init__(self, e: dict, in_size: int):
        self.kernel = np.asarray(e["weights"][0], dtype=np.float64)  # [k][in/g][out]
        self.bias = np.asarray(e["weights"][1], dtype=np.float64)
        self.k, self.d = int(e["kernel_size"][-1]), int(e["dilation"][-1])
        self.groups = int(e.get("groups", 1))
        self.in_size = in_size
        self.activation = e.get("activation") or None
        self.reset()

    def reset(self):
        self.history = np.zeros(((self.k - 1) * self.d + 1, self.in_size))

    def step(self, x):
        self.history = np.vstack([self.history[1:], x])
        out = self.bias.copy()
        cin, cout = self.in_size // self.groups, len(self.bias) // self.groups
        for i in range(self.k):
            frame = self.history[i * self.d]  # the oldest frame first: x[t - (k-1-i)d]
            for g in range(self.groups):
                out[g * cout : (g + 1) * cout] += (
                    frame[g * cin : (g + 1) * cin] @ self.kernel[i][:, g * cout : (g + 1) * cout]
                )
        return activation.apply(self.activation, out) if self.activation else out


def cpp(e: dict, slot: int, prefix: str) -> tuple[list, list[str]]:
    kernel = np.asarray(e["weights"][0], dtype=np.float32)
    bias = np.asarray(e["weights"][1], dtype=np.float32)
    k, cin, out = kernel.shape
    return [(f"{prefix}_kernel", kernel), (f"{prefix}_bias", bias)], [
        f"model.get<{slot}>().setWeights(convKernel({prefix}_kernel, {k}, {cin}, {out}));",
        f"model.get<{slot}>().setBias(std::vector<float>({prefix}_bias, {prefix}_bias + {out}));",
    ]


def fused(e: dict) -> list[np.ndarray]:
    """Per output group, its matrix [k * in/groups][out/groups]: the k taps' rows stacked, oldest
    first, so a group's step is one product over its taps' input slices (rtmb::conv1d)."""
    kernel = np.asarray(e["weights"][0], dtype=np.float32)
    k, cin, out = kernel.shape
    cout = out // int(e.get("groups", 1))
    return [kernel[:, :, o : o + cout].reshape(k * cin, cout) for o in range(0, out, cout)]


def rounded(e: dict, precision: str) -> list:
    """The weights as the engine at `precision` computes with them (for the reference): the kernel
    as one matrix [k * in/groups][out] (int8: a scale per output, over its group's k taps)."""
    kernel = np.asarray(e["weights"][0], dtype=np.float32)
    return [
        quantize.round_trip(kernel.reshape(-1, kernel.shape[2]), precision).reshape(kernel.shape),
        *e["weights"][1:],
    ]


def engine(e: dict, in_size: int, precision: str = "float32") -> EngineStep:
    """rtmb::conv1d: the past input frames in a ring in the model object (cleared by reset()), and per
    group one dense product over its k taps, the group's matrices stored one after another."""
    k, d, groups = int(e["kernel_size"][-1]), int(e["dilation"][-1]), int(e.get("groups", 1))
    out = int(e["shape"][-1])
    parts = [matrix("kernel", m, precision) for m in fused(e)]
    arrays = [(suffix, np.concatenate([part[i][1] for part in parts])) for i, (suffix, _) in enumerate(parts[0])]
    arrays.append(("bias", np.asarray(e["weights"][1], dtype=np.float32)))
    buffers, state, hist, pos, taps = [("y", out)], [], "nullptr", "nullptr", "nullptr"
    if k > 1:
        frames = 2 * k if d == 1 else (k - 1) * d + 1  # rtmb::conv_frames
        buffers += [("hist", frames * in_size), ("pos", 1, "int")]
        state, hist, pos = ["hist", "pos"], "{p}_hist", "{p}_pos"
        if d > 1 or groups > 1:
            buffers.append(("taps", k * in_size // groups))
            taps = "{p}_taps"
    sizes, ring = f"{in_size}, {out}, {k}, {d}, {groups}", f"{{x}}, {hist}, {pos}, {taps}"
    if precision == "int8":
        buffers.append(("q", padded(k * in_size // groups), "std::int8_t"))
        forward = [f"rtmb::conv1d<{sizes}>({weights('kernel', precision)}, {{p}}_bias, {ring}, {{p}}_q, {{p}}_y);"]
    else:
        forward = [f"rtmb::conv1d<{sizes}>({{p}}_kernel, {{p}}_bias, {ring}, {{p}}_y);"]
    if e.get("activation"):
        forward.append(f"rtmb::{activation.ENGINE[e['activation']]}<{out}>({{p}}_y, {{p}}_y);")
    return EngineStep(arrays=arrays, buffers=buffers, state=state, forward=forward, out="{p}_y")


def rtneural(e: dict) -> str | None:
    """Why RTNeural cannot run this entry as written, or None: it runs every entry of this kind."""
    return None
