"""Neural Amp Modeler `.nam` files of architecture "LSTM", as sdatkinson/neural-amp-modeler
`nam/models/exportable.py` (`_get_export_dict`) and `nam/models/recurrent.py` (`LSTM._export_config`,
`_export_weights`) write them and sdatkinson/NeuralAmpModelerCore `NAM/get_dsp.cpp` and
`NAM/lstm.cpp` read them:

    {"version": "0.5.4", "architecture": "LSTM",
     "config": {"input_size": 1, "hidden_size": H, "num_layers": L,
                "in_channels": 1, "out_channels": 1},         (the last two optional, default 1)
     "weights": [...one flat list...], "sample_rate": 48000, "metadata": {...}}

The flat weights, per LSTM layer k (input size I = input_size for k = 0, H after):
  [weight_ih_l{k} | weight_hh_l{k}] as one [4H][I + H] matrix, row-major; bias_ih + bias_hh [4H];
  the initial hidden state [H]; the initial cell state [H]
then the head (a Linear): weight [out_channels][H] row-major, bias [out_channels]. Gates i, f, g, o,
PyTorch's order and RTNeural's. lstm.cpp `LSTMCell` starts each layer from that h and c (`_xh`'s
hidden part and `_c`), so each LSTM entry carries them as "initial_state": {"h": [...], "c": [...]}.
(The trainer exports the state reached after 48000 zero samples, `_get_initial_state`.)

The network has no input or output scaling: metadata "input_level_dbu", "output_level_dbu" and
"loudness" are the plugin's calibration around it and are kept in metadata. The file carries no
reference signal. Any architecture but "LSTM" (WaveNet, ConvNet, Linear, containers) is refused
in one line. The rate is "sample" (NAM steps once per audio sample) unless the caller says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import SuiteError
from exporter.formats import Imported
from exporter.formats._shared import as_doc, checked, dense_entry, load_json, name_from, rate_for, rnn_entry

FORMAT = "nam"
SUPPORTED = 'supported: architecture "LSTM" (stacked LSTM layers and a linear head)'
MAX_LAYERS, MAX_HIDDEN = 64, 1 << 14


def detect(doc_or_path) -> bool:
    doc = as_doc(doc_or_path, "NAM model")
    return isinstance(doc, dict) and isinstance(doc.get("architecture"), str) and "weights" in doc and "config" in doc


def _int(config: dict, key: str, path, high: int, default=None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise SuiteError(f"config.{key} {value!r}: expected a whole number from 1 to {high}", path)
    return value


def _sample_rate(doc: dict, path) -> int | None:
    value = doc.get("sample_rate")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 10_000_000:
        raise SuiteError(f"sample_rate {value!r}: not a sample rate in Hz", path)
    return round(value)


def from_doc(doc, path, rate: str | None = None) -> list[Imported]:
    if not detect(doc):
        raise SuiteError("not a NAM model (version, architecture, config, weights)", path)
    arch = doc["architecture"]
    if arch != "LSTM":
        raise SuiteError(f"layer 0 ({arch}): architecture {arch!r} is not supported; {SUPPORTED}", path)
    config = doc["config"]
    if not isinstance(config, dict):
        raise SuiteError("config: expected an object", path)
    n_in0 = _int(config, "input_size", path, 1 << 10)
    H = _int(config, "hidden_size", path, MAX_HIDDEN)
    L = _int(config, "num_layers", path, MAX_LAYERS)
    ins = _int(config, "in_channels", path, 1 << 10, default=1)
    outs = _int(config, "out_channels", path, 1 << 10, default=1)
    if ins != n_in0:
        raise SuiteError(
            f"config: in_channels {ins} but input_size {n_in0}; lstm.cpp feeds one channel per input", path
        )
    weights = doc["weights"]
    if not isinstance(weights, list):
        raise SuiteError("weights: expected a flat list of numbers", path)
    sizes = [4 * H * ((n_in0 if k == 0 else H) + H) + 4 * H + 2 * H for k in range(L)]
    need = sum(sizes) + outs * H + outs
    if len(weights) != need:
        raise SuiteError(
            f"weights: {len(weights)} numbers, but {L} LSTM layer(s) of {H} on {n_in0} input(s) and a head of "
            f"{outs} output(s) need {need}",
            path,
        )
    try:
        flat = np.asarray(weights, dtype=np.float64)
    except (ValueError, TypeError):
        raise SuiteError("weights: not a flat list of numbers", path) from None
    if flat.ndim != 1:
        raise SuiteError("weights: not a flat list of numbers", path)
    layers, at = [], 0
    for k in range(L):
        n_in = n_in0 if k == 0 else H
        chunk = flat[at : at + sizes[k]]
        at += sizes[k]
        if not np.isfinite(chunk).all():
            raise SuiteError(f"layer {k} (LSTM): a weight is NaN or infinite", path)
        w = chunk[: 4 * H * (n_in + H)].reshape(4 * H, n_in + H).astype(np.float32)
        rest = chunk[4 * H * (n_in + H) :].astype(np.float32)
        b, h0, c0 = rest[: 4 * H], rest[4 * H : 5 * H], rest[5 * H :]
        e = rnn_entry("lstm", w[:, :n_in], w[:, n_in:], b, np.zeros_like(b))
        e["initial_state"] = {"h": [float(v) for v in h0], "c": [float(v) for v in c0]}
        layers.append(e)
    head = flat[at:]
    if not np.isfinite(head).all():
        raise SuiteError(f"layer {L} (head, Linear): a weight is NaN or infinite", path)
    head = head.astype(np.float32)
    layers.append(dense_entry(head[: outs * H].reshape(outs, H), head[outs * H :]))
    model_json = checked({"in_shape": [None, None, n_in0], "layers": layers}, path)
    raw_meta = doc.get("metadata") or {}
    metadata = dict(raw_meta) if isinstance(raw_meta, dict) else {}
    metadata["version"] = doc.get("version")
    return [
        Imported(
            name_from(path),
            FORMAT,
            model_json,
            rate_for(rate or "sample", n_in0, path),
            sample_rate=_sample_rate(doc, path),
            metadata=metadata,
        )
    ]


def read(path: str | Path, rate: str | None = None) -> list[Imported]:
    return from_doc(load_json(path, "NAM model"), path, rate)
