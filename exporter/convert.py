"""PyTorch module -> RTNeural's Keras-style JSON, one layer unit at a time."""

from __future__ import annotations

import numpy as np
from torch import nn

from exporter.layers import BY_TORCH_TYPE, ExportError, activation, out_size

MERGES_ACTIVATION = ("dense", "conv1d")  # JSON layers that carry their activation in a field


def leaves(module: nn.Module, prefix: str = ""):
    """(dotted name, module) of every layer in order, descending through containers (modules with
    children but no weights of their own, such as Sequential, ModuleList and StreamingModel)."""
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        own_parameters = any(True for _ in child.parameters(recurse=False))
        if type(child) in BY_TORCH_TYPE or own_parameters or not list(child.children()):
            yield full, child
        else:
            yield from leaves(child, full + ".")


def to_json(module: nn.Module, input_size: int, model_name: str) -> dict:
    """Convert; an ExportError names the model, the layer and why RTNeural cannot run it."""
    layers: list[dict] = []
    size = input_size
    for name, leaf in leaves(module):
        unit = BY_TORCH_TYPE.get(type(leaf))
        if unit is None:
            raise ExportError(model_name, name, f"{type(leaf).__name__} is not a layer RTNeural runs")
        if unit is activation:
            problem = activation.check(leaf)
            if problem:
                raise ExportError(model_name, name, problem)
        try:
            entries = unit.from_torch(leaf, size)
        except ValueError as exc:
            raise ExportError(model_name, name, str(exc)) from None
        for e in entries:
            for w in e["weights"]:
                if not np.isfinite(w).all():
                    bad = int((~np.isfinite(w)).sum())
                    raise ExportError(model_name, name, f"{bad} weight(s) are NaN or Inf")
            if (
                e["type"] == "activation"
                and layers
                and layers[-1]["type"] in MERGES_ACTIVATION
                and not layers[-1]["activation"]
            ):
                layers[-1]["activation"] = e["activation"]
            else:
                layers.append(e)
            size = out_size(e)
    return {"in_shape": [None, None, int(input_size)], "layers": layers}
