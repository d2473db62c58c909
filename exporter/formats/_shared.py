"""What the format readers share: the bounded JSON read, the checks every produced model passes, the
PyTorch recurrent and dense weights in RTNeural's layout, and the rate and name defaults."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from common import jsonfile
from common.errors import SuiteError
from exporter import runtime
from exporter.formats import RATES
from exporter.layers import gru
from exporter.layers.base import entry

MAX_JSON_BYTES = jsonfile.IMPORT_BYTES  # a model file of another project, whatever its format
MISSING = "check the path"


def load_json(path: str | Path, what: str):
    """The parsed file; SuiteError (one line, naming the file) when it is missing, too large or not JSON."""
    return jsonfile.read(Path(path), MAX_JSON_BYTES, what, missing=MISSING)


def as_doc(doc_or_path, what: str):
    """A parsed document as given, or the file read (for the readers' detect())."""
    if isinstance(doc_or_path, (str, Path)):
        try:
            return load_json(doc_or_path, what)
        except SuiteError:
            return None
    return doc_or_path


def name_from(path: str | Path) -> str:
    """A snake_case model name suggested by the file name."""
    stem = Path(path).name.split(".")[0]
    name = re.sub(r"[^0-9a-z]+", "_", stem.lower()).strip("_") or "model"
    return f"m_{name}" if name[0].isdigit() else name


def rate_for(rate: str | None, in_size: int, path) -> str:
    """The caller's rate, else "sample" for a model of one input (an audio stream, a sample per
    step) and "block" for any other."""
    if rate is None:
        return "sample" if in_size == 1 else "block"
    if rate not in RATES:
        raise SuiteError(f"rate {rate!r}: expected one of {', '.join(RATES)}", path)
    return rate


def checked(model_json: dict, path) -> dict:
    """The model JSON, once exporter.runtime.check passes it."""
    problem = runtime.check(model_json)
    if problem:
        raise SuiteError(f"not a model this suite runs: {problem}", path)
    return model_json


def array(value, where: str, path, ndim: int | None = None) -> np.ndarray:
    """A finite float32 array from JSON numbers; SuiteError naming `where` otherwise."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise SuiteError(f"{where}: not an array of numbers", path) from None
    if a.dtype == object or (ndim is not None and a.ndim != ndim):
        raise SuiteError(f"{where}: expected {ndim}-D numbers, got shape {list(np.shape(a))}", path)
    if not np.isfinite(a).all():
        raise SuiteError(f"{where}: a number is NaN or infinite", path)
    return a.astype(np.float32)


def rnn_entry(kind: str, w_ih, w_hh, b_ih, b_hh) -> dict:
    """PyTorch LSTM/GRU weights of one layer (weight_ih [G*H][in], weight_hh [G*H][H], the two
    biases) as RTNeural's JSON layer, exactly as RTNeural's torch_helpers loadLSTM/loadGRU set them:
    LSTM W = w_ih.T, U = w_hh.T, b = b_ih + b_hh (gates i, f, g, o in both); GRU the same transposes
    with PyTorch's (r, z, n) blocks swapped to (z, r, n), and the two biases kept as two rows."""
    H = w_hh.shape[1]
    if kind == "lstm":
        return entry("lstm", H, [w_ih.T, w_hh.T, b_ih + b_hh], "tanh")
    return entry(
        "gru", H, [gru.zrn(w_ih, H).T, gru.zrn(w_hh, H).T, np.stack([gru.zrn(b_ih, H), gru.zrn(b_hh, H)])], "tanh"
    )


def dense_entry(weight, bias) -> dict:
    """A PyTorch Linear (weight [out][in], bias [out] or None) as RTNeural's dense layer (kernel [in][out])."""
    return entry("dense", weight.shape[0], [weight.T] if bias is None else [weight.T, bias])


def rnn_layers(kind: str, state: dict, prefix: str, in_size: int, num_layers: int | None, path, where: str) -> list:
    """The stacked layers `<prefix>weight_ih_l<k>` ... of a PyTorch LSTM/GRU state dict, checked:
    G*H rows (G = 4 for LSTM, 3 for GRU), each layer's input the previous one's output, both biases
    or neither. `num_layers` None: as many as the file has."""
    gates = 4 if kind == "lstm" else 3
    entries, k = [], 0
    while f"{prefix}weight_ih_l{k}" in state and (num_layers is None or k < num_layers):
        at = f"{where}, {kind.upper()} layer {k}"
        w_ih = array(state[f"{prefix}weight_ih_l{k}"], f"{at}: weight_ih_l{k}", path, 2)
        if f"{prefix}weight_hh_l{k}" not in state:
            raise SuiteError(f"{at}: weight_ih_l{k} without weight_hh_l{k}", path)
        w_hh = array(state[f"{prefix}weight_hh_l{k}"], f"{at}: weight_hh_l{k}", path, 2)
        H = w_hh.shape[1]
        if H < 1 or w_hh.shape[0] != gates * H or w_ih.shape[0] != gates * H:
            raise SuiteError(
                f"{at}: weight_ih {list(w_ih.shape)} and weight_hh {list(w_hh.shape)}, expected "
                f"[{gates}H][{in_size}] and [{gates}H][H] ({kind.upper()} has {gates} gates)",
                path,
            )
        if w_ih.shape[1] != in_size:
            raise SuiteError(f"{at}: takes {w_ih.shape[1]} inputs, but the layer before gives {in_size}", path)
        has = [f"{prefix}{b}_l{k}" in state for b in ("bias_ih", "bias_hh")]
        if any(has) and not all(has):
            raise SuiteError(f"{at}: one of bias_ih_l{k} and bias_hh_l{k} without the other", path)
        if all(has):
            b_ih = array(state[f"{prefix}bias_ih_l{k}"], f"{at}: bias_ih_l{k}", path, 1)
            b_hh = array(state[f"{prefix}bias_hh_l{k}"], f"{at}: bias_hh_l{k}", path, 1)
            if b_ih.shape != (gates * H,) or b_hh.shape != (gates * H,):
                raise SuiteError(f"{at}: biases {list(b_ih.shape)}, {list(b_hh.shape)}, expected [{gates * H}]", path)
        else:
            b_ih = b_hh = np.zeros(gates * H, np.float32)
        entries.append(rnn_entry(kind, w_ih, w_hh, b_ih, b_hh))
        in_size, k = H, k + 1
    if not entries:
        raise SuiteError(f"{where}: no {prefix}weight_ih_l0", path)
    if num_layers is not None and k != num_layers:
        raise SuiteError(f"{where}: {k} {kind.upper()} layer(s) in the file, {num_layers} declared", path)
    return entries


def dense_layer(weight, bias, in_size: int, path, where: str) -> dict:
    """A Linear's weight [out][in] and optional bias [out], checked against the input size."""
    w = array(weight, f"{where}: weight", path, 2)
    if w.shape[1] != in_size or w.shape[0] < 1:
        raise SuiteError(f"{where}: weight {list(w.shape)}, expected [out][{in_size}]", path)
    b = None if bias is None else array(bias, f"{where}: bias", path, 1)
    if b is not None and b.shape != (w.shape[0],):
        raise SuiteError(f"{where}: bias {list(b.shape)}, expected [{w.shape[0]}]", path)
    return dense_entry(w, b)
