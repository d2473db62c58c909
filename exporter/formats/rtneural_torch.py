"""RTNeural's PyTorch state-dict JSON: `json.dump(model.state_dict())` with tensors as nested lists,
as RTNeural's `python/lstm_torch.py` and `python/gru_torch.py` write `models/lstm_torch.json` and
`models/gru_torch.json`, read layer by layer by `RTNeural/torch_helpers.h`:

    {"lstm.weight_ih_l0": [[...]], "lstm.weight_hh_l0": ..., "lstm.bias_ih_l0": ..., "lstm.bias_hh_l0": ...,
     "lstm2.weight_ih_l0": ..., "lstm2.weight_ih_l1": ..., ...,  "dense.weight": [[...]], "dense.bias": [...]}

torch_helpers takes the layer prefixes from the caller (`loadLSTM(json, "lstm.", layer, true, k)`):
so does `read(path, prefixes=["lstm", "lstm2", "dense"])`. Without them the reader groups the keys
by prefix in file order (json.dump keeps the state dict's, which is the modules' declaration order)
and infers each group's kind: weight_ih_l*/weight_hh_l* with 4H rows an LSTM, 3H a GRU (each stacked
`_l<k>` one RTNeural layer), a 2-D weight with an optional bias a Linear. The weights become
RTNeural's exactly as torch_helpers sets them: loadLSTM W = weight_ih^T, U = weight_hh^T,
b = bias_ih + bias_hh; loadGRU the same transposes with (r, z) swapped to (z, r) and the two biases
kept as two rows; loadDense weight [out][in] (our JSON kernel is its transpose).

A state dict holds weights only: activations between layers (none in RTNeural's own files) are not
in it, and neither are a Conv1d's dilation or groups, so a 3-D weight is refused. The rate is the
caller's, by default "sample" for one input and "block" otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path

from common.errors import SuiteError
from exporter.formats import Imported
from exporter.formats._shared import as_doc, checked, dense_layer, load_json, name_from, rate_for, rnn_layers

FORMAT = "rtneural-torch"
PARAM = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<param>weight|bias|(?:weight|bias)_(?:ih|hh)_l\d+(?:_reverse)?|weight_hr_l\d+(?:_reverse)?"
    r"|running_mean|running_var|num_batches_tracked|weight_[gv])$"
)
OTHER_FORMATS = ("in_shape", "layers", "model_data", "state_dict", "architecture")
SUPPORTED = "LSTM and GRU (weight_ih_l*, weight_hh_l*, bias_ih_l*, bias_hh_l*) and Linear (weight [out][in], bias)"


def detect(doc_or_path) -> bool:
    doc = as_doc(doc_or_path, "PyTorch state-dict JSON")
    return (
        isinstance(doc, dict)
        and bool(doc)
        and not any(k in doc for k in OTHER_FORMATS)
        and all(PARAM.match(k) and isinstance(v, (list, int, float)) for k, v in doc.items())
        and any(isinstance(v, list) for v in doc.values())
    )


def groups(doc: dict) -> dict[str, list[str]]:
    """Parameter names per prefix (with its trailing dot), prefixes in the order they first appear."""
    out: dict[str, list[str]] = {}
    for key in doc:
        m = PARAM.match(key)
        out.setdefault(m["prefix"], []).append(m["param"])
    return out


def layer(doc: dict, prefix: str, params: list[str], in_size: int | None, path, index: int) -> list[dict]:
    """RTNeural layers of one prefix; `in_size` None for the first (taken from its weights)."""
    label = prefix.rstrip(".") or "(no prefix)"
    where = f"layer {index} ({label})"
    if any(p.endswith("_reverse") for p in params):
        raise SuiteError(f"{where}: a bidirectional RNN; RTNeural runs forward in time only", path)
    if any(p.startswith("weight_hr") for p in params):
        raise SuiteError(f"{where}: an LSTM with a projection (weight_hr); RTNeural has none", path)
    if "weight_ih_l0" in params:
        w_hh = doc.get(f"{prefix}weight_hh_l0")
        rows = len(w_hh) if isinstance(w_hh, list) else 0
        cols = len(w_hh[0]) if rows and isinstance(w_hh[0], list) else 0
        kind = "lstm" if cols and rows == 4 * cols else "gru" if cols and rows == 3 * cols else None
        if kind is None:
            raise SuiteError(
                f"{where}: weight_hh_l0 of {rows} x {cols}: neither an LSTM (4H x H) nor a GRU (3H x H)", path
            )
        if in_size is None:
            w_ih = doc.get(f"{prefix}weight_ih_l0")
            in_size = len(w_ih[0]) if isinstance(w_ih, list) and w_ih and isinstance(w_ih[0], list) else 0
        return rnn_layers(kind, doc, prefix, in_size, None, path, where)
    weight = doc.get(f"{prefix}weight")
    ndim = 0
    probe = weight
    while isinstance(probe, list):
        ndim, probe = ndim + 1, probe[0] if probe else None
    if weight is not None and ndim == 2 and set(params) <= {"weight", "bias"}:
        if in_size is None:
            in_size = len(weight[0])
        return [dense_layer(weight, doc.get(f"{prefix}bias"), in_size, path, where)]
    what = (
        "a 3-D weight (Conv1d: its dilation and groups are not in a state dict)"
        if ndim == 3
        else "running statistics (BatchNorm: not a layer torch_helpers loads)"
        if "running_mean" in params
        else f"parameters {', '.join(params)}"
    )
    raise SuiteError(f"{where}: {what}; supported: {SUPPORTED}", path)


def from_doc(doc, path, prefixes: list[str] | None = None, rate: str | None = None) -> list[Imported]:
    if not detect(doc):
        raise SuiteError("not a PyTorch state-dict JSON (keys like 'lstm.weight_ih_l0' with arrays)", path)
    found = groups(doc)
    if prefixes is None:
        order = list(found)
    else:
        order = [p if p == "" or p.endswith(".") else p + "." for p in prefixes]
        for p in order:
            if p not in found:
                known = ", ".join(repr(k.rstrip(".")) for k in found)
                raise SuiteError(f"prefix {p.rstrip('.')!r}: no such layer in the file (it has {known})", path)
    layers, size = [], None
    for i, prefix in enumerate(order):
        for e in layer(doc, prefix, found[prefix], size, path, i):
            layers.append(e)
            size = int(e["shape"][-1])
    in_size = layers[0]["weights"][0].shape[0]
    model = checked({"in_shape": [None, None, int(in_size)], "layers": layers}, path)
    metadata = {"prefixes": [p.rstrip(".") for p in order]}
    unused = sorted(k for k in doc if PARAM.match(k)["prefix"] not in order)
    if unused:
        metadata["unused_keys"] = unused
    return [Imported(name_from(path), FORMAT, model, rate_for(rate, in_size, path), metadata=metadata)]


def read(path: str | Path, prefixes: list[str] | None = None, rate: str | None = None) -> list[Imported]:
    return from_doc(load_json(path, "PyTorch state-dict JSON"), path, prefixes, rate)
