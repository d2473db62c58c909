"""Real boards, from a measured or emulated run: where the program would live in each board's
memories and whether it fits (from the linked image's symbols and sections, bench/build.py), and
how long a block would take there, estimated by up to three models side by side:

- roofline: the set's multiply-adds at the board's peak and its weights streamed from the memory
  they were placed in; the range runs from perfect overlap (the longer of the two) to none (sum);
- instructions x clock: where the emulator counts instructions (Cortex-M7 under `-icount`), the
  count at the board's clock over its range of cycles per instruction;
- llvm-mca: the hottest inner loop's steady-state cycles per iteration (bench/mca.py) times the
  iterations the set's multiply-adds need; on a counted target the instructions outside that loop
  at the board's cycles-per-instruction range, elsewhere the loop alone (a lower bound).

The boards' figures, each with its source, are one data file: bench/boards.json.

From a counted layers result (`bench layers --target cortex-m7`: instructions per sample per layer
and engine), each Cortex-M7 board's estimated share of one core at 48 kHz (the count x 48,000 x
the board's cycles per instruction / its clock, over the CPI range), and per board and engine the
largest GRU and LSTM with one input that stays within half of it.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from bench import layers, results, roofline
from common import jsonfile, table
from common.errors import SuiteError

PATH = Path(__file__).with_name("boards.json")
SCHEMA_ID = "rt-music-bench/boards/1"
STACK_BYTES = 64 * 1024  # the stack the Cortex-M7 linker scripts leave below RAM's top (__HeapLimit)
ROLES = ("code", "constants", "objects", "stack", "heap")

_number = {"type": "number", "exclusiveMinimum": 0}
SCHEMA = {
    "type": "object",
    "required": ["schema", "boards"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "boards": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "name",
                    "targets",
                    "clock_hz",
                    "clock_source",
                    "mca_cpu",
                    "peak_macs_per_s",
                    "peak_source",
                    "cpi",
                    "memories",
                ],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9-]+$"},
                    "targets": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "clock_hz": _number,
                    "peak_macs_per_s": {
                        "type": "object",
                        "required": list(roofline.BYTES_PER_WEIGHT),
                        "additionalProperties": _number,
                    },
                    "cpi": {
                        "oneOf": [{"type": "null"}, {"type": "array", "items": _number, "minItems": 2, "maxItems": 2}]
                    },
                    "memories": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "bytes", "bytes_per_s", "roles", "source"],
                            "properties": {
                                "bytes": {"type": "integer", "minimum": 1},
                                "bytes_per_s": _number,
                                "roles": {"type": "array", "items": {"enum": list(ROLES)}, "minItems": 1},
                                "persistent": {"type": "boolean"},
                                "source": {"type": "string", "minLength": 1},
                            },
                        },
                    },
                },
            },
        },
    },
}


def load(path: Path = PATH) -> list[dict]:
    doc = jsonfile.read(path, 1 << 20, "board profiles", "it ships with bench (bench/boards.json)")
    jsonfile.check(doc, SCHEMA, SCHEMA_ID, path)
    return doc["boards"]


def object_part(name: str, m: dict) -> str:
    """The part a model's object is: RTNeural's ModelT object holds its own copy of the weights."""
    return f"{name} object" + (" (a copy of its weights)" if m["model_bytes"] >= m["weight_bytes"] else "")


def parts(doc: dict) -> list[tuple[str, str, int]]:
    """(what, role, bytes) the program of a result needs placed: each model's code, its constants
    (weights) and its object (state; with RTNeural a copy of the weights), then the rest of the
    program's code and data, the stack and what the models took from the heap when loaded. From
    the linked image (its symbols) and the run (model objects, heap)."""
    symbols = doc["build"].get("symbols")
    if symbols is None:
        raise SuiteError(f"result {doc['id']} has no symbol sizes (made before bench recorded them): run it again")
    out = []
    for name, m in doc["models"].items():
        sizes = symbols["models"].get(name, {"code": 0, "constants": 0})
        out += [(f"{name} code", "code", sizes["code"]), (f"{name} weights", "constants", sizes["constants"])]
        out.append((object_part(name, m), "objects", m["model_bytes"]))
    other = symbols["other"]
    model_bytes = sum(m["model_bytes"] for m in doc["models"].values())
    out += [
        ("program code", "code", other["code"]),
        ("program constants", "constants", other["constants"]),
        ("program data", "objects", max(0, other["zeroed"] - model_bytes) + doc["build"]["binary"]["data"]),
        ("stack", "stack", STACK_BYTES),
        ("heap (models' load)", "heap", sum(m["load_heap_bytes"] for m in doc["models"].values())),
    ]
    return [p for p in out if p[2] > 0]


def fit(doc: dict, board: dict) -> dict:
    """Each part in the first of the board's memories that takes its role and has room: what can
    only live in RAM first (stack, model objects, heap), then code, then the weights, which may
    stay in flash; largest first within each. Whether everything fits, and each memory's use and
    headroom."""
    free = {m["name"]: m["bytes"] for m in board["memories"]}
    placed, unplaced = [], []
    order = ("stack", "objects", "heap", "code", "constants")
    needed = parts(doc)
    for what, role, size in sorted(needed, key=lambda p: (order.index(p[1]), -p[2])):
        where = next((m["name"] for m in board["memories"] if role in m["roles"] and free[m["name"]] >= size), None)
        if where is None:
            unplaced.append({"part": what, "role": role, "bytes": size})
            continue
        free[where] -= size
        placed.append({"part": what, "role": role, "bytes": size, "memory": where})
    image = sum(size for _, role, size in needed if role in ("code", "constants"))
    storage = sum(m["bytes"] for m in board["memories"] if m.get("persistent"))
    if image > storage:  # weights copied into RAM at boot come from the image too
        unplaced.append(
            {"part": f"program image ({image:,} bytes of code and weights)", "role": "image", "bytes": image}
        )
    memories = [
        {"name": m["name"], "bytes": m["bytes"], "used": m["bytes"] - free[m["name"]], "headroom": free[m["name"]]}
        for m in board["memories"]
    ]
    return {"fits": not unplaced, "placed": placed, "unplaced": unplaced, "memories": memories}


def weight_time(doc: dict, board: dict, placement: dict) -> float:
    """Seconds to stream every model's weights once, at the precision's bytes per weight, from
    wherever the engine reads them: its constants (the generated engine, in place), its object
    (RTNeural's copy) or the heap (RTNeural from JSON); a part that fits nowhere at the slowest
    memory's rate."""
    speed = {m["name"]: m["bytes_per_s"] for m in board["memories"]}
    where = {p["part"]: p["memory"] for p in placement["placed"]}
    seconds = 0.0
    for name, m in doc["models"].items():
        if m["model_bytes"] >= m["weight_bytes"]:
            part = object_part(name, m)
        elif m["load_heap_bytes"] >= m["weight_bytes"]:
            part = "heap (models' load)"
        else:
            part = f"{name} weights"
        rate = speed[where[part]] if part in where else min(speed.values())
        seconds += m["parameters"] * roofline.BYTES_PER_WEIGHT[doc["dtype"]] / rate
    return seconds


def steps_per_block(m: dict) -> int:
    """Steps a model takes per audio block: one, or one per sample for a sample-rate model."""
    return (m.get("per_sample") or {}).get("steps_per_block", 1)


def estimates(doc: dict, board: dict, placement: dict, loop: dict | None) -> list[dict]:
    """The models' estimates of the set's time per block on `board`, each {"model", "low_ms",
    "high_ms", "how"}. A sample-rate model's multiply-adds count once per sample of the block; its
    weights are streamed once per block (a model that runs per sample is small: they stay cached)."""
    macs = sum(m["parameters"] * steps_per_block(m) for m in doc["models"].values())
    dtype = doc["dtype"]
    compute = macs / board["peak_macs_per_s"][dtype]
    memory = weight_time(doc, board, placement)
    out = [
        {
            "model": "roofline",
            "low_ms": 1e3 * max(compute, memory),
            "high_ms": 1e3 * (compute + memory),
            "how": f"{macs:,} multiply-adds at {board['peak_macs_per_s'][dtype] / 1e9:.2f} G/s "
            f"({1e3 * compute:.3f} ms); weights from where they fit ({1e3 * memory:.3f} ms)",
        }
    ]
    instructions = counted_instructions(doc)
    cpi = board["cpi"]
    if instructions is not None and cpi is not None:
        out.append(
            {
                "model": "instructions x clock",
                "low_ms": 1e3 * instructions * cpi[0] / board["clock_hz"],
                "high_ms": 1e3 * instructions * cpi[1] / board["clock_hz"],
                "how": f"{instructions:,} instructions per block at {board['clock_hz'] / 1e6:.0f} MHz, "
                f"{cpi[0]}-{cpi[1]} cycles per instruction",
            }
        )
    if loop is not None and loop.get("macs_per_iteration"):
        iterations = macs / loop["macs_per_iteration"]
        hot = iterations * loop["cycles_per_iteration"] / board["clock_hz"]
        if instructions is not None and cpi is not None:
            rest = max(0.0, instructions - iterations * loop["instructions"])
            low, high = hot + rest * cpi[0] / board["clock_hz"], hot + rest * cpi[1] / board["clock_hz"]
            scope = f"+ the other {rest:,.0f} instructions at {cpi[0]}-{cpi[1]} cycles each"
        else:
            low, high = hot, None
            scope = "the loop alone: a lower bound"
        out.append(
            {
                "model": "llvm-mca",
                "low_ms": 1e3 * low,
                "high_ms": None if high is None else 1e3 * high,
                "how": f"hot loop ({loop['instructions']} instructions, {loop['macs_per_iteration']} "
                f"multiply-adds) {loop['cycles_per_iteration']:.2f} cycles per iteration on {board['mca_cpu']} "
                f"x {iterations:,.0f}; {scope}",
            }
        )
    return out


def counted_instructions(doc: dict) -> int | None:
    """Instructions per block where the emulator counts them: QEMU's -icount shift=0 runs one
    instruction per virtual nanosecond."""
    if doc["timing"]["kind"] != "counted":
        return None
    return round(doc["set"]["latency_us"]["p50"] * 1000)


def for_target(boards: list[dict], target: str) -> list[dict]:
    return [b for b in boards if target in b["targets"]]


def assess(docs: list[dict], profiles: list[dict]) -> list[dict]:
    """For the newest result of each target and engine (from an emulator or this machine, not a
    board's own run), each board that runs the target: its estimates and its memory fit."""
    newest: dict[tuple[str, str], dict] = {}
    for doc in sorted(docs, key=lambda d: d["created"]):
        if doc["target"]["run"] != "board" and doc["build"].get("symbols"):
            newest[(doc["target"]["name"], doc["engine"], doc["backend"], doc["dtype"])] = doc
    out = []
    for doc in newest.values():
        for board in for_target(profiles, doc["target"]["name"]):
            loop = doc.get("hot_loop")
            core = None
            if loop and board["mca_cpu"] in loop["cycles_per_iteration"]:
                core = {**loop, "cycles_per_iteration": loop["cycles_per_iteration"][board["mca_cpu"]]}
            placement = fit(doc, board)
            out.append(
                {
                    "board": board["id"],
                    "board_name": board["name"],
                    "target": doc["target"]["name"],
                    "engine": results.engine_name(doc),
                    "dtype": doc["dtype"],
                    "result": doc["id"],
                    "deadline_ms": doc["config"]["deadline_us"] / 1e3,
                    "estimates": estimates(doc, board, placement, core),
                    "fit": placement,
                }
            )
    return sorted(out, key=lambda a: (a["board"], a["target"], min(e["low_ms"] for e in a["estimates"])))


def rows(assessments: list[dict]) -> list[tuple]:
    """One line per board and engine: each model's estimate as low-high ms, whether the set fits
    and the memories it would take."""
    out = []
    for a in assessments:
        by = {e["model"]: e for e in a["estimates"]}
        cells = []
        for model in ("roofline", "instructions x clock", "llvm-mca"):
            e = by.get(model)
            cells.append("-" if e is None else span(e))
        used = ", ".join(f"{m['name']} {m['used'] / 1024:,.0f}K" for m in a["fit"]["memories"] if m["used"])
        verdict = "yes" if a["fit"]["fits"] else "no: " + ", ".join(p["part"] for p in a["fit"]["unplaced"][:2])
        out.append((a["board"], a["target"], a["engine"], *cells, f"{a['deadline_ms']:.2f}", verdict, used))
    return out


HEAD = (
    "board",
    "from",
    "engine",
    "roofline ms",
    "instr x clock ms",
    "llvm-mca ms",
    "deadline ms",
    "fits",
    "memory used",
)


def span(e: dict) -> str:
    if e["high_ms"] is None:
        return f">= {e['low_ms']:.3f}"
    return f"{e['low_ms']:.3f}-{e['high_ms']:.3f}"


# Per-sample figures: a counted layers result (bench layers --target cortex-m7) seen from each board.

AUDIO_RATE = 48_000
WIDTH = 120  # the prose above the tables is wrapped to it
CPU_BUDGET = 0.5  # the share of one core a model may take; the rest is the audio graph's and the system's


def layers_file(paths: list[Path]) -> Path | None:
    """The layers result among `bench boards`'s arguments, when one is given on its own (the
    run results' path otherwise)."""
    found = [p for p in map(Path, paths) if p.is_file() and _is_layers(p)]
    if found and len(paths) > 1:
        raise SuiteError("a layers result goes on its own (bench boards FILE), not among run results", found[0])
    return found[0] if found else None


def _is_layers(path: Path) -> bool:
    try:
        doc = jsonfile.read(path, results.MAX_BYTES, "result")
    except SuiteError:
        return False  # not this function's to report: the run results' loader names it
    return isinstance(doc, dict) and doc.get("schema") == layers.SCHEMA_ID


def counted_layers(path: Path) -> tuple[dict, Path, list[str]]:
    """A counted layers result: the file `path`, or the newest counted one in the folder `path`
    (the others, and files that are no layers result, passed over with a warning)."""
    path = Path(path)
    if not path.is_dir():
        doc = layers.load(path)
        if doc.get("timing") != "counted":
            raise SuiteError(
                f"a layers result timed on {doc['target']['name']}: board shares need instructions counted on "
                "a Cortex-M7 (bench layers --target cortex-m7)",
                path,
            )
        return doc, path, []
    found, warnings = [], []
    for file in sorted(path.glob("*.json")):
        try:
            doc = layers.load(file)
        except SuiteError as exc:
            warnings.append(f"skipped {exc}")
            continue
        if doc.get("timing") == "counted":
            found.append((doc["created"], str(file), doc))
    if not found:
        raise SuiteError("no counted layers result here (bench layers --target cortex-m7 writes one)", path)
    _, file, doc = max(found, key=lambda f: f[:2])
    return doc, Path(file), warnings


def cpu_share(instructions_per_sample: float, board: dict) -> tuple[float, float]:
    """The share of one core a layer takes at 48 kHz on `board`, at each end of its cycles per
    instruction: instructions per sample x 48,000 x CPI / clock."""
    return tuple(instructions_per_sample * AUDIO_RATE * cpi / board["clock_hz"] for cpi in board["cpi"])


def layer_boards(doc: dict, profiles: list[dict]) -> list[dict]:
    """The boards that run the result's target and have a cycles-per-instruction range."""
    return [b for b in for_target(profiles, doc["target"]["name"]) if b["cpi"] is not None]


def largest(doc: dict, board: dict, engine: str, kind: str) -> dict | None:
    """The largest layer of `kind` with one input that runs within CPU_BUDGET of `board` on
    `engine`, at the top of its CPI range: {"units", "share", "of_measured"} (units None when even
    the smallest measured is over, of_measured: it is the largest measured), or None when the
    result has no such layer."""
    measured = sorted(
        (layer["units"], cpu_share(layer["engines"][engine]["instructions_per_sample"], board)[1])
        for layer in doc["layers"]
        if layer["type"] == kind and layer["inputs"] == 1 and engine in layer["engines"]
    )
    if not measured:
        return None
    within = [m for m in measured if m[1] <= CPU_BUDGET]
    units, share = within[-1] if within else (None, measured[0][1])
    return {"units": units, "share": share, "of_measured": units == measured[-1][0], "smallest": measured[0][0]}


def share_rows(doc: dict, boards_: list[dict]) -> list[tuple]:
    """One line per layer and engine: instructions per sample and each board's share, low-high."""
    out = []
    for layer in doc["layers"]:
        for engine, f in layer["engines"].items():
            cells = ["-".join(f"{100 * s:.1f}" for s in cpu_share(f["instructions_per_sample"], b)) for b in boards_]
            out.append((layer["name"], engine, f"{f['instructions_per_sample']:,.0f}", *cells))
    return out


def largest_cell(found: dict | None) -> str:
    if found is None:
        return "-"
    # rounded up: a share just over the half never reads as 50.0% (float noise rounded off first)
    share = f"{math.ceil(round(1000 * found['share'], 6)) / 10:.1f}%"
    if found["units"] is None:
        return f"none ({found['smallest']}: {share})"
    return f"{found['units']}{'+' if found['of_measured'] else ''} ({share})"


def largest_rows(doc: dict, boards_: list[dict]) -> list[tuple]:
    return [
        (b["id"], engine, *(largest_cell(largest(doc, b, engine, kind)) for kind in ("gru", "lstm")))
        for b in boards_
        for engine in doc["engines"]
    ]


def render_layers(doc: dict, path: Path, profiles: list[dict]) -> str:
    """Each board's estimated share of its CPU per layer and engine, and per board and engine the
    largest GRU and LSTM with one input within CPU_BUDGET of it."""
    boards_ = layer_boards(doc, profiles)
    if not boards_:
        raise SuiteError(f"no board profile with a CPI range runs {doc['target']['name']}", PATH)
    rate = f"{AUDIO_RATE / 1000:g} kHz"
    about = "; ".join(f"{b['id']} {b['clock_hz'] / 1e6:.0f} MHz, CPI {b['cpi'][0]}-{b['cpi'][1]}" for b in boards_)
    return "\n".join(
        [
            textwrap.fill(
                f"Share of one core at {rate}, estimated for each board from {path.name}: instructions per sample "
                f"counted (QEMU -icount) x {AUDIO_RATE:,} x the board's CPI / its clock ({about})",
                WIDTH,
            ),
            table.render(
                share_rows(doc, boards_),
                ("layer", "engine", "instr/sample", *(f"est. {b['id']} %" for b in boards_)),
            ),
            "",
            textwrap.fill(
                f"Largest GRU and LSTM with one input within {100 * CPU_BUDGET:.0f}% of one core at {rate}, "
                "estimated for each board at the top of its CPI range: units (share); +: the largest size "
                "measured, a larger one may fit too; none: not even the smallest measured",
                WIDTH,
            ),
            table.render(largest_rows(doc, boards_), ("board", "engine", "largest GRU", "largest LSTM")),
        ]
    )
