"""RTNeural's own bench/layer_bench.cpp beside `bench layers`: which layers it covers, its output
parsed, a failing run recorded rather than raised; built and run from the checkout where RTNeural is
found (skipped otherwise)."""

import math
from pathlib import Path

import pytest

from bench import layers, rtneural_bench
from common import rtneural
from common.errors import SuiteError

FOUND = rtneural.find()
# What layer_bench printed for `gru 0.5 1 8` (RTNeural 1fb1f07, eigen, -O3 -march=x86-64-v3).
SAMPLE = """\
Benchmarking gru layer, with input size 1 and output size 8, with signal length 0.5 seconds
Processed 0.5 seconds of signal in 0.00618629 seconds
80.8239x real-time
"""


def layer(name: str) -> layers.Layer:
    every, _ = layers.load_set()
    return next(x for x in every if x.name == name)


@pytest.mark.parametrize(
    "made, args",
    [
        (layer("dense_8_in1"), ["dense", "1", "8"]),
        (layer("gru_64_in64"), ["gru", "64", "64"]),
        (layer("lstm_16_in1"), ["lstm", "1", "16"]),
        (layer("sigmoid_32"), ["sigmoid", "32"]),
        (layer("relu_8"), ["relu", "8"]),
        (layer("conv1d_8_k3_d1"), None),  # layer_bench's conv1d: kernel in_size - 1, dilation 1
        (layers.Layer("conv1d_4_k3_d1", "conv1d", 8, 4, kernel_size=3, dilation=1), ["conv1d", "4", "8"]),
        (layers.Layer("elu_8", "activation", 8, 8, activation="elu"), None),
    ],
)
def test_the_layers_layer_bench_can_make(made, args):
    assert rtneural_bench.arguments(made) == args


def test_the_whole_set_minus_its_convolutions_is_covered():
    every, _ = layers.load_set()
    missing = [x.name for x in every if rtneural_bench.arguments(x) is None]
    assert len(missing) == 12 and all(name.startswith("conv1d_") for name in missing)


@pytest.mark.parametrize(
    "text, factor",
    [
        (SAMPLE, 80.8239),
        (SAMPLE.replace("80.8239x", "1.2e+03x"), 1200.0),
        # a build with MODELT_AVAILABLE prints the templated layer's figure second: the first is kept
        (
            SAMPLE
            + "Testing templated implementation...\nProcessed 0.5 seconds of signal in 0.002 seconds\n250x real-time\n",
            80.8239,
        ),
    ],
)
def test_the_real_time_factor_is_parsed(text, factor):
    assert rtneural_bench.parse(text) == pytest.approx(factor)


@pytest.mark.parametrize(
    "text, message",
    [
        ("Benchmarking elu layer, ...\nLayer type: elu not found!\n", "its last line: Layer type: elu not found!"),
        (SAMPLE.replace("80.8239x", "infx"), "no real-time factor"),
        (SAMPLE.replace("80.8239x", "-3x"), "no real-time factor"),
        (SAMPLE.replace("80.8239x", "fastx"), "no real-time factor"),
        ("", "its last line: nothing"),
    ],
)
def test_output_without_a_figure_is_an_error_naming_the_program(text, message):
    with pytest.raises(SuiteError, match=message) as caught:
        rtneural_bench.parse(text, "layer_bench-eigen")
    assert str(caught.value).startswith("layer_bench-eigen: ")


def test_a_failing_run_is_recorded_and_the_others_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(rtneural, "require", lambda: rtneural.RTNeural(tmp_path))
    monkeypatch.setattr(rtneural_bench, "build", lambda backend, *_: Path(backend))
    calls = []

    def run_once(binary, args, seconds):
        calls.append((str(binary), args[0]))
        if (str(binary), args[0]) == ("xsimd", "tanh"):
            raise SuiteError("tanh 8: killed by Segmentation fault", binary)
        return {"eigen": 10.0, "xsimd": 20.0}[str(binary)] + len(calls)

    monkeypatch.setattr(rtneural_bench, "run_once", run_once)
    chosen = [layer("gru_8_in1"), layer("tanh_8"), layer("conv1d_8_k3_d2")]
    section = rtneural_bench.measure(chosen, ["eigen", "xsimd"], ["-O3"], 32, tmp_path, 0.5, repeats=3)
    assert section["not_covered"] == ["conv1d_8_k3_d2"] and section["flags"] == [
        "-std=c++17",
        "-O3",
        "-DRTMB_NEW_ALIGNMENT=32",
    ]
    rows = {(r["name"], r["backend"]): r for r in section["layers"]}
    assert rows[("tanh_8", "xsimd")]["error"] == "tanh 8: killed by Segmentation fault"
    assert rows[("tanh_8", "xsimd")]["real_time_factor"] is None and rows[("tanh_8", "xsimd")]["runs"] == []
    assert calls.count(("xsimd", "tanh")) == 1  # not run again after it failed
    assert len(rows[("gru_8_in1", "eigen")]["runs"]) == 3
    assert rows[("gru_8_in1", "eigen")]["real_time_factor"] == sorted(rows[("gru_8_in1", "eigen")]["runs"])[1]
    doc = {"layers": [{"name": "gru_8_in1", "engines": {"eigen": {"real_time_factor": 100.0}}}]}
    rtneural_bench.beside(section, doc)
    gru = rows[("gru_8_in1", "eigen")]
    assert gru["ours_real_time_factor"] == 100.0 and gru["ratio"] == pytest.approx(100.0 / gru["real_time_factor"])
    assert rows[("tanh_8", "eigen")]["ratio"] is None  # ours not in the document


@pytest.mark.skipif(FOUND is None, reason="RTNeural not found (set RTNEURAL_DIR)")
@pytest.mark.parametrize("backend", rtneural.BACKENDS)
def test_layer_bench_builds_from_rtneurals_checkout_and_runs(backend, tmp_path):
    target = layers.host()
    flags = [*target.build_flags, *target.arch]
    program = rtneural_bench.build(backend, flags, layers.alignment(target), tmp_path)
    # tanh: the layer xsimd crashed on with AVX2 before every allocation was aligned (aligned_new.cpp)
    for made in (layer("tanh_8"), layer("gru_8_in1")):
        factor = rtneural_bench.run_once(program, rtneural_bench.arguments(made), 0.05)
        assert math.isfinite(factor) and factor > 0
    assert program.parent == tmp_path / "bin"
