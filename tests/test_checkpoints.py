"""Checkpoints and training runs are checked before they are trusted (issue 21, root causes 2, 4 and
5 for the trainer): a resume from each damaged `latest.pt`, an export from a bit-flipped `best.pt`,
`trainer evaluate` on weights holding a NaN, a second training into a folder in use, and each bad
argument are refused up front with one line naming the file (or flag) and the key, exit 2, no
traceback, and nothing in the checkpoint folder changed."""

import hashlib
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from common import checkpoint as checked
from common import layout
from common.errors import SuiteError
from exporter.cli import main as exporter_main
from models.catalog import get
from tests.conftest import ROOT, TINY
from trainer import data, lock
from trainer.cli import main as trainer_main
from trainer.profiles import PROFILES

DYN = get("dynamics_engine")
DECLARED = DYN.build().state_dict()
PARAMETERS = [name for name, _ in DYN.build().named_parameters()]  # in the optimiser's order
W = "layers.1.weight_ih_l0"  # the recurrent layer's input kernel: the weight the weight cases damage
ROWS, COLS = DECLARED[W].shape
BIAS = PARAMETERS[1]  # the optimiser's state 1: the first layer's bias, one-dimensional


@pytest.fixture(autouse=True)
def tiny_is_a_profile(monkeypatch):
    """The CLI takes the tiny profile the `trained` checkpoints were made with (--profile tiny)."""
    monkeypatch.setitem(PROFILES, TINY.name, TINY)


@pytest.fixture
def ck(trained, tmp_path) -> Path:
    """A copy of the trained checkpoints (DynamicsEngine's folder) to damage."""
    out = tmp_path / "ck"
    shutil.copytree(trained / "checkpoints" / DYN.snake_name, out / DYN.snake_name)
    return out


def train_argv(out: Path, *extra: str) -> list[str]:
    return ["train", "--models", DYN.snake_name, "--profile", TINY.name, "--out", str(out), "--no-progress", *extra]


def hashes(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the lock file aside: taking the lock writes it) by its sha256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != lock.NAME
    }


def rewrite(change):
    """A damage: the checkpoint loaded, changed by `change(ckpt)`, saved back as torch.save writes it."""

    def damage(path: Path) -> dict:
        ckpt = torch.load(path, weights_only=True)
        change(ckpt)
        torch.save(ckpt, path)
        return {}

    return damage


def flip_a_weight_bit(path: Path) -> dict:
    """One bit flipped in the storage of weight W, the archive otherwise intact: that member's CRC no
    longer matches (torch.load alone would read the changed weight without a word)."""
    weight = torch.load(path, weights_only=True)["state_dict"][W].numpy().tobytes()
    with zipfile.ZipFile(path) as archive:
        (member,) = [m for m in archive.infolist() if archive.read(m) == weight]
    data_ = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data_[member.header_offset + 26 : member.header_offset + 30])
    data_[member.header_offset + 30 + name_len + extra_len + member.file_size // 2] ^= 0x04
    path.write_bytes(bytes(data_))
    return {"member": member.filename}


def set_weight(name: str, value) -> Callable[[Path], dict]:
    return rewrite(lambda ck: ck["state_dict"].__setitem__(name, value))


def nan_weight(ckpt: dict) -> None:
    ckpt["state_dict"][W][0, 0] = math.nan


def rename_weight(ckpt: dict) -> None:
    ckpt["state_dict"]["layers.1.weight_ih"] = ckpt["state_dict"].pop(W)


def two_groups(ckpt: dict) -> None:
    (group,) = ckpt["optimizer"]["param_groups"]
    ckpt["optimizer"]["param_groups"] = [
        {**group, "params": group["params"][:4]},
        {**group, "params": group["params"][4:]},
    ]


def replace_file(make):
    """A damage: the checkpoint replaced by what `make(path)` leaves at its path."""

    def damage(path: Path) -> dict:
        path.unlink()
        make(path)
        return {}

    return damage


def sparse(size: int):
    """A file of `size` bytes that takes no disk space."""

    def make(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)

    return make


def drop_the_last_epoch(path: Path) -> dict:
    ckpt = torch.load(path, weights_only=True)
    ckpt["history"].pop()
    torch.save(ckpt, path)
    return {"listed": ", ".join(str(h["epoch"]) for h in ckpt["history"]), "epoch": ckpt["epoch"]}


RESUME_CASES = {
    "missing optimizer": (
        rewrite(lambda ck: ck.pop("optimizer")),
        "optimizer: missing; expected the optimiser's state (state and param_groups)",
    ),
    "missing stop reason": (
        rewrite(lambda ck: ck.pop("stop_reason")),
        "stop_reason: missing; expected why training stopped (text; empty while it runs)",
    ),
    "empty history": (
        rewrite(lambda ck: ck.__setitem__("history", [])),
        "history: a list of 0; expected a non-empty list of epochs, each with epoch, train_loss, val_loss, "
        "val_metric, seconds",
    ),
    "history shorter than the epochs": (
        drop_the_last_epoch,
        "history: epochs [{listed}]; expected one entry per epoch up to epoch {epoch}",
    ),
    "string epoch": (
        rewrite(lambda ck: ck.__setitem__("epoch", "three")),
        "epoch: 'three'; expected a whole number >= 0",
    ),
    "negative epoch": (rewrite(lambda ck: ck.__setitem__("epoch", -2)), "epoch: -2; expected a whole number >= 0"),
    "optimizer group of another size": (
        rewrite(lambda ck: ck["optimizer"]["param_groups"][0]["params"].pop()),
        f"optimizer.param_groups[0]: {len(PARAMETERS) - 1} parameters; the model's optimiser has {len(PARAMETERS)}",
    ),
    "optimizer groups of another count": (
        rewrite(two_groups),
        "optimizer.param_groups: 2 groups; the model's optimiser has 1",
    ),
    "optimizer state of another shape": (
        rewrite(lambda ck: ck["optimizer"]["state"][1].__setitem__("exp_avg", torch.zeros(3))),
        f"optimizer.state[1].exp_avg: shape (3,), its parameter {BIAS} has ({len(DECLARED[BIAS])},)",
    ),
    "optimizer learning rate a string": (
        rewrite(lambda ck: ck["optimizer"]["param_groups"][0].__setitem__("lr", "fast")),
        "optimizer.param_groups[0].lr: 'fast'; expected a finite number",
    ),
    "not a zip archive": (
        replace_file(lambda p: p.write_bytes(b"\x00garbage")),
        "not a readable checkpoint (not the zip archive torch.save writes: File is not a zip file)",
    ),
    "a folder, not a file": (replace_file(Path.mkdir), "not a regular file; a checkpoint is one written by torch.save"),
    "larger than a checkpoint can be": (
        replace_file(sparse(checked.MAX_BYTES + 1)),
        f"{checked.MAX_BYTES + 1:,} bytes: larger than a checkpoint can be ({checked.MAX_BYTES:,} at most)",
    ),
    "one weight's bits flipped": (flip_a_weight_bit, "damaged archive: member {member} fails its CRC"),
    "a weight of the wrong shape": (
        set_weight(W, torch.zeros(ROWS, COLS + 1)),
        f"weight {W}: shape ({ROWS}, {COLS + 1}), the model declares ({ROWS}, {COLS})",
    ),
    "a weight renamed": (
        rewrite(rename_weight),
        f"weight {W}: missing; the model declares ({ROWS}, {COLS}); "
        "weight layers.1.weight_ih: not in the model's declaration",
    ),
    "a NaN weight": (rewrite(nan_weight), f"weight {W}: 1 of {ROWS * COLS:,} values are not finite (NaN or infinity)"),
}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_resume_from_a_damaged_checkpoint_is_refused_and_keeps_it(case, ck, capsys):
    latest = ck / DYN.snake_name / "latest.pt"
    damage, message = RESUME_CASES[case]
    expected = f"error: {latest}: {message.format(**damage(latest))}\n"
    before = hashes(ck)
    code = trainer_main(train_argv(ck, "--synthetic"))
    err = capsys.readouterr().err
    assert (code, err) == (2, expected)
    assert hashes(ck) == before


def test_an_intact_checkpoint_resumes(ck, capsys):
    """The control: the same copy undamaged is taken (finished, so nothing is trained again)."""
    before = hashes(ck)
    assert trainer_main(train_argv(ck, "--synthetic")) == 0
    assert "error" not in capsys.readouterr().err
    assert {k: v for k, v in hashes(ck).items() if k != "summary.json"} == before


def test_export_from_a_bit_flipped_checkpoint_is_refused(ck, tmp_path, capsys):
    best = ck / DYN.snake_name / "best.pt"
    member = flip_a_weight_bit(best)["member"]
    out = tmp_path / "models"
    code = exporter_main(["export", "--models", DYN.snake_name, "--checkpoints", str(ck), "--out", str(out)])
    assert (code, capsys.readouterr().err) == (2, f"error: {best}: damaged archive: member {member} fails its CRC\n")
    assert not out.exists()


def scale_last_layer(ckpt: dict) -> None:
    """The output layer's weights times 1e38: finite, but outputs overflow to infinity."""
    last = [k for k, v in ckpt["state_dict"].items() if v.ndim == 2][-1]
    ckpt["state_dict"][last] = ckpt["state_dict"][last].sign() * 1e38


@pytest.mark.parametrize(
    "damage, message",
    [
        (rewrite(nan_weight), f"weight {W}: 1 of {ROWS * COLS:,} values are not finite (NaN or infinity)"),
        (
            rewrite(scale_last_layer),
            f"{DYN.name} at float32: outputs not finite (NaN or infinity) on the validation data; no metric to report",
        ),
        (
            rewrite(lambda ck: ck["state_dict"][W].__setitem__((0, 0), 1e5)),
            f"{DYN.name} at float16: a weight of 100000 is beyond float16's range (65504)",
        ),
    ],
    ids=["NaN weight", "outputs overflow", "a weight beyond float16"],
)
def test_evaluate_refuses_weights_that_give_no_finite_outputs(damage, message, ck, tmp_path, capsys):
    best = ck / DYN.snake_name / "best.pt"
    damage(best)
    argv = ["evaluate", "--models", DYN.snake_name, "--checkpoints", str(ck), "--data-dir", str(tmp_path / "none")]
    code = trainer_main(argv)
    assert (code, capsys.readouterr().err) == (2, f"error: {best}: {message}\n")
    assert not (ck / "precision.json").exists()


@pytest.mark.parametrize("named", [True, False], ids=["--data-dir named", "the default folder"])
def test_evaluate_never_stands_synthetic_data_in_for_the_real_set(named, ck, tmp_path, monkeypatch, capsys):
    """A model trained on its real set is evaluated on that set: where the set is missing that is the
    error (it used to be evaluated on synthetic data without a word)."""
    best = ck / DYN.snake_name / "best.pt"
    rewrite(lambda c: c["data"].__setitem__("source", "real"))(best)
    empty = tmp_path / "data"
    empty.mkdir()
    argv = ["evaluate", "--models", DYN.snake_name, "--checkpoints", str(ck)]
    if named:
        argv += ["--data-dir", str(empty)]
    else:
        monkeypatch.setattr(layout, "DATA_DIR", empty)
        argv += ["--data-dir", str(empty)]  # the default, spelled out: required only by the record
    code = trainer_main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(empty) in err and data.REAL_SETS[DYN.task] in err, err
    assert not (ck / "precision.json").exists()


# --- one training per folder ---------------------------------------------------------------------


def wait_for_lock(path: Path, proc: subprocess.Popen, log: Path) -> dict:
    """The lock file's holder, once the training in `proc` has taken it."""
    deadline = time.time() + 300  # a bound on a hung start, not a measurement
    while time.time() < deadline and proc.poll() is None:
        try:
            holder = json.loads(path.read_text())
            if holder["pid"] == proc.pid:
                return holder
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    pytest.fail(f"the first training never took {path} (exit {proc.poll()}): {log.read_text()}")


def test_a_second_training_into_a_folder_in_use_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "ck"
    first = [sys.executable, "-m", "trainer", "train", "--models", "groove_predictor", "--synthetic", "--out", str(out)]
    log = tmp_path / "first.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([*first, "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        holder = wait_for_lock(out / lock.NAME, proc, log)
        assert holder["host"] == socket.gethostname()
        link = tmp_path / "same-folder"
        link.symlink_to(out)
        for folder in (out, link):  # the folder by another name is the same folder
            code = trainer_main(train_argv(folder, "--synthetic"))
            who = f"pid {proc.pid} on {holder['host']}, started {holder['started']} ({holder['command']})"
            expected = (
                f"error: {folder}: another training writes into this folder: {who}; wait for it to end, "
                "or train into another --out\n"
            )
            assert (code, capsys.readouterr().err) == (2, expected)
        assert not (out / DYN.snake_name).exists()  # the refused training wrote nothing
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with lock.hold(out):  # killed, the first left no stale lock
            pass
    finally:
        proc.kill()
        proc.wait()


# --- arguments checked before any epoch ----------------------------------------------------------


def maestro_index(split: str):
    def make(tmp_path: Path) -> Path:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "maestro-v3.0.0.csv").write_text(
            f"canonical_composer,split,year,midi_filename,duration\nBach,{split},2004,2004/a.midi,10.5\n"
        )
        return tmp_path / "data"

    return make


def a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file"


def an_empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


ARGUMENT_CASES = {
    "--out a file": (lambda t: ["--synthetic", "--out", str(a_file(t))], "--out {t}/file: a file, not a folder"),
    "--out inside a file": (
        lambda t: ["--synthetic", "--out", str(a_file(t) / "sub")],
        "--out {t}/file/sub: cannot write there (Not a directory)",
    ),
    "--data-dir missing": (
        lambda t: ["--data-dir", str(t / "dta")],
        "--data-dir {t}/dta: no such folder (make data prepares one; --synthetic for none)",
    ),
    "--data-dir a file": (
        lambda t: ["--data-dir", str(a_file(t))],
        "--data-dir {t}/file: a file, not a folder of data sets",
    ),
    "--data-dir without the model's set": (
        lambda t: ["--data-dir", str(an_empty_folder(t))],
        "--data-dir {t}/empty: holds no MAESTRO for DynamicsEngine; train only the models it has data for "
        "(--models), or use --synthetic",
    ),
    "an unknown split in the index": (
        lambda t: ["--data-dir", str(maestro_index("dev")(t))],
        "{t}/data/maestro-v3.0.0.csv: line 2: unknown split 'dev' (known: train, validation, val, test)",
    ),
}


@pytest.mark.parametrize("case", ARGUMENT_CASES)
def test_a_bad_argument_is_refused_before_any_work(case, tmp_path, capsys):
    make, message = ARGUMENT_CASES[case]
    out = tmp_path / "ck"
    argv = train_argv(out) + make(tmp_path)  # a later --out replaces this one
    before = hashes(tmp_path)
    code = trainer_main(argv)
    assert (code, capsys.readouterr().err) == (2, f"error: {message.format(t=tmp_path)}\n")
    assert hashes(tmp_path) == before and not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_out_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir(mode=0o555)
    code = trainer_main(train_argv(out, "--synthetic"))
    assert (code, capsys.readouterr().err) == (2, f"error: --out {out}: cannot write there (Permission denied)\n")
    assert list(out.iterdir()) == []


def test_synthetic_and_a_data_dir_together_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        trainer_main(train_argv(tmp_path / "ck", "--synthetic", "--data-dir", str(tmp_path)))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.splitlines()[-1] == (
        f"python -m trainer train: error: --synthetic reads no data: leave out --data-dir {tmp_path}"
    )


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_the_known_splits_are_taken(split, tmp_path):
    """The index's own names pass (the control for the unknown split above)."""
    ((path, taken),) = data.dynamics.index(maestro_index(split)(tmp_path))
    assert (path.name, taken) == ("a.midi", split)


def test_a_folder_without_the_set_is_synthetic_only_when_not_required(tmp_path, caplog):
    ds = data.load("dynamics", tmp_path / "none", synthetic_steps=300, progress=False)
    assert ds.source == "synthetic" and "training on synthetic data instead" in caplog.text
    with pytest.raises(SuiteError, match=r"no MAESTRO found \(for the dynamics task\)") as err:
        data.load("dynamics", tmp_path / "none", synthetic_steps=300, progress=False, required=True)
    assert err.value.path == tmp_path / "none"
