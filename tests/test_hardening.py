"""Bad input and faults, one class at a time: a NaN never passes, no result overwrites another, an
export is all or nothing, malformed files and bad arguments are one clear line, Ctrl-C stops
cleanly, and an error names the file that is wrong."""

import json
import math
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import cli as bench_cli
from bench import harness, results, targets
from bench import run as bench_run
from bench.build import build as bench_build
from common import atomic, manifest, rtneural
from common.errors import SuiteError
from exporter import folder, runtime
from exporter import validate as validation
from exporter.cli import main as exporter_main
from models import checkpoint
from models.catalog import get
from tests.conftest import ROOT, SMALL, train_command
from tests.test_bench import OUTPUT, fake_build
from trainer.cli import main as trainer_main
from trainer.data import dynamics, emotion, groove


def rehash(models_dir: Path, *names: str) -> None:
    """Record files' new hashes in the manifest, as an export that wrote them would."""
    doc = json.loads((models_dir / "manifest.json").read_text())
    for name in names:
        doc["sha256"][name] = manifest.sha256(models_dir / name)
    (models_dir / "manifest.json").write_text(json.dumps(doc))


def export_copy(exported: Path, tmp_path: Path) -> Path:
    out = tmp_path / "models"
    shutil.copytree(exported, out)
    return out


# --- 1. a NaN never passes ---------------------------------------------------------------------


def test_nan_error_fails_every_python_tolerance_check():
    assert math.isnan(validation.max_error(np.array([1.0, np.nan]), np.array([1.0, 2.0])))
    assert math.isnan(validation.max_error(np.array([np.inf]), np.array([np.inf])))
    out = harness.parse(OUTPUT.replace('"max_abs_error":9.5e-07', '"max_abs_error":NaN'))
    doc = results.document(targets.get("x86"), "stl", fake_build(), out, None, "a", "b")
    assert not doc["parity_ok"]


def test_nan_in_the_expected_outputs_fails_validate(trained, exported, tmp_path, capsys):
    """An export whose outputs are NaN (a model that overflows) must not pass with error 0."""
    models = export_copy(exported, tmp_path)
    path = models / "dynamics_engine.vectors.json"
    vec = json.loads(path.read_text())
    vec["outputs"][3][0] = float("nan")
    path.write_text(json.dumps(vec))
    rehash(models, path.name)
    code = exporter_main(
        [
            "validate",
            "--models",
            "dynamics_engine",
            "--checkpoints",
            str(trained / "checkpoints"),
            "--out",
            str(models),
            "--no-rtneural",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "DynamicsEngine: checkpoint: max abs error nan against the reference exceeds 1e-05" in err


# --- 2. no result overwrites another -----------------------------------------------------------


def test_results_written_at_the_same_moment_all_survive(tmp_path):
    doc = results.document(targets.get("x86"), "stl", fake_build(), harness.parse(OUTPUT), None, "a", "b")
    paths, errors = [], []

    def save():
        try:
            paths.append(results.write(json.loads(json.dumps(doc)), tmp_path))
        except Exception as exc:  # pragma: no cover - the failure this test exists to catch
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(paths)) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temp files


def test_an_existing_result_is_never_replaced(tmp_path):
    doc = results.document(targets.get("x86"), "stl", fake_build(), harness.parse(OUTPUT), None, "a", "b")
    first = results.write(json.loads(json.dumps(doc)), tmp_path)
    before = first.read_bytes()
    second = results.write(json.loads(json.dumps(doc)), tmp_path)  # the same id: a fresh one is taken
    assert second != first and first.read_bytes() == before
    with pytest.raises(FileExistsError):
        atomic.write_new(first, b"{}")
    assert first.read_bytes() == before


def test_result_ids_sort_by_time():
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone.utc)
    ids = [results.run_id(now + timedelta(microseconds=k), "x86", "stl") for k in (0, 1, 1000)]
    assert ids == sorted(ids) and ids[0].startswith("20260102T030405.000678Z-x86-stl-")


def test_bench_checks_where_results_go_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert bench_cli.main(["run", "--target", "x86", "--out", str(blocker / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{blocker / 'runs'}: results cannot be saved here" in err and "Traceback" not in err


# --- 3. an export is all or nothing ------------------------------------------------------------


def test_a_failed_write_leaves_the_earlier_export_whole(trained, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = ["export", "--models", ",".join(SMALL), "--checkpoints", str(trained / "checkpoints"), "--out", str(out)]
    assert exporter_main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = Path.write_bytes
    written = []

    def disk_fills_up(self, data):
        written.append(self.name)
        if len(written) == 4:
            raise OSError(28, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_fills_up)
    assert exporter_main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and str(tmp_path) in err
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left behind


def export_one(trained: Path, out: str) -> int:
    """`python -m exporter export` of DynamicsEngine from the trained checkpoints into `out`."""
    return exporter_main(
        ["export", "--models", "dynamics_engine", "--checkpoints", str(trained / "checkpoints"), "--out", out]
    )


def test_export_refuses_a_folder_that_is_not_an_export(trained, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code = export_one(trained, str(tmp_path / "mine"))
    assert code == 2 and "holds files that are not an export (notes.txt)" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# --- 4. malformed files are named, never trusted -----------------------------------------------


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d["layers"][0]["weights"][0].pop(), "weights of shapes"),  # a short weight row
        (lambda d: d["layers"][1].update(type="attention"), "layer type 'attention' is not one"),
        (lambda d: d.update(in_shape=[None, None, 10**12]), "in_shape"),
        (lambda d: d["layers"][2]["weights"][1].__setitem__(0, "x"), "unreadable weights"),
        (lambda d: d["layers"][0].update(activation=["tanh"]), "unknown activation"),
    ],
)
def test_a_malformed_model_json_is_named(exported, tmp_path, damage, message):
    path = tmp_path / "m.json"
    doc = json.loads((exported / "dynamics_engine.json").read_text())
    damage(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match=message) as err:
        runtime.read(path)
    assert err.value.path == path


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"outputs": [[0.0] * 16]}, "no 'inputs'"),
        ({"inputs": [[0.0] * 31], "outputs": [[0.0] * 16]}, r"inputs has shape \[1, 31\]"),
        ({"inputs": [[0.0] * 32, [0.0] * 32], "outputs": [[0.0] * 16]}, "2 input steps but 1 output"),
        ({"inputs": "abc", "outputs": [[0.0] * 16]}, "not a table of numbers"),
    ],
)
def test_malformed_vectors_are_named(tmp_path, doc, message):
    path = tmp_path / "v.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match=message) as err:
        folder.read_vectors(path, 32, 16)
    assert err.value.path == path


def test_a_zero_byte_checkpoint_is_named(tmp_path):
    path = tmp_path / "best.pt"
    path.write_bytes(b"")
    with pytest.raises(SuiteError, match="not a readable checkpoint") as err:
        checkpoint.load(path, get("dynamics_engine"))
    assert err.value.path == path


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a CSV text table"),
        (b"", "no midi_filename column"),
        (b"split,year\ntrain,2004\n", "no midi_filename column"),
        (b"split,midi_filename\ntrain\n", "line 2 has a different number of fields"),
    ],
)
def test_a_broken_dataset_index_is_named(tmp_path, content, message):
    (tmp_path / "maestro-v3.0.0.csv").write_bytes(content)
    with pytest.raises(SuiteError, match=message) as err:
        dynamics.index(tmp_path)
    assert err.value.path == tmp_path / "maestro-v3.0.0.csv"


def test_broken_groove_and_emotion_tables_are_named(tmp_path):
    (tmp_path / "info.csv").write_text("midi_filename,bpm\na.mid,fast\n")
    with pytest.raises(SuiteError, match="line 2: bpm 'fast' is not a tempo"):
        groove.index(tmp_path)
    (tmp_path / "valence.csv").write_text("song_id,sample_15000ms\n2,high\n")
    with pytest.raises(SuiteError, match="line 2"):
        emotion.read_annotations(tmp_path / "valence.csv")


def test_broken_data_stops_training_with_one_line(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "maestro-v3.0.0.csv").write_bytes(b"\xff\xfe\x00binary")
    code = trainer_main(
        [
            "train",
            "--models",
            "dynamics_engine",
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "ck"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "maestro-v3.0.0.csv: not a CSV text table" in err and "Traceback" not in err


# --- 5. arguments are checked before any work --------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--blocks", "0"], "argument --blocks: 0 is out of range"),
        (["--blocks", "-5"], "argument --blocks: -5 is out of range"),
        (["--blocks", "20001"], "argument --blocks: 20001 is more than x86 records (at most 20000"),
        (["--block-size", "0"], "argument --block-size: 0 is out of range"),
        (["--sample-rate", "0"], "argument --sample-rate: 0 is out of range"),
        (["--warmup", "x"], "argument --warmup: 'x' is not a whole number"),
    ],
)
def test_bench_arguments(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(rtneural, "require", lambda: pytest.fail("work started before the arguments were checked"))
    with pytest.raises(SystemExit) as exit_:
        bench_cli.main(["run", "--target", "x86", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_cortex_m7_takes_fewer_blocks(capsys):
    with pytest.raises(SystemExit):
        bench_cli.main(["run", "--target", "cortex-m7", "--blocks", "2001"])
    assert "at most 2000" in capsys.readouterr().err


@pytest.mark.parametrize(
    "main, argv, message",
    [
        (trainer_main, ["train", "--models", "nosuch"], "unknown model 'nosuch'"),
        (trainer_main, ["train", "--models", "dynamics_engine,dynamics_engine"], "named twice"),
        (exporter_main, ["export", "--models", "nosuch"], "unknown model 'nosuch'"),
        (exporter_main, ["validate", "--models", "groove_predictor,GroovePredictor"], "named twice"),
    ],
)
def test_model_names_are_checked_first(main, argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_negative_seed_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        trainer_main(["train", "--seed", "-1"])
    assert exit_.value.code == 2 and "argument --seed: -1 is out of range" in capsys.readouterr().err


# --- 6. interrupts -----------------------------------------------------------------------------


def test_ctrl_c_during_training_stops_cleanly_and_resumes(tmp_path):
    out = tmp_path / "ck"
    cmd = train_command(tmp_path, out)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    latest = out / "groove_predictor" / "latest.pt"
    deadline = time.time() + 120
    while not latest.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: every finished epoch is saved" in err and "Traceback" not in err
    _, ck = checkpoint.load(latest, get("groove_predictor"))  # whole and readable
    assert not list(latest.parent.glob("*.tmp"))
    assert ck["epoch"] >= 1


def test_ctrl_c_in_bench_says_what_was_saved(monkeypatch, tmp_path, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_run, "run", interrupt)
    assert bench_cli.main(["run", "--target", "x86", "--out", str(tmp_path)]) == 130
    assert "interrupted: 0 result(s) saved; the run in progress was not saved" in capsys.readouterr().err


def test_resuming_with_another_profile_is_refused(tmp_path, tiny_profile):
    from dataclasses import replace

    from trainer.train import train_model

    spec = get("dynamics_engine")
    short = replace(tiny_profile, max_epochs=1)
    train_model(spec, short, tmp_path / "none", tmp_path / "ck", torch.device("cpu"), progress=False)
    _, ck = checkpoint.load(tmp_path / "ck/dynamics_engine/latest.pt", spec)
    ck["finished"] = False
    checkpoint.save(tmp_path / "ck/dynamics_engine/latest.pt", ck)
    other = replace(tiny_profile, name="other")
    with pytest.raises(SuiteError, match="trained so far with profile 'tiny', not 'other'"):
        train_model(spec, other, tmp_path / "none", tmp_path / "ck", torch.device("cpu"), progress=False)


# --- 7. the error names the file that is wrong -------------------------------------------------


def test_a_truncated_header_is_named_before_any_compile(exported, tmp_path):
    models = export_copy(exported, tmp_path)
    header = models / "groove_predictor.generated.h"
    header.write_text(header.read_text()[: len(header.read_text()) // 2])
    with pytest.raises(SuiteError, match="changed since export") as err:
        bench_build(targets.get("x86"), "generated", models, tmp_path / "pio")
    assert err.value.path == header


def test_an_rtneural_dir_without_modules_is_named(tmp_path, monkeypatch):
    (tmp_path / "RTNeural").mkdir()
    (tmp_path / "RTNeural" / "RTNeural.h").write_text("")
    monkeypatch.setenv("RTNEURAL_DIR", str(tmp_path))
    with pytest.raises(SuiteError, match=r"incomplete RTNeural checkout: no modules/json/json\.hpp") as err:
        rtneural.find()
    assert err.value.path == tmp_path


def test_an_io_error_is_one_line_naming_the_path(trained, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")  # a folder cannot be made inside a file, even by root
    code = export_one(trained, str(tmp_path / "a-file" / "out"))
    err = capsys.readouterr().err
    assert code == 2 and f"error: {tmp_path / 'a-file'}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_nan_parity_fails_on_the_target(exported, tmp_path, capsys):
    """The harness's own parity check: an expected output of NaN must fail it, not read as error 0."""
    from bench import pio_core
    from exporter import tables

    pio_core.install()
    models = export_copy(exported, tmp_path)
    rows = manifest.load(models)["models"]
    vecs = {n: json.loads((models / f"{n}.vectors.json").read_text()) for n in SMALL}
    vecs["groove_predictor"]["outputs"][5][2] = float("nan")
    (models / "model_vectors.h").write_text(tables.vectors_header(rows, vecs))
    rehash(models, "model_vectors.h")
    code = bench_cli.main(
        [
            "run",
            "--target",
            "x86",
            "--engine",
            "generated",
            "--blocks",
            "5",
            "--warmup",
            "0",
            "--models-dir",
            str(models),
            "--out",
            str(tmp_path / "runs"),
            "--build-dir",
            str(tmp_path / "pio"),
            "--no-callgrind",
        ]
    )
    assert code == 1 and "parity above 1e-05" in capsys.readouterr().err
    (path,) = (tmp_path / "runs").iterdir()
    doc = results.load(path)
    model = doc["models"]["groove_predictor"]  # NaN is not JSON: null, with why
    assert model["parity_max_abs_error"] is None and "NaN" in model["parity_problem"] and not doc["parity_ok"]
