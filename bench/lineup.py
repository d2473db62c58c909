"""`bench compare-engines`: every engine on the same models and inputs in one run, beside the
roofline, saved as reports/peers/<time>-<target>.json (schema rt-music-bench/peers/1)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import results, roofline
from bench.targets import Target
from common import atomic, engines, layout, manifest, rtneural, table
from common.errors import SuiteError

SCHEMA_ID = "rt-music-bench/peers/1"


def python_engine(engine: str, models_dir: Path, checkpoints: Path, quick: bool = False) -> dict:
    """Parity checked in this process, then timed by pyperf in its own worker processes."""
    from bench import peers

    steps, vectors = peers.load(engine, models_dir, checkpoints)
    errors = peers.parity(steps, vectors)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pyperf.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.peers_worker",
                "--engine",
                engine,
                "--models-dir",
                str(models_dir),
                "--checkpoints",
                str(checkpoints),
                "-o",
                str(out),
                "--quiet",
                *(["--processes", "1", "--values", "3"] if quick else []),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SuiteError(f"pyperf worker for {engine} failed: {done.stderr.strip()[-500:]}")
        import pyperf

        suite = pyperf.BenchmarkSuite.load(str(out))
    figures = {}
    for bench in suite.get_benchmarks():
        values = np.asarray(bench.get_values()) * 1e6  # seconds per block -> us
        figures[bench.get_name().split("/", 1)[1]] = {
            "p50": float(np.median(values)),
            "p99": float(np.percentile(values, 99)),
            "values": len(values),
        }
    tolerance = layout.PARITY_TOLERANCE
    return {
        "engine": engine,
        "kind": "python (pyperf)",
        "dtype": "float32",
        "set": figures.pop("set"),
        "models": figures,
        "instructions_per_block": None,
        "parity_max_abs_error": max(errors.values()),
        "parity_ok": all(layout.within(e, tolerance) for e in errors.values()),
    }


def compiled_engine(doc: dict) -> dict:
    lat, cold = doc["set"]["latency_us"], doc["set"].get("latency_cold_us")
    return {
        "engine": results.engine_name(doc),
        "kind": "compiled (harness)",
        "dtype": doc["dtype"],
        "set": {"p50": lat["p50"], "p99": lat["p99"], **({"cold_p50": cold["p50"]} if cold else {})},
        "models": {n: {"p50": m["latency_us"]["p50"], "p99": m["latency_us"]["p99"]} for n, m in doc["models"].items()},
        "instructions_per_block": doc["set"]["instructions_per_block"],
        "parity_max_abs_error": max(m["parity_max_abs_error"] for m in doc["models"].values()),
        "parity_ok": doc["parity_ok"],
        "result": doc["id"],
    }


def measure(
    target: Target,
    docs: list[dict],
    python_engines: list[str],
    models_dir: Path,
    checkpoints: Path,
    out: Path,
    quick: bool = False,
) -> tuple[dict, Path]:
    parameters = sum(m["parameters"] for m in manifest.load(models_dir)["models"])
    engines = [compiled_engine(d) for d in docs]
    engines += [python_engine(e, models_dir, checkpoints, quick) for e in python_engines]
    calibration = roofline.calibrate(parameters, list(target.arch))
    for e in engines:
        e["bound_us"] = roofline.bound_us(calibration, parameters, e["dtype"])
        e["ratio_to_bound"] = e["set"]["p50"] / e["bound_us"]
        if "cold_p50" in e["set"]:
            e["cold_bound_us"] = roofline.bound_us(calibration, parameters, e["dtype"], cold=True)
    now = datetime.now(timezone.utc)
    doc = {
        "schema": SCHEMA_ID,
        "created": now.isoformat(timespec="seconds"),
        "target": target.name,
        "parameters": parameters,
        "calibration": {
            "peak_macs_per_s": calibration["peak_macs_per_s"],
            "bandwidth": {str(k): v for k, v in calibration["bandwidth"].items()},
        },
        "engines": sorted(engines, key=lambda e: e["set"]["p50"]),
    }
    path = Path(out) / f"{results.run_id(now, target.name, 'lineup')}.json"
    atomic.write_new(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return doc, path


def rows(doc: dict) -> list[tuple]:
    best_rtneural = min(
        (e["set"]["p50"] for e in doc["engines"] if e["engine"] in (*rtneural.BACKENDS, engines.JSON)), default=None
    )
    out = []
    for e in doc["engines"]:
        out.append(
            (
                e["engine"],
                e["kind"],
                e["dtype"],
                f"{e['set']['p50']:,.1f}",
                f"{e['set']['p99']:,.1f}",
                f"{e['set']['cold_p50']:,.1f}" if "cold_p50" in e["set"] else "-",
                "-" if e["instructions_per_block"] is None else f"{e['instructions_per_block']:,}",
                f"{e['bound_us']:.1f}",
                f"{e['ratio_to_bound']:.2f}",
                "-" if best_rtneural is None else f"{best_rtneural / e['set']['p50']:.2f}x",
                f"{'ok' if e['parity_ok'] else 'FAIL'} {e['parity_max_abs_error']:.1e}",
            )
        )
    return out


HEAD = (
    "engine",
    "kind",
    "weights",
    "set p50 (us)",
    "set p99 (us)",
    "cold p50 (us)",
    "instructions/block",
    "bound (us)",
    "p50 / bound",
    "vs best RTNeural",
    "parity",
)


def render(doc: dict) -> str:
    cal = doc["calibration"]
    bw = ", ".join(
        f"{int(k) / 1e6:.2f} MB: {v['warm_bytes_per_s'] / 1e9:.0f} GB/s warm, {v['cold_bytes_per_s'] / 1e9:.0f} cold"
        for k, v in cal["bandwidth"].items()
    )
    return (
        f"{doc['target']}: {len(doc['engines'])} engines on the same models and inputs; roofline from this run: "
        f"{cal['peak_macs_per_s'] / 1e9:.0f} G multiply-adds/s, {bw}\n" + table.render(rows(doc), HEAD)
    )
