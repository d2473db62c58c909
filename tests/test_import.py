"""A model is a file: imported models (any source, either rate) join an export folder, every later
stage works from the folder's files alone, and sample-rate models run a block of samples per call."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench import cli as bench_cli
from bench import results
from bench.bindings import Models
from common import manifest, rtneural
from common.errors import SuiteError
from common.git import project_commit
from exporter import folder, importer, runtime, signal, tables
from exporter.cli import main as exporter_main
from exporter.export import export_all
from exporter.formats import Imported
from models.catalog import get
from tests.conftest import SMALL
from tests.reference import REFERENCE

GRU_1D = REFERENCE / "models" / "gru_1d.json"


def imported(path: Path, name: str, rate: str = "sample", skip: bool = False, seconds: float = 0.05) -> folder.Model:
    model_json = runtime.read(path)
    if skip:
        model_json["skip"] = True
    imp = Imported(name=name, format="rtneural-json", model_json=model_json, rate=rate)
    file = {"file": path.name, "sha256": importer.sha256(path)}
    return importer.model(imp, file, name, rate, seconds, project_commit())


def write(out: Path, *models: folder.Model) -> dict:
    folder.write(out, list(models), project_commit())
    return manifest.load(out)


def test_an_imported_model_is_its_files(tmp_path):
    out = tmp_path / "models"
    doc = write(out, imported(GRU_1D, "amp"))
    (row,) = doc["models"]
    assert row["rate"] == "sample" and row["source"]["format"] == "rtneural-json" and "task" not in row
    assert row["layers"] == "gru 1->8 tanh, dense 8->8 sigmoid, dense 8->1"
    assert set(row["engines"]) == {"rtneural", "rtneural-json", "generated", "generated-f16", "generated-int8"}
    vec = json.loads((out / "amp.vectors.json").read_text())
    assert len(vec["inputs"]) == 2400 and set(vec["engines"]) == {"generated-f16", "generated-int8"}
    int8 = row["engines"]["generated-int8"]
    assert int8["snr_db"] > 20 and 0 < int8["error_to_signal"] < 0.01
    table = (out / "generated_table.h").read_text()
    assert '"amp", ::generated::amp::kInputSize' in table and ", true}," in table  # per sample
    # read back from the files alone, the folder derives to the same bytes
    again = tmp_path / "again"
    folder.write(again, folder.read(out), doc["project_commit"])
    assert {p.name: p.read_bytes() for p in again.iterdir()} == {p.name: p.read_bytes() for p in out.iterdir()}


def test_import_keeps_the_export_and_export_keeps_the_imports(trained, exported, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(exported, out)
    before = manifest.load(out)
    folder.write(out, [*folder.read(out), imported(GRU_1D, "amp")], project_commit())
    doc = manifest.load(out)
    assert manifest.models(doc) == [*SMALL, "amp"]
    assert doc["models"][0] == before["models"][0]  # kept as it was
    export_all([get(n) for n in SMALL], trained / "checkpoints", out)
    assert manifest.models(manifest.load(out)) == [*SMALL, "amp"]


@pytest.mark.parametrize("name", ["amp", "dynamics_engine"])
def test_a_name_that_is_taken_is_refused_with_the_way_out(exported, tmp_path, capsys, name):
    out = tmp_path / "models"
    shutil.copytree(exported, out)
    folder.write(out, [*folder.read(out), imported(GRU_1D, "amp")], project_commit())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    code = exporter_main(["import", str(GRU_1D), "--name", name, "--out", str(out), "--seconds", "0.05"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"a model named {name} is already in" in err and "--name NAME" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_export_refuses_to_drop_an_import_of_the_same_name(trained, tmp_path):
    out = tmp_path / "models"
    write(out, imported(GRU_1D, "dynamics_engine"))
    with pytest.raises(SuiteError, match="holds an imported model named dynamics_engine"):
        export_all([get("dynamics_engine")], trained / "checkpoints", out)


def test_a_skip_connection_adds_the_input(tmp_path):
    doc = write(tmp_path, imported(GRU_1D, "pedal", skip=True))
    (row,) = doc["models"]
    assert row["skip"] and row["layers"].endswith("+ input (skip)")
    model_json = runtime.read(tmp_path / "pedal.json")
    x = signal.audio(0.01, 48000)
    plain = runtime.Model({**model_json, "skip": False}).run(x)
    assert np.allclose(runtime.Model(model_json).run(x), plain + x)


@pytest.fixture(scope="module")
def mixed(trained, exported, tmp_path_factory) -> Path:
    """The small models of ours (one step per block) and two imported audio models (one step per
    sample, one with a skip connection) in one export folder."""
    out = tmp_path_factory.mktemp("mixed") / "models"
    shutil.copytree(exported, out)
    extra = [imported(GRU_1D, "amp", seconds=0.1), imported(GRU_1D, "pedal", skip=True, seconds=0.1)]
    folder.write(out, [*folder.read(out), *extra], project_commit())
    return out


def test_the_bindings_run_a_sample_rate_model_a_block_at_a_time(mixed, tmp_path):
    lib = Models.build(mixed, "generated", tmp_path / "bin")
    assert lib.per_sample("amp") and not lib.per_sample("dynamics_engine")
    for name in ("amp", "pedal"):
        vec = folder.read_vectors(mixed / f"{name}.vectors.json", 1, 1)
        lib.reset(name)
        got = lib.run(name, vec["inputs"])  # 4,800 samples: two calls of up to 4,096
        assert np.abs(got - vec["outputs"]).max() < 1e-5


def test_validate_checks_a_mixed_folder_from_its_files(mixed, tmp_path, capsys):
    code = exporter_main(
        ["validate", "--out", str(mixed), "--checkpoints", str(tmp_path / "none"), "--build-dir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "passed: 4/4 models" in out and "sample" in out


def test_bench_run_measures_a_mixed_set(mixed, tmp_path):
    code = bench_cli.main(
        [
            *("run", "--target", "x86", "--engine", "generated-int8", "--blocks", "20", "--warmup", "2"),
            *("--models-dir", str(mixed), "--out", str(tmp_path / "runs"), "--build-dir", str(tmp_path / "pio")),
            "--no-callgrind",
        ]
    )
    assert code == 0
    (path,) = (tmp_path / "runs").iterdir()
    doc = results.load(path)
    assert doc["parity_ok"] and set(doc["models"]) == {*SMALL, "amp", "pedal"}
    amp = doc["models"]["amp"]
    assert amp["rate"] == "sample" and amp["per_sample"]["steps_per_block"] == 512
    assert amp["per_sample"]["real_time_factor"] > 1 and amp["per_sample"]["ns_p50"] > 0
    assert doc["models"]["dynamics_engine"]["rate"] == "block" and "per_sample" not in doc["models"]["dynamics_engine"]


def test_a_block_longer_than_the_vectors_is_refused_on_the_target(tmp_path, capsys):
    out = tmp_path / "models"
    write(out, imported(GRU_1D, "amp", seconds=0.05))
    code = bench_cli.main(
        [
            *("run", "--target", "x86", "--engine", "generated", "--blocks", "2", "--warmup", "0"),
            *("--models-dir", str(out), "--out", str(tmp_path / "runs"), "--build-dir", str(tmp_path / "pio")),
            *("--block-size", "4096", "--no-callgrind"),
        ]
    )
    assert code == 2
    assert "has test vectors for 2400 samples only" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_vectors_header_holds_at_most_the_target_steps():
    rows = [{"name": "amp", "input_size": 1, "output_size": 1}]
    n = 10_000
    text = tables.vectors_header(rows, {"amp": {"inputs": np.zeros((n, 1)), "outputs": np.zeros((n, 1))}})
    assert "constexpr int kSteps = 8192;" in text


def test_every_format_imports_validates_and_runs(tmp_path, capsys):
    """A file of each format (written by tests/test_formats.py from known weights) and RTNeural's own
    reference models, imported from the command line into one folder, validated together and run
    by the harness, every engine's parity within its tolerance."""
    from tests.test_formats import CASES, IDS

    out = tmp_path / "models"
    for (fmt, write), case in zip(CASES, IDS, strict=True):
        where = tmp_path / case
        where.mkdir()
        path, _, kwargs = write(where)
        trust = ["--trust-code"] if kwargs.get("trust_code") or fmt == "torchscript" else []
        name = case.replace("-", "_")
        args = ["import", str(path), "--name", name, "--out", str(out), "--seconds", "0.05", "--no-validate", *trust]
        assert exporter_main(args) == 0, capsys.readouterr().err
    for model in ("conv", "full_model", "lstm_1d"):
        args = ["import", str(REFERENCE / "models" / f"{model}.json"), "--out", str(out), "--seconds", "0.05"]
        assert exporter_main([*args, "--no-validate", "--rate", "sample"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    code = exporter_main(["validate", "--out", str(out), "--build-dir", str(tmp_path / "check"), "--no-rtneural"])
    text = capsys.readouterr()
    assert code == 0, text.out + text.err
    doc = manifest.load(out)
    assert {m["source"]["format"] for m in doc["models"]} == {fmt for fmt, _ in CASES}
    audio = [m for m in doc["models"] if m["source"]["format"] in ("aida-x", "guitarml", "nam")]
    assert len(audio) == 6 and all(m["rate"] == "sample" for m in audio)  # the audio formats' own rate
    assert {m["rate"] for m in doc["models"] if m["name"].startswith(("conv", "full_model", "lstm_1d"))} == {"sample"}
    nam = next(m for m in doc["models"] if m["source"]["format"] == "nam")
    assert "rtneural" not in nam["engines"]  # RTNeural starts an LSTM from zeros, not the learned state
    # RTNeural's SIMD backends where it is found: every input goes through an aligned buffer (a
    # 2-input model's rows of the vectors crashed xsimd's aligned loads)
    for engine in ["generated", *(["xsimd"] if rtneural.find() else [])]:
        code = bench_cli.main(
            [
                *("run", "--target", "x86", "--engine", engine, "--blocks", "5", "--warmup", "1"),
                *("--models-dir", str(out), "--out", str(tmp_path / "runs"), "--build-dir", str(tmp_path / "pio")),
                *("--block-size", "128", "--no-callgrind"),
            ]
        )
        assert code == 0, capsys.readouterr().err


def test_a_torch_module_imports_from_python(tmp_path):
    from tests.test_formats import Chain

    out = tmp_path / "models"
    new = importer.import_module(Chain(), 3, "chain", out)
    (row,) = manifest.load(out)["models"]
    assert new.name == row["name"] == "chain" and row["source"]["format"] == "pytorch" and row["rate"] == "block"
    assert row["source"]["file"] == "Chain (a torch module)"
    inputs, outputs = new.vectors["inputs"], new.vectors["outputs"]
    assert np.abs(runtime.Model(runtime.read(out / "chain.json")).run(inputs) - outputs).max() < 1e-5


def test_the_plugin_example_runs_a_mixed_set(mixed, tmp_path):
    import subprocess

    from common import engines
    from tests.test_engine import EXAMPLE

    exe = tmp_path / "plugin_block"
    flags = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", *engines.flags("generated-int8"), f"-I{mixed}"]
    subprocess.run(
        ["g++", *flags, '-DRTMB_MODEL_TABLE="generated-int8_table.h"', str(EXAMPLE), "-o", str(exe)], check=True
    )
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split()[0] for line in lines] == [*SMALL, "amp", "pedal"]
    assert "(generated-int8, per sample): 1 inputs -> 1 outputs" in lines[2]
