"""`bench layers` results beside `bench run`'s: told apart by their schema wherever result files are
read (a folder may hold both), the newest per target, and their gated figures: instructions per
sample of each layer on each generated engine (callgrind's on x86, QEMU -icount's where counted),
exact and independent of the machine's load. RTNeural's backends are measured, never gated: CI has
no RTNeural, and the gate is about this project's code."""

from __future__ import annotations

from pathlib import Path

from bench import layers, results
from bench.figures import Figure
from common import engines, jsonfile
from common.errors import SuiteError

METRIC = "instructions_per_sample"
PREFIX = "layers/"  # a layer's figures are named layers/<layer>: apart from the run models' names
RUNS, LAYERS = "runs", "layers"


def load_all(paths: list[Path]) -> tuple[list[dict], list[dict], list[str]]:
    """Run results and layers results among `paths` (files, or folders of `*.json`). A file of a
    folder that is neither (damaged, too large, too deeply nested, a FIFO, a device) is skipped with a
    warning naming it, so one bad file never hides the others; a file named directly that is neither
    is the error."""
    runs, layer_docs, warnings = [], [], []
    for path in map(Path, paths):
        if not path.exists():
            raise SuiteError("no such file or folder", path)
        if not path.is_dir():
            kind, doc = load_one(path)
            (layer_docs if kind == LAYERS else runs).append(doc)
            continue
        for file in sorted(path.glob("*.json")):
            try:
                kind, doc = load_one(file)
            except SuiteError as exc:
                warnings.append(f"skipped {exc}")
                continue
            (layer_docs if kind == LAYERS else runs).append(doc)
    return runs, layer_docs, warnings


def load_one(file: Path) -> tuple[str, dict]:
    """(RUNS or LAYERS, the document) of a result file, read within bounds and checked."""
    doc = jsonfile.read(file, jsonfile.RESULT_BYTES, "result", "no such result")
    if isinstance(doc, dict) and doc.get("schema") == layers.SCHEMA_ID:
        layers.validate(doc, file)
        return LAYERS, doc
    if not isinstance(doc, dict):
        raise SuiteError("not a result document (not a JSON object)", file)
    results.validate(doc, file)
    return RUNS, results.upgrade(doc)


def latest(docs: list[dict]) -> list[dict]:
    """The newest layers result of each target (one run: its ratios were taken in one process)."""
    newest = {}
    for doc in sorted(docs, key=lambda d: d["created"]):
        newest[doc["target"]["name"]] = doc
    return [newest[k] for k in sorted(newest)]


def provenance(doc: dict) -> str:
    """Compiler, flags, the counting tool and what a count spans: per-sample counts taken over other
    blocks are not comparable (a block's fixed cost is spread over its samples)."""
    build, c = doc["build"], doc["config"]
    return (
        f"{build['compiler']} {' '.join(build['flags'])} | {doc['counter']} | "
        f"{c['counted_blocks']} blocks of {c['block_size']}"
    )


def figures_of(doc: dict) -> list[Figure]:
    """The gated figures of one layers result: instructions per sample, per layer and generated engine."""
    target, where = doc["target"]["name"], provenance(doc)
    return [
        Figure(target, engine, PREFIX + layer["name"], METRIC, f["instructions_per_sample"], where)
        for layer in doc["layers"]
        for engine, f in layer["engines"].items()
        if engines.is_generated(engine) and f["instructions_per_sample"] is not None
    ]


def scope(f: Figure) -> tuple[str, str, str]:
    """What a run replaces in the baseline and what the gate compares: a target and engine's figures
    from `bench run`, or from `bench layers`, apart, so either can be measured (or updated) alone."""
    return (f.target, f.engine, LAYERS if f.model.startswith(PREFIX) else RUNS)
