"""reports/baseline/baseline.json: the gated figures a change is compared with, keyed by target,
engine, model and metric, each with its provenance: `bench run`'s and `bench layers`' (models
`layers/<layer>`). It changes only through `bench baseline update --reason "..."`, which records why
and says what it replaced."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from bench.figures import Figure
from bench.layer_results import scope
from common import atomic, jsonfile, layout
from common.errors import SuiteError

SCHEMA_ID = "rt-music-bench/baseline/1"
PATH = layout.PROJECT / "reports" / "baseline" / "baseline.json"
MAX_BYTES = 16 << 20


@cache
def schema() -> dict:
    return json.loads(Path(__file__).with_name("baseline.schema.json").read_text())


def is_baseline(path: Path) -> bool:
    path = Path(path)
    return (path / PATH.name).is_file() if path.is_dir() else path.name == PATH.name


def load(path: Path | None = None) -> tuple[list[Figure], dict]:
    path = Path(path or PATH)
    if path.is_dir():
        path = path / PATH.name
    doc = jsonfile.read(path, MAX_BYTES, "baseline", "make one with bench baseline update --reason ...")
    jsonfile.check(doc, schema(), SCHEMA_ID, path)
    return [Figure(**f) for f in doc["figures"]], doc


def update(figures: list[Figure], reason: str, sources: list[str], path: Path | None = None) -> list[str]:
    """Replace the baseline's figures for every target and engine in `figures`, the run results'
    and the layers results' apart (updating from one keeps the other's); keep the others. Returns a
    line per figure that changed, was added or was dropped."""
    path = Path(path or PATH)
    if not reason.strip():
        raise SuiteError('a baseline changes only with a reason: --reason "..."')
    old, doc = load(path) if Path(path).exists() else ([], {"history": []})
    replaced = {scope(f) for f in figures}
    kept = [f for f in old if scope(f) not in replaced]
    before = {f.key: f for f in old if scope(f) in replaced}
    after = {f.key: f for f in figures}
    lines = []
    for key in sorted(before.keys() | after.keys()):
        name = "/".join(key)
        if key not in after:
            lines.append(f"dropped {name} (was {before[key].value:.6g})")
        elif key not in before:
            lines.append(f"added {name} = {after[key].value:.6g}")
        elif before[key].value != after[key].value or before[key].provenance != after[key].provenance:
            lines.append(f"replaced {name}: {before[key].value:.6g} -> {after[key].value:.6g}")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    history = [*doc.get("history", []), {"when": now, "reason": reason, "sources": sources, "changes": len(lines)}]
    figures_out = sorted([*kept, *figures], key=lambda f: f.key)
    atomic.write_json(
        path,
        {
            "schema": SCHEMA_ID,
            "updated": now,
            "reason": reason,
            "history": history,
            "figures": [vars(f) for f in figures_out],
        },
    )
    return lines
