"""`bench compare BASELINE CURRENT...`: the regression gate, on figures that do not depend on the
machine's load: `bench run`'s and `bench layers`' (bench/layer_results.py), side by side. Only the
targets and engines CURRENT measured, with the command that measured them, are compared (an engine a
machine cannot build is "not run", not a regression); within those, every baseline model must be there."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench import baseline, figures, layer_results
from bench.figures import Figure, Timing
from common import layout, manifest, table
from common.errors import SuiteError

FAIL, REGRESSION, OK, IMPROVED, NEW, NOT_COMPARABLE = ("FAIL", "REGRESSION", "ok", "improved", "new", "not comparable")
FAILING = (FAIL, REGRESSION)
DEFAULT_THRESHOLD = 3.0  # percent: instruction counts repeat exactly; a real regression is larger


@dataclass
class Row:
    target: str
    engine: str
    model: str
    metric: str
    base: float | None
    current: float | None
    change: float | None  # relative: 0.1 is 10% more
    status: str
    note: str = ""


def load_set(paths: list[Path]) -> tuple[list[Figure], list[Timing], list[str]]:
    """Figures of a baseline file, or of the newest results among result files (`newest`); wall-clock
    timings; warnings naming the files that were skipped."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and baseline.is_baseline(paths[0]):
        figs, _ = baseline.load(paths[0])
        return figs, [], []
    figs, timings, warnings, _ = newest(paths)
    return figs, timings, warnings


def newest(paths: list[Path]) -> tuple[list[Figure], list[Timing], list[str], list[str]]:
    """Figures of the newest run result per target and engine and of the newest layers result per
    target among result files (files or folders of them), the run results' wall-clock timings,
    warnings naming the files that were skipped, and the ids of the results the figures come from."""
    docs, layer_docs, warnings = layer_results.load_all(paths)
    if not docs and not layer_docs:
        named = "; ".join(w.removeprefix("skipped ") for w in warnings[:3]) + ("; ..." if len(warnings) > 3 else "")
        why = f" ({len(warnings)} skipped: {named})"
        raise SuiteError("no result files here" + (why if warnings else ""), paths[0])
    figs, timings, sources = of_docs(docs, layer_docs)
    return figs, timings, warnings, sources


def of_docs(docs: list[dict], layer_docs: list[dict]) -> tuple[list[Figure], list[Timing], list[str]]:
    """`newest` on documents already read (bench report reads them once for all its sections)."""
    latest, newest_layers = figures.latest(docs), layer_results.latest(layer_docs)
    figs = [f for d in latest for f in figures.of(d)] + [f for d in newest_layers for f in layer_results.figures_of(d)]
    sources = [d["id"] for d in [*latest, *newest_layers]]
    return figs, [figures.timing(d) for d in latest], sources


def compare(base: list[Figure], current: list[Figure], threshold: float) -> list[Row]:
    """One row per figure, failures first, then the largest changes."""
    measured = {layer_results.scope(f) for f in current}
    before = {f.key: f for f in base if layer_results.scope(f) in measured}
    now = {f.key: f for f in current}
    rows = []
    for key in before.keys() | now.keys():
        b, c = before.get(key), now.get(key)
        if c is None:
            rows.append(Row(*key, b.value, None, None, FAIL, "missing from CURRENT"))
        elif not math.isfinite(c.value):
            rows.append(Row(*key, b.value if b else None, c.value, None, FAIL, "not a number in CURRENT"))
        elif b is not None and not math.isfinite(b.value):
            rows.append(Row(*key, b.value, c.value, None, FAIL, "not a number in BASELINE"))
        elif c.metric == "parity":
            loose = manifest.tolerance_problem(c.limit)
            ok = not loose and layout.within(c.value, c.limit)
            note = loose or f"above the tolerance {c.limit:g}"
            rows.append(Row(*key, b.value if b else None, c.value, None, OK if ok else FAIL, "" if ok else note))
        elif c.metric == "forward_allocations":
            ok = c.value == 0
            rows.append(
                Row(
                    *key, b.value if b else None, c.value, None, OK if ok else FAIL, "" if ok else "forward() allocates"
                )
            )
        elif b is None:
            rows.append(Row(*key, None, c.value, None, NEW))
        elif b.provenance != c.provenance:
            rows.append(Row(*key, b.value, c.value, None, NOT_COMPARABLE, "measured with other tools or flags"))
        else:
            change = (c.value - b.value) / b.value if b.value else (math.inf if c.value else 0.0)
            status = REGRESSION if change * 100 > threshold else IMPROVED if change * 100 < -threshold else OK
            rows.append(Row(*key, b.value, c.value, change, status))
    order = {FAIL: 0, REGRESSION: 0, NOT_COMPARABLE: 1, IMPROVED: 2, NEW: 3, OK: 4}
    return sorted(rows, key=lambda r: (order[r.status], -abs(r.change or 0), r.target, r.engine, r.model, r.metric))


def failed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.status in FAILING]


def _value(v: float | None, metric: str) -> str:
    if v is None:
        return "-"
    if metric == "parity":
        return f"{v:.2g}"
    return f"{v:,.1f}" if metric == layer_results.METRIC else f"{v:,.0f}"


def cells(rows: list[Row]) -> list[tuple]:
    return [
        (
            r.target,
            r.engine,
            r.model,
            r.metric,
            _value(r.base, r.metric),
            _value(r.current, r.metric),
            "-" if r.change is None else f"{r.change:+.2%}",
            r.status,
            r.note,
        )
        for r in rows
    ]


HEAD = ("target", "engine", "model", "metric", "baseline", "current", "change", "status", "note")


def timings_table(timings: list[Timing]) -> list[tuple]:
    def cold(t):
        return "-" if t.cold_p50 is None else f"{t.cold_p50:,.1f}"

    return [(t.target, t.engine, f"{t.p50:,.1f}", f"+{t.spread:,.1f}", cold(t), t.kind) for t in timings]


TIMING_HEAD = ("target", "engine", "set p50 (us)", "p99 - p50 (noise)", "cold p50 (us)", "timing")


def render(rows: list[Row], timings: list[Timing], threshold: float) -> str:
    bad = failed(rows)
    parts = [table.render(cells(rows), HEAD)]
    if timings:
        parts.append(
            "\nWall-clock, for information (never gated):\n" + table.render(timings_table(timings), TIMING_HEAD)
        )
    parts.append(
        f"\n{len(bad)} of {len(rows)} figures worse than the baseline by more than {threshold:g}% or failing"
        + (": " + ", ".join(sorted({f"{r.target}/{r.engine}/{r.model}" for r in bad})) if bad else "")
    )
    return "\n".join(parts)


def markdown(rows: list[Row], timings: list[Timing], threshold: float) -> str:
    def md(head, body):
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in body])

    bad = failed(rows)
    title = f"**Regression gate: {'FAILED' if bad else 'passed'}** (threshold {threshold:g}%)"
    parts = [title, "", md(HEAD, cells(rows))]
    if timings:
        parts += ["", "Wall-clock, for information (never gated):", "", md(TIMING_HEAD, timings_table(timings))]
    return "\n".join(parts) + "\n"
