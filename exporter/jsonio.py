"""JSON text with float32 numbers written in their shortest exact form, so files are small,
lose nothing when read back as float32, and are byte-identical run to run."""

from __future__ import annotations

import json

import numpy as np


def plain(obj):
    """Arrays -> nested lists of Python floats that print as the shortest float32 repr."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            flat = [float(s) for s in obj.astype(np.float32).ravel().astype(str)]
            return np.array(flat, dtype=object).reshape(obj.shape).tolist() if obj.ndim > 1 else flat
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def dumps(obj) -> str:
    return json.dumps(plain(obj), separators=(",", ":")) + "\n"
