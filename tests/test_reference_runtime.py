"""The numpy reference runtime and the torch conversion against RTNeural's own reference models
and data, so our reading of the format is tied to RTNeural's, not only to our own writer."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from exporter import convert, runtime
from tests.reference import REFERENCE, csv, needs_reference

# RTNeural's own tolerances for these files (its tests run in double).
KERAS = [
    ("dense", "dense", 1e-6),
    ("gru", "gru", 5e-6),
    ("gru_1d", "gru_1d", 1e-6),
    ("lstm", "lstm", 1e-6),
    ("lstm_1d", "lstm_1d", 1e-6),
    ("conv", "conv", 1e-6),
]


@needs_reference
@pytest.mark.parametrize("model, data, tol", KERAS)
def test_keras_json_reference_models(model, data, tol):
    m = runtime.Model(json.loads((REFERENCE / "models" / f"{model}.json").read_text()))
    x, y = csv(f"{data}_x"), csv(f"{data}_y")
    got = m.run(x)
    assert got.shape == y.shape
    assert np.abs(got - y).max() <= tol


@needs_reference
def test_full_model_runs():
    m = runtime.Model(json.loads((REFERENCE / "models" / "full_model.json").read_text()))
    out = m.run(csv("dense_x"))
    assert out.shape == (100, 1) and np.isfinite(out).all()


class TorchReference(nn.Module):
    """The PyTorch models RTNeural's torch_helpers tests load: rnn(1,8) -> rnn(8,8,x3) -> Linear(8,1)."""

    def __init__(self, rnn, prefix):
        super().__init__()
        setattr(self, prefix, rnn(1, 8, batch_first=True))
        setattr(self, prefix + "2", rnn(8, 8, num_layers=3, batch_first=True))
        self.dense = nn.Linear(8, 1)
        self.prefix = prefix

    def forward(self, x):  # the converter takes the order from here
        x = getattr(self, self.prefix)(x)[0]
        x = getattr(self, self.prefix + "2")(x)[0]
        return self.dense(x)


@needs_reference
@pytest.mark.parametrize("kind, rnn", [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_torch_state_dicts_through_our_converter(kind, rnn):
    state = json.loads((REFERENCE / "models" / f"{kind}_torch.json").read_text())
    model = TorchReference(rnn, kind)
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    model_json = convert.to_json(model, 1, f"{kind}_torch")
    assert [e["type"] for e in model_json["layers"]] == [kind] * 4 + ["dense"]
    x, y = csv(f"{kind}_torch_x"), csv(f"{kind}_torch_y")
    got = runtime.Model(model_json).run(x)
    assert np.abs(got - y).max() <= 1e-5
