"""Conv1D (RTNeural's causal, stride-1 Conv1DT: kernel size, dilation, groups) in the generated engine
at float32, float16 and int8: RTNeural's own reference models and torch Conv1d stacks, over hundreds
of steps with the state carried, then reset and run again; and in the RTNeural ModelT header."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from common import rtneural
from exporter import convert, engine, header, runtime
from exporter.layers import conv1d
from exporter.validate import STRICT
from models import quantize
from tests.reference import REFERENCE, csv, needs_reference
from tests.test_engine import build
from tests.test_layers import Seq

TOL = 1e-5
STEPS, RESET_AT = 440, 320  # 320 steps with the state carried, then reset() and 120 more
# v3: AVX2, F16C (AVX-VNNI or AVX-512 VNNI where the CPU has it)
FLAGS = {"portable": [], "x86-64-v3": ["-march=x86-64-v3"]}
# the int8 Conv1D kernels: every layer int8, whatever its size (the default keeps small ones float32)
pytestmark = pytest.mark.usefixtures("every_layer_int8")

MAIN = """
#include <cstdio>
#include "m.generated.h"

// Reads `steps` and `reset_at`, then `steps` rows of kInputSize numbers; resets the model before
// step `reset_at`; prints each step's outputs exactly (hexadecimal floats).
int main() {
    static generated::m::Model model;
    generated::m::loadWeights(model);
    int steps = 0, reset_at = 0;
    if (std::scanf("%d %d", &steps, &reset_at) != 2) return 2;
    float x[generated::m::kInputSize];
    for (int t = 0; t < steps; ++t) {
        for (float& v : x)
            if (std::scanf("%a", &v) != 1) return 2;
        if (t == reset_at) model.reset();
        model.forward(x);
        for (int i = 0; i < generated::m::kOutputSize; ++i) std::printf("%a ", double(model.getOutputs()[i]));
        std::printf("\\n");
    }
    return 0;
}
"""


MODELT_MAIN = """
#include <cstdio>
#include <memory>
#include "m.h"

// The RTNeural header's model over stdin's rows (hexadecimal floats), state carried.
int main() {
    auto model = std::make_unique<models::m::Model>();
    models::m::loadWeights(*model);
    float x[models::m::kInputSize];
    for (;;) {
        for (float& v : x)
            if (std::scanf("%a", &v) != 1) return 0;
        model->forward(x);
        for (int i = 0; i < models::m::kOutputSize; ++i) std::printf("%a ", double(model->getOutputs()[i]));
        std::printf("\\n");
    }
}
"""


def run_engine(model_json: dict, x: np.ndarray, tmp_path: Path, precision: str, flags=(), reset_at=None):
    """The generated engine's outputs (float32, exact) for x, from a reset state, reset again before
    step `reset_at`."""
    exe = build(model_json, tmp_path, MAIN, "conv-test", flags, precision)
    x = np.asarray(x, np.float32)
    text = f"{len(x)} {len(x) if reset_at is None else reset_at}\n"
    text += "\n".join(" ".join(float(v).hex() for v in row) for row in x) + "\n"
    done = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    return np.array([[float.fromhex(v) for v in line.split()] for line in done.stdout.splitlines()], np.float32)


def expected(model_json: dict, x: np.ndarray, precision: str, reset_at: int | None = None) -> np.ndarray:
    """What the engine at `precision` must give: the reference of the same (rounded) weights, run
    from a reset state and reset again at `reset_at`."""
    ref = engine.reference(model_json, precision)
    parts = [x] if reset_at is None else [x[:reset_at], x[reset_at:]]
    return np.concatenate([ref.run(part) for part in parts]).astype(np.float32 if precision == "int8" else np.float64)


def check(got: np.ndarray, want: np.ndarray, precision: str) -> float:
    """int8 to the bit; float32 and float16 within TOL. Returns the max error."""
    assert got.shape == want.shape and np.isfinite(got).all()
    error = float(np.abs(got - want).max())
    assert np.array_equal(got, want) if precision == "int8" else error <= TOL, (precision, error)
    return error


def conv(cin, cout, k=3, dilation=1, groups=1) -> nn.Conv1d:
    return nn.Conv1d(cin, cout, k, dilation=dilation, groups=groups)


def stream(module: Seq, x: np.ndarray) -> np.ndarray:
    """torch's outputs for x run as RTNeural streams it from a reset state: each Conv1d on the
    input left-padded with (k - 1) * dilation zeros of past."""
    y = torch.from_numpy(x)[None]
    with torch.no_grad():
        for layer in module.layers:
            if isinstance(layer, nn.Conv1d):
                pad = (layer.kernel_size[0] - 1) * layer.dilation[0]
                y = layer(nn.functional.pad(y.transpose(1, 2), (pad, 0))).transpose(1, 2)
            else:
                y = layer(y)[0] if isinstance(layer, nn.RNNBase) else layer(y)
    return y[0].numpy().astype(np.float64)


# name: (input size, layers). Each kernel path: k == 1 (no ring), dilation 1 (the doubled ring, read
# in place when groups == 1), dilation > 1 (the taps gathered); groups from 2 to depthwise; widths
# that fill no vector, int8 group of four or 64-output block evenly.
MODELS = {
    "k3-d1-then-d2-groups2": (
        5,
        lambda: [
            *(nn.Linear(5, 10), nn.Tanh(), conv(10, 16), nn.Tanh()),
            *(conv(16, 14, dilation=2, groups=2), nn.ReLU(), nn.Linear(14, 3)),
        ],
    ),
    "d2-d4-d8-32-channels": (
        3,
        lambda: [
            *(nn.Linear(3, 32), nn.Tanh(), conv(32, 32, dilation=2), nn.Tanh()),
            *(conv(32, 32, dilation=4, groups=4), nn.Tanh(), conv(32, 24, dilation=8, groups=8), nn.Sigmoid()),
            nn.Linear(24, 2),
        ],
    ),
    "depthwise-pointwise-gru": (
        4,
        lambda: [
            *(nn.Linear(4, 12), nn.Tanh(), conv(12, 12, dilation=3, groups=12), nn.Tanh()),
            *(conv(12, 24, 1, groups=3), nn.ReLU(), conv(24, 10, 1), nn.GRU(10, 8, batch_first=True)),
            nn.Linear(8, 2),
        ],
    ),
    "k3-d1-groups2-wide": (
        6,
        lambda: [nn.Linear(6, 32), nn.Tanh(), conv(32, 144, groups=2), nn.Tanh(), nn.Linear(144, 3)],
    ),
}


def torch_model(name: str, seed: int = 0) -> tuple[nn.Module, int]:
    in_size, layers = MODELS[name]
    torch.manual_seed(seed)
    return Seq(*layers()).eval(), in_size


def inputs(in_size: int, steps: int = STEPS, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (steps, in_size)).astype(np.float32)


@pytest.mark.parametrize("flags", list(FLAGS))
@pytest.mark.parametrize("precision", quantize.PRECISIONS)
@pytest.mark.parametrize("name", list(MODELS))
def test_torch_conv1d_stacks(name, precision, flags, tmp_path):
    """Each torch model through the engine at each precision, state carried over 320 steps, then
    reset and 120 more: float32 against torch itself and the float64 reference runtime, float16
    against the reference runtime on the rounded weights (within 1e-5), int8 against its numpy
    reference to the bit."""
    module, in_size = torch_model(name)
    model_json = convert.to_json(module, in_size, "Test")
    assert sum(e["type"] == "conv1d" for e in model_json["layers"]) >= 1
    x = inputs(in_size)
    got = run_engine(model_json, x, tmp_path, precision, FLAGS[flags], reset_at=RESET_AT)
    check(got, expected(model_json, x, precision, RESET_AT), precision)
    if precision == "float32":
        check(got, np.concatenate([stream(module, x[:RESET_AT]), stream(module, x[RESET_AT:])]), precision)


def reference_model(name: str) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """RTNeural's reference model, its inputs and TensorFlow's outputs for them (None where there is
    no CSV: then the float64 reference runtime stands in; its inputs are then generated)."""
    model_json = json.loads((REFERENCE / "models" / f"{name}.json").read_text())
    if (REFERENCE / "test_data" / f"{name}_x_python.csv").exists():
        return model_json, csv(f"{name}_x").astype(np.float32), csv(f"{name}_y")
    return model_json, inputs(runtime.Model(model_json).in_size, 400, seed=11), None


@needs_reference
@pytest.mark.parametrize("precision", quantize.PRECISIONS)
@pytest.mark.parametrize("name", ["conv", "full_model"])
def test_rtneural_reference_models(name, precision, tmp_path):
    """RTNeural's conv.json (kernel 3 and 1, dilation 2 with groups 2, batch norm, PReLU) against
    TensorFlow's outputs, and full_model.json (dense, dilated conv, GRU, dense) against the float64
    reference runtime (RTNeural ships no data for it); then reduced precisions as above."""
    model_json, x, y = reference_model(name)
    got = run_engine(model_json, x, tmp_path, precision, FLAGS["x86-64-v3"])
    want = expected(model_json, x, precision)
    check(got, want, precision)
    if precision == "float32" and y is not None:
        check(got, y, precision)
    if precision != "float32":  # the rounding is felt, so the comparison above is one of the right weights
        assert np.abs(want - expected(model_json, x, "float32")).max() > 1e-6


def test_rounded_weights_are_the_engines():
    """rounded() (what the reference runs) holds what engine() stores: float16 the same halves,
    int8 a scale per output over its group's k taps, the k taps' rows fused per group."""
    module, in_size = torch_model("d2-d4-d8-32-channels")
    e = convert.to_json(module, in_size, "Test")["layers"][2]
    assert e["type"] == "conv1d" and e["groups"] == 4
    kernel = np.asarray(e["weights"][0])  # [k][in/groups][out]
    k, cin, out = kernel.shape
    cout = out // 4
    for g, m in enumerate(conv1d.fused(e)):
        assert np.array_equal(m, kernel[:, :, g * cout : (g + 1) * cout].reshape(k * cin, cout))
    for precision in ("float16", "int8"):
        r = conv1d.rounded(e, precision)[0]
        assert r.shape == kernel.shape and 0 < np.abs(r - kernel).max() < 0.02
        step = dict(conv1d.engine(e, cin * 4, precision).arrays)
        if precision == "int8":
            q, scale = quantize.int8(kernel.reshape(k * cin, out))
            assert np.array_equal(step["kernel_scale"], scale)
            assert np.array_equal(r, (q.astype(np.float32) * scale).reshape(kernel.shape))
            assert np.array_equal(step["kernel_sums"], q.sum(axis=0, dtype=np.int32))
        else:
            assert sorted(step["kernel"].astype(np.float32).tolist()) == sorted(r.ravel().tolist())


def test_state_buffers():
    """The ring is state (zeroed by reset()); a kernel of size 1 has none; a gather buffer only where
    the taps are not read in place."""
    cases = {(3, 1, 1): (6, False), (3, 2, 1): (5, True), (3, 1, 2): (6, True), (1, 1, 2): (0, False)}
    for (k, d, groups), (frames, gathers) in cases.items():
        torch.manual_seed(0)
        e = convert.to_json(Seq(conv(8, 8, k, d, groups)), 8, "Test")["layers"][0]
        step = conv1d.engine(e, 8)
        buffers = {b[0]: b[1] for b in step.buffers}
        assert buffers.get("hist", 0) == frames * 8 and ("taps" in buffers) == gathers
        assert step.state == (["hist", "pos"] if frames else [])


@pytest.mark.parametrize("name", ["k3-d1-then-d2-groups2", "d2-d4-d8-32-channels"])
def test_rtneural_header_runs_grouped_dilated_convs(name, tmp_path):
    """The RTNeural ModelT header (convKernel into Conv1DT's [out][in/groups][k], newest tap first)
    reproduces the reference runtime; a Conv1D model always renders one."""
    module, in_size = torch_model(name)
    model_json = convert.to_json(module, in_size, "Test")
    text = header.render("m", model_json, "test model")
    assert "convKernel(" in text and "RTNeural::Conv1DT<float, " in text
    found = rtneural.find()
    if found is None:
        pytest.skip(rtneural.MISSING)
    (tmp_path / "m.h").write_text(text)
    main = tmp_path / "main.cpp"
    main.write_text(MODELT_MAIN)
    exe = tmp_path / "main"
    flags = ["-std=c++17", "-O1", *STRICT, *found.flags("stl"), f"-I{tmp_path}"]
    build = subprocess.run(["g++", *flags, str(main), "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    x = inputs(in_size, 200)
    text = "\n".join(" ".join(float(v).hex() for v in row) for row in x) + "\n"
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout
    got = np.array([[float.fromhex(v) for v in line.split()] for line in out.splitlines()])
    check(got, runtime.Model(model_json).run(x), "float32")
