"""`bench export`'s formats as the field's tools read them (Bencher's BMF schema, github-action-benchmark's
custom list, `pytest-benchmark compare` itself, csv), every figure labelled with what it is and no
emulated time among the trackers' figures; `bench compare --junit` as XML that parses back."""

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from bench import compare, figures, harness, results, targets, trackers
from bench.build import Build
from common.errors import SuiteError

# Bencher's published schema for BMF (https://bencher.dev/bmf.json).
BMF_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {
        ".+": {
            "type": "object",
            "patternProperties": {
                ".+": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "lower_value": {"type": "number"},
                        "upper_value": {"type": "number"},
                    },
                    "required": ["value"],
                }
            },
        }
    },
}
# github-action-benchmark's BenchmarkResult (src/extract.ts): what customSmallerIsBetter reads.
GITHUB_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["name", "value", "unit"],
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "number"},
            "unit": {"type": "string"},
            "range": {"type": "string"},
            "extra": {"type": "string"},
        },
        "additionalProperties": False,
    },
}


MODELS = {"dynamics_engine": 2.8, "groove_predictor": 3.6}  # each model's p50 (us)


def make_doc(target: str, engine: str, instructions: dict | None = None) -> dict:
    """A result of two models as `bench run` writes it, from the harness's own lines; counted by
    callgrind (`instructions`) where given and the target is not counted by its emulator."""
    meta = {"type": "meta", "blocks": 300, "warmup": 10, "block_size": 512, "sample_rate": 48000}
    lines = [{**meta, "deadline_us": 10666.667, "timer": "steady_clock"}]
    for name, p50 in MODELS.items():
        lines += [
            {"type": "parity", "model": name, "steps": 64, "max_abs_error": 9.5e-07},
            {"type": "model", "model": name, "parameters": 19568, "weight_bytes": 78272, "model_bytes": 8192},
            {"type": "latency", "model": name, "p50": p50, "mean": p50 + 0.1, "p95": p50 + 0.2, "p99": p50 + 0.3},
        ]
        lines[-2]["load_heap_bytes"] = 0
        lines[-1].update(max=p50 + 1, min=p50 - 0.1, deadline_misses=0, real_time_factor=0.0003)
    set_p50 = sum(MODELS.values())
    lines += [
        {"type": "latency", "model": "set", "p50": set_p50, "mean": set_p50 + 0.1, "p95": set_p50 + 0.2},
        {"type": "heap", "forward_allocations": 0, "forward_bytes": 0},
        {"type": "process", "peak_rss_kib": 4096},
        {"type": "done"},
    ]
    lines[-4].update(p99=set_p50 + 0.3, max=set_p50 + 1, min=set_p50 - 0.1, deadline_misses=0, real_time_factor=0.0006)
    output = harness.parse("\n".join(json.dumps(line) for line in lines))
    symbols = {"models": {n: {"code": 400, "constants": 78272} for n in MODELS}, "other": {"code": 9, "constants": 1}}
    symbols["other"]["zeroed"] = 2
    sizes = {"text": 10_000, "data": 200, "bss": 300, "sections": {".text": 10_000}}
    build = Build(Path("program"), 1.0, False, "g++ 12", ["-O3"], sizes, symbols)
    target = targets.get(target)
    if instructions is None and target.timing != "counted":
        instructions = {"set": 100_000, "dynamics_engine": 40_000, "groove_predictor": 60_000}
    return results.document(target, engine, build, output, instructions, None, "abc", counter="tool-1")


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    """One result of each kind: measured on this CPU (x86), emulated (armv7), counted (Cortex-M7)."""
    return [make_doc("x86", "generated"), make_doc("armv7", "generated"), make_doc("cortex-m7", "generated-int8")]


def latency(doc: dict, model: str = "set") -> dict:
    return doc["set"]["latency_us"] if model == "set" else doc["models"][model]["latency_us"]


def test_bmf_follows_bencher_schema_with_latency_in_ns(docs):
    x86, _, m7 = docs
    out = json.loads(trackers.export(docs, "bmf"))
    jsonschema.validate(out, BMF_SCHEMA)
    lat = latency(x86)
    assert out["x86/generated/set"]["latency"] == {
        "value": pytest.approx(lat["p50"] * 1000),
        "lower_value": pytest.approx(lat["min"] * 1000),
        "upper_value": pytest.approx(lat["p99"] * 1000),
    }
    assert out["x86/generated/dynamics_engine"]["instructions"] == {"value": 40_000}
    counted = out["cortex-m7/generated-int8/set"]
    assert "latency" not in counted and counted["instructions"]["value"] == round(latency(m7)["p50"] * 1000)
    assert "latency" not in out["armv7/generated/set"], "an emulated time went to a tracker"
    assert out["armv7/generated/set"]["text-bytes"] == {"value": 10_000}


def test_github_action_benchmark_list(docs):
    out = json.loads(trackers.export(docs, "github-action-benchmark"))
    jsonschema.validate(out, GITHUB_SCHEMA)
    by_name = {item["name"]: item for item in out}
    timed = by_name["x86/generated/set latency p50"]
    assert timed["unit"] == "us" and timed["extra"].startswith("measured on ") and timed["range"].startswith("min ")
    assert by_name["cortex-m7/generated-int8/set instructions"]["extra"].startswith("counted (tool-1)")
    assert not [n for n in by_name if "latency" in n and not n.startswith("x86/")]


def test_pytest_benchmark_compare_reads_it(docs, tmp_path):
    x86 = docs[0]
    out = json.loads(trackers.export(docs, "pytest-benchmark"))
    assert {b["group"] for b in out["benchmarks"]} == {"x86"}, "only times measured on a CPU"
    (model,) = [b for b in out["benchmarks"] if b["name"] == "dynamics_engine[generated]"]
    lat = latency(x86, "dynamics_engine")
    assert model["stats"]["median"] == pytest.approx(lat["p50"] * 1e-6)
    assert model["stats"]["rounds"] == x86["config"]["blocks"] and model["extra_info"]["kind"] == "measured on this CPU"
    paths = [tmp_path / "0001_baseline.json", tmp_path / "0002_current.json"]  # compare's own naming
    for path in paths:
        path.write_text(trackers.export(docs, "pytest-benchmark"))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("pytest-benchmark")), "compare", *map(str, paths)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "Failed to load" not in done.stdout + done.stderr
    assert "dynamics_engine[generated]" in done.stdout and "set[generated]" in done.stdout


def test_csv_labels_every_figure(docs):
    rows = list(csv.DictReader(io.StringIO(trackers.export(docs, "csv"))))
    assert tuple(rows[0]) == trackers.CSV_HEAD
    kinds = {(r["target"], r["figure"]): r["kind"] for r in rows}
    assert kinds[("x86", "latency")] == "measured"
    assert kinds[("armv7", "latency")] == "emulated"
    assert ("cortex-m7", "latency") not in kinds, "a counted run's time is its instruction count"
    assert kinds[("cortex-m7", "instructions")] == "counted"
    units = {r["figure"]: r["unit"] for r in rows}
    assert units == {m: trackers.METRICS[m].unit for m in units}
    assert len(rows) == sum(len(trackers.entries(d)) for d in docs)


def test_the_newest_result_per_target_and_engine_is_exported():
    old, new = make_doc("x86", "generated"), make_doc("x86", "generated")
    old["created"], new["created"] = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"
    new["set"]["latency_us"]["p50"] = 123.0
    for docs in ([old, new], [new, old]):
        out = json.loads(trackers.export(docs, "bmf"))
        assert out["x86/generated/set"]["latency"]["value"] == pytest.approx(123_000)


@pytest.mark.parametrize(
    "chosen, fmt, says",
    [
        ([], "bmf", "no results to export"),
        ([0], "junit", "unknown format 'junit'; choose from bmf, github-action-benchmark"),
        ([1, 2], "pytest-benchmark", "these results are counted, emulated"),
    ],
)
def test_what_cannot_be_exported_is_named(docs, chosen, fmt, says):
    with pytest.raises(SuiteError, match=says):
        trackers.export([docs[i] for i in chosen], fmt)


def test_junit_parses_back_with_failures_and_their_change(docs):
    base = [f for d in docs for f in figures.of(d)]
    worse = make_doc("x86", "generated", instructions={"set": 110_000, "dynamics_engine": 40_000})
    current = [f for d in [worse, *docs[1:]] for f in figures.of(d)]
    rows = compare.compare(base, current, 3.0)
    rows.append(compare.Row("x86", "generated", 'm<"&>', "parity", 1e-6, 2e-5, None, compare.FAIL, "above <1e-05>"))
    root = ET.fromstring(trackers.junit(rows, 3.0))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {f"{r.target}/{r.engine}" for r in rows}
    assert int(root.get("tests")) == len(rows) == sum(int(s.get("tests")) for s in suites.values())
    failures = {c.get("name"): c.find("failure") for c in root.iter("testcase") if c.find("failure") is not None}
    assert int(root.get("failures")) == len(failures) == len(compare.failed(rows))
    regression = failures["set instructions"]
    assert regression.get("type") == compare.REGRESSION
    assert "100,000 -> 110,000, change +10.00% against a threshold of 3%" in regression.get("message")
    assert failures['m<"&> parity'].get("message").endswith(": above <1e-05>")
    assert suites["x86/generated"].find("properties/property").get("value") == "3"
    skipped = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert int(root.get("skipped")) == len(skipped) == sum(r.status in trackers.SKIPPED for r in rows)


def test_every_gated_figure_but_parity_is_exported(docs):
    """A figure the gate gains is exported too, or this names it."""
    gated = {f.metric for d in docs for f in figures.of(d)} - {"parity"}
    assert gated <= set(trackers.METRICS)
    exported = {e.metric for d in docs for e in trackers.entries(d)}
    assert exported == gated | {trackers.LATENCY}
