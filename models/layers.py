"""Layer kinds a model declaration is built from.

Only layers RTNeural runs are declared here. Each kind knows its output size and its parameter
count as RTNeural stores it; `models.network` builds its torch module and the exporter adds the
RTNeural side of each kind in its own table. No torch here: bench and the PlatformIO builder read
declarations without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVATIONS = ("tanh", "relu", "sigmoid", "elu", "softmax")


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


@dataclass(frozen=True)
class GRU:
    """A single-layer GRU; RTNeural keeps both of PyTorch's bias rows."""

    out: int
    kind = "gru"

    def parameters(self, in_size: int) -> int:
        return 3 * (in_size * self.out + self.out * self.out + 2 * self.out)


Layer = Dense | LSTM | GRU
