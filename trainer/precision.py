"""What reduced precision costs on the task: each model's validation metric computed as the
generated engine computes it at each precision (models.quantize), beside float32's.

The rounding is applied to the torch module by the same rules the exporter follows: a Linear's
kernel per output; a recurrent layer's input and recurrent kernels apart, each per gate row (the
int8 engine keeps them apart). Biases stay float32. For int8 the vectors entering each matrix are
quantised too, one scale per vector, as the engine does: a Linear's input, an LSTM's or a GRU's x
and h apart (one scale over an LSTM's [x; h] rounded a quiet input to zero against h). A layer the
int8 engine keeps in float32 (models.quantize.layer_precision) is left as it is.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from models import quantize


def _round(kernel_in_out: np.ndarray, precision: str) -> np.ndarray:
    return quantize.round_trip(kernel_in_out, precision)


def parameters(module: nn.Module, k: int = 0) -> int:
    """A Linear's, or recurrent layer k's, parameters as its RTNeural JSON entry counts them (an
    LSTM's two biases are one there, a GRU's two kept as two rows)."""
    if isinstance(module, nn.Linear):
        return module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
    w_ih, w_hh = getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}")
    bias = (4 if isinstance(module, nn.LSTM) else 6) * module.hidden_size
    return w_ih.numel() + w_hh.numel() + bias


def held(module: nn.Module, precision: str, k: int = 0) -> str:
    return quantize.layer_precision(precision, parameters(module, k))


@torch.no_grad()
def rounded(model: nn.Module, precision: str) -> nn.Module:
    """A copy of `model` computing as the engine at `precision` does: its weight matrices hold the
    values the engine computes with, and for int8 its activations are quantised too (Int8Model)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            at = held(module, precision)
            module.weight.copy_(torch.from_numpy(_round(module.weight.numpy().T, at).T))
        elif isinstance(module, (nn.LSTM, nn.GRU)):
            for k in range(module.num_layers):
                at = held(module, precision, k)
                w_ih, w_hh = getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}")
                w_ih.copy_(torch.from_numpy(_round(w_ih.numpy().T, at).T))
                w_hh.copy_(torch.from_numpy(_round(w_hh.numpy().T, at).T))
    return Int8Model(model) if precision == "int8" else model


def quantised(x: torch.Tensor) -> torch.Tensor:
    """x with each vector (last axis) rounded to 255 levels of max |x| / 127, as
    models.quantize.activations rounds it (ties to even)."""
    top = x.abs().amax(dim=-1, keepdim=True)
    inverse = torch.where(top > 0, 127.0 / top, torch.zeros_like(top))
    return torch.round(x * inverse) * (top / 127.0)


def entering(x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """x as it enters `linear` in the int8 engine: quantised, or as it is where the layer is kept
    in float32."""
    return quantised(x) if held(linear, "int8") == "int8" else x


class Int8Model(nn.Module):
    """A StreamingModel run as the int8 engine runs it: its (already rounded) weights, and every
    vector quantised as it enters a matrix. The recurrent layers step in time, since h is quantised
    at every step; the state starts from zero (evaluation runs whole sequences)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, state=None):
        for layer in self.model.layers:
            if isinstance(layer, nn.Linear):
                x = layer(entering(x, layer))
            elif isinstance(layer, nn.Sequential):  # Linear, then its activation
                x = layer[1:](layer[0](entering(x, layer[0])))
            else:
                for k in range(layer.num_layers):
                    x = self.recurrent(layer, k, x)
        return x, None

    @staticmethod
    def recurrent(module: nn.Module, k: int, x: torch.Tensor) -> torch.Tensor:
        int8 = held(module, "int8", k) == "int8"  # else kept in float32: its inputs as they are

        def enter(v: torch.Tensor) -> torch.Tensor:
            return quantised(v) if int8 else v

        w_ih, w_hh = getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}")
        b_ih, b_hh = getattr(module, f"bias_ih_l{k}"), getattr(module, f"bias_hh_l{k}")
        h = x.new_zeros(x.shape[0], module.hidden_size)
        c, out = torch.zeros_like(h), []
        for t in range(x.shape[1]):
            if isinstance(module, nn.LSTM):
                z = enter(x[:, t]) @ w_ih.T + enter(h) @ w_hh.T + b_ih + b_hh
                i, f, g, o = z.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                wx = enter(x[:, t]) @ w_ih.T + b_ih
                uh = enter(h) @ w_hh.T + b_hh
                (wr, wz, wn), (ur, uz, un) = wx.chunk(3, dim=-1), uh.chunk(3, dim=-1)
                r, z = torch.sigmoid(wr + ur), torch.sigmoid(wz + uz)
                n = torch.tanh(wn + r * un)
                h = (1 - z) * n + z * h
            out.append(h)
        return torch.stack(out, dim=1)


def acceptable(task, float32: float, value: float) -> bool:
    """The bar a precision must clear: at most 1 point of accuracy lost, or 2% more error."""
    if task.higher_is_better:
        return value >= float32 - 0.01
    return value <= float32 * 1.02
