"""Every file a stage reads is read within bounds (common/jsonfile.py): each tool fed a 100,000-deep
nested JSON, a symlink to /dev/zero, a FIFO or a file one byte over its kind's bound, in place of
one of its input files, stops with one line naming that file, exit 2, no traceback, and leaves its
inputs as they were; a folder of results skips such files, each named in a warning, and reports on
the rest. The tools run in a subprocess, so a reader that blocks on a FIFO fails the test (on the
hang guard's timeout) instead of hanging the suite."""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench import results
from common import jsonfile
from common.errors import SuiteError
from tests.conftest import ROOT
from tests.test_report import make_doc

DEEP = 100_000
# Only a guard against a reader that blocks (a FIFO read never returns): far above any tool's time
# to refuse a file, and never met unless something hangs.
HANG_GUARD_S = 600


def nested(path: Path) -> None:
    path.write_text("[" * DEEP + "]" * DEEP)


def device(path: Path) -> None:
    path.symlink_to("/dev/zero")


def fifo(path: Path) -> None:
    os.mkfifo(path)


def one_byte_over(bound: int):
    def make(path: Path) -> None:
        with path.open("wb") as f:
            f.truncate(bound + 1)  # sparse: the size is real, the disk holds nothing

    return make


NESTED = rf"nested deeper than {jsonfile.MAX_DEPTH} levels \(read as .+\)"


def not_regular(kind: str) -> str:
    return rf"not a regular file \({kind}\); only regular files are read"


def too_large(bound: int) -> str:
    return rf"{bound + 1:,} bytes: too large for .+ \(at most {bound:,}\)"


# Each bad file, for a kind of file of the given bound: how to make it, and what the line about it
# says after `error: <file>: `.
BAD = {
    "nested": lambda bound: (nested, NESTED),
    "device": lambda bound: (device, not_regular("a character device")),
    "fifo": lambda bound: (fifo, not_regular("a FIFO")),
    "over": lambda bound: (one_byte_over(bound), too_large(bound)),
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def export_with(exported: Path, inputs: Path, name: str, make) -> Path:
    """A copy of the export with its file `name` replaced by a bad one; a regular one is recorded in
    the manifest, so that the file's own reader, not the hash check before it, meets it."""
    models = inputs / "models"
    shutil.copytree(exported, models)
    (models / name).unlink()
    make(models / name)
    # (not the manifest itself, and not a file past the bound of the hash, which refuses it first)
    regular = (models / name).is_file() and not (models / name).is_symlink()
    if name != "manifest.json" and regular and (models / name).stat().st_size <= jsonfile.EXPORT_FILE_BYTES:
        doc = json.loads((models / "manifest.json").read_text())
        doc["sha256"][name] = sha256(models / name)
        (models / "manifest.json").write_text(json.dumps(doc, indent=2))
    return models / name


def good_result(folder: Path) -> Path:
    """A valid result of a target real boards run (bench boards needs one)."""
    folder.mkdir(parents=True, exist_ok=True)
    return results.write(make_doc(target="aarch64"), folder)


# kind -> (its bound, arrange(inputs, outputs, exported, make) -> (the bad file, the command)).
# Inputs go under `inputs` (checked unchanged afterwards), anything a tool may write under `outputs`.
def manifest_case(inputs, outputs, exported, make):
    return export_with(exported, inputs, "manifest.json", make), [
        "exporter", "validate", "--out", inputs / "models", "--no-rtneural", "--build-dir", outputs,
    ]  # fmt: skip


def model_case(inputs, outputs, exported, make):
    return export_with(exported, inputs, "dynamics_engine.json", make), [
        "exporter", "validate", "--out", inputs / "models", "--models", "dynamics_engine", "--no-rtneural",
        "--build-dir", outputs,
    ]  # fmt: skip


def vectors_case(inputs, outputs, exported, make):
    return export_with(exported, inputs, "dynamics_engine.vectors.json", make), [
        "exporter", "validate", "--out", inputs / "models", "--models", "dynamics_engine", "--no-rtneural",
        "--build-dir", outputs,
    ]  # fmt: skip


def result_case(inputs, outputs, exported, make):
    good_result(inputs)
    make(inputs / "named.json")
    return inputs / "named.json", ["bench", "boards", inputs / "named.json"]


def baseline_case(inputs, outputs, exported, make):
    current = good_result(inputs / "runs")
    (inputs / "baseline").mkdir()
    make(inputs / "baseline" / "baseline.json")
    return inputs / "baseline" / "baseline.json", ["bench", "compare", inputs / "baseline", current]


def layers_case(inputs, outputs, exported, make):
    good_result(inputs)
    make(inputs / "layers.json")
    return inputs / "layers.json", ["bench", "boards", "--layers", inputs / "layers.json"]


def index_case(inputs, outputs, exported, make):
    (inputs / "data").mkdir()
    (inputs / "data" / "notes.txt").write_text("a file of the data folder that must stay as it is\n")
    make(inputs / "data" / "info.csv")  # Groove MIDI's index
    return inputs / "data" / "info.csv", [
        "trainer", "train", "--models", "groove_predictor", "--data-dir", inputs / "data", "--out", outputs / "ck",
        "--no-progress",
    ]  # fmt: skip


def import_case(inputs, outputs, exported, make):
    shutil.copytree(exported, inputs / "models")  # the export it would join: untouched
    make(inputs / "amp.json")
    return inputs / "amp.json", ["exporter", "import", inputs / "amp.json", "--out", inputs / "models", "--no-validate"]


KINDS = {
    "manifest": (jsonfile.MANIFEST_BYTES, manifest_case),
    "model JSON": (jsonfile.MODEL_JSON_BYTES, model_case),
    # one byte over the vectors' bound is over the bound of any file an export lists: its hash refuses it
    "vectors": (jsonfile.VECTORS_BYTES, vectors_case),
    "result": (jsonfile.RESULT_BYTES, result_case),
    "baseline": (jsonfile.BASELINE_BYTES, baseline_case),
    "layers result": (jsonfile.RESULT_BYTES, layers_case),
    "data set index": (jsonfile.DATA_TABLE_BYTES, index_case),
    "importer input": (jsonfile.IMPORT_BYTES, import_case),
}
# A CSV index is not JSON: a 100,000-deep nest is a line longer than any CSV field may be.
CSV_NESTED = r"not a CSV text table \(field larger than field limit \(\d+\)\)"


def tool(argv: list, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m <tool> ...` from a folder outside the checkout, so nothing lands in it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", *map(str, argv)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S)


def snapshot(folder: Path) -> dict:
    """Every entry under `folder` as lstat sees it, without opening any (a FIFO would block)."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            entries[path] = ("link", os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            entries[path] = ("file", st.st_size, st.st_mtime_ns)
        else:
            entries[path] = (stat.S_IFMT(st.st_mode),)
    return entries


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_bad_stage_file_is_one_line_naming_it(kind, bad, exported, tmp_path):
    bound, arrange = KINDS[kind]
    make, message = BAD[bad](bound)
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    path, argv = arrange(inputs, outputs, exported, make)
    before = snapshot(inputs)

    done = tool(argv, tmp_path)

    expected = CSV_NESTED if (kind, bad) == ("data set index", "nested") else message
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(errors) == 1 and re.fullmatch(rf"error: {re.escape(str(path))}: {expected}", errors[0]), done.stderr
    assert snapshot(inputs) == before


# The bad files of a results folder, beside one good result, and what the warning about each says.
FOLDER = {
    **{f"{bad}.json": make(jsonfile.RESULT_BYTES) for bad, make in BAD.items()},
    "damaged.json": (lambda p: p.write_bytes(b'{"schema": \xff'), r"unreadable result \(.+\)"),
    "folder.json": (lambda p: p.mkdir(), not_regular("a folder")),
}


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "{runs}", "--out", "{out}", "--checkpoints", "{none}", "--models-dir", "{none}", "--peers", "{none}",
         "--layers", "{none}"],
        ["boards", "{runs}"],
        ["compare", "{good}", "{runs}"],
    ],
    ids=["report", "boards", "compare"],
)  # fmt: skip
def test_a_results_folder_skips_each_bad_file_by_name(argv, tmp_path):
    runs = tmp_path / "runs"
    good = good_result(runs)
    for name, (make, _) in FOLDER.items():
        make(runs / name)
    before = snapshot(runs)
    places = {"runs": runs, "good": good, "out": tmp_path / "report", "none": tmp_path / "none"}

    done = tool(["bench", *(a.format(**places) for a in argv)], tmp_path)

    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    for name, (_, message) in FOLDER.items():
        line = rf"warning: skipped {re.escape(str(runs / name))}: {message}"
        # once: bench report reads the folder once for its pages and its gate alike
        assert sum(bool(re.fullmatch(line, w)) for w in warnings) == 1, (name, done.stderr)
    assert str(good) not in done.stderr  # the good one is read, not skipped
    assert snapshot(runs) == before
    if argv[0] == "report":
        assert (tmp_path / "report" / "README.md").is_file()


# --- the reader itself ---------------------------------------------------------------------------


READ_BOUND = 8192  # above every document below but the /proc one (a Python process's map: tens of KB)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text(deep(jsonfile.MAX_DEPTH)), None),  # as deep as allowed: read
        (lambda p: p.write_text(deep(jsonfile.MAX_DEPTH + 1)), "nested deeper than"),
        (lambda p: (p.with_name("real.json").write_text("[]"), p.symlink_to("real.json")), None),  # a link to a file
        (lambda p: p.symlink_to("/dev/urandom"), r"not a regular file \(a character device\)"),
        (lambda p: p.symlink_to("nowhere.json"), "missing: no such result"),  # a dangling link
        # /proc reports a size of 0 for a file that holds more: the bound is what is read, not what is said
        (lambda p: p.symlink_to("/proc/self/maps"), f"more than {READ_BOUND:,} bytes: too large for result"),
        (lambda p: p.write_text("1" * 5000), "unreadable result"),  # more digits than Python converts
        (lambda p: p.write_bytes(b"[\xff]"), "unreadable result"),
    ],
    ids=["at-max-depth", "one-deeper", "symlink-to-file", "urandom", "dangling", "proc-size-0", "digits", "not-utf8"],
)
def test_the_reader(tmp_path, make, message):
    path = tmp_path / "r.json"
    make(path)
    if message is None:
        assert jsonfile.read(path, READ_BOUND, "result", "no such result") is not None
        return
    with pytest.raises(SuiteError, match=message) as err:
        jsonfile.read(path, READ_BOUND, "result", "no such result")
    assert err.value.path == path


def test_a_document_made_in_memory_is_bounded_before_schema_validation():
    doc = []
    for _ in range(DEEP):
        doc = [doc]
    with pytest.raises(SuiteError, match=f"nested deeper than {jsonfile.MAX_DEPTH} levels"):
        jsonfile.check(doc, {"type": "array"}, "test/1", "doc")


def test_a_hash_reads_within_bounds(tmp_path):
    os.mkfifo(tmp_path / "f")
    with pytest.raises(SuiteError, match=r"not a regular file \(a FIFO\)"):
        jsonfile.sha256(tmp_path / "f", 1 << 20, "exported file")
    (tmp_path / "g").write_bytes(b"abc")
    assert jsonfile.sha256(tmp_path / "g", 3, "exported file") == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(SuiteError, match=r"3 bytes: too large for exported file \(at most 2\)"):
        jsonfile.sha256(tmp_path / "g", 2, "exported file")
