"""Test vectors: what a `<name>.vectors.json` must hold beyond its shapes (checked where an export
folder's files are read and written, exporter/folder.py), and PyTorch's float32 outputs for our
models' probe inputs, computed one step at a time from a reset state with the state carried, as
RTNeural runs."""

from __future__ import annotations

import json

import numpy as np

from common import layout
from common.errors import SuiteError

# The fewest steps test vectors may hold: a checkpoint's probe (docs/EXPORT.md: 64 steps of one
# continuous piece), enough that a model's recurrent state is exercised. Fewer test next to
# nothing: a file of 3 steps validated as `passed`.
MIN_STEPS = layout.PROBE_STEPS
NUMBER = (int, float)  # what JSON numbers parse to (bool, a subclass of int, is not one)


def too_few(steps: int) -> str | None:
    """Why `steps` steps are not test vectors, or None."""
    if steps >= MIN_STEPS:
        return None
    return f"{steps} steps of test vectors, fewer than {MIN_STEPS} (layout.PROBE_STEPS, docs/EXPORT.md)"


def check_numbers(key: str, table, path) -> None:
    """SuiteError naming the file and the entry of `table` (under `key`, as JSON parsed it) that is
    not a number: a string (numpy turns "0.5" into 0.5 without a word, and "abc" into an error that
    validation took for a parity failure), a boolean, null, an object."""
    if not isinstance(table, list):
        raise SuiteError(f"{key} is {shown(table)}, not a table of numbers", path)
    for i, row in enumerate(table):
        if isinstance(row, list) and all(type(x) in NUMBER for x in row):
            continue
        if not isinstance(row, list):
            raise SuiteError(f"{key}[{i}] is {shown(row)}, not a row of numbers", path)
        j = next(j for j, x in enumerate(row) if type(x) not in NUMBER)
        raise SuiteError(f"{key}[{i}][{j}] is {shown(row[j])}, not a number", path)


def shown(value) -> str:
    """A JSON value as a message names it: its kind, and a short value."""
    kind = {str: "a string", bool: "a boolean", dict: "an object", list: "a list", type(None): "null"}
    text = json.dumps(value)
    return kind.get(type(value), "a number") + ("" if value is None else f" {text[:40]}{'...' * (len(text) > 40)}")


def torch_outputs(model, inputs: np.ndarray) -> np.ndarray:
    import torch  # here: reading and checking vectors needs no torch

    model.eval()
    state, out = None, []
    with torch.no_grad():
        for x in torch.from_numpy(np.asarray(inputs, dtype=np.float32)):
            y, state = model(x.view(1, 1, -1), state)
            out.append(y.view(-1).numpy())
    return np.stack(out).astype(np.float32)
