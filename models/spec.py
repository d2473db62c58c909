"""The model declaration: the one place a model is described."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.layers import Layer, is_recurrent


@dataclass(frozen=True)
class ModelSpec:
    name: str               # CamelCase, as in the plugin
    version: int            # bump when the layers change; checkpoints record it
    input_size: int
    output_size: int
    layers: tuple[Layer, ...]
    task: str               # key into trainer.tasks.TASKS
    loss: str
    target_parameters: int  # the budget the design gives
    purpose: str            # one line for the docs

    def __post_init__(self):
        if self.layers[-1].out != self.output_size:
            raise ValueError(f"{self.name}: last layer gives {self.layers[-1].out}, output_size is {self.output_size}")

    @property
    def snake_name(self) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    def layer_inputs(self) -> list[int]:
        """The input size of each layer, in order."""
        sizes = [self.input_size]
        for layer in self.layers[:-1]:
            sizes.append(layer.out)
        return sizes

    @property
    def parameter_count(self) -> int:
        return sum(layer.parameters(n) for layer, n in zip(self.layers, self.layer_inputs()))

    def fingerprint(self) -> str:
        """A hash of everything that shapes the weights; checkpoints must match it."""
        body = {
            "name": self.name, "version": self.version, "input_size": self.input_size,
            "output_size": self.output_size,
            "layers": [{"kind": layer.kind, **asdict(layer)} for layer in self.layers],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def build(self) -> "StreamingModel":
        return StreamingModel(self)


class StreamingModel(nn.Module):
    """Runs a declaration as a plugin does: one input vector per step, state carried.

    `forward` takes [batch, time, input] and the state from the previous call
    (None for a reset state) and returns [batch, time, output] and the new state.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleList(
            layer.torch_module(n) for layer, n in zip(spec.layers, spec.layer_inputs())
        )

    def forward(self, x: torch.Tensor, state: list | None = None):
        state = list(state) if state is not None else [None] * len(self.layers)
        for i, layer in enumerate(self.layers):
            if is_recurrent(layer):
                x, state[i] = layer(x, state[i])
            else:
                x = layer(x)
        return x, state
