"""Results in the shapes the field's tools read: `bench export --format F` for benchmark trackers,
`bench compare --junit FILE` for test reporters.

`export(docs, fmt)` takes run results (bench/results.py) and keeps the newest per target and engine,
as the gate does (bench.figures.latest). Its figures, each with its unit and what it is:

- `latency`: per model (one forward()) and for the set (one block), the p50 of the run's blocks, with
  min and p99 beside it, in microseconds; `measured` on the CPU the result names, or `emulated`
  (qemu-user). A counted run's latency (QEMU -icount, 1 ns per instruction) is its instruction count
  restated, so it appears only as `instructions`.
- `instructions` per forward() and per block, per model `weight_bytes`, `code_bytes` and
  `stack_bytes`, the binary's `text`, `data` and `bss`, heap `forward_allocations`: `counted`
  (callgrind, QEMU's instruction clock, the image's symbols and sections, the harness's stack paint
  and allocation counter), exactly the figures the gate compares (bench.figures.of). Parity is a
  check against a tolerance, not a figure to chart: the gate and its JUnit file carry it.

The formats:

- `bmf`: Bencher Metric Format, {benchmark: {measure: {value, lower_value, upper_value}}}, for
  `bencher run --adapter json`. A benchmark is `<target>/<engine>/<model>`. Latency uses Bencher's
  built-in `latency` measure, in nanoseconds as that measure is (p50, min as lower_value, p99 as
  upper_value); the rest are measures of their own (`instructions`, `weight-bytes`, ...), which
  Bencher creates on first upload.
- `github-action-benchmark`: the list that benchmark-action/github-action-benchmark reads with
  `tool: customSmallerIsBetter` ([{name, value, unit, range, extra}]: every figure here is better
  smaller). It is not BMF (a list of named entries with a unit each, not a map of measures), hence a
  format of its own.
- `pytest-benchmark`: the JSON `pytest-benchmark compare` reads: one benchmark per model and engine,
  grouped by target, stats in seconds. It is a format of times only, so it holds the measured
  latencies alone. The harness keeps mean, min, p50, p95, p99 and max, not every block, and
  `pytest-benchmark compare` needs stddev and iqr (a KeyError without them), so each is given as
  the largest it can be with the figures kept (0 would claim no noise; NaN is not JSON): stddev at
  most sqrt((max - mean) * (mean - min)) (the Bhatia-Davis bound), iqr at most p95 - min (q1 is
  at least min, q3 at most p95); extra_info says so. q1 and q3 themselves are left out: compare
  does not read them (its --histogram, which does, needs every block anyway).
- `csv`: one row per target, engine, model and figure, with its unit, its kind and its machine (the
  CPU it was measured on, or the machine it was emulated or counted for).

Emulated times go into csv only, labelled `emulated`. A tracker draws a measure's series on one chart
and alerts on its changes: an emulated time follows the emulator and the load of the machine running
it, not the target, so a tracker would chart it beside measured times as the board's time and alert
on noise. The counted figures of the same runs (instructions, sizes) are exact and go everywhere but
pytest-benchmark.
"""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bench import compare, figures, results
from common import layout
from common.errors import SuiteError

BMF, GITHUB, PYTEST, CSV = "bmf", "github-action-benchmark", "pytest-benchmark", "csv"
FORMATS = (BMF, GITHUB, PYTEST, CSV)
MEASURED, EMULATED, COUNTED = "measured", "emulated", "counted"
LATENCY = "latency"


@dataclass(frozen=True)
class Metric:
    unit: str  # in csv and github-action-benchmark
    measure: str  # Bencher's
    source: str | None  # what counted it; None: the run's counter (callgrind, QEMU -icount)


METRICS = {
    LATENCY: Metric("us", "latency", None),
    "instructions": Metric("instructions", "instructions", None),
    "weight_bytes": Metric("bytes", "weight-bytes", "the harness"),
    "text": Metric("bytes", "text-bytes", "size"),
    "data": Metric("bytes", "data-bytes", "size"),
    "bss": Metric("bytes", "bss-bytes", "size"),
    "code_bytes": Metric("bytes", "code-bytes", "the image's symbols"),
    "stack_bytes": Metric("bytes", "stack-bytes", "stack painting on the target"),
    "forward_allocations": Metric("allocations", "forward-allocations", "the harness's allocation counter"),
}
NS_PER_US = 1000.0  # Bencher's built-in latency measure is in nanoseconds
S_PER_US = 1e-6  # pytest-benchmark's stats are in seconds
PROJECT = "rt-music-bench"
PYTEST_BENCHMARK_VERSION = "5.3.1"  # the release whose JSON this follows, checked with its `compare`
BOUNDS = "stddev and iqr are upper bounds from min, mean, p95 and max (the harness keeps no per-block times)"
CSV_HEAD = ("target", "engine", "model", "figure", "value", "unit", "kind", "min", "p99", "machine", "result")


@dataclass(frozen=True)
class Entry:
    """One figure of one result."""

    target: str
    engine: str
    model: str  # a model, or layout.SET: the whole set, one block
    metric: str  # a key of METRICS
    value: float
    kind: str  # measured | emulated | counted
    machine: str  # the CPU it was measured on, or the machine it was emulated or counted for
    result: str  # the result's id
    how: str  # the timer, or the counting tool
    low: float | None = None  # latency: the fastest block
    high: float | None = None  # latency: p99

    @property
    def benchmark(self) -> str:
        return f"{self.target}/{self.engine}/{self.model}"

    @property
    def unit(self) -> str:
        return METRICS[self.metric].unit


def entries(doc: dict) -> list[Entry]:
    """The figures of one result, in the order a reader wants them: latency, then the counted ones."""
    target, engine = doc["target"]["name"], results.engine_name(doc)
    kind, machine = doc["timing"]["kind"], doc["target"]["cpu"]
    out = []
    if kind != COUNTED:
        timer = doc["timing"]["timer"]
        latencies = {name: m["latency_us"] for name, m in doc["models"].items()}
        latencies[layout.SET] = doc["set"]["latency_us"]
        for model, lat in latencies.items():
            low, high = lat["min"], lat["p99"]
            out.append(Entry(target, engine, model, LATENCY, lat["p50"], kind, machine, doc["id"], timer, low, high))
    for f in figures.of(doc):
        if f.metric in METRICS:
            how = METRICS[f.metric].source or doc.get("counter") or "a counter the result does not name"
            out.append(Entry(target, engine, f.model, f.metric, f.value, COUNTED, machine, doc["id"], how))
    return out


def export(docs: list[dict], fmt: str) -> str:
    """The newest result per target and engine among `docs`, as `fmt` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise SuiteError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if not docs:
        raise SuiteError("no results to export")
    latest = figures.latest(docs)
    every = [e for d in latest for e in entries(d)]
    if fmt == CSV:
        return _csv(every)
    tracked = [e for e in every if e.kind != EMULATED]
    if fmt == PYTEST:
        timed = [e for e in tracked if e.kind == MEASURED]
        if not timed:
            kinds = ", ".join(sorted({d["timing"]["kind"] for d in latest}))
            raise SuiteError(
                f"nothing for pytest-benchmark: it holds times measured on a CPU, and these results are {kinds} "
                f"(their counted figures are in --format {BMF}, {GITHUB} or {CSV})"
            )
        return _pytest(timed, latest)
    return _bmf(tracked) if fmt == BMF else _github(tracked)


def _bmf(every: list[Entry]) -> str:
    doc: dict[str, dict] = {}
    for e in every:
        metric = {"value": e.value}
        if e.metric == LATENCY:
            metric = {"value": e.value * NS_PER_US, "lower_value": e.low * NS_PER_US, "upper_value": e.high * NS_PER_US}
        doc.setdefault(e.benchmark, {})[METRICS[e.metric].measure] = metric
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _github(every: list[Entry]) -> str:
    out = []
    for e in every:
        item = {"name": f"{e.benchmark} {e.metric}", "value": e.value, "unit": e.unit}
        if e.metric == LATENCY:
            item["name"] += " p50"
            item["range"] = f"min {e.low:g}, p99 {e.high:g}"
            item["extra"] = f"{e.kind} on {e.machine} ({e.how})\nresult {e.result}"
        else:
            item["extra"] = f"{e.kind} ({e.how}) for {e.machine}\nresult {e.result}"
        out.append(item)
    return json.dumps(out, indent=2) + "\n"


def stddev_bound(lat: dict, rounds: int) -> float:
    """The largest sample standard deviation `rounds` values between min and max with this mean can
    have (Bhatia-Davis: variance <= (max - mean)(mean - min), times n / (n - 1) for the sample's)."""
    spread = max(lat["max"] - lat["mean"], 0.0) * max(lat["mean"] - lat["min"], 0.0)
    return math.sqrt(spread * rounds / (rounds - 1)) if rounds > 1 else 0.0


def _pytest(timed: list[Entry], latest: list[dict]) -> str:
    by_id = {d["id"]: d for d in latest}
    benchmarks = []
    for e in timed:
        doc = by_id[e.result]
        lat = doc["set"]["latency_us"] if e.model == layout.SET else doc["models"][e.model]["latency_us"]
        rounds = doc["config"]["blocks"]
        mean = lat["mean"] * S_PER_US
        benchmarks.append(
            {
                "group": e.target,
                "name": f"{e.model}[{e.engine}]",
                "fullname": f"{PROJECT}::{e.target}::{e.model}[{e.engine}]",
                "params": {"engine": e.engine},
                "param": e.engine,
                "extra_info": {
                    "kind": f"{e.kind} on this CPU",
                    "cpu": e.machine,
                    "timer": e.how,
                    "p95": lat["p95"] * S_PER_US,
                    "p99": lat["p99"] * S_PER_US,
                    "result": e.result,
                    "bounds": BOUNDS,
                },
                "options": {"timer": e.how, "min_rounds": rounds, "warmup": doc["config"]["warmup"] > 0},
                "stats": {
                    "min": lat["min"] * S_PER_US,
                    "max": lat["max"] * S_PER_US,
                    "mean": mean,
                    "median": lat["p50"] * S_PER_US,
                    "stddev": stddev_bound(lat, rounds) * S_PER_US,
                    "iqr": (lat["p95"] - lat["min"]) * S_PER_US,
                    "outliers": "-",
                    "rounds": rounds,
                    "iterations": 1,
                    "ops": 1 / mean if mean > 0 else 0.0,
                    "total": mean * rounds,
                },
            }
        )
    newest = max(latest, key=lambda d: d["created"])
    commit = newest["project_commit"]
    cpus = "; ".join(sorted({e.machine for e in timed}))
    doc = {
        "machine_info": {"processor": cpus, "cpu": {"brand_raw": cpus}},
        "commit_info": {
            "id": commit.removesuffix("+dirty"),
            "dirty": commit.endswith("+dirty"),
            "project": PROJECT,
            "time": None,
            "author_time": None,
            "branch": None,
        },
        "benchmarks": benchmarks,
        "datetime": newest["created"],
        "version": PYTEST_BENCHMARK_VERSION,
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _csv(every: list[Entry]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEAD)
    for e in every:
        low, high = ("", "") if e.low is None else (e.low, e.high)
        row = (e.target, e.engine, e.model, e.metric, e.value, e.unit, e.kind, low, high, e.machine, e.result)
        writer.writerow(row)
    return buf.getvalue()


# Comparing saved figures takes no time of its own; several JUnit readers parse `time` without a
# default, so it is written as 0 rather than left out.
CHECK_SECONDS = "0"
SKIPPED = {compare.NOT_COMPARABLE: "not comparable", compare.NEW: "new: no baseline figure"}


def junit(rows: list[compare.Row], threshold: float) -> str:
    """`bench compare`'s rows as JUnit XML: a testsuite per target and engine, a testcase per figure;
    a failure for each failing row (its change and the threshold in the message), skipped for
    figures not compared (not comparable, or new)."""
    root = ET.Element("testsuites", name="bench compare")
    suites: dict[tuple[str, str], ET.Element] = {}
    for row, cell in zip(rows, compare.cells(rows), strict=True):
        shown = dict(zip(compare.HEAD, cell, strict=True))
        key = (row.target, row.engine)
        if key not in suites:
            suites[key] = ET.SubElement(root, "testsuite", name=f"{row.target}/{row.engine}")
            props = ET.SubElement(suites[key], "properties")
            ET.SubElement(props, "property", name="threshold_percent", value=f"{threshold:g}")
        case = ET.SubElement(
            suites[key],
            "testcase",
            classname=f"{row.target}.{row.engine}",
            name=f"{row.model} {row.metric}",
            time=CHECK_SECONDS,
        )
        summary = f"{row.metric} {shown['baseline']} -> {shown['current']}"
        if row.change is not None:
            summary += f", change {shown['change']} against a threshold of {threshold:g}%"
        if row.note:
            summary += f": {row.note}"
        if row.status in compare.FAILING:
            ET.SubElement(
                case, "failure", type=row.status, message=f"{row.status}: {summary}"
            ).text = f"{row.target}/{row.engine}/{row.model} {summary}"
        elif row.status in SKIPPED:
            ET.SubElement(case, "skipped", message=f"{SKIPPED[row.status]}: {summary}")
        ET.SubElement(case, "system-out").text = summary
    for suite in [root, *suites.values()]:
        cases = list(suite.iter("testcase"))
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
        suite.set("errors", "0")  # JUnit's errors are tests that could not run: a compared figure always ran
        suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
