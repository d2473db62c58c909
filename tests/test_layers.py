"""Each layer conversion against PyTorch, through the numpy reference runtime."""

import numpy as np
import pytest
import torch
from torch import nn

from exporter import convert, runtime
from exporter.layers import ExportError

TOL = 1e-5


class Seq(nn.Module):
    """A stack of leaves run the way StreamingModel runs them (batch-first, RNN state inside)."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)[0] if isinstance(layer, nn.RNNBase) else layer(x)
        return x


def roundtrip(module, in_size, steps=40):
    torch.manual_seed(1)
    x = torch.randn(1, steps, in_size)
    with torch.no_grad():
        expected = module.eval()(x)[0].numpy()
    model_json = convert.to_json(module, in_size, "Test")
    got = runtime.Model(model_json).run(x[0].numpy())
    return model_json, float(np.abs(got - expected).max())


@pytest.mark.parametrize("act", [None, nn.Tanh(), nn.ReLU(), nn.Sigmoid(), nn.Softmax(dim=-1), nn.ELU()])
def test_linear_with_each_activation(act):
    torch.manual_seed(0)
    layers = [nn.Linear(6, 5)] + ([act] if act is not None else [])
    model_json, err = roundtrip(Seq(*layers), 6)
    assert err <= TOL
    (entry,) = model_json["layers"]  # the activation rides on the dense entry
    assert entry["type"] == "dense" and np.asarray(entry["weights"][0]).shape == (6, 5)


def test_activation_after_an_rnn_is_a_layer_of_its_own():
    torch.manual_seed(0)
    model_json, err = roundtrip(Seq(nn.GRU(3, 4, batch_first=True), nn.Sigmoid()), 3)
    assert err <= TOL
    assert [e["type"] for e in model_json["layers"]] == ["gru", "activation"]


@pytest.mark.parametrize("num_layers", [1, 3])
def test_lstm_single_and_stacked(num_layers):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=num_layers, batch_first=True)
    model_json, err = roundtrip(Seq(lstm, nn.Linear(7, 2)), 5)
    assert err <= TOL
    assert [e["type"] for e in model_json["layers"]] == ["lstm"] * num_layers + ["dense"]
    b = model_json["layers"][0]["weights"][2]
    assert np.allclose(b, (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy())  # the two biases summed


@pytest.mark.parametrize("num_layers", [1, 3])
def test_gru_single_and_stacked(num_layers):
    torch.manual_seed(0)
    model_json, err = roundtrip(Seq(nn.GRU(5, 6, num_layers=num_layers, batch_first=True), nn.Linear(6, 3)), 5)
    assert err <= TOL
    assert [e["type"] for e in model_json["layers"]] == ["gru"] * num_layers + ["dense"]
    assert np.asarray(model_json["layers"][0]["weights"][2]).shape == (2, 18)  # two bias rows


def test_gru_without_the_gate_swap_would_be_caught():
    torch.manual_seed(0)
    module = Seq(nn.GRU(4, 6, batch_first=True))
    model_json = convert.to_json(module, 4, "Test")
    _W, _U, b = (np.asarray(w) for w in model_json["layers"][0]["weights"])
    swap = np.r_[6:12, 0:6, 12:18]
    model_json["layers"][0]["weights"][2] = b[:, swap]  # undo the swap in the biases only
    x = torch.randn(1, 30, 4)
    with torch.no_grad():
        expected = module(x)[0].numpy()
    assert np.abs(runtime.Model(model_json).run(x[0].numpy()) - expected).max() > 1e-3


def test_conv1d_is_causal_with_dilation_and_groups():
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, kernel_size=3, dilation=2, groups=2)
    x = torch.randn(1, 30, 4)
    with torch.no_grad():
        padded = nn.functional.pad(x.transpose(1, 2), (4, 0))  # (k-1)*d zeros of history
        expected = conv(padded).transpose(1, 2)[0].numpy()
    model_json = convert.to_json(Seq(conv), 4, "Test")
    got = runtime.Model(model_json).run(x[0].numpy())
    assert np.abs(got - expected).max() <= TOL


def test_batchnorm_and_prelu():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(5)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)

    class Features(nn.Module):  # BatchNorm1d wants [B, C, T]
        def __init__(self):
            super().__init__()
            self.bn, self.act = bn, nn.PReLU(5, init=0.1)

        def forward(self, x):
            return self.act(self.bn(x.transpose(1, 2))).transpose(1, 2)

    model_json, err = roundtrip(Features(), 5)
    assert err <= TOL
    assert [e["type"] for e in model_json["layers"]] == ["batchnorm", "prelu"]


@pytest.mark.parametrize(
    "module, layer, reason",
    [
        (Seq(nn.LSTM(3, 4, batch_first=True, bidirectional=True)), "layers.0", "bidirectional"),
        (Seq(nn.MultiheadAttention(4, 2)), "layers.0", "MultiheadAttention is not a layer RTNeural runs"),
        (Seq(nn.Conv1d(3, 4, 3, stride=2)), "layers.0", "stride 2"),
        (Seq(nn.Conv1d(3, 4, 3, padding="same")), "layers.0", "padding"),
        (Seq(nn.Linear(3, 4), nn.GELU()), "layers.1", "GELU is not a layer RTNeural runs"),
        (Seq(nn.Linear(3, 4), nn.ELU(alpha=2.0)), "layers.1", "alpha=2.0"),
    ],
)
def test_layers_rtneural_cannot_run_are_named(module, layer, reason):
    with pytest.raises(ExportError) as err:
        convert.to_json(module, 3 if not isinstance(module.layers[0], nn.MultiheadAttention) else 4, "Bad")
    assert err.value.model == "Bad" and err.value.layer == layer and reason in err.value.reason
    assert str(err.value).startswith(f"Bad: layer {layer}: ")


def test_nan_and_inf_weights_are_refused():
    lin = nn.Linear(3, 4)
    with torch.no_grad():
        lin.weight[1, 2] = float("nan")
        lin.bias[0] = float("inf")
    with pytest.raises(ExportError, match=r"Bad: layer layers.0: 1 weight\(s\) are NaN or Inf"):
        convert.to_json(Seq(lin), 3, "Bad")
