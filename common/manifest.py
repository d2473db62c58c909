"""build/models/manifest.json: what `make export` wrote, for every stage after it.

Bench, validate, the bindings and users read sizes, names, files and tolerances here rather than
from the generated C++. Engines are an axis of the document: `engines` names each engine's shared
files (its include folder, umbrella header and model table), and each model row gives its own files
and parity tolerance per engine, so another engine is another key, not another format.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from common import jsonfile, layout
from common.errors import SuiteError

SCHEMA_ID = "rt-music-bench/manifest/3"
NAME = "manifest.json"
KERNELS = "rtmb_kernels.h"  # the generated engine's kernels, shipped in every export


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(Path(__file__).with_name("manifest.schema.json").read_text())


def sha256(path: Path) -> str:
    """The sha256 of a file an export lists, read within bounds (a regular file only)."""
    return jsonfile.sha256(path, jsonfile.EXPORT_FILE_BYTES, "exported file", "export again (make export)")


def load(models_dir: str | Path) -> dict:
    """The manifest of an export folder, checked against its schema; SuiteError names the file."""
    path = Path(models_dir) / NAME
    doc = jsonfile.read(path, jsonfile.MANIFEST_BYTES, "manifest", "export the models first (make export)")
    jsonfile.check(doc, schema(), SCHEMA_ID, path)
    check_tolerances(doc, path)
    check_rows(doc, path)
    return doc


# A model's own files, named after it (exporter/folder.py): the two every other file is derived from.
MODEL_FILES = {"json": ".json", "vectors": ".vectors.json"}


def check_rows(doc: dict, path: Path) -> None:
    """A row for every model the export holds and none for another: a model is its own files, named
    after it and hashed in `sha256` when export wrote them. SuiteError names the file and the model:
    a row dropped by hand left its model in every engine's table (tables are derived from the rows
    when written), and a row added ran a model that was never exported, both as if nothing were
    amiss."""
    rows = [m["name"] for m in doc["models"]]
    for name in rows:
        if rows.count(name) > 1:
            raise SuiteError(f"model {name} has {rows.count(name)} rows; export again (make export)", path)
    for m in doc["models"]:
        for kind, suffix in MODEL_FILES.items():
            own = m["name"] + suffix
            if m["files"][kind] != own or own not in doc["sha256"]:
                raise SuiteError(
                    f"model {m['name']} is not a model of this export (its files are not among those export "
                    f"wrote: no {own}); export again (make export)",
                    path,
                )
    suffix = MODEL_FILES["vectors"]
    held = [f.removesuffix(suffix) for f in doc["sha256"] if f.endswith(suffix)]
    for name in held:
        if name not in rows:
            raise SuiteError(
                f"model {name} has no row, yet the export holds its files ({name}{suffix}); export again (make export)",
                path,
            )


def tolerance_problem(value) -> str | None:
    """What is wrong with a parity tolerance, or None: it must be a finite number above 0 and no
    looser than the bar, layout.PARITY_TOLERANCE (a tolerance of Infinity, or 1e30, passes any
    error). The bar holds for every engine: each one's parity is taken against its own expected
    outputs (a rounded engine's: the reference runtime on its rounded weights)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"tolerance {json.dumps(value)} is not a finite number"
    if not value > 0:
        return f"tolerance {json.dumps(value)} is not above 0"
    if value > layout.PARITY_TOLERANCE:
        return f"tolerance {json.dumps(value)} is looser than the bar {layout.PARITY_TOLERANCE:g} (common/layout.py)"
    return None


def check_tolerances(doc: dict, path: Path) -> None:
    """SuiteError naming the file, the model and the value of the first tolerance that is wrong."""
    for m in doc["models"]:
        for engine, e in m["engines"].items():
            problem = tolerance_problem(e["tolerance"])
            if problem:
                raise SuiteError(f"model {m['name']}, engine {engine}: {problem}", path)


def schema_of(path: Path) -> str | None:
    """The schema a manifest says it follows, or None when it says none (read within bounds)."""
    doc = jsonfile.read(path, jsonfile.MANIFEST_BYTES, "manifest")
    return doc.get("schema") if isinstance(doc, dict) and isinstance(doc.get("schema"), str) else None


def models(doc: dict) -> list[str]:
    """Model names (snake case) in export order: the order of every generated table."""
    return [m["name"] for m in doc["models"]]


def changed(path: Path, recorded: str | None) -> str | None:
    """Why an export's file is not the one export wrote (`recorded`: its sha256 in the manifest),
    or None when it is."""
    if not Path(path).exists():  # anything else there (a FIFO, a device) is refused by sha256, naming it
        return "missing from the export; export again (make export)"
    got = sha256(path)
    if got != recorded:
        expected = "none recorded in manifest.json" if recorded is None else recorded
        return f"changed since export: sha256 {got} expected {expected}; export again (make export)"
    return None


def verify(models_dir: str | Path, doc: dict, names: list[str]) -> None:
    """Each named file is there and is what export wrote: a truncated or edited file is named here,
    not found later as a compiler error about some other file."""
    for name in names:
        path = Path(models_dir) / name
        problem = changed(path, doc["sha256"].get(name))
        if problem:
            raise SuiteError(problem, path)


def engine_files(doc: dict, engine: str) -> list[str]:
    """Every file an engine's program compiles, relative to the export folder (the headers of the
    models it runs: an engine may run only some of them)."""
    if engine not in doc["engines"]:
        raise SuiteError(f"no {engine} engine in this export; it has {', '.join(doc['engines'])}")
    shared = doc["engines"][engine]
    extra = [KERNELS] if engine.startswith("generated") else []
    headers = [m["engines"][engine]["header"] for m in doc["models"] if engine in m["engines"]]
    return [shared["umbrella"], shared["table"], *extra, *headers]
