"""The model declaration: the one place a model is described."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from models.layers import Layer
from models.layouts import Layout


@dataclass(frozen=True)
class ModelSpec:
    name: str  # CamelCase, as in the plugin
    version: int  # bump when the layers change; checkpoints record it
    layers: tuple[Layer, ...]
    task: str  # what it is trained to do (trainer.tasks.TASKS); the task owns loss and metric
    layout: Layout  # what each input column and output value means
    target_parameters: int  # the budget the design gives
    purpose: str  # one line for the docs

    def __post_init__(self):
        if self.layers[-1].out != self.output_size:
            raise ValueError(
                f"{self.name}: last layer gives {self.layers[-1].out}, its layout has {self.output_size} outputs"
            )

    @property
    def input_size(self) -> int:
        return len(self.layout.inputs)

    @property
    def output_size(self) -> int:
        return len(self.layout.outputs)

    @property
    def snake_name(self) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    def layer_inputs(self) -> list[int]:
        """The input size of each layer, in order."""
        return [self.input_size, *(layer.out for layer in self.layers[:-1])]

    @property
    def parameter_count(self) -> int:
        return sum(layer.parameters(n) for layer, n in zip(self.layers, self.layer_inputs(), strict=False))

    def fingerprint(self) -> str:
        """A hash of everything that shapes the weights; checkpoints must match it."""
        body = {
            "name": self.name,
            "version": self.version,
            "input_size": self.input_size,
            "output_size": self.output_size,
            "layers": [{"kind": layer.kind, **asdict(layer)} for layer in self.layers],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def build(self):
        """The torch module (imports torch: only training and export need it)."""
        from models.network import StreamingModel

        return StreamingModel(self)
