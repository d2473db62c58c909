"""The int8 LSTM quantises x and h apart, so a quiet input is not rounded away against the hidden
state; a learned initial state (Neural Amp Modeler's LSTMs carry one) is where reset() starts, at
every precision; exporter/quality.py measures what a precision costs an audio model."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench import harness, targets
from common import engines, layout
from exporter import convert, engine, int8_reference, quality, runtime
from exporter.layers import lstm, rtneural_problem, walk
from exporter.validate import STRICT
from models import quantize
from tests.test_engine import TOL, run_engine
from tests.test_layers import Seq

# the int8 LSTM's kernels: every layer int8, whatever its size (the default keeps small ones float32)
pytestmark = pytest.mark.usefixtures("every_layer_int8")

NAN, INF = float("nan"), float("inf")
RATE, N, WARM_UP = 48000, 4800, 480  # 0.1 s quiet then 0.1 s loud; the first 10 ms of each left out
QUIET_BAR_DB = 25.0  # measured 38.3 dB (one scale over [x; h] before: 0.0 dB, the output for silence)
LOUD_BAR_DB = 40.0  # measured 63.7 dB (before: 30.6 dB)


# ---- exporter/quality.py ----

REF = np.sin(np.linspace(0, 20, 1000))


@pytest.mark.parametrize(
    "reference, got, snr, esr",
    [
        (REF, REF + 0.01 * REF, 40.0, 1e-4),
        (REF, 0.5 * REF, 6.0206, 0.25),
        (REF, REF, INF, 0.0),
        (REF, np.zeros_like(REF), 0.0, 1.0),
        (np.zeros(4), np.ones(4), -INF, INF),  # a silent reference: no signal to speak of
        (REF, np.where(np.arange(1000) == 7, NAN, REF), NAN, NAN),
        (np.where(np.arange(1000) == 7, INF, REF), REF, NAN, NAN),
        (REF, np.where(np.arange(1000) == 7, -INF, REF), NAN, NAN),
    ],
    ids=["40dB", "half", "identical", "silent-output", "silent-reference", "nan-got", "inf-reference", "inf-got"],
)
def test_snr_and_error_to_signal(reference, got, snr, esr):
    assert quality.snr_db(reference, got) == pytest.approx(snr, abs=1e-3, nan_ok=True)
    assert quality.error_to_signal(reference, got) == pytest.approx(esr, rel=1e-9, nan_ok=True)
    if np.isnan(snr):  # NaN fails every bar, whichever way it is written
        assert not quality.snr_db(reference, got) >= -INF and not quality.error_to_signal(reference, got) <= INF


def test_quality_refuses_shapes_that_would_broadcast():
    with pytest.raises(ValueError, match=r"shape \(4, 1\) and output of shape \(4,\)"):
        quality.error_to_signal(np.ones((4, 1)), np.ones(4))


# ---- a quiet input through the int8 LSTM ----


def amp_model(seed: int = 1, gain: float = 500.0, H: int = 16) -> dict:
    """An LSTM (1 input, H units) and a dense H -> 1 shaped like a high-gain amp capture: half the
    units held near +-1 by their biases (the hidden state an amp model idles at), half a signal path
    with a high input gain into the cell, their outputs adding up in the dense layer."""
    rng = np.random.default_rng(seed)
    half = H // 2
    W, U, b = np.zeros((1, 4 * H)), rng.normal(0, 0.05, (H, 4 * H)), np.zeros(4 * H)
    i, f, g, o = (slice(k * H, (k + 1) * H) for k in range(4))
    b[i][:half] = b[f][:half] = b[o][:half] = 4.0
    b[g][:half] = rng.choice([-3.0, 3.0], half)
    W[0, g][:half] = rng.normal(0, 0.5, half)
    sign = rng.choice([-1.0, 1.0], half)
    W[0, g][half:] = gain * sign * rng.uniform(0.5, 1.0, half)
    b[i][half:], b[o][half:], b[f][half:] = 2.0, 2.0, -1.0
    out = np.concatenate([rng.choice([-0.3, 0.3], half), 0.3 * sign])[:, None]
    return {
        "in_shape": [None, None, 1],
        "layers": [
            {"type": "lstm", "activation": "tanh", "shape": [None, None, H], "weights": [W, U, b]},
            {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": [out, np.zeros(1)]},
        ],
    }


def quiet_then_loud() -> np.ndarray:
    """A 220 Hz sine of peak 3e-4 (a real AIDA-X reference signal's level), then of peak 0.5."""
    t = np.arange(2 * N)
    return (np.where(t < N, 3e-4, 0.5) * np.sin(2 * np.pi * 220 * t / RATE)).astype(np.float32)[:, None]


def audio_snr(reference: np.ndarray, got: np.ndarray) -> float:
    """SNR of the signal, its DC left out (an amp model's output is high-passed downstream)."""
    return quality.snr_db(reference - reference.mean(), got - got.mean())


def one_scale_over_x_and_h(model_json: dict, x: np.ndarray) -> np.ndarray:
    """The scheme this replaces, in the reference's arithmetic: [x; h] quantised as one vector
    into one matrix [W; U] with one scale per fused gate row."""
    (e_lstm, _), (e_dense, size) = walk(model_json)
    W, U, b = (np.asarray(w, np.float32) for w in e_lstm["weights"])
    WU, H, dense = int8_reference.Matrix(np.vstack([W, U])), U.shape[0], int8_reference.Layer(e_dense, size)
    h, c, out = np.zeros(H, np.float32), np.zeros(H, np.float32), []
    for xt in x:
        z = WU(np.concatenate([xt, h]), b)
        i, f, g, o = (z[k * H : (k + 1) * H] for k in range(4))
        c = int8_reference.madd(int8_reference.sigmoid(f), c, int8_reference.sigmoid(i) * int8_reference.tanh(g))
        h = int8_reference.sigmoid(o) * int8_reference.tanh(c)
        out.append(dense.step(h))
    return np.stack(out)


def test_a_quiet_input_is_not_rounded_away(tmp_path):
    """The quiet sine must come through the int8 engine (C++, bit for bit its reference) and track
    float32; the loud one too. One scale over [x; h] fails the same bars (its quiet output is the
    output for silence), so this test tells the two schemes apart."""
    model_json, x = amp_model(), quiet_then_loud()
    exact = runtime.Model(model_json).run(x)[:, 0]
    got = run_engine(model_json, x, tmp_path, precision="int8")[:, 0]
    assert np.abs(got - engine.reference(model_json, "int8").run(x)[:, 0]).max() <= 1e-6
    silence = engine.reference(model_json, "int8").run(np.zeros_like(x))[:, 0]
    quiet, loud = slice(WARM_UP, N), slice(N + WARM_UP, 2 * N)
    assert np.abs(got[quiet] - silence[quiet]).max() > 0.1  # the sine's output peaks at ~0.25
    assert audio_snr(exact[quiet], got[quiet]) >= QUIET_BAR_DB
    assert audio_snr(exact[loud], got[loud]) >= LOUD_BAR_DB
    before = one_scale_over_x_and_h(model_json, x)[:, 0]
    assert audio_snr(exact[quiet], before[quiet]) < 6.0 and audio_snr(exact[loud], before[loud]) < LOUD_BAR_DB


# ---- every kernel path gives the reference's integers ----

MAIN = """
#include <cstdio>
#include "m.generated.h"

// Reads `steps` rows of kInputSize numbers from stdin; prints each step's outputs, then resets and
// prints them all again (reset() must bring back the initial state).
int main() {
    static generated::m::Model model;
    generated::m::loadWeights(model);
    int steps = 0;
    if (std::scanf("%d", &steps) != 1 || steps > 512) return 2;
    static float x[512][generated::m::kInputSize];
    for (int t = 0; t < steps; ++t)
        for (float& v : x[t])
            if (std::scanf("%f", &v) != 1) return 2;
    for (int pass = 0; pass < 2; ++pass) {
        model.reset();
        for (int t = 0; t < steps; ++t) {
            model.forward(x[t]);
            for (int i = 0; i < generated::m::kOutputSize; ++i) std::printf("%.9g ", double(model.getOutputs()[i]));
            std::printf("\\n");
        }
    }
    return 0;
}
"""


def build_and_run(model_json: dict, x: np.ndarray, tmp_path: Path, precision: str, target: str, flags=()):
    """The engine's outputs for x on `target` (natively or under qemu-user), run twice from reset()."""
    t = targets.get(target)
    if t.missing():
        pytest.fail(f"missing {t.missing()}: make setup installs it")
    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "m.generated.h").write_text(engine.render("m", model_json, "test model", "Test", "generated", precision))
    (src / engine.KERNELS.name).write_bytes(engine.KERNELS.read_bytes())
    (src / "main.cpp").write_text(MAIN)
    exe = tmp_path / f"main-{target}"
    native = t.run == "native"  # x86: the flags name the path (its target's -march would pick AVX2)
    machine = [*flags] if native else [*t.arch, *flags, "-static"]
    cmd = [t.compiler, "-std=c++17", "-O2", *STRICT, *engines.GENERATED_FLAGS, *machine, f"-I{src}"]
    build = subprocess.run(
        [*cmd, str(src / "main.cpp"), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    text = f"{len(x)}\n" + "\n".join(" ".join(f"{v:.9g}" for v in row) for row in x) + "\n"
    done = subprocess.run(harness.command(t, exe, []), input=text, capture_output=True, text=True, check=True)
    out = np.array([[float(v) for v in line.split()] for line in done.stdout.splitlines()])
    first, again = out[: len(x)], out[len(x) :]
    assert np.array_equal(first, again, equal_nan=True)  # reset() starts over, from the same state
    return first


def mixed_model() -> dict:
    """LSTMs whose widths fill no vector, group or block evenly (4H = 52, 80: a block of 64 and 16
    more), stacked, one with a learned initial state; a GRU and dense layers around them."""
    torch.manual_seed(2)
    module = Seq(
        nn.Linear(3, 5),
        nn.Tanh(),
        nn.LSTM(5, 13, batch_first=True),
        nn.LSTM(13, 20, batch_first=True),
        nn.GRU(20, 6, batch_first=True),
        nn.Linear(6, 2),
    )
    model_json = convert.to_json(module.eval(), 3, "Test")
    rng = np.random.default_rng(4)
    model_json["layers"][2]["initial_state"] = {"h": rng.uniform(-0.9, 0.9, 20), "c": rng.normal(0, 2.0, 20)}
    return model_json


PATHS = [
    ("x86", "portable", []),
    ("x86", "avx2", ["-march=x86-64-v3", "-DRTMB_USE_VNNI=0"]),
    ("x86", "vnni-where-the-cpu-has-it", ["-march=x86-64-v3"]),
    ("aarch64", "neon", []),
    ("armv7", "neon", []),
]


@pytest.mark.parametrize("floor", [0, 8192], ids=["int8", "small-layers-float32"])
@pytest.mark.parametrize("target, path, flags", PATHS, ids=[f"{t}-{p}" for t, p, _ in PATHS])
def test_every_kernel_path_is_the_reference_to_the_bit(target, path, flags, floor, tmp_path, monkeypatch):
    """The int8 LSTM's sums on each path are the reference's integers, over 300 steps, through a
    zero input, a quiet stretch and a NaN (from which the state is NaN in both); the amp model too.
    With the int8 engine's default floor every layer here is small and kept in float32: its sums
    follow one order of fused multiply-adds on every path, so they are the reference's bits too.
    (The Cortex-M7's smlad path runs the same sums() under QEMU's system mode: tests/test_bench.py.)"""
    monkeypatch.setattr(layout, "INT8_MIN_PARAMETERS", floor)
    model_json = mixed_model()
    x = np.random.default_rng(5).normal(0, 2.0, (300, 3)).astype(np.float32)
    x[100] = 0.0
    x[150:200] *= 1e-4
    x[250, 1] = np.nan
    expected = engine.reference(model_json, "int8").run(x)
    got = build_and_run(model_json, x, tmp_path, "int8", target, flags)
    assert np.abs(got[:250] - expected[:250]).max() <= 1e-6  # printed to 9 digits
    assert np.isnan(got[250:]).all() and np.isnan(expected[250:]).all()
    amp, quiet = amp_model(H=8), quiet_then_loud()[N - 200 : N + 200]
    got = build_and_run(amp, quiet, tmp_path / "amp", "int8", target, flags)
    assert np.abs(got - engine.reference(amp, "int8").run(quiet)).max() <= 1e-6


# ---- a learned initial state ----


@pytest.mark.parametrize("precision, tol", [("float32", TOL), ("float16", TOL), ("int8", 1e-6)])
def test_reset_starts_from_the_initial_state_at_every_precision(precision, tol, tmp_path):
    """The engine at each precision against its reference (the float64 runtime on the weights as
    held; for int8 the engine's arithmetic), both starting from the initial state, not from zero."""
    model_json = mixed_model()
    x = np.random.default_rng(6).normal(0, 1.0, (40, 3)).astype(np.float32)
    expected = engine.reference(model_json, precision).run(x)
    got = build_and_run(model_json, x, tmp_path, precision, "x86", ["-march=x86-64-v3"])
    assert np.abs(got - expected).max() <= tol
    zero = {
        **model_json,
        "layers": [{k: v for k, v in e.items() if k != "initial_state"} for e in model_json["layers"]],
    }
    assert np.abs(engine.reference(zero, precision).run(x)[0] - expected[0]).max() > 1e-3


def test_the_reference_runtime_takes_its_first_step_from_the_initial_state():
    H = 3
    rng = np.random.default_rng(0)
    W, U, b = rng.normal(size=(2, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    h0, c0 = [0.5, -0.25, 0.75], [1.0, -2.0, 0.5]
    e = {"type": "lstm", "activation": "tanh", "shape": [None, None, H], "weights": [W, U, b]}
    model = runtime.Model({"in_shape": [None, None, 2], "layers": [{**e, "initial_state": {"h": h0, "c": c0}}]})
    x = np.array([0.3, -0.1])
    z = x @ W + np.asarray(h0) @ U + b
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c = sig(z[H : 2 * H]) * c0 + sig(z[:H]) * np.tanh(z[2 * H : 3 * H])
    model.reset()
    assert np.allclose(model.forward(x), sig(z[3 * H :]) * np.tanh(c), atol=1e-12)
    model.forward(x)
    model.reset()
    assert np.allclose(model.forward(x), sig(z[3 * H :]) * np.tanh(c), atol=1e-12)


def test_a_zero_initial_state_changes_no_header():
    """All zeros is the state reset() clears to anyway: the headers are byte for byte those of the
    entry without the field, and RTNeural can run it."""
    model_json = amp_model(H=4)
    zero = {"h": [0.0] * 4, "c": [0.0] * 4}
    with_field = {**model_json, "layers": [{**model_json["layers"][0], "initial_state": zero}, model_json["layers"][1]]}
    for precision in quantize.PRECISIONS:
        assert engine.render("m", with_field, "", "T", "g", precision) == engine.render(
            "m", model_json, "", "T", "g", precision
        )
    assert rtneural_problem(with_field) is None and lstm.rtneural(with_field["layers"][0]) is None


def test_rtneural_cannot_start_from_a_learned_state():
    model_json = mixed_model()
    assert rtneural_problem(model_json) == (
        "layer 2 (lstm): an LSTM with a non-zero initial_state: RTNeural's LSTMLayerT always starts from zero"
    )
    assert all(lstm.rtneural(e) is None for e in amp_model()["layers"] if e["type"] == "lstm")


@pytest.mark.parametrize(
    "state, problem",
    [
        ([0.0] * 4, r'initial_state must be \{"h": \[\.\.\.\], "c": \[\.\.\.\]\}'),
        ({"h": [0.0] * 4}, r'initial_state must be \{"h"'),
        ({"h": [0.0] * 4, "c": [0.0] * 4, "x": [1.0]}, r'initial_state must be \{"h"'),
        ({"h": [0.0] * 3, "c": [0.0] * 4}, r"initial_state\.h holds 3 numbers, expected 4 \(the hidden size\)"),
        ({"h": [0.0] * 4, "c": "0000"}, r"initial_state\.c must be a list of 4 numbers"),
        ({"h": [0.0, True, 0.0, 0.0], "c": [0.0] * 4}, r"initial_state\.h must be a list of 4 numbers"),
        ({"h": [0.0] * 4, "c": [[0.0]] * 4}, r"initial_state\.c must be a list of 4 numbers"),
        ({"h": [0.0, NAN, 0.0, 0.0], "c": [0.0] * 4}, r"initial_state\.h: a value is NaN or infinite"),
        ({"h": [0.0] * 4, "c": [0.0, 0.0, INF, 0.0]}, r"initial_state\.c: a value is NaN or infinite"),
    ],
    ids=["a-list", "no-c", "an-extra-key", "too-short", "a-string", "a-bool", "nested", "nan", "inf"],
)
def test_a_bad_initial_state_is_named(state, problem):
    model_json = amp_model(H=4)
    model_json["layers"][0]["initial_state"] = state
    assert runtime.check(model_json) is not None
    assert re.fullmatch(r"layers\[0\] \(lstm\): " + problem + ".*", runtime.check(model_json))


def test_w_and_u_are_rounded_apart():
    """Each with its own scale per gate row, as the int8 engine holds them (rounded together, the
    amp model's input gain of 500 left the recurrent weights of its signal units at zero)."""
    e = amp_model()["layers"][0]
    W, U, _ = lstm.rounded(e, "int8")
    assert np.array_equal(W, quantize.round_trip(e["weights"][0], "int8"))
    assert np.array_equal(U, quantize.round_trip(e["weights"][1], "int8"))
    assert np.count_nonzero(U) > 0.95 * U.size
