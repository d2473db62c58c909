import dataclasses
import json
import math
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from common import atomic
from common.errors import SuiteError
from common.layout import PROBE_STEPS
from models import checkpoint
from models.catalog import MODELS, get
from tests.conftest import train_command
from trainer import data
from trainer.cli import main as trainer_main
from trainer.data.base import Dataset, Sequence, eval_batches
from trainer.tasks import TASKS
from trainer.train import choose_probe, evaluate_model, train_model

CPU = torch.device("cpu")
DYN = get("dynamics_engine")


def train(tmp_path, profile, spec=DYN, **kw):
    return train_model(spec, profile, tmp_path / "no-data", tmp_path / "ck", CPU, progress=False, **kw)


def test_evaluate_model_takes_every_models_batch_format():
    for spec in MODELS.values():
        ds = data.load(spec.task, "/nonexistent", synthetic_steps=200, progress=False)
        batches = list(eval_batches(ds.val, 4, 16, 64))
        assert spec.task in ("groove",) or TASKS[spec.task].key in batches[0]
        out = evaluate_model(spec.build(), spec.task, batches)
        assert math.isfinite(out["loss"]) and math.isfinite(out["metric"]), spec.name


def test_training_writes_checkpoints_history_and_curves(tmp_path, tiny_profile):
    r = train(tmp_path, tiny_profile)
    d = tmp_path / "ck" / "dynamics_engine"
    for name in ("latest.pt", "best.pt", "history.json", "history.csv", "curves.png"):
        assert (d / name).stat().st_size > 0, name
    hist = json.loads((d / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == list(range(1, r.epochs + 1))
    assert (d / "history.csv").read_text().splitlines()[0].startswith("epoch,train_loss,val_loss")
    assert (d / "curves.png").read_bytes()[:4] == b"\x89PNG"
    _, best = checkpoint.load(d / "best.pt", DYN)
    assert best["best_val_loss"] == pytest.approx(min(e["val_loss"] for e in hist["epochs"]))


def test_early_stopping_stops_after_patience(tmp_path, tiny_profile):
    profile = dataclasses.replace(tiny_profile, max_epochs=50, patience=2, min_delta=0.5)  # only epoch 1 counts
    r = train(tmp_path, profile)
    assert r.epochs == 1 + 2 and r.stop_reason.startswith("early stop")
    _, latest = checkpoint.load(tmp_path / "ck/dynamics_engine/latest.pt", DYN)
    assert latest["finished"]


def test_resume_continues_and_matches_an_uninterrupted_run(tmp_path, tiny_profile):
    whole = train(tmp_path / "a", tiny_profile)
    train(tmp_path / "b", dataclasses.replace(tiny_profile, max_epochs=2))  # "interrupted" after epoch 2
    _, ck = checkpoint.load(tmp_path / "b/ck/dynamics_engine/latest.pt", DYN)
    ck["finished"] = False  # as if killed before deciding to stop
    checkpoint.save(tmp_path / "b/ck/dynamics_engine/latest.pt", ck)
    resumed = train(tmp_path / "b", tiny_profile)
    assert [h["val_loss"] for h in resumed.history] == pytest.approx([h["val_loss"] for h in whole.history])
    a, _ = checkpoint.load(tmp_path / "a/ck/dynamics_engine/latest.pt", DYN)
    b, _ = checkpoint.load(tmp_path / "b/ck/dynamics_engine/latest.pt", DYN)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=False):
        assert torch.allclose(va, vb, atol=1e-6), k


def test_finished_model_is_not_trained_again(tmp_path, tiny_profile):
    first = train(tmp_path, tiny_profile)
    second = train(tmp_path, tiny_profile)
    assert second.seconds == 0.0 and second.epochs == first.epochs


def test_kill_9_mid_training_loses_at_most_one_epoch(tmp_path):
    out = tmp_path / "ck"
    cmd = train_command(tmp_path, out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = out / "groove_predictor" / "latest.pt"
    deadline = time.time() + 120
    while not latest.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, ck = checkpoint.load(latest, get("groove_predictor"))  # whole and readable, never half-written
    assert ck["epoch"] >= 1 and not [p for p in latest.parent.iterdir() if p.name.endswith(".tmp")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming from {latest} after epoch {ck['epoch']}" in done.stderr
    _, final = checkpoint.load(latest, get("groove_predictor"))
    assert [h["epoch"] for h in final["history"]] == list(range(1, final["epoch"] + 1))


def test_corrupt_checkpoint_is_an_error_naming_the_file_and_is_kept(tmp_path, tiny_profile, capsys):
    latest = tmp_path / "ck" / "dynamics_engine" / "latest.pt"
    latest.parent.mkdir(parents=True)
    latest.write_bytes(b"\x00garbage")
    with pytest.raises(SuiteError, match="not a readable checkpoint") as err:
        train(tmp_path, tiny_profile)
    assert err.value.path == latest
    code = trainer_main(
        [
            "train",
            "--models",
            "dynamics_engine",
            "--out",
            str(tmp_path / "ck"),
            "--synthetic",
            "--no-progress",
        ]
    )
    assert code == 2 and str(latest) in capsys.readouterr().err
    assert latest.read_bytes() == b"\x00garbage"


def test_mismatched_checkpoint_is_refused(tmp_path, tiny_profile):
    train(tmp_path, tiny_profile)
    src = tmp_path / "ck/dynamics_engine/best.pt"
    with pytest.raises(SuiteError, match=r"written for DynamicsEngine.*not for GroovePredictor"):
        checkpoint.load(src, get("groove_predictor"))
    changed = dataclasses.replace(DYN, version=DYN.version + 1)
    with pytest.raises(SuiteError, match="as now declared"):
        checkpoint.load(src, changed)


def test_not_a_checkpoint_dict(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(SuiteError, match="not a checkpoint of this project"):
        checkpoint.load(path, DYN)
    with pytest.raises(SuiteError, match="no checkpoint here"):
        checkpoint.load(tmp_path / "missing.pt", DYN)


def test_nan_loss_stops_and_keeps_the_best_checkpoint(tmp_path, tiny_profile, monkeypatch):
    train(tmp_path, dataclasses.replace(tiny_profile, max_epochs=2))
    d = tmp_path / "ck/dynamics_engine"
    _, ck = checkpoint.load(d / "latest.pt", DYN)
    ck["finished"] = False
    checkpoint.save(d / "latest.pt", ck)
    best_before = (d / "best.pt").read_bytes()
    latest_before = (d / "latest.pt").read_bytes()
    task = TASKS["dynamics"]
    monkeypatch.setattr(type(task), "loss", lambda self, out, batch: out.sum() * float("nan"))
    r = train(tmp_path, tiny_profile)
    assert r.error and "NaN loss in epoch 3" in r.error and "best checkpoint kept" in r.error
    assert (d / "best.pt").read_bytes() == best_before
    assert (d / "latest.pt").read_bytes() == latest_before


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "history.json"
    atomic.write_json(target, {"ok": 1})
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"ok": 1}
    assert os.listdir(tmp_path) == ["history.json"]


def test_synthetic_data_is_learnable(tmp_path, tiny_profile):
    """A short training beats the trivial baseline on every synthetic set."""
    profile = dataclasses.replace(
        tiny_profile,
        max_epochs=6,
        steps_per_epoch=25,
        batch_size=16,
        seq_len=32,
        learning_rate=3e-3,
        synthetic_steps=4000,
        val_steps=1024,
        patience=6,
    )
    for spec in MODELS.values():
        r = train(tmp_path, profile, spec=spec)
        task = TASKS[spec.task]
        better = r.metric > r.baseline if task.higher_is_better else r.metric < r.baseline
        assert better, (spec.name, r.metric, r.baseline)


def test_cli_summary_table(tmp_path, capsys):
    code = trainer_main(
        [
            "train",
            "--models",
            "dynamics_engine",
            "--synthetic",
            "--out",
            str(tmp_path / "ck"),
            "--no-progress",
            "--seed",
            "3",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "DynamicsEngine" in out and "synthetic" in out and "velocity MAE" in out and "mean velocity" in out
    summary = json.loads((tmp_path / "ck" / "summary.json").read_text())
    assert summary["models"][0]["parameters"] == DYN.parameter_count
    assert np.isfinite(summary["models"][0]["best_val_loss"])


def test_checkpoint_carries_a_probe_of_one_continuous_validation_piece(tmp_path, tiny_profile):
    train(tmp_path, tiny_profile)
    _, ck = checkpoint.load(tmp_path / "ck/dynamics_engine/best.pt", DYN)
    ds = data.load("dynamics", tmp_path / "no-data", tiny_profile.synthetic_steps, 0, progress=False)
    piece = next(s for s in ds.val if len(s) >= PROBE_STEPS)
    assert (checkpoint.probe_inputs(ck) == piece.inputs[:PROBE_STEPS]).all()
    assert ck["probe"]["source"] == "synthetic" and "first validation piece" in ck["probe"]["description"]


def test_short_pieces_are_played_back_to_back_for_the_probe():
    short = [Sequence(np.full((10, 2), i, np.float32), {}) for i in range(8)]
    probe = choose_probe(Dataset("melody", "real", "tunes", [], short))
    assert probe["inputs"][:, 0].tolist() == [i for i in range(7) for _ in range(10)][:64]
    assert "back to back" in probe["description"]
    with pytest.raises(SuiteError, match="only 30 steps, 64 needed"):
        choose_probe(Dataset("melody", "real", "tunes", [], short[:3]))


def test_the_trainers_rounding_is_the_exporters(tmp_path, tiny_profile):
    """trainer evaluate computes as the engine computes at each precision: float16 weights give the
    reference runtime's outputs; int8 (weights and activations quantised) the int8 engine's, but for
    float rounding, which now and then moves an activation to the next level (about 1e-3 at the
    outputs): far closer than to float32, whose distance is the quantisation itself."""
    from exporter import convert, engine
    from trainer.precision import rounded

    for spec in (DYN, get("groove_predictor")):
        train(tmp_path, tiny_profile, spec=spec)
        model, ck = checkpoint.load(tmp_path / f"ck/{spec.snake_name}/best.pt", spec)
        model_json = convert.to_json(model, spec.input_size, spec.name)
        x = checkpoint.probe_inputs(ck)
        for precision in ("float16", "int8"):
            with torch.no_grad():
                ours = rounded(model, precision)(torch.from_numpy(x)[None])[0][0].numpy()
            reference = engine.reference(model_json, precision).run(x)
            error = np.abs(ours - reference).max()
            if precision == "float16":
                assert error <= 1e-5, spec.name
            else:
                quantisation = np.abs(engine.reference(model_json, "float32").run(x) - reference).max()
                assert error <= 0.1 * quantisation, (spec.name, error, quantisation)


def test_evaluate_reports_every_precision(tmp_path, tiny_profile, capsys):
    train(tmp_path, tiny_profile)
    code = trainer_main(
        [
            "evaluate",
            "--models",
            "dynamics_engine",
            "--checkpoints",
            str(tmp_path / "ck"),
            "--data-dir",
            str(tmp_path / "no-data"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "DynamicsEngine" in out and "int8" in out and "float16" in out
    doc = json.loads((tmp_path / "ck" / "precision.json").read_text())
    values = doc["models"][0]["values"]
    assert set(values) == {"float32", "float16", "int8"} and all(v > 0 for v in values.values())


def without_seconds(history: list[dict]) -> list[dict]:
    """A history without its wall-clock column, the one thing two runs of the same training differ in."""
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_resume_after_any_epoch_is_bit_identical(tmp_path, tiny_profile):
    """Killed after any epoch and resumed, a run ends with the uninterrupted run's history and its
    best and latest weights, bit for bit: each epoch's batches and dropout come from its own seed."""
    whole = train(tmp_path / "whole", tiny_profile)
    assert whole.epochs > 1
    for cut in range(1, whole.epochs):
        root = tmp_path / f"cut-after-{cut}"
        train(root, dataclasses.replace(tiny_profile, max_epochs=cut))
        latest = root / "ck/dynamics_engine/latest.pt"
        _, ck = checkpoint.load(latest, DYN)
        ck["finished"] = False  # as if killed before deciding to stop
        checkpoint.save(latest, ck)
        resumed = train(root, tiny_profile)
        assert without_seconds(resumed.history) == without_seconds(whole.history), cut
        for name in ("best.pt", "latest.pt"):
            a, _ = checkpoint.load(tmp_path / "whole/ck/dynamics_engine" / name, DYN)
            b, _ = checkpoint.load(root / "ck/dynamics_engine" / name, DYN)
            for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
                assert torch.equal(va, vb), (cut, name, k)


def test_unfinished_checkpoint_with_no_epoch_left_ends_without_training(tmp_path, tiny_profile):
    profile = dataclasses.replace(tiny_profile, max_epochs=2)
    first = train(tmp_path, profile)
    latest = tmp_path / "ck/dynamics_engine/latest.pt"
    _, ck = checkpoint.load(latest, DYN)
    ck["finished"] = False  # killed, say, before a profile shortened to the epochs it has
    checkpoint.save(latest, ck)
    saved = latest.read_bytes()
    r = train(tmp_path, profile)
    assert (r.epochs, r.stop_reason, r.error) == (2, "reached max_epochs (2)", None)
    assert without_seconds(r.history) == without_seconds(first.history) and latest.read_bytes() == saved
