"""build/models/manifest.json: what `make export` wrote, for every stage after it.

Bench, validate, the bindings and users read sizes, names, files and tolerances here rather than
from the generated C++. Engines are an axis of the document: `engines` names each engine's shared
files (its include folder, umbrella header and model table), and each model row gives its own files
and parity tolerance per engine, so another engine is another key, not another format.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from common import jsonfile
from common.errors import SuiteError

SCHEMA_ID = "rt-music-bench/manifest/3"
NAME = "manifest.json"
KERNELS = "rtmb_kernels.h"  # the generated engine's kernels, shipped in every export
MAX_BYTES = 64 << 20  # far above any real manifest: a larger file is refused before it is parsed


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(Path(__file__).with_name("manifest.schema.json").read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(models_dir: str | Path) -> dict:
    """The manifest of an export folder, checked against its schema; SuiteError names the file."""
    path = Path(models_dir) / NAME
    doc = jsonfile.read(path, MAX_BYTES, "manifest", "export the models first (make export)")
    jsonfile.check(doc, schema(), SCHEMA_ID, path)
    return doc


def schema_of(path: Path) -> str | None:
    """The schema a manifest says it follows, or None when it says none (read within bounds)."""
    doc = jsonfile.read(path, MAX_BYTES, "manifest")
    return doc.get("schema") if isinstance(doc, dict) and isinstance(doc.get("schema"), str) else None


def models(doc: dict) -> list[str]:
    """Model names (snake case) in export order: the order of every generated table."""
    return [m["name"] for m in doc["models"]]


def verify(models_dir: str | Path, doc: dict, names: list[str]) -> None:
    """Each named file is there and is what export wrote: a truncated or edited file is named here,
    not found later as a compiler error about some other file."""
    for name in names:
        path = Path(models_dir) / name
        if not path.is_file():
            raise SuiteError("missing from the export; export again (make export)", path)
        if sha256(path) != doc["sha256"].get(name):
            raise SuiteError("changed since export (its sha256 differs from manifest.json); export again", path)


def engine_files(doc: dict, engine: str) -> list[str]:
    """Every file an engine's program compiles, relative to the export folder (the headers of the
    models it runs: an engine may run only some of them)."""
    if engine not in doc["engines"]:
        raise SuiteError(f"no {engine} engine in this export; it has {', '.join(doc['engines'])}")
    shared = doc["engines"][engine]
    extra = [KERNELS] if engine.startswith("generated") else []
    headers = [m["engines"][engine]["header"] for m in doc["models"] if engine in m["engines"]]
    return [shared["umbrella"], shared["table"], *extra, *headers]
