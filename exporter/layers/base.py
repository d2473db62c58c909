"""What every layer unit shares: the error it raises and the array helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models import quantize


class ExportError(Exception):
    """A layer that cannot become an RTNeural layer; names the model, the layer and the reason."""

    def __init__(self, model: str, layer: str, reason: str):
        self.model, self.layer, self.reason = model, layer, reason
        super().__init__(f"{model}: layer {layer}: {reason}")


def f32(t) -> np.ndarray:
    """A torch tensor or array as float32 numpy."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


def entry(kind: str, out: int, weights: list, activation: str = "", **extra) -> dict:
    """One layer of RTNeural's Keras-style JSON."""
    return {
        "type": kind,
        "activation": activation,
        "shape": [None, None, int(out)],
        "weights": [f32(w) for w in weights],
        **extra,
    }


def out_size(e: dict) -> int:
    return int(e["shape"][-1])


def walk(model_json: dict) -> list[tuple[dict, int]]:
    """Each layer of a model JSON with the size of its input, in order: the one walk over a model's
    sizes (an activation layer keeps its input's size, whatever its shape field says)."""
    size, out = int(model_json["in_shape"][-1]), []
    for e in model_json["layers"]:
        out.append((e, size))
        size = size if e["type"] == "activation" else out_size(e)
    return out


def sizes(model_json: dict) -> tuple[int, int]:
    """(input size, output size) of a model JSON."""
    layers = walk(model_json)
    e, last_in = layers[-1]
    return int(model_json["in_shape"][-1]), last_in if e["type"] == "activation" else out_size(e)


def count(e: dict) -> int:
    return int(sum(np.asarray(w).size for w in e["weights"]))


BLOCK = 64  # outputs per block: kBlock in exporter/rtmb_kernels.h (the generated headers assert it)
LANE = 8  # outputs per vector: kLane there (asserted too)


def partial_sums(n_in: int, lanes: int) -> int:
    """How many partial sums each output of a block of `lanes` vectors takes over n_in inputs:
    rtmb_kernels.h's partial_sums, which fixes the float kernels' order of summation."""
    return 4 if n_in >= 4 and lanes <= 2 else 1


def stored(e: dict, precision: str) -> str:
    """The precision the engine at `precision` keeps layer e in (models.quantize.layer_precision:
    the int8 engine keeps small layers in float32)."""
    return quantize.layer_precision(precision, count(e))


def blocks(kernel: np.ndarray) -> np.ndarray:
    """A dense kernel [in][out] in the generated engine's layout: for each group of BLOCK outputs
    (the last may be narrower), its [in][BLOCK] weights contiguously, so the kernel reads it in order."""
    kernel = np.asarray(kernel)
    return np.concatenate([kernel[:, o : o + BLOCK].ravel() for o in range(0, kernel.shape[1], BLOCK)])


GROUP = 4  # inputs per int8 weight word: kGroup in exporter/rtmb_kernels.h


def int8_blocks(q: np.ndarray) -> np.ndarray:
    """An int8 kernel [in][out] in the int8 kernel's layout: blocks of BLOCK outputs as for float, and
    within a block groups of GROUP inputs, [in / GROUP][width][GROUP] (in padded with zero weights),
    so each output's GROUP weights are one 32-bit word."""
    pad = -q.shape[0] % GROUP
    q = np.concatenate([q, np.zeros((pad, q.shape[1]), q.dtype)]) if pad else q
    groups = q.shape[0] // GROUP
    return np.concatenate(
        [q[:, o : o + BLOCK].reshape(groups, GROUP, -1).transpose(0, 2, 1).ravel() for o in range(0, q.shape[1], BLOCK)]
    )


def padded(n: int) -> int:
    return -(-n // GROUP) * GROUP


def matrix(suffix: str, kernel: np.ndarray, precision: str) -> list:
    """A kernel [in][out] as the generated engine stores it at `precision`: its arrays (in blocks;
    for int8 in groups, with `<suffix>_scale`, one scale per output, and `<suffix>_sums`)."""
    if precision == "int8":
        q, scale = quantize.int8(kernel)
        sums = q.sum(axis=0, dtype=np.int32)  # per output: AVX-VNNI's correction (rtmb_kernels.h)
        return [(suffix, int8_blocks(q)), (f"{suffix}_scale", scale), (f"{suffix}_sums", sums)]
    if precision == "float16":
        return [(suffix, blocks(quantize.float16(kernel)))]
    return [(suffix, blocks(np.asarray(kernel, dtype=np.float32)))]


def weights(suffix: str, precision: str) -> str:
    """The C++ argument a kernel takes for matrix `suffix` (a template for str.format, with {p}):
    the weights, or for int8 an rtmb::Int8Matrix of the weights, their scales and sums."""
    if precision == "int8":
        return "{{" + ", ".join(f"{{p}}_{suffix}{part}" for part in ("", "_scale", "_sums")) + "}}"
    return f"{{p}}_{suffix}"


@dataclass
class EngineStep:
    """One layer of the generated engine: its weights in the layout the kernel walks, the float
    buffers it keeps in the model object, and its statements in forward(). In `forward`, `{x}` is the
    input pointer and `{p}` the layer's name prefix; `out` is the output pointer expression."""

    arrays: list = field(default_factory=list)  # (suffix, array)
    buffers: list = field(default_factory=list)  # (suffix, size) of float, or (suffix, size, C++ type)
    state: list = field(default_factory=list)  # suffixes of the buffers reset() zeroes
    # (buffer suffix, offset, array suffix): after zeroing, reset() copies that array (one of
    # `arrays`, float32) into the buffer from the offset: a recurrent layer's learned initial state
    initial: list = field(default_factory=list)
    forward: list = field(default_factory=list)
    out: str = ""
