"""Result files: one JSON document per run (one target, one engine), schema-versioned, written
atomically into reports/runs/<time>-<target>-<engine>-<random>.json. Version 2 has the engine
(generated, or RTNeural with its backend); version 1 files (RTNeural only) are still read, as
version 2 documents."""

from __future__ import annotations

import json
import math
import platform
import re
import secrets
import tempfile
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from bench.build import Build
from bench.targets import Target
from common import atomic, engines, jsonfile, layout, manifest
from common.errors import SuiteError

SCHEMA_ID = "rt-music-bench/result/2"
OLD_SCHEMA_IDS = {"rt-music-bench/result/1": "result-1.schema.json"}
LATENCY_KEYS = ("mean", "p50", "p95", "p99", "max", "min")
# What process.peak_rss_kib covers. The harness reads it before the cold blocks allocate their
# cache-eviction buffer; results written before it said so read it at the end, buffer included.
# Under an emulator (qemu-user) /proc/self is the emulator's: its RSS, not the program's.
RSS_WITHOUT_EVICTION = "all_but_eviction_buffer"
RSS_WHOLE_RUN = "whole_run"
RSS_EMULATOR = "emulator_process"


@cache
def schema(name: str = "result.schema.json") -> dict:
    return json.loads((Path(__file__).with_name(name)).read_text())


def host_cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def per_sample(m: dict, meta: dict, instructions: int | None, counted: bool) -> dict:
    """A sample-rate model's block figures per audio sample: ns (p50), the real-time factor as the
    field gives it (audio seconds per compute second, from the mean) and instructions (callgrind's,
    or on a counted target QEMU's instruction clock: 1 ns per instruction)."""
    steps = m["steps_per_block"]
    mean = m["latency"]["mean"]
    if instructions is None and counted:
        instructions = round(m["latency"]["p50"] * 1000)
    return {
        "steps_per_block": steps,
        "ns_p50": m["latency"]["p50"] * 1000 / steps,
        "real_time_factor": meta["deadline_us"] / mean if mean > 0 else 0.0,
        "instructions": None if instructions is None else instructions / steps,
    }


def document(
    target: Target,
    engine: str,
    build: Build,
    output: dict,
    instructions: dict | None,
    rtneural_commit: str,
    project_commit: str,
    now: datetime | None = None,
    tolerance: float = layout.PARITY_TOLERANCE,
    counter: str | None = None,
    device: dict | None = None,
) -> dict:
    """Gather a run's figures into the result schema; parity is checked against `tolerance` (the
    manifest's, for the engine run), and a NaN error fails it."""
    now = now or datetime.now(timezone.utc)
    meta = output["meta"]
    instructions = instructions or {}
    models = {}
    for name, m in output["models"].items():
        models[name] = {
            "parameters": m["parameters"],
            "weight_bytes": m["weight_bytes"],
            "model_bytes": m["model_bytes"],
            "code_bytes": code_bytes(build.symbols, name),
            "stack_bytes": m.get("stack_bytes"),  # None: not measured, or deeper than the harness's probe
            "load_heap_bytes": m["load_heap_bytes"],
            **parity_error(m["parity"]["max_abs_error"]),
            "parity_steps": m["parity"]["steps"],
            "latency_us": {k: m["latency"][k] for k in LATENCY_KEYS},
            "latency_cold_us": {k: m["latency_cold"][k] for k in LATENCY_KEYS} if "latency_cold" in m else None,
            "instructions_per_forward": instructions.get(name),
            "rate": m.get("rate", "block"),
        }
        if models[name]["rate"] == "sample":
            counted = timing(target, device) == "counted"
            models[name]["per_sample"] = per_sample(m, meta, instructions.get(name), counted)
    process = output["process"] or {"peak_rss_kib": -1}
    rss = process["peak_rss_kib"]
    doc = {
        "schema": SCHEMA_ID,
        "id": run_id(now, target.name if device is None else f"{target.name}@{device['label']}", engine),
        "created": now.isoformat(timespec="microseconds"),
        "target": {
            "name": target.name if device is None else f"{target.name}@{device['label']}",  # not the emulator's
            "env": target.env,
            "board": target.board if device is None else device["name"],
            "cpu": host_cpu()
            if target.run == "native" and device is None
            else (device or {}).get("machine", target.board),
            "run": target.run if device is None else "board",
            **({"device": device} if device else {}),
        },
        "engine": engines.family(engine),
        "backend": engines.backend(engine),
        "dtype": engines.dtype(engine),
        "build": {
            "compiler": build.compiler,
            "flags": build.flags,
            "seconds": build.seconds,
            "reused": build.reused,
            "binary": build.sizes,
            "symbols": build.symbols,
        },
        "rtneural_commit": rtneural_commit,
        "counter": counter,
        "project_commit": project_commit,
        "config": {k: meta[k] for k in ("blocks", "warmup", "block_size", "sample_rate", "deadline_us")},
        "timing": {"timer": meta["timer"], "kind": timing(target, device)},
        "models": models,
        "set": {
            "latency_us": {k: output["set"][k] for k in LATENCY_KEYS},
            "deadline_misses": output["set"]["deadline_misses"],
            "real_time_factor": output["set"]["real_time_factor"],
            "instructions_per_block": instructions.get(layout.SET),
            "latency_cold_us": {k: output["set_cold"][k] for k in LATENCY_KEYS} if output.get("set_cold") else None,
            "cold_blocks": output["set_cold"]["blocks"] if output.get("set_cold") else 0,
        },
        "heap": output["heap"],
        "process": {
            "peak_rss_kib": rss if rss >= 0 else None,
            "peak_rss_covers": rss_covers(timing(target, device), process.get("peak_rss_covers"), rss >= 0),
        },
        "parity_tolerance": tolerance,
    }
    doc = judged(doc)  # adds parity_ok
    validate(doc)
    return doc


def parity_error(error) -> dict:
    """A model's parity error as a result records it: the number where it is a finite one; else
    null with why (the harness prints NaN or Infinity when an output was NaN or infinite; neither is
    JSON), which fails parity."""
    if isinstance(error, (int, float)) and not isinstance(error, bool) and math.isfinite(error):
        return {"parity_max_abs_error": error}
    shown = json.dumps(error) if isinstance(error, (int, float, str, type(None))) else repr(error)
    return {
        "parity_max_abs_error": None,
        "parity_problem": f"max abs error {shown}: not a finite number (an output was NaN or infinite)",
    }


def max_error(models) -> float:
    """The largest parity error of these models' entries, NaN where one has none (null): for
    tables and the gate, in memory only; a NaN is never written."""
    errors = [m["parity_max_abs_error"] for m in models]
    return math.nan if any(e is None for e in errors) else max(errors)


def judged(doc: dict) -> dict:
    """`doc` with its parity verdict taken from its figures, never from what a file says: every
    model's error a finite number within a tolerance that is itself a finite bar (a result written
    before these checks may hold NaN for an error, or Infinity for its tolerance, and `parity_ok`
    true beside them). A model that fails without a figure says why in `parity_problem`."""
    tolerance = doc["parity_tolerance"]
    loose = manifest.tolerance_problem(tolerance)
    models = {}
    for name, m in doc["models"].items():
        m = {**m, **parity_error(m["parity_max_abs_error"])} if "parity_problem" not in m else dict(m)
        if loose and "parity_problem" not in m:
            m["parity_problem"] = f"judged against no bar: {loose}"
        models[name] = m
    ok = not loose and all(
        m["parity_max_abs_error"] is not None and layout.within(m["parity_max_abs_error"], tolerance)
        for m in models.values()
    )
    return {**doc, "models": models, "parity_ok": ok and doc.get("parity_ok", True)}


def validate(doc: dict, source: str | Path = "result") -> None:
    declared = doc.get("schema") if isinstance(doc, dict) else None
    schema_id = declared if isinstance(declared, str) and declared in OLD_SCHEMA_IDS else SCHEMA_ID
    jsonfile.check(doc, schema(OLD_SCHEMA_IDS.get(schema_id, "result.schema.json")), schema_id, source)


def code_bytes(symbols: dict | None, model: str) -> int | None:
    """A model's own code in the linked image (build.symbols: its forward and its namespace's
    functions; kernels it shares with other models are not counted), None where not measured."""
    found = (symbols or {}).get("models", {}).get(model)
    return found["code"] if found else None


def upgrade(doc: dict) -> dict:
    """A version 1 document (RTNeural only) as version 2, and a version 2 document written before
    the memory figures as one with them: code bytes from its symbols where it has them, its stack
    not measured, its peak RSS read at the end of the run."""
    if doc["schema"] != SCHEMA_ID:
        doc = {**doc, "schema": SCHEMA_ID, "engine": "rtneural", "dtype": "float32"}
    symbols = doc["build"].get("symbols")
    models = {
        name: {"code_bytes": code_bytes(symbols, name), "stack_bytes": None, **m} for name, m in doc["models"].items()
    }
    covers = rss_covers(doc["timing"]["kind"], None, doc["process"]["peak_rss_kib"] is not None)
    return judged({**doc, "models": models, "process": {"peak_rss_covers": covers, **doc["process"]}})


def rss_covers(kind: str, said: str | None, measured: bool) -> str | None:
    """What a run's peak RSS covers: the emulator's process under one, else what the harness said
    (a harness that says nothing read it at the end of the run); None without the figure."""
    if not measured:
        return None
    return RSS_EMULATOR if kind == "emulated" else said or RSS_WHOLE_RUN


def engine_name(doc: dict) -> str:
    """The name bench uses for a result's engine: generated[-f16|-int8], or the RTNeural backend."""
    return engines.name(doc["engine"], doc["backend"], doc["dtype"])


def timing(target: Target, device: dict | None) -> str:
    """measured, emulated or counted: on a board measured, unless it runs the program under an
    emulator (a run prefix)."""
    if device is None:
        return target.timing
    return "emulated" if device.get("run_prefix") else "measured"


def run_id(now: datetime, target: str, backend: str) -> str:
    """<UTC time to the microsecond>-<target>-<backend>-<random>: sorts by time, and two runs started
    at the same moment still differ."""
    return f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{target}-{backend}-{secrets.token_hex(3)}"


def write(doc: dict, runs_dir: Path = layout.RUNS_DIR, kind: str | None = None) -> Path:
    """Save a result under its id; never replaces another result (a clash gets a fresh id, named
    after the target and `kind`: the engine's name by default)."""
    for _ in range(8):
        path = Path(runs_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', doc['id'])}.json"
        try:
            try:  # strict JSON: a figure that is not a number is null (document() makes it so), never NaN
                text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False)
            except ValueError as exc:
                raise ValueError(f"{path}: not written: {exc} (NaN or infinity)") from None
            atomic.write_new(path, (text + "\n").encode())
            return path
        except FileExistsError:
            created = datetime.fromisoformat(doc["created"])
            doc["id"] = run_id(created, doc["target"]["name"], kind or engine_name(doc))
    raise SuiteError("no free name for the result after 8 tries", runs_dir)


def check_writable(runs_dir: Path) -> None:
    """Fail before a long run, not after it, when results could not be saved in `runs_dir`."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=runs_dir):
            pass
    except OSError as exc:
        raise SuiteError(f"results cannot be saved here ({exc.strerror or exc})", runs_dir) from None


MAX_BYTES = jsonfile.RESULT_BYTES  # the bound of a result file, bench run's or bench layers'


def load(path: Path) -> dict:
    """A run result, read within bounds and checked against its schema; SuiteError names the file."""
    doc = jsonfile.read(path, MAX_BYTES, "result", "no such result")
    if not isinstance(doc, dict):
        raise SuiteError("not a result document (not a JSON object)", path)
    validate(doc, path)
    return upgrade(doc)


def load_many(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """Every result in `paths` (files, or folders of `*.json`). A file of a folder that is not a
    valid result (damaged, too large, too deeply nested, a FIFO, a device) is skipped, with a warning
    naming it, so one bad file never hides the others; a file named directly is the user's to fix:
    its problem is the error."""
    docs, warnings = [], []
    for path in map(Path, paths):
        if not path.exists():
            raise SuiteError("no such file or folder", path)
        if not path.is_dir():
            docs.append(load(path))
            continue
        for file in sorted(path.glob("*.json")):
            try:
                docs.append(load(file))
            except SuiteError as exc:
                warnings.append(f"skipped {exc}")
    return docs, warnings
