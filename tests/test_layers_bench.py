"""`bench layers`: the layer set, its filter and model files, and a short run checked for figures,
not for speed (a benchmark is not a timed test); the generated engine needs no RTNeural."""

import contextlib
import math

import numpy as np
import pytest

from bench import callgrind, cli, layers
from common import engines, rtneural
from common.errors import SuiteError

FOUND = rtneural.find()
GENERATED = list(engines.PRECISIONS)
SHORT = ["--layers", "dense_8_in1,gru_8_in1", "--seconds", "0.05", "--rounds", "3"]


def test_the_set_holds_the_issues_layers():
    every, seed = layers.load_set()
    names = [layer.name for layer in every]
    kinds = [layer.type for layer in every]
    assert (kinds.count("dense"), kinds.count("gru"), kinds.count("lstm")) == (8, 8, 8)
    assert kinds.count("conv1d") == 12 and kinds.count("activation") == 12
    assert {"lstm_64_in1", "lstm_64_in64", "gru_8_in8", "conv1d_32_k3_d8", "sigmoid_16", "relu_64"} <= set(names)
    assert all(layer.inputs == layer.units for layer in every if layer.type in ("conv1d", "activation"))
    assert len(set(names)) == len(names) and seed >= 0


def test_the_filter_takes_kinds_names_and_globs():
    every, _ = layers.load_set()
    assert [layer.name for layer in layers.select(every, ["lstm_*_in1"])] == [
        "lstm_8_in1",
        "lstm_16_in1",
        "lstm_32_in1",
        "lstm_64_in1",
    ]
    assert len(layers.select(every, ["gru"])) == 8
    assert len(layers.select(every, ["tanh", "dense_8_in1"])) == 5
    assert layers.select(every, []) == every
    with pytest.raises(SuiteError, match="--layers: 'nope' matches no layer"):
        layers.select(every, ["nope"])


def test_each_model_file_has_keras_shapes_and_seeded_weights():
    every, seed = layers.load_set()
    for layer in every:
        doc = layer.model_json(seed)
        assert doc["in_shape"] == [None, None, layer.inputs]
        (entry,) = doc["layers"]
        assert entry["shape"][-1] == layer.units
        assert [np.shape(w) for w in entry["weights"]] == layer.weight_shapes()
        assert doc == layer.model_json(seed)  # the same file every time
    gru = next(layer for layer in every if layer.name == "gru_16_in16")
    assert [np.shape(w) for w in gru.model_json(seed)["layers"][0]["weights"]] == [(16, 48), (16, 48), (2, 48)]
    assert gru.model_json(seed) != gru.model_json(seed + 1)


def test_a_set_whose_names_clash_is_refused(tmp_path):
    path = tmp_path / "set.json"
    path.write_text(
        '{"schema": "rt-music-bench/layer-set/1", "seed": 1, "layers": '
        '[{"type": "dense", "name": "d_{units}", "units": [8], "inputs": [1, "units"]}]}'
    )
    with pytest.raises(SuiteError, match="d_8 twice"):
        layers.load_set(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "nope"], "argument --layers: 'nope' matches no layer"),
        (["--seconds", "0"], "argument --seconds"),
        (["--rounds", "0"], "argument --rounds"),
    ],
)
def test_bad_arguments_stop_before_any_work(tmp_path, capsys, args, message):
    argv = ["layers", *args, "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    parsing = args[0] == "--rounds"  # argparse's own check: it exits
    with pytest.raises(SystemExit) if parsing else contextlib.nullcontext():
        assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def run(tmp_path, *extra) -> dict:
    out = tmp_path / "out"
    before = set(out.glob("*.json")) if out.exists() else set()
    assert cli.main(["layers", *SHORT, "--work", str(tmp_path / "work"), "--out", str(out), *extra]) == 0
    (path,) = set(out.glob("*.json")) - before
    return layers.load(path)  # checked against bench/layers.schema.json


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("layers")


@pytest.fixture(scope="module")
def result(work):
    return run(work)


def check_figures(doc, engine_names):
    assert doc["engines"] == engine_names
    assert [layer["name"] for layer in doc["layers"]] == ["dense_8_in1", "gru_8_in1"]
    for layer in doc["layers"]:
        assert layer["parameters"] > 0 and set(layer["engines"]) == set(engine_names)
        for f in layer["engines"].values():
            for key in ("ns_per_sample", "ns_per_sample_min", "ns_per_sample_max", "real_time_factor"):
                assert math.isfinite(f[key]) and f[key] > 0, key
            assert f["ns_per_sample_min"] <= f["ns_per_sample"] <= f["ns_per_sample_max"]
            assert f["real_time_factor"] == pytest.approx(1e9 / (f["ns_per_sample"] * 48000))
            assert f["output_finite"] is True


def test_a_short_run_gives_every_figure(result):
    expected = GENERATED + (list(rtneural.BACKENDS) if FOUND is not None else [])
    check_figures(result, expected)
    assert result["config"]["rounds"] == 3 and result["config"]["layers"] == ["dense_8_in1", "gru_8_in1"]
    for layer in result["layers"]:
        for f in layer["engines"].values():
            if callgrind.available():
                assert math.isfinite(f["instructions_per_sample"]) and f["instructions_per_sample"] > 0
            if FOUND is None:
                assert f["vs_rtneural_best"] is None
            else:
                assert math.isfinite(f["vs_rtneural_best"]) and f["vs_rtneural_best"] > 0
        if FOUND is not None:
            assert layer["engines"][layer["rtneural_best"]]["vs_rtneural_best"] == 1.0


def test_the_table_names_every_layer_and_engine(result):
    text = layers.render(result)
    for layer in result["layers"]:
        for engine in layer["engines"]:
            assert any(line.split()[:2] == [layer["name"], engine] for line in text.splitlines())


def test_the_generated_engine_runs_without_rtneural(work, monkeypatch):
    monkeypatch.setattr(rtneural, "find", lambda: None)
    doc = run(work, "--no-callgrind")
    check_figures(doc, GENERATED)
    assert set(doc["unavailable"]) == set(rtneural.BACKENDS) and doc["rtneural_commit"] is None
    for layer in doc["layers"]:
        assert layer["rtneural_best"] is None
        assert all(
            f["vs_rtneural_best"] is None and f["instructions_per_sample"] is None for f in layer["engines"].values()
        )
