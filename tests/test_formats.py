"""exporter.formats: each format's file written here from known weights (seeded torch modules, laid out
as the owner's writer lays them out), read back, and run by the reference runtime against torch over
600 steps with state carried; RTNeural's own reference models against its data; bad files each one
line naming the file. No third-party model file is read or committed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from common.errors import SuiteError
from exporter import formats, runtime
from exporter.formats import _shared, pytorch
from exporter.layers import walk
from tests.reference import REFERENCE, csv, needs_reference
from tests.test_reference_runtime import KERAS

STEPS = 600
TOL = 1e-5


def signal(n_in: int, steps: int = STEPS, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None] / 30.0
    return 0.7 * np.sin(t * (1 + np.arange(n_in))) + 0.3 * rng.uniform(-1, 1, (steps, n_in))


def run(model_json: dict, x: np.ndarray) -> np.ndarray:
    """The reference runtime, one step at a time from a reset state; an LSTM entry's "initial_state"
    (NAM) is set after the reset, until the runtime honours it itself."""
    m = runtime.Model(model_json)
    m.reset()
    for layer, (e, _) in zip(m.layers, walk(model_json), strict=True):
        if "initial_state" in e:
            layer.h = np.asarray(e["initial_state"]["h"], dtype=np.float64)
            layer.c = np.asarray(e["initial_state"]["c"], dtype=np.float64)
    return np.stack([m.forward(v) for v in np.asarray(x, dtype=np.float64)])


def lists(t) -> list:
    return t.detach().cpu().numpy().tolist()


def zrn(a: np.ndarray, H: int) -> np.ndarray:
    """PyTorch's GRU blocks (r, z, n) in Keras's order (z, r, n), along axis 0."""
    return np.concatenate([a[H : 2 * H], a[:H], a[2 * H :]])


def keras_rnn(rnn: nn.Module, k: int = 0) -> list:
    """A torch LSTM/GRU layer's weights as Keras's get_weights() gives them (what save_model_json writes)."""
    w_ih, w_hh, b_ih, b_hh = (
        getattr(rnn, f"{n}_l{k}").detach().double().numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )
    if isinstance(rnn, nn.LSTM):
        return [w_ih.T.tolist(), w_hh.T.tolist(), (b_ih + b_hh).tolist()]
    H = rnn.hidden_size
    return [zrn(w_ih, H).T.tolist(), zrn(w_hh, H).T.tolist(), [zrn(b_ih, H).tolist(), zrn(b_hh, H).tolist()]]


def keras_dense(lin: nn.Linear) -> list:
    return [lists(lin.weight.T), lists(lin.bias)]


def layer(kind: str, out: int, weights: list, activation: str | None = "") -> dict:
    e = {"type": kind, "shape": [None, None, out], "weights": weights}
    if activation is not None:
        e["activation"] = activation
    return e


def seq(x: np.ndarray, *steps):
    """torch (float64) over the whole sequence, batch 1: each step a callable on [1, T, n]."""
    v = torch.from_numpy(np.asarray(x, dtype=np.float64))[None]
    with torch.no_grad():
        for f in steps:
            v = f(v)
    return v[0].numpy()


def rnn_out(rnn, state=None):
    return lambda v: rnn.double()(v, state)[0] if state is not None else rnn.double()(v)[0]


# --- writers: each returns (path, torch reference on [steps][in], read keyword arguments) -----------


def write_rtneural_json(tmp_path):
    """RTNeural's python/model_utils.py layout: time-distributed-dense, gru, dense, lstm, dense."""
    torch.manual_seed(1)
    d1, g, d2, lstm, d3 = (
        nn.Linear(2, 6),
        nn.GRU(6, 8, batch_first=True),
        nn.Linear(8, 4),
        nn.LSTM(4, 5, batch_first=True),
        nn.Linear(5, 1),
    )
    doc = {
        "in_shape": [None, None, 2],
        "layers": [
            layer("time-distributed-dense", 6, keras_dense(d1), "tanh"),
            layer("gru", 8, keras_rnn(g), "tanh"),
            layer("dense", 4, keras_dense(d2), "sigmoid"),
            layer("lstm", 5, keras_rnn(lstm), "tanh"),
            layer("dense", 1, keras_dense(d3)),
        ],
    }
    path = tmp_path / "keras_model.json"
    path.write_text(json.dumps(doc))
    ref = lambda x: seq(x, d1.double(), torch.tanh, rnn_out(g), d2.double(), torch.sigmoid, rnn_out(lstm), d3.double())  # noqa: E731
    return path, ref, {}


def write_klon_centaur(tmp_path):
    """KlonCentaur's GainStageTraining/models/centaur_*.json layout: gru, dense, no activation keys."""
    torch.manual_seed(2)
    g, d = nn.GRU(1, 8, batch_first=True), nn.Linear(8, 1)
    doc = {
        "in_shape": [None, None, 1],
        "layers": [layer("gru", 8, keras_rnn(g), None), layer("dense", 1, keras_dense(d), None)],
    }
    path = tmp_path / "centaur_like.json"
    path.write_text(json.dumps(doc))
    return path, lambda x: seq(x, rnn_out(g), d.double()), {}


class StateDictModel(nn.Module):
    """RTNeural's python/lstm_torch.py shape: rnn(1, 8) -> rnn(8, 8, 2 layers) -> Linear(8, 1)."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.rnn2, self.dense = (
            rnn(1, 8, batch_first=True),
            rnn(8, 8, num_layers=2, batch_first=True),
            nn.Linear(8, 1),
        )


def write_state_dict(rnn, prefixes):
    def write(tmp_path):
        torch.manual_seed(3)
        m = StateDictModel(rnn)
        path = tmp_path / "state_dict.json"
        path.write_text(json.dumps({k: lists(v) for k, v in m.state_dict().items()}))
        ref = lambda x: seq(x, rnn_out(m.rnn), rnn_out(m.rnn2), m.dense.double())  # noqa: E731
        return path, ref, {"prefixes": prefixes}

    return write


def write_aida_x(rnn):
    """modelToKeras.py + model_utils.save_model_json: rnn(hidden 12) + Dense(1), in_skip 1, the
    trainer's input_batch/output_batch (the torch model's output, skip included) and metadata."""

    def write(tmp_path):
        torch.manual_seed(4)
        r, lin = rnn(1, 12, batch_first=True), nn.Linear(12, 1)
        ref = lambda x: seq(x, rnn_out(r), lin.double()) + x  # noqa: E731
        x = signal(1, 700, seed=11)
        doc = {
            "in_shape": [None, None, 1],
            "in_skip": 1,
            "layers": [layer(type(r).__name__.lower(), 12, keras_rnn(r)), layer("dense", 1, keras_dense(lin))],
            "input_batch": x[:, 0].astype(np.float32).tolist(),
            "output_batch": ref(x)[:, 0].astype(np.float32).tolist(),
            "metadata": {"samplerate": 48000.0, "esr": 0.0123, "author": "test", "device": "MOD-DWARF"},
            "in_gain": -3.0,
        }
        path = tmp_path / "aida_model.json"
        path.write_text(json.dumps(doc, indent=4))
        return path, ref, {}

    return write


def write_guitarml(rnn, num_layers, skip, bias, n_in=1):
    """CoreAudioML SimpleRNN.save_model: model_data + state_dict (rec.*, lin.*)."""

    def write(tmp_path):
        torch.manual_seed(5)
        r, lin = rnn(n_in, 10, num_layers=num_layers, batch_first=True), nn.Linear(10, 1, bias=bias)
        doc = {
            "model_data": {
                "model": "SimpleRNN",
                "input_size": n_in,
                "skip": skip,
                "output_size": 1,
                "unit_type": type(r).__name__,
                "num_layers": num_layers,
                "hidden_size": 10,
                "bias_fl": bias,
            },
            "state_dict": {
                **{f"rec.{k}": lists(v) for k, v in r.state_dict().items()},
                **{f"lin.{k}": lists(v) for k, v in lin.state_dict().items()},
            },
        }
        path = tmp_path / "guitarml_model.json"
        path.write_text(json.dumps(doc))
        return path, lambda x: seq(x, rnn_out(r), lin.double()) + (x[:, :1] if skip else 0), {}  # x[:, :, 0:skip]

    return write


def nam_doc(seed: int = 6, H: int = 6, L: int = 2) -> tuple[dict, object]:
    """nam/models/recurrent.py LSTM._export_weights: per layer [w_ih | w_hh] row-major, b_ih + b_hh,
    initial h, initial c; then the head's weight and bias. The reference starts from that h and c."""
    torch.manual_seed(seed)
    core, head = nn.LSTM(1, H, num_layers=L, batch_first=True), nn.Linear(H, 1)
    h0, c0 = 0.5 * torch.randn(L, H), 0.5 * torch.randn(L, H)
    flat = []
    for k in range(L):
        w = torch.cat([getattr(core, f"weight_ih_l{k}"), getattr(core, f"weight_hh_l{k}")], dim=1)
        flat += lists(w.flatten()) + lists(getattr(core, f"bias_ih_l{k}") + getattr(core, f"bias_hh_l{k}"))
        flat += lists(h0[k]) + lists(c0[k])
    flat += lists(head.weight.flatten()) + lists(head.bias)
    doc = {
        "version": "0.5.4",
        "architecture": "LSTM",
        "config": {"input_size": 1, "hidden_size": H, "num_layers": L},
        "weights": flat,
        "sample_rate": 48000,
        "metadata": {"loudness": -18.5, "input_level_dbu": 12.0, "gear_type": "amp"},
    }
    state = (h0[:, None].double(), c0[:, None].double())
    return doc, lambda x: seq(x, rnn_out(core, state), head.double())


def write_nam(tmp_path):
    doc, ref = nam_doc()
    path = tmp_path / "amp.nam"
    path.write_text(json.dumps(doc))
    return path, ref, {}


class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.act, self.rnn, self.out = (
            nn.Linear(3, 8),
            nn.Tanh(),
            nn.GRU(8, 8, batch_first=True),
            nn.Linear(8, 2),
        )

    def forward(self, x):
        y, _ = self.rnn(self.act(self.inp(x)))
        return self.out(y)


def write_torchscript(tmp_path):
    torch.manual_seed(8)
    m = Chain()
    path = tmp_path / "chain.ts"
    torch.jit.save(torch.jit.script(m), str(path))
    ref = lambda x: seq(x, m.inp.double(), torch.tanh, rnn_out(m.rnn), m.out.double())  # noqa: E731
    return path, ref, {"trust_code": True}


CASES = [
    ("rtneural-json", write_rtneural_json),
    ("rtneural-json", write_klon_centaur),
    ("rtneural-torch", write_state_dict(nn.LSTM, None)),
    ("rtneural-torch", write_state_dict(nn.GRU, ["rnn", "rnn2.", "dense"])),
    ("aida-x", write_aida_x(nn.LSTM)),
    ("aida-x", write_aida_x(nn.GRU)),
    ("guitarml", write_guitarml(nn.LSTM, 1, 1, True)),
    ("guitarml", write_guitarml(nn.GRU, 2, 0, False)),
    ("guitarml", write_guitarml(nn.LSTM, 1, 1, True, 3)),
    ("nam", write_nam),
    ("torchscript", write_torchscript),
]
IDS = [
    "keras",
    "klon-centaur",
    "torch-lstm",
    "torch-gru-prefixes",
    "aida-lstm",
    "aida-gru",
    "guitarml-lstm",
    "guitarml-gru-stacked",
    "guitarml-conditioned-skip",
    "nam-lstm",
    "torchscript",
]


@pytest.mark.parametrize("fmt, write", CASES, ids=IDS)
def test_format_matches_torch(tmp_path, fmt, write):
    path, ref, kwargs = write(tmp_path)
    [imp] = formats.read(path, **kwargs)
    assert imp.format == fmt and imp.name and runtime.check(imp.model_json) is None
    n_in = int(imp.model_json["in_shape"][-1])
    x = signal(n_in)
    got, want = run(imp.model_json, x), ref(x)
    assert got.shape == want.shape and np.abs(got - want).max() <= TOL
    if imp.reference is not None:  # the file's own reference, or torch's step-by-step outputs
        rx, ry = imp.reference
        assert len(rx) >= 500 and np.abs(run(imp.model_json, rx) - ry).max() <= TOL
    # the reader is picked by content: the same bytes under another name read the same
    other = tmp_path / "renamed.bin"
    other.write_bytes(path.read_bytes())
    assert formats.read(other, **kwargs)[0].format == fmt


def test_what_each_format_carries(tmp_path):
    [aida] = formats.read(write_aida_x(nn.LSTM)(tmp_path)[0])
    assert aida.sample_rate == 48000 and aida.rate == "sample" and aida.model_json["skip"] is True
    assert aida.metadata["in_gain_db"] == -3.0 and aida.metadata["esr"] == 0.0123
    assert aida.reference[0].shape == (700, 1)
    [nam] = formats.read(write_nam(tmp_path)[0])
    assert nam.sample_rate == 48000 and nam.metadata["loudness"] == -18.5 and nam.metadata["version"] == "0.5.4"
    lstms = [e for e in nam.model_json["layers"] if e["type"] == "lstm"]
    assert len(lstms) == 2 and all(len(e["initial_state"]["h"]) == 6 == len(e["initial_state"]["c"]) for e in lstms)
    [keras] = formats.read(write_rtneural_json(tmp_path)[0])
    assert keras.rate == "block" and keras.reference is None  # 2 inputs: block by default
    assert formats.read(write_klon_centaur(tmp_path)[0], rate="block")[0].rate == "block"
    [sd] = formats.read(write_state_dict(nn.LSTM, None)(tmp_path)[0])
    assert sd.metadata["prefixes"] == ["rnn", "rnn2", "dense"] and sd.rate == "sample"


@needs_reference
@pytest.mark.parametrize(
    "model, data, tol",
    [*KERAS, ("lstm_torch", "lstm_torch", 1e-5), ("gru_torch", "gru_torch", 1e-5)],  # RTNeural's own tolerances
)
def test_rtneural_reference_models(model, data, tol):
    [imp] = formats.read(REFERENCE / "models" / f"{model}.json")
    assert imp.format == ("rtneural-torch" if model.endswith("_torch") else "rtneural-json")
    x, y = csv(f"{data}_x"), csv(f"{data}_y")
    got = run(imp.model_json, x)
    assert got.shape == y.shape and np.abs(got - y).max() <= tol


@needs_reference
def test_rtneural_torch_reference_with_named_prefixes():
    [imp] = formats.read(REFERENCE / "models" / "gru_torch.json", ["gru", "gru2", "dense"])
    assert [e["type"] for e in imp.model_json["layers"]] == ["gru"] * 4 + ["dense"]
    assert np.abs(run(imp.model_json, csv("gru_torch_x")) - csv("gru_torch_y")).max() <= 1e-5
    [full] = formats.read(REFERENCE / "models" / "full_model.json")
    assert full.rate == "sample" and np.isfinite(run(full.model_json, csv("dense_x"))).all()


def test_from_module_reference_is_torch_stepping():
    torch.manual_seed(9)
    m = Chain()
    imp = pytorch.from_module(m, 3, "chain")
    assert imp.format == "pytorch" and imp.rate == "block"
    x, y = imp.reference
    assert len(x) >= 500 and next(m.parameters()).dtype == torch.float32  # the caller's module left as it was
    want = seq(x, m.inp.double(), torch.tanh, rnn_out(m.rnn), m.out.double())
    assert np.abs(y - want).max() <= 1e-12  # stepping with state carried == the whole sequence at once
    assert np.abs(run(imp.model_json, x) - y).max() <= TOL


# --- bad files: each one line naming the file ------------------------------------------------------


def text(name, body):
    def write(tmp_path):
        path = tmp_path / name
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        return path

    return write


def nam_with(**changes):
    doc, _ = nam_doc()
    doc.update(changes)
    return doc


def keras_with(layers):
    return {"in_shape": [None, None, 1], "layers": layers}


def guitarml_with(**changes):
    def write(tmp_path):
        path = write_guitarml(nn.LSTM, 1, 1, True)(tmp_path)[0]
        doc = json.loads(path.read_text())
        for key, value in changes.items():
            (doc["state_dict"] if "." in key else doc["model_data"])[key] = value
        path.write_text(json.dumps(doc))
        return path

    return write


def huge(tmp_path):
    path = tmp_path / "huge.json"
    with path.open("wb") as f:
        f.truncate(_shared.MAX_JSON_BYTES + 1)  # sparse: refused by its size before a byte is read
    return path


def truncated(tmp_path):
    path = write_nam(tmp_path)[0]
    path.write_text(path.read_text()[:1000])
    return path


def pickled(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(Chain().state_dict(), path)
    return path


def pickled_legacy(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(Chain().state_dict(), path, _use_new_zipfile_serialization=False)
    return path


def truncated_script(tmp_path):
    path = scripted(Chain())(tmp_path)
    path.write_bytes(path.read_bytes()[:4000])
    return path


def scripted(module):
    def write(tmp_path):
        path = tmp_path / "model.ts"
        torch.jit.save(torch.jit.script(module), str(path))
        return path

    return write


NAM_N = len(nam_doc()[0]["weights"])
dense_1_8 = layer("dense", 8, [[[0.1] * 8], [0.0] * 8])
BAD = [
    ("empty", text("empty.json", ""), "unreadable", {}),
    ("truncated", truncated, "unreadable", {}),
    ("huge", huge, "too large", {}),
    ("not a model", text("x.json", {"hello": [1, 2]}), "not a model file this suite reads", {}),
    (
        "nam wavenet",
        text("w.nam", nam_with(architecture="WaveNet")),
        "layer 0 (WaveNet): architecture 'WaveNet' is not supported; supported: architecture \"LSTM\"",
        {},
    ),
    (
        "nam weight count",
        text("n.nam", nam_with(weights=[0.0] * (NAM_N - 1))),
        f"weights: {NAM_N - 1} numbers, but 2 LSTM",
        {},
    ),
    ("nam nan", text("n.nam", nam_with(weights=[math.nan] * NAM_N)), "layer 0 (LSTM): a weight is NaN", {}),
    (
        "keras unknown layer",
        text("k.json", keras_with([dense_1_8, layer("attention", 8, [])])),
        "layers[1] (attention): unknown layer type",
        {},
    ),
    (
        "keras conv2d",
        text("k.json", keras_with([layer("conv2d", 8, [])])),
        "layers[0] (conv2d): RTNeural reads it, this suite does not",
        {},
    ),
    (
        "keras wrong shapes",
        text("k.json", keras_with([layer("dense", 8, [[[0.1] * 7], [0.0] * 8])])),
        "layers[0] (dense): weights of shapes",
        {},
    ),
    (
        "state dict conv",
        text("s.json", {"conv.weight": [[[0.1, 0.2]]], "conv.bias": [0.0]}),
        "layer 0 (conv): a 3-D weight",
        {},
    ),
    (
        "state dict shapes",
        text("s.json", {"lstm.weight_ih_l0": [[0.1]] * 5, "lstm.weight_hh_l0": [[0.1, 0.2]] * 5}),
        "layer 0 (lstm): weight_hh_l0 of 5 x 2: neither",
        {},
    ),
    (
        "state dict prefix",
        text("s.json", {"dense.weight": [[0.1]], "dense.bias": [0.0]}),
        "prefix 'nope': no such layer",
        {"prefixes": ["nope"]},
    ),
    (
        "guitarml rnn",
        guitarml_with(unit_type="RNN"),
        "layer 0 (RNN): unit_type 'RNN' is not supported; supported: LSTM, GRU",
        {},
    ),
    ("guitarml shapes", guitarml_with(hidden_size=12), "hidden size 10, model_data says 12", {}),
    (
        "guitarml lin shape",
        guitarml_with(**{"lin.weight": [[0.1] * 9]}),
        "layer 1 (Linear): weight [1, 9], expected [out][10]",
        {},
    ),
    ("guitarml input size", guitarml_with(input_size=3), "takes 1 inputs, but the layer before gives 3", {}),
    (
        "aida in_skip",
        text("a.json", {**keras_with([layer("dense", 1, [[[0.5]], [0.0]])]), "in_skip": 2}),
        "in_skip 2: AIDA-X reads 0 or 1",
        {},
    ),
    ("torch pickle", pickled, "a pickled torch.save file", {}),
    ("torch pickle legacy", pickled_legacy, "a pickled torch.save file", {}),
    ("torchscript truncated", truncated_script, "a damaged zip archive", {"trust_code": True}),
    ("torchscript untrusted", scripted(Chain()), "TorchScript is a program", {}),
    (
        "torchscript layer",
        scripted(nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3))),
        "layer 1 (1: LayerNorm): not supported",
        {"trust_code": True},
    ),
]


@pytest.mark.parametrize("write, expected, kwargs", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_files_one_line(tmp_path, write, expected, kwargs):
    path = write(tmp_path)
    with pytest.raises(SuiteError) as info:
        formats.read(path, **kwargs)
    message = str(info.value)
    assert info.value.path == path and "\n" not in message and expected in message, message
