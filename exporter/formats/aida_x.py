"""AIDA-X model files: RTNeural's Keras-style JSON with the trainer's extras, as
AidaDSP/Automated-GuitarAmpModelling `modelToKeras.py` builds them (a Keras LSTM or GRU of the
PyTorch `rec.*` weights, transposed, GRU gates (r, z, n) -> (z, r, n), then Dense(1) of `lin.*`) and
its `model_utils.py` `save_model_json` writes them, and as AidaDSP/AIDA-X `src/aidadsp-plugin.cpp`
`loadModelFromStream` reads them:

    {"in_shape": [null, null, n], "in_skip": 1, "layers": [...RTNeural JSON...],
     "input_batch": [x0, x1, ...], "output_batch": [y0, y1, ...],      (the trainer's test signal)
     "metadata": {"samplerate": 48000.0, "esr": ..., "author": ..., ...},
     "in_gain": dB, "out_gain": dB}                                       (optional)

- `in_skip` 1: the plugin computes out = x + model(x) (`out[i] += custom_model.forward(out + i)`);
  it refuses more than 1. It becomes model_json["skip"] = True, which adds the first inputs to the
  outputs (a conditioned model's audio column), as the plugin
  adds the first input only.
- `input_batch`/`output_batch`: the first 2048 samples of the trainer's test input and its model's
  output (`dist_model_recnet.py`: `[:2048, 0, 0]`, the skip included): the reference, [steps][1].
  A conditioned model's batch holds the audio channel alone, so it gives no reference (said in
  metadata["reference"]).
- `in_gain`/`out_gain`: levels in dB the plugin applies around the network (x *= in_gain before it,
  the sum *= out_gain after it); the trainer's reference is of the network alone, so they stay in
  metadata ("in_gain_db", "out_gain_db") and out of the weights.
- The sample rate: metadata["samplerate"] (the trainer's config; "sample_rate" also accepted).
The rate is "sample" (the plugin steps the model once per audio sample), unless the caller says.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from common.errors import SuiteError
from exporter.formats import Imported
from exporter.formats._shared import array, as_doc, load_json, name_from, rate_for
from exporter.formats.rtneural_json import AIDA_KEYS, looks_keras, model_json

FORMAT = "aida-x"
MAX_REFERENCE_STEPS = 1 << 22


def detect(doc_or_path) -> bool:
    doc = as_doc(doc_or_path, "AIDA-X model")
    return looks_keras(doc) and any(k in doc for k in AIDA_KEYS)


def _number(doc: dict, key: str, path) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SuiteError(f"{key} {value!r}: not a number", path)
    return float(value)


def _sample_rate(metadata: dict, path) -> int | None:
    """metadata["samplerate"] as the trainer's config has it: a number, or a string of one in
    published files (AIDA-X's own files/*.json have "48000")."""
    for key in ("samplerate", "sample_rate"):
        value = metadata.get(key)
        if value is None:
            continue
        try:
            number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not 1 <= number <= 10_000_000:
            raise SuiteError(f"metadata.{key} {value!r}: not a sample rate in Hz", path)
        return round(number)
    return None


def _reference(doc: dict, in_size: int, out_size: int, path, metadata: dict):
    has = [k in doc for k in ("input_batch", "output_batch")]
    if not any(has):
        return None
    if not all(has):
        raise SuiteError("input_batch without output_batch, or the other way round", path)
    x = array(doc["input_batch"], "input_batch", path)
    y = array(doc["output_batch"], "output_batch", path)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or not 1 <= len(x) <= MAX_REFERENCE_STEPS:
        raise SuiteError(
            f"input_batch {list(x.shape)} and output_batch {list(y.shape)}: expected the same number of steps", path
        )
    if y.shape[1] != out_size:
        raise SuiteError(f"output_batch has {y.shape[1]} value(s) per step, the model gives {out_size}", path)
    if x.shape[1] != in_size:
        metadata["reference"] = (
            f"input_batch holds {x.shape[1]} of the model's {in_size} inputs per step (the trainer keeps the "
            "audio channel only), so it is no reference"
        )
        return None
    return x.astype(np.float64), y.astype(np.float64)


def from_doc(doc, path, rate: str | None = None) -> list[Imported]:
    if not detect(doc):
        raise SuiteError("not an AIDA-X model (RTNeural JSON with input_batch, in_skip or metadata)", path)
    raw_meta = doc.get("metadata", {})
    if not isinstance(raw_meta, dict):
        raise SuiteError(f"metadata: a {type(raw_meta).__name__}, expected an object", path)
    model = model_json(doc, path)
    in_size = int(model["in_shape"][-1])
    out_size = int(model["layers"][-1]["shape"][-1])
    skip = doc.get("in_skip", 0)
    if isinstance(skip, bool) or not isinstance(skip, int) or skip not in (0, 1):
        raise SuiteError(f"in_skip {skip!r}: AIDA-X reads 0 or 1 (it refuses more)", path)
    if skip:
        model["skip"] = True
    metadata = dict(raw_meta)
    for key, name in (("in_gain", "in_gain_db"), ("out_gain", "out_gain_db")):
        value = _number(doc, key, path)
        if value is not None:
            metadata[name] = value
    metadata["in_skip"] = skip
    reference = _reference(doc, in_size, out_size, path, metadata)
    return [
        Imported(
            name_from(path),
            FORMAT,
            model,
            rate_for(rate or "sample", in_size, path),
            reference=reference,
            sample_rate=_sample_rate(raw_meta, path),
            metadata=metadata,
        )
    ]


def read(path: str | Path, rate: str | None = None) -> list[Imported]:
    return from_doc(load_json(path, "AIDA-X model"), path, rate)
