"""What reduced-precision weights cost on the task: each model's validation metric with its weights
rounded as the generated engine rounds them (models.quantize), beside float32's.

The rounding is applied to the torch module by the same rules the exporter follows: a Linear's
kernel per output; an LSTM layer's input and recurrent kernels as one matrix, per gate row (the
engine fuses them); a GRU's two kernels apart. Biases stay float32.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from models import quantize


def _round(kernel_in_out: np.ndarray, precision: str) -> np.ndarray:
    return quantize.round_trip(kernel_in_out, precision)


@torch.no_grad()
def rounded(model: nn.Module, precision: str) -> nn.Module:
    """A copy of `model` whose weight matrices hold the values the engine computes with."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight.copy_(torch.from_numpy(_round(module.weight.numpy().T, precision).T))
        elif isinstance(module, (nn.LSTM, nn.GRU)):
            for k in range(module.num_layers):
                w_ih, w_hh = getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}")
                if isinstance(module, nn.LSTM):  # one fused [W; U] matrix, [in + hidden][4 hidden]
                    both = _round(np.vstack([w_ih.numpy().T, w_hh.numpy().T]), precision)
                    w_ih.copy_(torch.from_numpy(both[: w_ih.shape[1]].T))
                    w_hh.copy_(torch.from_numpy(both[w_ih.shape[1] :].T))
                else:
                    w_ih.copy_(torch.from_numpy(_round(w_ih.numpy().T, precision).T))
                    w_hh.copy_(torch.from_numpy(_round(w_hh.numpy().T, precision).T))
    return model


def acceptable(task, float32: float, value: float) -> bool:
    """The bar a precision must clear: at most 1 point of accuracy lost, or 2% more error."""
    if task.higher_is_better:
        return value >= float32 - 0.01
    return value <= float32 * 1.02
