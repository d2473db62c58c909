"""`bench layers`: the layer set, its filter and model files, and a short run checked for figures,
not for speed (a benchmark is not a timed test); the generated engine needs no RTNeural."""

import contextlib
import math
import shutil

import numpy as np
import pytest

from bench import callgrind, cli, layers, layers_m7, targets
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
        (["--target", "aarch64"], "argument --target: bench layers runs on this machine or a counted target"),
        (["--target", "nope"], "unknown target 'nope'"),
        (["--target", "cortex-m7", "--layers", "nope"], "argument --layers: 'nope' matches no layer"),
    ],
)
def test_bad_arguments_stop_before_any_work(tmp_path, capsys, args, message):
    argv = ["layers", *args, "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    parsing = args[0] in ("--rounds", "--seconds")  # argparse's own check: it exits
    with pytest.raises(SystemExit) if parsing else contextlib.nullcontext():
        assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "made, theirs",
    [
        (
            {"models/manifest.json": '{"models": [{"name": "emotion_recognizer"}]}', "models/m.h": ""},
            "emotion_recognizer",
        ),
        ({"json/amp.json": "{}"}, "amp.json"),
        ({"models/notes.txt": "mine"}, "models/"),
    ],
    ids=["the project's export", "another model", "not an export"],
)
@pytest.mark.parametrize("target", ["x86", "cortex-m7"])
def test_a_work_folder_it_did_not_make_is_never_emptied(made, theirs, target, tmp_path, capsys):
    work = tmp_path / "build"  # `bench layers --work build` would have emptied build/models
    for name, text in made.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    argv = [
        "layers",
        "--layers",
        "dense_8_in1",
        "--target",
        target,
        "--work",
        str(work),
        "--out",
        str(tmp_path / "out"),
    ]
    assert cli.main(argv) == 2
    assert f"{work}: --work holds json/ or models/ that bench layers did not make ({theirs})" in capsys.readouterr().err
    assert {p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()} == set(made)


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
    if FOUND is not None:  # RTNeural's own bench/layer_bench.cpp beside ours, on each backend
        rows = result["rtneural_layer_bench"]["layers"]
        assert [(r["name"], r["backend"]) for r in rows] == [
            (n, b) for n in ("dense_8_in1", "gru_8_in1") for b in rtneural.BACKENDS
        ]
        assert all(r["error"] is None and len(r["runs"]) == 3 and r["ratio"] > 0 for r in rows)


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
    assert "rtneural_layer_bench" not in doc
    for layer in doc["layers"]:
        assert layer["rtneural_best"] is None
        assert all(
            f["vs_rtneural_best"] is None and f["instructions_per_sample"] is None for f in layer["engines"].values()
        )


# Cortex-M7 (bench/layers_m7.py): instructions counted under QEMU -icount, no times.

M7_TOOLS = [t for t in ("arm-none-eabi-g++", "qemu-system-arm") if shutil.which(t) is None]
TOY = layers_m7.Memory(
    budget={"flash": 100_000, "ext": 300_000}, code="flash", constants="ext", objects="ext", max_blocks=10
)


def layer(name: str) -> layers.Layer:
    return next(x for x in layers.load_set()[0] if x.name == name)


@pytest.mark.parametrize(
    "names, engine_names, images, skipped",
    [
        # dense_8_in1: 512 x 9 floats of vectors, 512 x 8 of outputs (35 KB); relu_8, tanh_8 50 KB each
        (["dense_8_in1", "relu_8", "tanh_8"], ["generated"], [["dense_8_in1", "relu_8", "tanh_8"]], []),
        # dense_64_in1: 512 x 65 x 4 = 133 KB of vectors and 131 KB of outputs; dense_32_in1 half that
        (["dense_64_in1", "dense_32_in1", "relu_8"], ["generated"], [["dense_64_in1"], ["dense_32_in1", "relu_8"]], []),
        # lstm_64_in64: 512 x 128 x 4 = 262 KB of vectors alone, and its outputs: too large on its own
        (["relu_8", "lstm_64_in64", "tanh_8"], ["generated"], [["relu_8", "tanh_8"]], ["lstm_64_in64"]),
        # gru_64_in1's 12,864 weights: as int8 it fits (280 KB), as float32 not (319 KB); the largest engine decides
        (["gru_64_in1"], ["generated-int8"], [["gru_64_in1"]], []),
        (["gru_64_in1"], ["generated-int8", "generated"], [], ["gru_64_in1"]),
    ],
)
def test_the_m7_plan_fills_images_in_order_and_skips_what_fits_none(names, engine_names, images, skipped):
    got, why = layers_m7.plan([layer(n) for n in names], engine_names, TOY)
    assert [[x.name for x in image] for image in got] == images
    assert list(why) == skipped
    assert all("KB of ext, which has 293 KB for models" in why[n] for n in skipped)


def test_the_stl_copy_of_the_weights_counts_in_the_m7_plan():
    dense = layer("dense_32_in32")  # 1,056 parameters
    int8, stl = (layers_m7.need(dense, e, TOY)["ext"] for e in ("generated-int8", "stl"))
    assert stl - int8 == 1056 * 4 + 1056 * 3  # RTNeural's float copy, and float rather than int8 constants


@pytest.mark.parametrize(
    "target, constants, objects, memory_bytes",
    [
        ("cortex-m7", "EXTRAM", "EXTRAM", 16 << 20),  # -DBENCH_EXTERNAL_MEMORY=1: .weights and .ext_bss
        ("cortex-m7-2mb", "FLASH", "RAM", 1 << 20),  # in flash (.rodata) and RAM (.bss)
    ],
)
def test_the_m7_memories_come_from_the_linker_script(target, constants, objects, memory_bytes):
    mem = layers_m7.memory(targets.get(target))
    assert (mem.code, mem.constants, mem.objects, mem.max_blocks) == ("FLASH", constants, objects, 2000)
    assert mem.budget[objects] == memory_bytes - layers_m7.RESERVE


def test_the_m7_engines_are_the_targets_own():
    names, why = layers_m7.engines_for(targets.get("cortex-m7"))
    assert names == GENERATED + (["stl"] if FOUND is not None else [])
    assert why["eigen"] == why["xsimd"] == "not a cortex-m7 engine (custom_engines in platformio.ini)"


def run_m7(work, monkeypatch) -> tuple[int, dict]:
    """`bench layers --target cortex-m7` on dense_8_in1 and gru_8_in1, the generated float32 engine only."""
    monkeypatch.setattr(engines, "available", lambda e: None if e == "generated" else "left out by this test")
    out = work / "out"
    before = set(out.glob("*.json")) if out.exists() else set()
    argv = ["layers", "--target", "cortex-m7", "--layers", "dense_8_in1,gru_8_in1"]
    code = cli.main([*argv, "--work", str(work / "work"), "--out", str(out)])
    (path,) = set(out.glob("*.json")) - before
    return code, layers.load(path)


@pytest.mark.skipif(bool(M7_TOOLS), reason=f"needs {', '.join(M7_TOOLS)} (make setup installs them)")
def test_the_m7_run_counts_instructions_per_sample_and_repeats_them(tmp_path, pio_ready, monkeypatch, capsys):
    code, doc = run_m7(tmp_path, monkeypatch)
    assert code == 0, capsys.readouterr().err
    assert (doc["timing"], doc["target"]["name"], doc["target"]["run"]) == ("counted", "cortex-m7", "qemu-system")
    assert doc["engines"] == ["generated"] and doc["skipped"] == {} and doc["config"]["images"] == 1
    assert "-icount shift=0" in doc["counter"] and doc["build"]["compiler"].startswith("arm-none-eabi-g++")
    assert doc["unavailable"]["stl"] == "left out by this test" and "cortex-m7" in doc["unavailable"]["eigen"]
    figures = {x["name"]: x["engines"]["generated"] for x in doc["layers"]}
    assert list(figures) == ["dense_8_in1", "gru_8_in1"]
    for f in figures.values():
        assert f["ns_per_sample"] is None and f["real_time_factor"] is None and f["vs_rtneural_best"] is None
        assert f["output_finite"] and f["parity_ok"] and f["parity_max_abs_error"] <= 1e-5
        assert math.isfinite(f["instructions_per_sample"]) and f["instructions_per_sample"] > 0
    # a GRU of 8 units does 24 x 10 multiply-adds a sample and its gates' activations; a dense one 8
    assert figures["gru_8_in1"]["instructions_per_sample"] > 10 * figures["dense_8_in1"]["instructions_per_sample"]
    text = capsys.readouterr().out
    assert "counted (QEMU -icount)" in text and "ns/sample" not in text and "real-time" not in text
    assert all(len(line) <= 120 for line in text.splitlines() if not line.startswith("saved "))
    # the same image counts the same instructions again (the build reused)
    _, again = run_m7(tmp_path, monkeypatch)
    assert [x["engines"] for x in again["layers"]] == [x["engines"] for x in doc["layers"]]
