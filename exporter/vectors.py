"""Test vectors: the probe inputs a checkpoint carries, from a reset state, and PyTorch's float32
outputs computed one step at a time with the state carried, as RTNeural runs."""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def torch_outputs(model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    model.eval()
    state, out = None, []
    for x in torch.from_numpy(np.asarray(inputs, dtype=np.float32)):
        y, state = model(x.view(1, 1, -1), state)
        out.append(y.view(-1).numpy())
    return np.stack(out).astype(np.float32)
