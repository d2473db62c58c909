"""The torch side of a declaration: the module a model trains as, run as a plugin runs it."""

from __future__ import annotations

import torch
from torch import nn

from models.layers import GRU, LSTM, Dense, Layer
from models.spec import ModelSpec

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "softmax": lambda: nn.Softmax(dim=-1),
}


def torch_module(layer: Layer, in_size: int) -> nn.Module:
    if isinstance(layer, Dense):
        linear = nn.Linear(in_size, layer.out)
        return linear if layer.activation is None else nn.Sequential(linear, ACTIVATIONS[layer.activation]())
    if isinstance(layer, LSTM):
        return nn.LSTM(in_size, layer.out, batch_first=True)
    if isinstance(layer, GRU):
        return nn.GRU(in_size, layer.out, batch_first=True)
    raise TypeError(f"no torch module for {layer!r}")


def is_recurrent(module: nn.Module) -> bool:
    return isinstance(module, (nn.LSTM, nn.GRU))


class StreamingModel(nn.Module):
    """Runs a declaration as a plugin does: one input vector per step, state carried.

    `forward` takes [batch, time, input] and the state from the previous call
    (None for a reset state) and returns [batch, time, output] and the new state.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleList(
            torch_module(layer, n) for layer, n in zip(spec.layers, spec.layer_inputs(), strict=False)
        )

    def forward(self, x: torch.Tensor, state: list | None = None):
        state = list(state) if state is not None else [None] * len(self.layers)
        for i, layer in enumerate(self.layers):
            if is_recurrent(layer):
                x, state[i] = layer(x, state[i])
            else:
                x = layer(x)
        return x, state


def redundant_parameters(module: nn.Module) -> int:
    """Parameters PyTorch stores that RTNeural folds away (an LSTM's second bias)."""
    return sum(
        getattr(m, name).numel()
        for m in module.modules()
        if isinstance(m, nn.LSTM)
        for name in m._flat_weights_names
        if name.startswith("bias_hh")
    )


def deployed_parameter_count(module: nn.Module) -> int:
    """The parameter count of a torch module as RTNeural will hold it."""
    return sum(p.numel() for p in module.parameters()) - redundant_parameters(module)
