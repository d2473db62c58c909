"""Checks and helpers the recurrent units share."""
from __future__ import annotations

import numpy as np
from torch import nn


def check_rnn(module: nn.RNNBase) -> None:
    if module.bidirectional:
        raise ValueError("bidirectional RNN: RTNeural runs forward in time only")
    if not module.batch_first:
        raise ValueError("batch_first=False: the streaming model expects batch_first RNNs")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"LSTM with proj_size={module.proj_size}: RTNeural has no projection")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def rows_code(name: str, n_rows: int, n_cols: int) -> str:
    """C++ that copies a flat row-major array into the vector-of-rows RTNeural's setters take."""
    return f"rows({name}, {n_rows}, {n_cols})"
