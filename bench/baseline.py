"""reports/baseline/baseline.json: the gated figures a change is compared with, keyed by target,
engine, model and metric, each with its provenance: `bench run`'s and `bench layers`' (models
`layers/<layer>`). It changes only through `bench baseline update --reason "..."`, which records why
and says what it replaced. It refuses runs whose parity failed or that hold a figure that is not a
number (failing), or that lack figures the baseline has for their target and engine (partial: a run
of some of the models, or without instruction counts), unless told to take them (ACCEPT), which the
recorded reason then says."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from bench import layer_results, results
from bench.figures import Figure
from bench.layer_results import scope
from common import atomic, jsonfile, layout, manifest
from common.errors import SuiteError

SCHEMA_ID = "rt-music-bench/baseline/1"
PATH = layout.PROJECT / "reports" / "baseline" / "baseline.json"
FAILING, PARTIAL = "failing", "partial"
ACCEPT = {FAILING: "--accept-failing", PARTIAL: "--accept-partial"}  # the flag that takes each anyway


@cache
def schema() -> dict:
    return json.loads(Path(__file__).with_name("baseline.schema.json").read_text())


def is_baseline(path: Path) -> bool:
    path = Path(path)
    # exists, not is_file: a baseline.json that is no regular file is the baseline's reader's to refuse
    return (path / PATH.name).exists() if path.is_dir() else path.name == PATH.name


def load(path: Path | None = None) -> tuple[list[Figure], dict]:
    path = Path(path or PATH)
    if path.is_dir():
        path = path / PATH.name
    doc = jsonfile.read(path, jsonfile.BASELINE_BYTES, "baseline", "make one with bench baseline update --reason ...")
    jsonfile.check(doc, schema(), SCHEMA_ID, path)
    return [Figure(**f) for f in doc["figures"]], doc


def finite(f: Figure) -> bool:
    """A figure JSON can hold: its value and its limit (where it has one) finite numbers."""
    return math.isfinite(f.value) and (f.limit is None or math.isfinite(f.limit))


def failing(f: Figure) -> bool:
    """Not a number, or a parity outside its tolerance (or judged against no finite bar)."""
    if not finite(f):
        return True
    return f.metric == "parity" and (
        manifest.tolerance_problem(f.limit) is not None or not layout.within(f.value, f.limit)
    )


def _names(items) -> str:
    return ", ".join(sorted(set(items)))


def gaps(figures: list[Figure], old: list[Figure]) -> dict[tuple, dict[str, str]]:
    """Per target and engine of `figures` (and kind: runs or layers), what keeps them from replacing
    the baseline's: {FAILING: ..., PARTIAL: ...}, each a phrase naming the models and figures."""
    new, scopes = {f.key for f in figures}, {scope(f) for f in figures}
    out: dict[tuple, dict[str, str]] = defaultdict(dict)
    bad = defaultdict(list)
    for f in figures:
        if failing(f):
            value = f"{f.value:.3g}" if math.isfinite(f.value) else "not a number"
            bad[scope(f)].append(f"{f.metric} of {f.model} {value}" + (f" (limit {f.limit:g})" if f.limit else ""))
    for where, items in bad.items():
        out[where][FAILING] = "failing: " + ", ".join(items)
    missing = defaultdict(list)
    for f in old:
        if scope(f) in scopes and f.key not in new:
            missing[scope(f)].append(f)
    for where, lost in missing.items():
        present = {f.model for f in figures if scope(f) == where}
        whole = [f.model for f in lost if f.model not in present]
        parts = [f"no figures of {_names(whole)}"] if whole else []
        by_metric = defaultdict(list)
        for f in lost:
            if f.model in present:
                by_metric[f.metric].append(f.model)
        parts += [f"no {metric} of {_names(models)}" for metric, models in sorted(by_metric.items())]
        out[where][PARTIAL] = "partial against the baseline: " + "; ".join(parts)
    return dict(out)


def run_file(runs: list[Path], where: tuple) -> Path | None:
    """The newest result file among `runs` (files, or folders of them) that the figures of `where`
    came from: named in a refusal, read again only then."""
    found: tuple[str, Path] | None = None
    for path in map(Path, runs):
        for file in sorted(path.glob("*.json")) if path.is_dir() else [path]:
            docs, layer_docs, _ = layer_results.load_all([file])
            scopes = {(d["target"]["name"], results.engine_name(d), layer_results.RUNS) for d in docs}
            scopes |= {scope(f) for d in layer_docs for f in layer_results.figures_of(d)}
            created = next((d["created"] for d in [*docs, *layer_docs]), "")
            if where in scopes and (found is None or created >= found[0]):
                found = (created, file)
    return None if found is None else found[1]


def refuse(figures: list[Figure], old: list[Figure], accept: set[str], runs: list[Path] | None) -> list[str]:
    """SuiteError naming the run file and what is wrong with the first run that a flag not given
    would have to accept; else the phrases of what was accepted (for the recorded reason)."""
    accepted = []
    for where, found in sorted(gaps(figures, old).items()):
        for kind, what in found.items():
            if kind not in accept:
                origin = run_file(runs, where) if runs else None
                label = "/".join(where[:2]) + ("" if where[2] == layer_results.RUNS else " (layers)")
                head = "" if origin is not None else f"the run of {label}: "
                raise SuiteError(f"{head}{what}; the baseline is unchanged (give {ACCEPT[kind]} to take it)", origin)
            accepted.append(f"{'/'.join(where[:2])} {what}")
    return accepted


def update(
    figures: list[Figure],
    reason: str,
    sources: list[str],
    path: Path | None = None,
    accept: set[str] | frozenset[str] = frozenset(),
    runs: list[Path] | None = None,
) -> list[str]:
    """Replace the baseline's figures for every target and engine in `figures`, the run results'
    and the layers results' apart (updating from one keeps the other's); keep the others. Returns a
    line per figure that changed, was added or was dropped. A failing or partial run (gaps) is
    refused, naming its file among `runs`, unless its kind is in `accept`; then the reason records
    what was accepted, and a figure that is not a number is left out (JSON holds none)."""
    path = Path(path or PATH)
    if not reason.strip():
        raise SuiteError('a baseline changes only with a reason: --reason "..."')
    old, doc = load(path) if Path(path).exists() else ([], {"history": []})
    accepted = refuse(figures, old, set(accept), runs)
    if accepted:
        reason = f"{reason} [accepted: {'; '.join(accepted)}]"
        figures = [f for f in figures if finite(f)]
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
