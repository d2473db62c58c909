"""Writes never destroy what they were not asked to, and every argument is checked before any work:
no command writes onto (or into) one of its inputs; SIGTERM cleans up as Ctrl-C does, and what a
killed writer left is swept; --out through a symbolic link keeps the link; a full disk names the
file; every count and number flag is bounded; bad test vectors and a manifest whose rows do not
match its models are refused as bad files, naming the file and the key or model."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import baseline, targets
from bench import cli as bench_cli
from bench import run as bench_run
from common import atomic, cli, layout, manifest
from common.errors import SuiteError
from exporter import cli as exporter_cli
from exporter import importer, vectors
from exporter.cli import main as exporter_main
from tests.conftest import ROOT
from trainer.cli import main as trainer_main

RESULT = ROOT / "reports" / "runs" / "20261124T235947Z-x86-eigen.json"  # a committed result
BASELINE = ROOT / "reports" / "baseline" / "baseline.json"


def dense(seed: int) -> dict:
    """An RTNeural model JSON of one dense layer, 4 -> 2: an import takes it in half a second."""
    w = [[round(0.1 * ((seed + i * 2 + j) % 7) - 0.3, 3) for j in range(2)] for i in range(4)]
    layer = {"type": "dense", "activation": "tanh", "shape": [None, None, 2], "weights": [w, [0.01, -0.02]]}
    return {"in_shape": [None, None, 4], "layers": [layer]}


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """An export folder of two imported models (dense_a, dense_b), 256 steps of test vectors each."""
    root = tmp_path_factory.mktemp("export")
    for name, seed in (("dense_a", 1), ("dense_b", 2)):
        (root / f"{name}.json").write_text(json.dumps(dense(seed)))
    files = [str(root / "dense_a.json"), str(root / "dense_b.json")]
    assert exporter_main(["import", *files, "--out", str(root / "models"), "--no-validate"]) == 0
    return root / "models"


def copy_of(export: Path, tmp_path: Path) -> Path:
    out = tmp_path / "models"
    shutil.copytree(export, out)
    return out


def rehash(models: Path, name: str) -> None:
    doc = json.loads((models / manifest.NAME).read_text())
    doc["sha256"][name] = manifest.sha256(models / name)
    (models / manifest.NAME).write_text(json.dumps(doc))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (names relative to it) with its bytes; hidden entries included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- a command never writes onto its own input ----------------------------------------------------


def workspace(tmp_path: Path) -> Path:
    """Inputs to aim outputs at: a baseline folder, a folder of runs, a model file, checkpoints."""
    (tmp_path / "baseline").mkdir()
    shutil.copy(BASELINE, tmp_path / "baseline" / "baseline.json")
    (tmp_path / "runs").mkdir()
    shutil.copy(RESULT, tmp_path / "runs" / "run.json")
    (tmp_path / "model.json").write_text(json.dumps(dense(3)))
    (tmp_path / "checkpoints" / "dense").mkdir(parents=True)
    (tmp_path / "checkpoints" / "dense" / "best.pt").write_bytes(b"weights")
    (tmp_path / "set.json").write_text("{}")
    return tmp_path


def bench(*argv: str) -> int:
    return bench_cli.main(list(argv))


def exporter(*argv: str) -> int:
    return exporter_main(list(argv))


def trainer(*argv: str) -> int:
    return trainer_main(list(argv))


ONTO_INPUT = [  # (tool, arguments with {t} for the workspace, the message after "error: ")
    (
        bench,
        "compare {t}/baseline {t}/runs --markdown {t}/baseline/baseline.json",
        "--markdown {t}/baseline/baseline.json: lies inside BASELINE {t}/baseline, an input of this command",
    ),
    (
        bench,
        "compare {t}/baseline/baseline.json {t}/runs --junit {t}/baseline/baseline.json",
        "--junit {t}/baseline/baseline.json: is BASELINE {t}/baseline/baseline.json, an input of this command",
    ),
    (
        bench,
        "compare {t}/baseline {t}/runs/run.json --markdown {t}/runs/run.json",
        "--markdown {t}/runs/run.json: is CURRENT {t}/runs/run.json, an input of this command",
    ),
    (
        bench,
        "compare {t}/baseline {t}/runs --markdown {t}/gate.md --junit {t}/gate.md",
        "--markdown {t}/gate.md: is --junit {t}/gate.md, another output of this command",
    ),
    (
        bench,
        "report {t}/runs --out {t}/runs",
        "--out {t}/runs/README.md: lies inside RUNS {t}/runs, an input of this command",
    ),
    (
        bench,
        "report {t}/runs --out {t} --checkpoints {t}/plots",
        "--out {t}/plots: is --checkpoints {t}/plots, an input of this command",
    ),
    (
        bench,
        "export {t}/runs/run.json --format bmf --out {t}/runs/run.json",
        "--out {t}/runs/run.json: is RUNS {t}/runs/run.json, an input of this command",
    ),
    (
        bench,
        "export {t}/runs --format bmf --out {t}/runs/export.json",
        "--out {t}/runs/export.json: lies inside RUNS {t}/runs, an input of this command",
    ),
    (
        bench,
        "baseline update {t}/baseline --reason x",
        "the baseline {t}/baseline/baseline.json: lies inside RUNS {t}/baseline, an input of this command",
    ),
    (
        bench,
        "layers --set {t}/set.json --work {t}/runs --out {t}/runs/layers",
        "--work {t}/runs: would replace a folder holding --out {t}/runs/layers, another output of this command",
    ),
    (
        bench,
        "layers --set {t}/runs/set.json --work {t}/runs --out {t}/layers",
        "--work {t}/runs: would replace a folder holding --set {t}/runs/set.json, an input of this command",
    ),
    (
        exporter,
        "import {t}/model.json --out {t}/model.json",
        "--out {t}/model.json: is FILE {t}/model.json, an input of this command",
    ),
    (
        exporter,
        "import {t}/runs/run.json --out {t}/runs",
        "--out {t}/runs: would replace a folder holding FILE {t}/runs/run.json, an input of this command",
    ),
    (
        exporter,
        "export --out {t}/checkpoints --checkpoints {t}/checkpoints/dense",
        "--out {t}/checkpoints: would replace a folder holding --checkpoints {t}/checkpoints/dense, an input",
    ),
    (
        exporter,
        "export --out {t}/checkpoints/dense/export --checkpoints {t}/checkpoints",
        "--out {t}/checkpoints/dense/export: lies inside --checkpoints {t}/checkpoints, an input",
    ),
    (
        exporter,
        "subset --models dense --from {t}/runs --out {t}/runs",
        "--out {t}/runs: is --from {t}/runs, an input of this command",
    ),
]


@pytest.mark.parametrize("tool, argv, message", ONTO_INPUT)
def test_a_write_onto_an_input_is_refused_before_any_work(tool, argv, message, tmp_path, monkeypatch, capsys):
    t = workspace(tmp_path)
    monkeypatch.setattr(baseline, "PATH", t / "baseline" / "baseline.json")  # not the project's own
    before = snapshot(t)
    assert tool(*argv.format(t=t).split()) == cli.USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message.format(t=t)}") and err.count("\n") == 1, err
    assert snapshot(t) == before  # every input byte-identical, nothing written


# --- SIGTERM, and what kill -9 leaves ---------------------------------------------------------------

# The import under test, with each file's fsync made as slow as a stalled disk: the export then
# stands mid-write, its temp folder on disk, until the signal comes. Only the disk is simulated.
STALLED_DISK = """
import os, sys, time
os.fsync = lambda fd: time.sleep(3600)
from exporter.cli import main
sys.exit(main(sys.argv[1:]))
"""


def temp_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_sigterm_mid_export_leaves_no_temp_folder_and_the_old_one_whole(export, tmp_path):
    out = copy_of(export, tmp_path)
    before = snapshot(out)
    (tmp_path / "dense_c.json").write_text(json.dumps(dense(5)))
    (tmp_path / "stalled.py").write_text(STALLED_DISK)
    command = [sys.executable, str(tmp_path / "stalled.py"), "import", str(tmp_path / "dense_c.json")]
    proc = subprocess.Popen(
        [*command, "--out", str(out), "--no-validate"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300  # against a hang only: the folder appears within seconds
        while not temp_entries(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert temp_entries(out), "the export never stood mid-write"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == cli.TERMINATED, err
    assert err.strip().splitlines()[-1] == f"terminated: {out} is as it was before this command"
    assert "Traceback" not in err
    assert temp_entries(out) == [] and snapshot(out) == before


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


WRITERS = [  # (what is written, how)
    ("folder", lambda path: atomic.replace_folder(path, {"a.txt": b"new"})),
    ("file", lambda path: atomic.write_text(path, "new")),
    ("new file", lambda path: atomic.write_new(path, b"new")),
]


@pytest.mark.parametrize("write", [w for _, w in WRITERS], ids=[kind for kind, _ in WRITERS])
def test_temps_a_killed_writer_left_are_swept_and_a_live_ones_kept(write, tmp_path):
    path = tmp_path / "target"
    stale = [f".target.{dead_pid()}.k9k9k9k9{atomic.TEMP}", f".target.{dead_pid()}.k9k9k9k9{atomic.OLD}"]
    # kept: a live writer's, a name without a process id, another path's (however dead its writer)
    live = [f".target.{os.getppid()}.alive000{atomic.TEMP}", ".target.nopid.tmp", f".targetx.{dead_pid()}.k9.tmp"]
    for name in stale + live:
        (tmp_path / name).mkdir()
        (tmp_path / name / "half.bin").write_bytes(b"\0" * 1024)
    write(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*live, "target"])


# --- --out through a symbolic link ----------------------------------------------------------------


@pytest.mark.parametrize("dangling", [False, True], ids=["link", "dangling link"])
def test_an_export_through_a_linked_out_keeps_the_link(dangling, tmp_path):
    (tmp_path / "model.json").write_text(json.dumps(dense(3)))
    target = tmp_path / "real"
    if not dangling:
        target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target.name)
    assert exporter("import", str(tmp_path / "model.json"), "--out", str(link), "--no-validate") == 0
    assert link.is_symlink() and os.readlink(link) == target.name
    assert (target / manifest.NAME).is_file() and manifest.load(link)["models"][0]["name"] == "model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "model.json", "real"]


def test_a_file_written_through_a_link_keeps_it(tmp_path):
    (tmp_path / "export.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("export.txt")
    assert bench("export", str(RESULT), "--format", "bmf", "--out", str(tmp_path / "link.txt")) == 0
    assert (tmp_path / "link.txt").is_symlink() and json.loads((tmp_path / "export.txt").read_text())


# --- a full disk names the file ---------------------------------------------------------------------


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def bench_export(tmp_path: Path) -> tuple[Path, int]:
    out = tmp_path / "export.json"
    return out, bench("export", str(RESULT), "--format", "bmf", "--out", str(out))


def exporter_import(tmp_path: Path) -> tuple[Path, int]:
    out = tmp_path / "models"
    return out / "dense_a.json", exporter("import", str(tmp_path / "dense_c.json"), "--out", str(out), "--no-validate")


FULL_DISK = [  # (where the disk fills, the command, the file it names)
    ("pathlib.Path.write_bytes", bench_export),
    ("os.fsync", bench_export),
    ("pathlib.Path.write_bytes", exporter_import),
    ("os.fsync", exporter_import),
]


@pytest.mark.parametrize("where, command", FULL_DISK, ids=[f"{c.__name__}-{w}" for w, c in FULL_DISK])
def test_a_full_disk_names_the_file_and_keeps_the_old_one(where, command, export, tmp_path, monkeypatch, capsys):
    shutil.copytree(export, tmp_path / "models")
    (tmp_path / "export.json").write_text("old")
    (tmp_path / "dense_c.json").write_text(json.dumps(dense(5)))
    before = snapshot(tmp_path)
    monkeypatch.setattr(where, full_disk)
    named, code = command(tmp_path)
    monkeypatch.undo()
    assert code == cli.USER_ERROR
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {named}: No space left on device"
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "dense_c.json",
        "export.json",
        "models",
    ]


def test_a_new_file_on_a_full_disk_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("os.fsync", full_disk)
    path = tmp_path / "result.json"
    assert cli.guard(lambda: atomic.write_new(path, b"{}")) == cli.USER_ERROR
    assert capsys.readouterr().err == f"error: {path}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []


# --- SIGTERM says what was kept, as Ctrl-C does -------------------------------------------------------


@pytest.mark.parametrize(
    "signal_, code, word", [(KeyboardInterrupt, cli.INTERRUPTED, "interrupted"), (cli.Terminated, 143, "terminated")]
)
def test_a_stopped_run_says_what_it_kept(signal_, code, word, monkeypatch, tmp_path, capsys):
    def stopped(options, saved):
        saved.append(tmp_path / "first.json")
        raise signal_()

    monkeypatch.setattr(bench_run, "run", stopped)
    assert bench("run", "--target", "x86", "--out", str(tmp_path)) == code
    assert f"{word}: 1 result(s) saved; the run in progress was not saved" in capsys.readouterr().err


# --- every count and number flag is bounded ------------------------------------------------------------

LIMIT = targets.get("x86").max_blocks
M7_LIMIT = targets.get("cortex-m7").max_blocks
RUN = ["run", "--target", "x86"]
BEYOND = [  # (tool, arguments, the message)
    (bench, [*RUN, "--warmup", "10000000000"], "argument --warmup: 10000000000 is more than x86 runs as warm-up"),
    (bench, [*RUN, "--warmup", str(2**64 + 1)], f"argument --warmup: {2**64 + 1} is more than x86 runs as warm-up"),
    (bench, [*RUN, "--warmup", str(LIMIT + 1)], f"argument --warmup: {LIMIT + 1} is more than x86 runs as warm-up"),
    (bench, [*RUN, "--warmup", "-1"], "argument --warmup: -1 is out of range: give at least 0"),
    (bench, [*RUN, "--blocks", str(LIMIT + 1)], f"argument --blocks: {LIMIT + 1} is more than x86 records"),
    (bench, [*RUN, "--blocks", "0"], "argument --blocks: 0 is out of range"),
    (bench, [*RUN, "--cold", str(LIMIT + 1)], f"argument --cold: {LIMIT + 1} is more than x86 records cold"),
    (bench, [*RUN, "--cold", "-1"], "argument --cold: -1 is out of range"),
    (bench, ["run", "--target", "cortex-m7", "--warmup", str(M7_LIMIT + 1)], "is more than cortex-m7 runs as warm-up"),
    (bench, ["run", "--target", "all", "--warmup", str(LIMIT + 1)], "is more than any target (x86) runs as warm-up"),
    (bench, [*RUN, "--block-size", str(layout.MAX_BLOCK_SIZE + 1)], "argument --block-size: 4097 is out of range"),
    (bench, [*RUN, "--block-size", "0"], "argument --block-size: 0 is out of range"),
    (bench, [*RUN, "--sample-rate", str((1 << 24) + 1)], "argument --sample-rate: 16777217 is out of range"),
    (bench, [*RUN, "--sample-rate", "0"], "argument --sample-rate: 0 is out of range"),
    (bench, [*RUN, "--device", "a@b", "--connect-timeout", "nan"], "argument --connect-timeout: nan is not a finite"),
    (bench, [*RUN, "--device", "a@b", "--connect-timeout", "0"], "argument --connect-timeout: 0 is out of range"),
    (bench, [*RUN, "--device", "a@b", "--connect-timeout", "61"], "argument --connect-timeout: 61 is out of range"),
    (bench, ["compare-engines", "--blocks", str(LIMIT + 1)], f"argument --blocks: {LIMIT + 1} is more than x86"),
    (bench, ["compare-engines", "--cold", str(LIMIT + 1)], f"argument --cold: {LIMIT + 1} is more than x86"),
    (bench, ["compare", "a", "b", "--threshold", "-5"], "argument --threshold: -5 is out of range: give a number"),
    (bench, ["compare", "a", "b", "--threshold", "nan"], "argument --threshold: nan is not a finite number"),
    (bench, ["compare", "a", "b", "--threshold", "inf"], "argument --threshold: inf is not a finite number"),
    (bench, ["compare", "a", "b", "--threshold", "1000.5"], "argument --threshold: 1000.5 is out of range"),
    (bench, ["compare", "a", "b", "--threshold", "x"], "argument --threshold: 'x' is not a number"),
    (bench, ["layers", "--seconds", "nan"], "argument --seconds: nan is not a finite number"),
    (bench, ["layers", "--seconds", "0"], "argument --seconds: 0 is out of range: give a number above 0"),
    (bench, ["layers", "--seconds", "600.5"], "argument --seconds: 600.5 is out of range"),
    (bench, ["layers", "--rounds", "0"], "argument --rounds: 0 is out of range"),
    (bench, ["layers", "--rounds", "1001"], "argument --rounds: 1001 is out of range"),
    (exporter, ["import", "m.json", "--seconds", "nan"], "argument --seconds: nan is not a finite number"),
    (exporter, ["import", "m.json", "--seconds", "0"], "argument --seconds: 0 is out of range"),
    (exporter, ["import", "m.json", "--seconds", "60.5"], "argument --seconds: 60.5 is out of range"),
    (trainer, ["train", "--seed", str(2**32)], f"argument --seed: {2**32} is out of range"),
]


@pytest.mark.parametrize("tool, argv, message", BEYOND, ids=[" ".join(a[1:]) for _, a, _ in BEYOND])
def test_a_flag_beyond_its_bounds_is_refused_before_any_work(tool, argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        tool(*argv, *(["--out", str(tmp_path / "out")] if argv[0] in ("run", "train") else []))
    assert stop.value.code == cli.USER_ERROR
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


AT_BOUNDS = [  # flags at their bounds: parsed, and bench run's checks pass
    (bench_cli, [*RUN, "--warmup", str(LIMIT), "--blocks", str(LIMIT), "--cold", str(LIMIT)]),
    (bench_cli, [*RUN, "--warmup", "0", "--blocks", "1", "--cold", "0", "--block-size", "1", "--sample-rate", "1"]),
    (bench_cli, [*RUN, "--block-size", str(layout.MAX_BLOCK_SIZE), "--sample-rate", str(1 << 24)]),
    (bench_cli, [*RUN, "--device", "a@b", "--connect-timeout", str(bench_cli.MAX_CONNECT_TIMEOUT)]),
    (bench_cli, ["run", "--target", "all", "--warmup", str(LIMIT)]),
    (bench_cli, ["compare", "a", "b", "--threshold", "0"]),
    (bench_cli, ["compare", "a", "b", "--threshold", str(bench_cli.MAX_THRESHOLD)]),
    (bench_cli, ["layers", "--seconds", str(bench_cli.LAYERS_MAX_SECONDS), "--rounds", "1"]),
    (bench_cli, ["layers", "--seconds", "1e-9", "--rounds", str(bench_cli.LAYERS_MAX_ROUNDS)]),
    (exporter_cli, ["import", "m.json", "--seconds", str(exporter_cli.MAX_SECONDS)]),
]


@pytest.mark.parametrize("module, argv", AT_BOUNDS, ids=[" ".join(a) for _, a in AT_BOUNDS])
def test_a_flag_at_its_bounds_is_taken(module, argv):
    args = module.create_parser().parse_args(argv)
    if argv[0] == "run":
        bench_run.check(bench_run.Options.from_args(args))


# --- test vectors and manifest rows are checked as files ------------------------------------------------


def validate(models: Path, tmp_path: Path) -> int:
    checks = ["--no-rtneural", "--checkpoints", str(tmp_path / "none"), "--build-dir", str(tmp_path / "check")]
    return exporter("validate", "--out", str(models), *checks)


def short(doc: dict) -> None:
    for key in ("inputs", "outputs"):
        doc[key] = doc[key][:3]
    doc["engines"] = {k: v[:3] for k, v in doc["engines"].items()}


def put_row(engine: str, i: int, value):
    def damage(doc: dict) -> None:
        doc["engines"][engine][i] = value

    return damage


def put(key: str, i: int, j: int, value):
    def damage(doc: dict) -> None:
        doc[key][i][j] = value

    return damage


VECTORS = [  # (damage, the message after the file's name)
    (short, vectors.too_few(3)),
    (put("outputs", 5, 1, "0.5"), 'outputs[5][1] is a string "0.5", not a number'),
    (put("inputs", 0, 3, True), "inputs[0][3] is a boolean true, not a number"),
    (put("inputs", 2, 0, None), "inputs[2][0] is null, not a number"),
    (put_row("generated-f16", 7, {"x": 1}), 'engines.generated-f16[7] is an object {"x": 1}, not a row of numbers'),
]


@pytest.mark.parametrize("damage, message", VECTORS, ids=[m.split(",")[0] for _, m in VECTORS])
def test_bad_test_vectors_are_a_bad_file_not_a_parity_failure(damage, message, export, tmp_path, capsys):
    models = copy_of(export, tmp_path)
    path = models / "dense_b.vectors.json"
    doc = json.loads(path.read_text())
    damage(doc)
    path.write_text(json.dumps(doc))
    rehash(models, path.name)  # as if export had written it so: the content is what is checked
    assert validate(models, tmp_path) == cli.USER_ERROR
    assert capsys.readouterr().err == f"error: {path}: {message}\n"
    assert not (tmp_path / "check").exists()  # refused before anything was compiled


def test_an_import_too_short_for_test_vectors_is_refused(tmp_path, capsys):
    (tmp_path / "amp.json").write_text(json.dumps(dense(1)))
    steps = round(0.001 * importer.DEFAULT_SAMPLE_RATE)  # --seconds 0.001 of test signal
    argv = [
        "import",
        str(tmp_path / "amp.json"),
        "--rate",
        "sample",
        "--seconds",
        "0.001",
        "--out",
        str(tmp_path / "m"),
    ]
    assert exporter(*argv) == cli.USER_ERROR
    assert capsys.readouterr().err.splitlines()[-1] == f"error: model amp: {vectors.too_few(steps)}"
    assert not (tmp_path / "m").exists()


def drop_row(doc: dict) -> None:
    doc["models"] = [m for m in doc["models"] if m["name"] != "dense_b"]


def add_row(doc: dict) -> None:
    doc["models"].append({**doc["models"][0], "name": "ghost", "model": "ghost"})


def twice(doc: dict) -> None:
    doc["models"].append(doc["models"][0])


ROWS = [  # (change to the manifest, the message after its name)
    (drop_row, "model dense_b has no row, yet the export holds its files (dense_b.vectors.json)"),
    (add_row, "model ghost is not a model of this export (its files are not among those export wrote: no ghost.json)"),
    (twice, "model dense_a has 2 rows"),
]


@pytest.mark.parametrize("change, message", ROWS, ids=["missing row", "unknown row", "row twice"])
def test_a_manifest_whose_rows_are_not_its_models_is_refused(change, message, export, tmp_path, capsys):
    models = copy_of(export, tmp_path)
    doc = json.loads((models / manifest.NAME).read_text())
    change(doc)
    (models / manifest.NAME).write_text(json.dumps(doc))
    assert validate(models, tmp_path) == cli.USER_ERROR
    assert capsys.readouterr().err == f"error: {models / manifest.NAME}: {message}; export again (make export)\n"
    with pytest.raises(SuiteError, match=re.escape(message)):
        manifest.load(models)  # bench, the bindings and pio read it through the same function
    assert not (tmp_path / "check").exists()
