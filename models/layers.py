"""Layer kinds a model declaration is built from.

Only layers RTNeural runs are declared here. Each kind knows its output size,
its parameter count as RTNeural stores it, and how to build its torch module;
the exporter adds the RTNeural side of each kind in its own table.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "softmax": lambda: nn.Softmax(dim=-1),
}


@dataclass(frozen=True)
class Dense:
    """A fully connected layer, optionally followed by an activation."""

    out: int
    activation: str | None = None
    kind = "dense"

    def __post_init__(self):
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {sorted(ACTIVATIONS)}")

    def parameters(self, in_size: int) -> int:
        return in_size * self.out + self.out

    def torch_module(self, in_size: int) -> nn.Module:
        linear = nn.Linear(in_size, self.out)
        if self.activation is None:
            return linear
        return nn.Sequential(linear, ACTIVATIONS[self.activation]())


@dataclass(frozen=True)
class LSTM:
    """A single-layer LSTM stepped once per block.

    PyTorch keeps two bias vectors (input and recurrent) but only their sum acts;
    RTNeural stores that sum, so the declared count holds one bias.
    """

    out: int
    kind = "lstm"

    def parameters(self, in_size: int) -> int:
        return 4 * (in_size * self.out + self.out * self.out + self.out)

    def torch_module(self, in_size: int) -> nn.Module:
        return nn.LSTM(in_size, self.out, batch_first=True)


@dataclass(frozen=True)
class GRU:
    """A single-layer GRU; RTNeural keeps both of PyTorch's bias rows."""

    out: int
    kind = "gru"

    def parameters(self, in_size: int) -> int:
        return 3 * (in_size * self.out + self.out * self.out + 2 * self.out)

    def torch_module(self, in_size: int) -> nn.Module:
        return nn.GRU(in_size, self.out, batch_first=True)


Layer = Dense | LSTM | GRU


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
    total = sum(p.numel() for p in module.parameters())
    return total - redundant_parameters(module)


def is_recurrent(module: nn.Module) -> bool:
    return isinstance(module, (nn.LSTM, nn.GRU))


