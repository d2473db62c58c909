"""Checks and helpers the recurrent units share."""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers.base import f32


def check_rnn(module: nn.RNNBase) -> None:
    if module.bidirectional:
        raise ValueError("bidirectional RNN: RTNeural runs forward in time only")
    if not module.batch_first:
        raise ValueError("batch_first=False: the streaming model expects batch_first RNNs")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"LSTM with proj_size={module.proj_size}: RTNeural has no projection")


def torch_layers(module: nn.RNNBase):
    """Per stacked layer (each one RTNeural layer): float32 weight_ih, weight_hh, bias_ih, bias_hh,
    the biases zero where the module has none. Checks first what RTNeural cannot run."""
    check_rnn(module)
    for k in range(module.num_layers):
        w_ih, w_hh = f32(getattr(module, f"weight_ih_l{k}")), f32(getattr(module, f"weight_hh_l{k}"))
        if module.bias:
            b_ih, b_hh = f32(getattr(module, f"bias_ih_l{k}")), f32(getattr(module, f"bias_hh_l{k}"))
        else:
            b_ih = b_hh = np.zeros(w_ih.shape[0], np.float32)
        yield w_ih, w_hh, b_ih, b_hh


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def rows_code(name: str, n_rows: int, n_cols: int) -> str:
    """C++ that copies a flat row-major array into the vector-of-rows RTNeural's setters take."""
    return f"rows({name}, {n_rows}, {n_cols})"


def cpp(e: dict, slot: int, prefix: str, bias_code) -> tuple[list, list[str]]:
    """Arrays W, U, b and the setter calls of an RTNeural recurrent layer; `bias_code(name, b)` is
    the argument its setBVals takes (LSTM: one row, GRU: two)."""
    W, U, b = (np.asarray(w, dtype=np.float32) for w in e["weights"])
    arrays = [(f"{prefix}_W", W), (f"{prefix}_U", U), (f"{prefix}_b", b)]
    layer = f"model.get<{slot}>()"
    return arrays, [
        f"{layer}.setWVals({rows_code(prefix + '_W', *W.shape)});",
        f"{layer}.setUVals({rows_code(prefix + '_U', *U.shape)});",
        f"{layer}.setBVals({bias_code(prefix + '_b', b)});",
    ]


class Runtime:
    """The state and weights a recurrent layer's reference step works with (float64)."""

    def __init__(self, e: dict, in_size: int):
        self.W, self.U, self.b = (np.asarray(w, dtype=np.float64) for w in e["weights"])
        self.H = self.U.shape[0]
        self.reset()
