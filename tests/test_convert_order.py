"""The converter takes a module's layers in the order forward() runs them, and refuses a module that
is not a plain chain of layers, naming the module and why."""

import numpy as np
import pytest
import torch
from torch import nn

from exporter import convert, runtime
from exporter.layers import ExportError
from models.catalog import MODELS
from models.network import StreamingModel
from tests.test_layers import Seq


def registration_order(module: nn.Module) -> list[str]:
    """What the converter used to follow: the layers in the order __init__ declared them."""
    return [name for name, m in module.named_modules() if name and convert.is_leaf(m)]


class LstmThenDense(nn.Module):
    """Declares the dense layer first, calls the LSTM first."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)
        self.act = nn.Tanh()
        self.lstm = nn.LSTM(3, 6, batch_first=True)

    def forward(self, x):
        x, _ = self.lstm(x)
        return self.act(self.fc(x))


def test_out_of_order_declaration_is_converted_in_forward_order():
    torch.manual_seed(0)
    module = LstmThenDense().eval()
    assert registration_order(module) == ["fc", "act", "lstm"]
    assert [name for name, _ in convert.leaves(module, "M")] == ["lstm", "fc", "act"]
    model_json = convert.to_json(module, 3, "M")
    assert [e["type"] for e in model_json["layers"]] == ["lstm", "dense"]
    assert model_json["layers"][1]["activation"] == "tanh"
    x = torch.randn(1, 30, 3)
    with torch.no_grad():
        expected = module(x)[0].numpy()
    assert np.abs(runtime.Model(model_json).run(x[0].numpy()) - expected).max() <= 1e-5


class Forward(nn.Module):
    """A module whose forward() is given: fc (3->3), lstm (3->3), out (3->3)."""

    def __init__(self, forward):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.lstm = nn.LSTM(3, 3, batch_first=True)
        self.out = nn.Linear(3, 3)
        self.body = forward

    def forward(self, x):
        return self.body(self, x)


def _twice(m, x):
    return m.out(m.fc(m.fc(m.lstm(x)[0])))


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.layers = nn.ModuleList([self.fc, nn.Tanh(), self.fc])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class NoForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)


class ValueDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else x


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, y):
        return self.fc(x)


tanh = nn.Tanh()


@pytest.mark.parametrize(
    "module, layer, reason",
    [
        (  # fc is called on the input, beside the LSTM: a branch
            Forward(lambda m, x: m.out(m.lstm(x)[0] + m.fc(x))),
            "fc",
            "forward calls fc on the input, not on lstm's output, in a branch or skip",
        ),
        (  # a residual connection
            Forward(lambda m, x: m.out(m.lstm(m.fc(x))[0] + m.fc.weight.sum())),
            "Forward",
            "forward uses the tensor fc.weight outside its layer",
        ),
        (
            Forward(lambda m, x: m.out(m.lstm(m.fc(x))[0]) + x),
            "Forward",
            "forward computes add on the way through its layers",
        ),
        (Forward(_twice), "fc", "forward calls fc a second time"),
        (Forward(lambda m, x: m.out(m.fc(x))), "lstm", "forward never calls lstm"),
        (
            Forward(lambda m, x: m.out(m.lstm(m.fc(x))[1][0])),
            "lstm",
            "forward uses lstm's state (element 1 of its result) for more than returning it",
        ),
        (Forward(lambda m, x: m.out(m.lstm(m.fc(x)[0])[0])), "fc", "forward takes [0] of fc's output"),
        (Forward(lambda m, x: m.out(torch.relu(m.lstm(m.fc(x))[0]))), "Forward", "forward computes relu"),
        (
            Forward(lambda m, x: m.out(m.lstm(m.fc(x), x)[0])),
            "lstm",
            "forward calls lstm with more than its input (the input)",
        ),
        (
            Forward(lambda m, x: (m.out(m.lstm(m.fc(x))[0]), m.fc.bias)),
            "Forward",
            "forward uses the tensor fc.bias outside its layer",
        ),
        (Forward(lambda m, x: m.out(m.lstm(x := m.fc(x))[0]) * 0 + x), "Forward", "forward computes mul"),
        (Shared(), "fc", "forward calls fc a second time"),
        (nn.Sequential(tanh, nn.Linear(3, 3), tanh), "2", "is the same module as 0, a layer used twice"),
        (NoForward(), "NoForward", "has no forward(), so the order of its layers is unknown"),
        (ValueDependent(), "ValueDependent", "forward() cannot be traced"),
        (TwoInputs(), "TwoInputs", "forward() takes y besides its input"),
    ],
    ids=[
        "branch",
        "weight-used-outside-a-layer",
        "skip",
        "reused",
        "never-called",
        "rnn-state-fed-on",
        "index-into-a-dense-output",
        "function-between-layers",
        "second-argument",
        "returns-more",
        "fan-out",
        "shared-in-a-list",
        "shared-in-a-sequential",
        "no-forward",
        "untraceable",
        "two-inputs",
    ],
)
def test_what_is_not_a_chain_is_refused_and_named(module, layer, reason):
    with pytest.raises(ExportError) as err:
        convert.to_json(module, 3, "Bad")
    assert err.value.model == "Bad" and err.value.layer == layer, str(err.value)
    assert reason in err.value.reason and err.value.reason.count("\n") == 0
    if layer != "NoForward":
        assert err.value.reason.endswith("not a chain of layers")


def test_sequential_is_a_chain_by_construction_recursively():
    inner = nn.Sequential(nn.Linear(4, 5), nn.Tanh())
    module = nn.Sequential(inner, nn.Sequential(nn.Linear(5, 2)), nn.Sigmoid())
    assert [n for n, _ in convert.leaves(module, "S")] == ["0.0", "0.1", "1.0", "2"]
    model_json = convert.to_json(module, 4, "S")
    assert [(e["type"], e["activation"]) for e in model_json["layers"]] == [("dense", "tanh"), ("dense", "sigmoid")]


def test_a_traced_module_inside_a_sequential_is_traced():
    module = nn.Sequential(nn.Linear(2, 3), LstmThenDense())
    assert [n for n, _ in convert.leaves(module, "S")] == ["0", "1.lstm", "1.fc", "1.act"]


def test_axis_moves_between_layers_pass():
    class Features(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn, self.act = nn.BatchNorm1d(3), nn.PReLU(3)

        def forward(self, x):
            return self.act(self.bn(x.transpose(1, 2)).contiguous()).permute(0, 2, 1)

    assert [n for n, _ in convert.leaves(Features(), "F")] == ["bn", "act"]


@pytest.mark.parametrize("spec", list(MODELS.values()), ids=lambda s: s.snake_name)
def test_the_five_models_convert_as_declared(spec):
    """StreamingModel (with its state argument, traced at None) declares its layers in the order it
    runs them, so the traced order is the one the converter always used."""
    module = StreamingModel(spec)
    assert [n for n, _ in convert.leaves(module, spec.name)] == registration_order(module)
    assert len(convert.to_json(module, spec.input_size, spec.name)["layers"]) == len(spec.layers)


def test_the_layer_tests_stack_converts_in_order():
    module = Seq(nn.Linear(3, 4), nn.Tanh(), nn.GRU(4, 2, batch_first=True), nn.Linear(2, 1))
    assert [n for n, _ in convert.leaves(module, "S")] == ["layers.0", "layers.1", "layers.2", "layers.3"]


class WithOptions(nn.Module):
    """Arguments after the input with defaults are traced at them (a flag, a None state)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 2, batch_first=True)
        self.fc = nn.Linear(3, 4)

    def forward(self, x, return_state=False, h=None):
        y, state = self.gru(self.fc(x), h)
        return (y, state) if return_state else y


def test_arguments_with_defaults_are_traced_at_them():
    assert [n for n, _ in convert.leaves(WithOptions(), "W")] == ["fc", "gru"]


def test_a_bare_layer_is_a_chain_of_one():
    model_json = convert.to_json(nn.GRU(3, 2, batch_first=True), 3, "G")
    assert [e["type"] for e in model_json["layers"]] == ["gru"]
