"""`bench compare-engines`: every engine on the same models and inputs in one run, beside the
roofline, saved as reports/peers/<time>-<target>.json (schema rt-music-bench/peers/1)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import results, roofline
from bench.targets import Target
from common import atomic, engines, layout, manifest, rtneural, table
from common.errors import SuiteError

SCHEMA_ID = "rt-music-bench/peers/1"


def say(text: str) -> None:
    """A progress line: what is being measured now (stderr, so the table on stdout stays clean)."""
    print(text, file=sys.stderr, flush=True)


def python_engine(engine: str, models_dir: Path, checkpoints: Path, quick: bool = False) -> dict:
    """Parity checked in this process, then timed by pyperf in its own worker processes, each of
    which says what it does as it starts (bench/peers_worker.py): a line every few seconds."""
    from bench import peers

    started = time.monotonic()
    say(f"{engine} ({peers.WHAT[engine]}): loading the models from {checkpoints}, parity on their test vectors")
    steps, vectors = peers.load(engine, models_dir, checkpoints)
    errors = peers.parity(steps, vectors)
    runs = peers.PYPERF_QUICK if quick else peers.PYPERF
    say(
        f"{engine}: timing one block of each of {len(steps)} models and of the set (state carried, one thread) "
        f"with pyperf: per benchmark one worker process calibrates the loop count, then {runs['processes']} "
        f"time {runs['values']} values each"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pyperf.json"
        command = [
            *(sys.executable, "-m", "bench.peers_worker", "--engine", engine),
            *("--models-dir", str(models_dir), "--checkpoints", str(checkpoints), "-o", str(out), "--quiet"),
            *(arg for key in ("processes", "values") for arg in (f"--{key}", str(runs[key]))),
        ]
        said = []  # everything but the progress lines: the reason, should the worker fail
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as worker:
            for line in worker.stdout:
                if line.startswith(peers.PROGRESS):
                    say("  " + line.removeprefix(peers.PROGRESS).rstrip())
                else:
                    said.append(line)
        if worker.returncode != 0:
            raise SuiteError(f"pyperf worker for {engine} failed: {''.join(said).strip()[-500:]}")
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
    parity_ok = all(layout.within(e, tolerance) for e in errors.values())
    say(
        f"{engine}: done in {time.monotonic() - started:.0f} s: set {figures['set']['p50']:,.1f} us per block (p50), "
        f"parity {'ok' if parity_ok else 'FAIL'} {max(errors.values()):.1e}"
    )
    return {
        "engine": engine,
        "kind": "python (pyperf)",
        "dtype": "float32",
        "set": figures.pop("set"),
        "models": figures,
        "instructions_per_block": None,
        "parity_max_abs_error": finite(max(errors.values())),
        "parity_ok": parity_ok,
    }


def finite(error: float) -> float | None:
    """A parity error as the comparison file holds it: null where it is not a number (no NaN in JSON)."""
    return error if math.isfinite(error) else None


def error_cell(error: float | None) -> str:
    return "not a number" if error is None else f"{error:.1e}"


def compiled_engine(doc: dict) -> dict:
    lat, cold = doc["set"]["latency_us"], doc["set"].get("latency_cold_us")
    return {
        "engine": results.engine_name(doc),
        "kind": "compiled (harness)",
        "dtype": doc["dtype"],
        "set": {"p50": lat["p50"], "p99": lat["p99"], **({"cold_p50": cold["p50"]} if cold else {})},
        "models": {n: {"p50": m["latency_us"]["p50"], "p99": m["latency_us"]["p99"]} for n, m in doc["models"].items()},
        "instructions_per_block": doc["set"]["instructions_per_block"],
        "parity_max_abs_error": finite(results.max_error(doc["models"].values())),
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
    say("roofline: this machine's multiply-add rate and its bandwidth at the weights' sizes (bench/calibrate.cpp)")
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
    atomic.write_new(path, (json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())
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
                f"{'ok' if e['parity_ok'] else 'FAIL'} {error_cell(e['parity_max_abs_error'])}",
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
