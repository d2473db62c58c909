"""The generated engine against the float64 reference runtime, layer kind by layer kind and over long
sequences; against RTNeural's own reference data; warning-free on every toolchain; clean under the
address and undefined-behaviour sanitizers."""

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench import targets
from common import cxx, engines, layout, manifest, rtneural
from exporter import convert, engine, runtime
from exporter.layers import ExportError, count
from exporter.validate import ENGINE_CHECK_SOURCE, STRICT
from tests.reference import REFERENCE, csv, needs_reference
from tests.test_layers import Seq

TOL = 1e-5
MAIN = """
#include <cstdio>
#include "m.generated.h"

// Reads `steps` rows of kInputSize numbers from stdin; prints each step's outputs, state carried.
int main() {
    static generated::m::Model model;
    generated::m::loadWeights(model);
    int steps = 0;
    if (std::scanf("%d", &steps) != 1) return 2;
    float x[generated::m::kInputSize];
    for (int t = 0; t < steps; ++t) {
        for (float& v : x)
            if (std::scanf("%f", &v) != 1) return 2;
        model.forward(x);
        for (int i = 0; i < generated::m::kOutputSize; ++i) std::printf("%.9g ", double(model.getOutputs()[i]));
        std::printf("\\n");
    }
    return 0;
}
"""


def build(model_json: dict, tmp_path: Path, main: str, name: str, flags=(), precision="float32") -> Path:
    """A program `main` over model `m`, the generated header of `model_json` at `precision`, built
    with the strict flags (cached) under tmp_path."""
    src = tmp_path / f"src-{name}-{precision}"
    src.mkdir(parents=True, exist_ok=True)
    (src / "m.generated.h").write_text(engine.render("m", model_json, "test model", "Test", "generated", precision))
    shutil.copy(engine.KERNELS, src / engine.KERNELS.name)
    (src / "main.cpp").write_text(main)
    return cxx.cached(
        name,
        src / "main.cpp",
        ["-std=c++17", "-O2", *STRICT, *engines.GENERATED_FLAGS, f"-I{src}", *flags],
        [src / "m.generated.h", src / engine.KERNELS.name],
        tmp_path / "bin",
    )


def run_engine(model_json: dict, inputs: np.ndarray, tmp_path: Path, flags=(), precision="float32") -> np.ndarray:
    """Outputs of the generated engine at `precision` for `inputs`, from a reset state."""
    exe = build(model_json, tmp_path, MAIN, "engine-test", flags, precision)
    text = f"{len(inputs)}\n" + "\n".join(" ".join(f"{v:.9g}" for v in row) for row in inputs) + "\n"
    done = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    return np.array([[float(v) for v in line.split()] for line in done.stdout.splitlines()])


def against_reference(module: nn.Module, in_size: int, tmp_path: Path, steps: int = 64, precision="float32") -> float:
    """The engine against the float64 reference runtime on the same (rounded) weights."""
    model_json = convert.to_json(module.eval(), in_size, "Test")
    x = np.random.default_rng(3).normal(0, 1.5, (steps, in_size)).astype(np.float32)
    expected = engine.reference(model_json, precision).run(x)
    return float(np.abs(run_engine(model_json, x, tmp_path, precision=precision) - expected).max())


@pytest.mark.parametrize("act", [None, nn.Tanh(), nn.ReLU(), nn.Sigmoid(), nn.Softmax(dim=-1), nn.ELU()])
def test_dense_with_each_activation(act, tmp_path):
    torch.manual_seed(0)
    assert against_reference(Seq(nn.Linear(13, 9), *([act] if act else [])), 13, tmp_path) <= TOL


@pytest.mark.parametrize("rnn, num_layers", [(nn.LSTM, 1), (nn.LSTM, 2), (nn.GRU, 1), (nn.GRU, 3)])
def test_recurrent_layers_single_and_stacked(rnn, num_layers, tmp_path):
    torch.manual_seed(0)
    module = Seq(nn.Linear(7, 11), nn.Tanh(), rnn(11, 6, num_layers=num_layers, batch_first=True), nn.Linear(6, 3))
    assert against_reference(module, 7, tmp_path) <= TOL


@pytest.mark.usefixtures("every_layer_int8")
@pytest.mark.parametrize("precision", ["float16", "int8"])
def test_reduced_precisions_match_the_reference_of_the_same_weights(precision, tmp_path):
    """Weights rounded (float16) or quantised with a scale per output (int8) are used as stored;
    the engine reproduces the reference runtime on the same rounded weights, over 300 steps, for
    dense, LSTM (one fused matrix, one scale per gate row) and GRU (W and U apart) layers."""
    torch.manual_seed(0)
    module = Seq(
        nn.Linear(7, 70),
        nn.Tanh(),
        nn.LSTM(70, 12, batch_first=True),
        nn.Linear(12, 9),
        nn.ReLU(),
        nn.GRU(9, 10, batch_first=True),
        nn.Linear(10, 3),
    )
    assert against_reference(module, 7, tmp_path, steps=300, precision=precision) <= TOL


@pytest.mark.parametrize(
    "flags",
    [[], ["-march=x86-64-v3", "-DRTMB_USE_VNNI=0"], ["-march=x86-64-v3"]],
    ids=["portable", "avx2", "vnni-where-the-cpu-has-it"],
)
@pytest.mark.parametrize("floor", [0, 4000, 8192], ids=["all-int8", "mixed", "default-all-float32"])
def test_the_int8_engine_is_its_reference_to_the_bit(flags, floor, tmp_path, monkeypatch):
    """int8 weights times int8 activations: integer sums, and every float step pinned (fused
    multiply-adds), so each kernel path gives the numpy reference's outputs exactly -- over 400
    steps, for widths that fill no vector or group evenly, through a zero input and a NaN. Layers
    under the floor (layout.INT8_MIN_PARAMETERS) are kept in float32, summed in the engine's one
    order: exact too, and then the model is float32's within a tolerance."""
    monkeypatch.setattr(layout, "INT8_MIN_PARAMETERS", floor)
    torch.manual_seed(1)
    module = Seq(
        nn.Linear(5, 70),
        nn.Tanh(),
        nn.LSTM(70, 13, batch_first=True),
        nn.Linear(13, 131),
        nn.ReLU(),
        nn.GRU(131, 9, batch_first=True),
        nn.Linear(9, 3),
    )
    model_json = convert.to_json(module.eval(), 5, "Test")
    x = np.random.default_rng(5).normal(0, 2.0, (400, 5)).astype(np.float32)
    x[100] = 0.0  # every activation scale 0 at the input layer
    expected = engine.reference(model_json, "int8").run(x)
    got = run_engine(model_json, x, tmp_path, flags=flags, precision="int8")
    assert np.abs(got - expected).max() <= 1e-6  # the outputs are printed to 9 digits
    cost = np.abs(expected - engine.reference(model_json, "float32").run(x)).max()
    every_layer_float = floor > max(count(e) for e in model_json["layers"])
    assert cost <= TOL if every_layer_float else 1e-4 < cost < 0.1
    x[200, 2] = np.nan  # from here on the state is NaN, in both
    got = run_engine(model_json, x, tmp_path, flags=flags, precision="int8")
    assert np.isnan(got[200:]).all() and np.isnan(engine.reference(model_json, "int8").run(x)[200:]).all()
    assert np.abs(got[:200] - expected[:200]).max() <= 1e-6


@pytest.mark.usefixtures("every_layer_int8")
def test_rounding_costs_something_and_float16_overflow_is_named():
    torch.manual_seed(0)
    model_json = convert.to_json(Seq(nn.Linear(8, 16), nn.Tanh(), nn.GRU(16, 8, batch_first=True)).eval(), 8, "Test")
    x = np.random.default_rng(0).normal(size=(32, 8))
    exact = runtime.Model(model_json).run(x)
    for precision, (low, high) in {"float16": (1e-6, 1e-2), "int8": (1e-4, 1e-1)}.items():
        error = np.abs(engine.reference(model_json, precision).run(x) - exact).max()
        assert low < error < high, (precision, error)
    model_json["layers"][0]["weights"][0][0, 0] = 1e5
    with pytest.raises(ExportError, match=r"layer 0 \(dense\): a weight of 100000 is beyond float16's range"):
        engine.render("m", model_json, "", "Test", "generated_f16", "float16")


def test_widths_that_are_not_multiples_of_four(tmp_path):
    torch.manual_seed(0)
    module = Seq(nn.Linear(5, 3), nn.GRU(3, 1, batch_first=True), nn.Linear(1, 2), nn.Sigmoid())
    assert against_reference(module, 5, tmp_path) <= TOL


def test_batchnorm_and_prelu(tmp_path):
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(8)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    plain = nn.BatchNorm1d(8, affine=False)
    plain.running_var.fill_(3.0)
    for module in (Seq(nn.Linear(4, 8), bn, nn.PReLU(8)), Seq(nn.Linear(4, 8), plain, nn.PReLU())):
        assert against_reference(module, 4, tmp_path) <= TOL


def test_state_carries_over_a_long_sequence(tmp_path):
    """2,000 blocks: no drift between the float32 engine and the float64 reference."""
    torch.manual_seed(0)
    module = Seq(
        nn.Linear(6, 16),
        nn.Tanh(),
        nn.LSTM(16, 12, batch_first=True),
        nn.Linear(12, 4),
        nn.GRU(4, 8, batch_first=True),
        nn.Linear(8, 3),
    )
    assert against_reference(module, 6, tmp_path, steps=2000) <= TOL


@needs_reference
@pytest.mark.parametrize(
    "name, data", [("dense", "dense"), ("gru", "gru"), ("gru_1d", "gru_1d"), ("lstm", "lstm"), ("lstm_1d", "lstm_1d")]
)
def test_rtneural_reference_models(name, data, tmp_path):
    """RTNeural's own model files and the outputs TensorFlow computed for them."""
    model_json = json.loads((REFERENCE / "models" / f"{name}.json").read_text())
    x, y = csv(f"{data}_x"), csv(f"{data}_y")
    got = run_engine(model_json, x.astype(np.float32), tmp_path)
    assert got.shape == y.shape and np.abs(got - y).max() <= TOL


def test_a_layer_the_engine_cannot_hold_at_a_precision_is_named():
    dense = nn.Linear(4, 2)
    with torch.no_grad():
        dense.weight[0, 0] = 1e6  # beyond float16's range
    model_json = convert.to_json(Seq(nn.Linear(3, 4), dense).eval(), 3, "Test")
    engine.render("m", model_json, "", "Test")  # float32 holds it
    with pytest.raises(ExportError, match=r"Test: layer 1 \(dense\): a weight of 1e\+06 is beyond float16's range"):
        engine.render("m", model_json, "", "Test", precision="float16")


PRECISION_ENGINES = list(engines.PRECISIONS)


def engine_defines(exported: Path, name: str) -> list[str]:
    shared = manifest.load(exported)["engines"][name]
    return [f'-DRTMB_MODEL_TABLE="{shared["table"]}"', f'-DRTMB_MODEL_VECTORS="{shared["vectors"]}"']


@pytest.mark.parametrize("target", ["x86", "aarch64", "armv7", "cortex-m7"])
def test_warning_free_on_every_toolchain(target, exported):
    """-Wall -Wextra -Wdouble-promotion -Wfloat-conversion -Werror, with each target's compiler, at
    every precision (the SIMD conversions of int8 and float16 weights included)."""
    t = targets.get(target)
    if t.missing():
        pytest.fail(f"missing {t.missing()}: make setup installs it")
    for name in PRECISION_ENGINES:
        flags = [*STRICT, *engines.GENERATED_FLAGS, *t.arch, f"-I{exported}", *engine_defines(exported, name)]
        done = subprocess.run(
            [t.compiler, "-std=c++17", "-O2", *flags, "-c", str(ENGINE_CHECK_SOURCE), "-o", "/dev/null"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (name, done.stderr[-3000:])


@pytest.mark.parametrize("name", PRECISION_ENGINES)
def test_clean_under_sanitizers(name, exported, tmp_path):
    """The whole export through its vectors under -fsanitize=address,undefined: no report, parity."""
    exe = tmp_path / "check"
    flags = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        *engines.GENERATED_FLAGS,
        f"-I{exported}",
        *engine_defines(exported, name),
    ]
    build = subprocess.run(
        ["g++", "-std=c++17", "-O1", "-g", *flags, str(ENGINE_CHECK_SOURCE), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    done = subprocess.run([str(exe)], capture_output=True, text=True)
    assert done.returncode == 0 and "runtime error" not in done.stderr, done.stderr[-3000:]
    errors = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert max(errors.values()) <= TOL


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin_block.cpp"


@pytest.mark.parametrize("name", [*PRECISION_ENGINES, "rtneural", engines.JSON])
def test_the_plugin_example_builds_and_runs_the_set(name, exported, tmp_path):
    """examples/plugin_block.cpp: one models::Processor, loaded once, one call per block."""
    shared = manifest.load(exported)["engines"][name]
    if not engines.is_generated(name) and rtneural.find() is None:
        pytest.skip(rtneural.MISSING)
    extra = [*engines.flags("stl" if name == "rtneural" else name), f'-DRTMB_MODELS_DIR="{exported}"']
    exe = tmp_path / "plugin_block"
    build = subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            *extra,
            f"-I{exported}",
            f'-DRTMB_MODEL_TABLE="{shared["table"]}"',
            str(EXAMPLE),
            "-o",
            str(exe),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split()[0] for line in lines] == manifest.models(manifest.load(exported))
    assert all(f"({name}, per block)" in line and math.isfinite(float(line.split()[-1])) for line in lines)
