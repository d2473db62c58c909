"""A numpy runtime that executes RTNeural Keras-style JSON the way RTNeural does: one input
vector per call, state carried, float64 arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import jsonfile, manifest
from common.errors import SuiteError
from exporter.layers import BY_JSON_TYPE, activation, lstm, sizes, walk

MAX_SIZE = 1 << 20  # no layer of a real-time model is wider; a larger size field is refused


def read(path: str | Path) -> dict:
    """An RTNeural model JSON, checked (structure, sizes, every weight's shape, finite numbers) before
    any of it is used; SuiteError names the file and what is wrong. A JSON of an export folder (its
    manifest.json lists it) must be the one export wrote: an edited one stops here, in one line."""
    path = Path(path)
    recorded = exported_sha256(path)
    if recorded is not None:
        problem = manifest.changed(path, recorded)
        if problem:
            raise SuiteError(problem, path)
    doc = jsonfile.read(path, jsonfile.MODEL_JSON_BYTES, "model JSON")
    problem = check(doc)
    if problem:
        raise SuiteError(f"not a model this suite reads: {problem}", path)
    return doc


def exported_sha256(path: Path) -> str | None:
    """The sha256 the manifest beside `path` records for it, or None where there is no export of
    this suite around it (a model file of another project, a folder with some other manifest.json)."""
    listing = path.parent / manifest.NAME
    if not listing.is_file():
        return None
    try:
        ours = manifest.schema_of(listing) == manifest.SCHEMA_ID
    except SuiteError:
        return None  # not JSON: some other tool's manifest.json (a damaged one of ours: its readers say so)
    return manifest.load(path.parent)["sha256"].get(path.name) if ours else None


def _size(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SIZE else None


def check(doc) -> str | None:
    """What is wrong with a model JSON, or None."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    shape = doc.get("in_shape")
    size = _size(shape[-1]) if isinstance(shape, list) and shape else None
    if size is None:
        return f"in_shape {shape!r}: its last entry must be a size from 1 to {MAX_SIZE}"
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        return "no layers"
    if not isinstance(doc.get("skip", False), bool):
        return f"skip {doc['skip']!r} is not true or false"
    for i, e in enumerate(layers):
        where = f"layers[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("type"), str):
            return f"{where}: not a layer object with a type"
        if e["type"] not in BY_JSON_TYPE:
            return f"{where}: layer type {e['type']!r} is not one RTNeural's JSON loader reads"
        where = f"{where} ({e['type']})"
        out = _size(e["shape"][-1]) if isinstance(e.get("shape"), list) and e["shape"] else None
        if out is None:
            return f"{where}: shape {e.get('shape')!r} must end in a size from 1 to {MAX_SIZE}"
        act = e.get("activation") or ""
        if not isinstance(act, str) or ((act or e["type"] == "activation") and act not in activation.MODELT):
            return f"{where}: unknown activation {act!r}"
        if not isinstance(e.get("weights"), list):
            return f"{where}: no weights list"
        try:
            weights = [np.asarray(w, dtype=np.float64) for w in e["weights"]]
            expected = BY_JSON_TYPE[e["type"]].weight_shapes(e, size)
        except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError) as exc:
            return f"{where}: unreadable weights or fields ({exc})"
        shapes = [w.shape for w in weights]
        if shapes not in expected:
            return f"{where}: weights of shapes {shapes}, expected {' or '.join(map(str, expected))}"
        if not all(np.isfinite(w).all() for w in weights):
            return f"{where}: a weight is NaN or infinite"
        problem = lstm.check(e, size) if e["type"] in lstm.JSON_TYPES else None  # its initial_state
        if problem:
            return f"{where}: {problem}"
        size = out if e["type"] != "activation" else size
    if doc.get("skip") and size > int(shape[-1]):
        return f"skip: the first {size} inputs are added to the outputs, and there are {shape[-1]} inputs"
    return None


class Model:
    def __init__(self, model_json: dict):
        problem = check(model_json)
        if problem:
            raise ValueError(problem)
        self.in_size, self.out_size = sizes(model_json)
        self.layers = [BY_JSON_TYPE[e["type"]].Runtime(e, size) for e, size in walk(model_json)]
        self.skip = bool(model_json.get("skip"))  # the first inputs added to the outputs (GuitarML, AIDA-X)

    def reset(self):
        for layer in self.layers:
            layer.reset()

    def forward(self, x) -> np.ndarray:
        x = y = np.asarray(x, dtype=np.float64)
        for layer in self.layers:
            y = layer.step(y)
        return y + x[: len(y)] if self.skip else y

    def run(self, inputs) -> np.ndarray:
        """Outputs for a sequence of input vectors, from a reset state."""
        self.reset()
        return np.stack([self.forward(x) for x in np.asarray(inputs, dtype=np.float64)])
