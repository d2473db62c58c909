"""Real boards, from an emulated or counted run: where the program would live in each board's
memories and whether it fits (from the linked image's symbols and sections, bench/build.py), how
long a block would take there, estimated three ways, and one verdict against the block's deadline.

The estimates, each with the time to stream the weights once from the memory they were placed in
(overlapped fully with the computing for the low end, not at all for the high end):

- roofline: the set's multiply-adds at the board's peak rate. What the core could do, not what this
  code does: a floor, never the top of a range;
- instructions x clock: where the emulator counts instructions (Cortex-M7 under `-icount`), the
  count at the board's clock over its range of cycles per instruction;
- llvm-mca: the hottest inner loop's steady-state cycles per iteration on the board's core
  (bench/mca.py) times the iterations the set's multiply-adds need; on a counted target the
  instructions outside that loop at the board's cycles-per-instruction range, elsewhere the loop
  alone (a floor).

The verdict is drawn from the most direct of them (DECIDERS, where it says why); where nothing
counted the instructions, only the highest floor is known, and a set can then miss, never meet.
The boards' figures, each with its source, are one data file: bench/boards.json.

From a counted layers result (`bench layers --target cortex-m7`: instructions per sample per layer
and engine), each Cortex-M7 board's estimated share of one core at 48 kHz (the count x 48,000 x
the board's cycles per instruction / its clock, over the CPI range), and per board and engine the
largest GRU and LSTM with one input that stays within BUDGET_SHARE of it.
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
WIDTH = 120  # every line of the default output and the layers view, prose and tables

# "Well inside the block's deadline", the product's promise: a set meets the deadline when the top
# of its estimated range takes at most this share of the block's time; the rest is left to the
# audio graph, the system and the estimates' own error. The layers view holds a layer to the same
# share of one core.
BUDGET_SHARE = 0.5
VERDICTS = ("meets", "at risk", "misses")  # best first

ROOFLINE, COUNTED, MCA = "roofline", "instructions x clock", "llvm-mca"
# Which estimate decides, most direct evidence first. Both start from the instructions QEMU -icount
# counted for this very build on the board's ISA, an exact figure. llvm-mca then models, on the
# board's core, the hot loop that runs most of them (85-96% in the committed Cortex-M7 results), so
# the profile's cycles-per-instruction range, an estimate with no measured source, covers only the
# rest; the loops it models take 0.70-1.85 cycles per instruction, outside that range for float32
# and RTNeural, which is why it goes first. The roofline never decides: it is the core at its peak,
# not this code (on armv7 xsimd llvm-mca's loop alone takes 4.6x the roofline's top). Nothing here
# is scaled from an emulator's wall time.
DECIDERS = (MCA, COUNTED)
SHORT = {ROOFLINE: "roofline", COUNTED: "instr x clock", MCA: "llvm-mca"}  # for the 120-column table

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
    doc = jsonfile.read(path, jsonfile.TABLE_BYTES, "board profiles", "it ships with bench (bench/boards.json)")
    jsonfile.check(doc, SCHEMA, SCHEMA_ID, path)
    return doc["boards"]


def object_part(name: str, m: dict) -> str:
    """The part a model's object is: RTNeural's ModelT object holds its own copy of the weights."""
    return f"{name} object" + (" (a copy of its weights)" if m["model_bytes"] >= m["weight_bytes"] else "")


def stack_part(models: dict) -> tuple[str, int]:
    """The stack the set needs: the deepest model's forward where the result measured each (the
    models run one after another on one stack), else what the harness's linker scripts reserve."""
    if models and all(m.get("stack_bytes") is not None for m in models.values()):
        name = max(models, key=lambda n: models[n]["stack_bytes"])
        return f"stack ({name}'s forward, the deepest)", models[name]["stack_bytes"]
    return "stack (the harness's reservation)", STACK_BYTES


def parts(doc: dict) -> list[tuple[str, str, int]]:
    """(what, role, bytes) the program of a result needs placed: each model's code (the result's
    code_bytes where it has them, else the linked image's symbols), its constants (weights) and its
    object (state; with RTNeural a copy of the weights), then the rest of the program's code and
    data, the stack and what the models took from the heap when loaded."""
    symbols = doc["build"].get("symbols")
    if symbols is None:
        raise SuiteError(f"result {doc['id']} has no symbol sizes (made before bench recorded them): run it again")
    out = []
    for name, m in doc["models"].items():
        sizes = symbols["models"].get(name, {"code": 0, "constants": 0})
        code = sizes["code"] if m.get("code_bytes") is None else m["code_bytes"]
        out += [(f"{name} code", "code", code), (f"{name} weights", "constants", sizes["constants"])]
        out.append((object_part(name, m), "objects", m["model_bytes"]))
    other = symbols["other"]
    model_bytes = sum(m["model_bytes"] for m in doc["models"].values())
    out += [
        ("program code", "code", other["code"]),
        ("program constants", "constants", other["constants"]),
        ("program data", "objects", max(0, other["zeroed"] - model_bytes) + doc["build"]["binary"]["data"]),
        (*stack_part(doc["models"])[:1], "stack", stack_part(doc["models"])[1]),
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


def with_weights(low: float, high: float | None, memory: float) -> tuple[float, float | None]:
    """Computing that takes `low`-`high` seconds and streaming the weights (`memory` seconds):
    overlapped fully at the low end (the longer of the two), not at all at the high end (the sum).
    Every estimate takes it: on a Teensy 4.1 the float32 weights in QSPI flash take 73.9 ms to
    stream, which the instructions alone (3.2-6.9 ms at its CPI range) never see."""
    return max(low, memory), None if high is None else high + memory


def estimate(model: str, bound: str, low: float, high: float | None, how: str) -> dict:
    """bound: "range" (high is meant as the top), "floor" (the time is at least low; high, where
    given, is no top) or "inconsistent" (shown, never used)."""
    return {
        "model": model,
        "bound": bound,
        "low_ms": 1e3 * low,
        "high_ms": None if high is None else 1e3 * high,
        "how": how,
    }


def estimates(doc: dict, board: dict, placement: dict, loop: dict | None) -> list[dict]:
    """The estimates of the set's time per block on `board`, each {"model", "bound", "low_ms",
    "high_ms", "how"}. A sample-rate model's multiply-adds count once per sample of the block; its
    weights are streamed once per block (a model that runs per sample is small: they stay cached)."""
    macs = sum(m["parameters"] * steps_per_block(m) for m in doc["models"].values())
    dtype = doc["dtype"]
    clock = board["clock_hz"]
    compute = macs / board["peak_macs_per_s"][dtype]
    memory = weight_time(doc, board, placement)
    weights = f"weights streamed from where they fit {1e3 * memory:.3f} ms"
    out = [
        estimate(
            ROOFLINE,
            "floor",
            *with_weights(compute, compute, memory),
            f"{macs:,} multiply-adds at the core's peak {board['peak_macs_per_s'][dtype] / 1e9:.2f} G/s "
            f"({1e3 * compute:.3f} ms); {weights}; a floor: this code need not reach the peak",
        )
    ]
    instructions = counted_instructions(doc)
    cpi = board["cpi"]
    counted = instructions is not None and cpi is not None
    if counted:
        low, high = (instructions * c / clock for c in cpi)
        out.append(
            estimate(
                COUNTED,
                "range",
                *with_weights(low, high, memory),
                f"{instructions:,} instructions per block (counted, QEMU -icount) at {clock / 1e6:.0f} MHz, "
                f"{cpi[0]}-{cpi[1]} cycles per instruction ({1e3 * low:.3f}-{1e3 * high:.3f} ms); {weights}",
            )
        )
    if loop is not None and loop.get("macs_per_iteration"):
        iterations = macs / loop["macs_per_iteration"]
        hot = iterations * loop["cycles_per_iteration"] / clock
        about = (
            f"hot loop ({loop['instructions']} instructions, {loop['macs_per_iteration']} multiply-adds) "
            f"{loop['cycles_per_iteration']:.2f} cycles per iteration on {board['mca_cpu']} x {iterations:,.0f}"
        )
        in_loop = iterations * loop["instructions"]
        if not counted:
            out.append(estimate(MCA, "floor", *with_weights(hot, None, memory), f"{about}; the loop alone; {weights}"))
        elif in_loop > instructions:
            out.append(
                estimate(
                    MCA,
                    "inconsistent",
                    hot,
                    hot,
                    f"{about}: {in_loop:,.0f} instructions, more than the {instructions:,} counted: the "
                    "multiply-adds do not all run through this loop; not used",
                )
            )
        else:
            rest = instructions - in_loop
            low, high = (hot + rest * c / clock for c in cpi)
            out.append(
                estimate(
                    MCA,
                    "range",
                    *with_weights(low, high, memory),
                    f"{about} ({100 * in_loop / instructions:.0f}% of the counted instructions); the other "
                    f"{rest:,.0f} at {cpi[0]}-{cpi[1]} cycles each ({1e3 * low:.3f}-{1e3 * high:.3f} ms); {weights}",
                )
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


def verdict(low_ms: float, high_ms: float | None, deadline_ms: float) -> str:
    """misses: even the bottom of the range is over the deadline; meets: its top is within
    BUDGET_SHARE of it; at risk: anything between, and a floor under the deadline with no top."""
    if low_ms > deadline_ms:
        return "misses"
    if high_ms is not None and high_ms <= BUDGET_SHARE * deadline_ms:
        return "meets"
    return "at risk"


def decide(found: list[dict], doc: dict) -> tuple[dict, str, str]:
    """The estimate that decides (DECIDERS' first with a range; else the highest floor, with no
    top), its short name for the table and why it is the one."""
    by = {e["model"]: e for e in found}
    for model in DECIDERS:
        if by.get(model, {}).get("bound") == "range":
            why = {
                MCA: "llvm-mca models the hot loop's cycles on the board's core; the instructions counted "
                "outside it at the board's CPI range",
                COUNTED: "the instructions counted for this build at the board's CPI range (no llvm-mca loop that "
                "accounts for them)",
            }[model]
            return by[model], SHORT[model], why
    floor = max((e for e in found if e["bound"] == "floor"), key=lambda e: e["low_ms"])
    nothing = (
        f"{doc['target']['name']} runs are timed under {doc['target']['run']}, which counts no instructions"
        if doc["timing"]["kind"] != "counted"
        else "the board's profile has no cycles-per-instruction range"
    )
    return {**floor, "high_ms": None}, f"{SHORT[floor['model']]} floor", f"only a floor is known: {nothing}"


def assess(docs: list[dict], profiles: list[dict]) -> list[dict]:
    """For the newest result of each target and engine (from an emulator or this machine, not a
    board's own run), each board that runs the target: its estimates, the verdict against the
    deadline ("verdict", "decided_by", "range_ms" [low, high or None: no top known],
    "deadline_ms", "basis": why that estimate decides) and the memory fit ("fits", and "fit" with
    where each part goes). In the profiles' order of boards and targets, best verdict first."""
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
            found = estimates(doc, board, placement, core)
            deciding, decided_by, basis = decide(found, doc)
            deadline_ms = doc["config"]["deadline_us"] / 1e3
            out.append(
                {
                    "board": board["id"],
                    "board_name": board["name"],
                    "target": doc["target"]["name"],
                    "engine": results.engine_name(doc),
                    "dtype": doc["dtype"],
                    "result": doc["id"],
                    "deadline_ms": deadline_ms,
                    "verdict": verdict(deciding["low_ms"], deciding["high_ms"], deadline_ms),
                    "decided_by": decided_by,
                    "range_ms": [deciding["low_ms"], deciding["high_ms"]],
                    "basis": basis,
                    "fits": placement["fits"],
                    "estimates": found,
                    "fit": placement,
                }
            )
    boards_order = {b["id"]: i for i, b in enumerate(profiles)}
    targets_order = {(b["id"], t): i for b in profiles for i, t in enumerate(b["targets"])}
    return sorted(out, key=lambda a: (boards_order[a["board"]], targets_order[(a["board"], a["target"])], rank(a)))


def rank(a: dict) -> tuple:
    """Better first: the verdict, then fitting, then the top of the range (a floor's after any
    top; among misses the bottom, what misses), then its bottom."""
    low, high = a["range_ms"]
    first = low if a["verdict"] == "misses" else math.inf if high is None else high
    return VERDICTS.index(a["verdict"]), not a["fits"], first, low


BEST_KEYS = ("target", "verdict", "range_ms", "decided_by", "deadline_ms", "fits")  # the chosen assessment's


def best(assessed: list[dict], profiles: list[dict] | None = None) -> list[dict]:
    """Per board, in the profiles' order (given `profiles`, boards without an assessment too,
    their fields None): "engine", the one that meets the deadline and fits with the lowest top of
    its range, else None, the nearest engine in "nearest" and "why" none qualifies (one short
    phrase); BEST_KEYS are the chosen (or nearest) engine's."""
    names = {b["id"]: b["name"] for b in profiles} if profiles else {a["board"]: a["board_name"] for a in assessed}
    out = []
    for board, name in names.items():
        mine = [a for a in assessed if a["board"] == board]
        if not mine:
            none = {"engine": None, "nearest": None, **dict.fromkeys(BEST_KEYS), "why": "no result of a target it runs"}
            out.append({"board": board, "board_name": name, **none})
            continue
        top = min(mine, key=rank)
        good = top["verdict"] == "meets" and top["fits"]
        out.append(
            {
                "board": board,
                "board_name": name,
                "engine": top["engine"] if good else None,
                "nearest": None if good else top["engine"],
                **{key: top[key] for key in BEST_KEYS},
                "why": None if good else shortfall(top),
            }
        )
    return out


def shortfall(a: dict) -> str:
    """One short phrase: why the nearest engine does not qualify."""
    low, high = a["range_ms"]
    deadline = a["deadline_ms"]
    if a["verdict"] == "meets":
        return f"{a['engine']} meets the deadline but does not fit ({fit_cell(a)})"
    if a["verdict"] == "misses":
        return f"every engine misses: the nearest, {a['engine']}, needs at least {ms(low)} of {deadline:.2f} ms"
    if high is None:
        return f"only a floor known ({ms(low)} ms): run it on the board (bench run --device)"
    tail = "" if a["fits"] else f"; does not fit ({fit_cell(a)})"
    return f"{a['engine']} takes up to {ms(high)} ms, over {100 * BUDGET_SHARE:.0f}% of {deadline:.2f} ms{tail}"


def ms(x: float) -> str:
    """Three significant digits: 0.193, 2.61, 10.4, 125."""
    digits = max(0, 2 - math.floor(math.log10(x))) if x > 0 else 0
    return f"{x:.{digits}f}"


def span_ms(low: float, high: float | None) -> str:
    return f">= {ms(low)}" if high is None else f"{ms(low)}-{ms(high)}"


def span(e: dict) -> str:
    """An estimate's range in ms: low-high, or ">= low" for a floor with no top."""
    return span_ms(e["low_ms"], e["high_ms"])


# What an unplaced part is short of, for the table's fit column.
SHORT_OF = {"code": "code", "constants": "weights", "objects": "RAM", "stack": "RAM", "heap": "RAM", "image": "image"}


def fit_cell(a: dict) -> str:
    """yes, or what the first part that fits nowhere is short of (RAM, weights, code, image): the
    parts are placed RAM-only first, so the first is the most fundamental; --details lists all."""
    return "yes" if a["fits"] else f"no: {SHORT_OF[a['fit']['unplaced'][0]['role']]}"


HEAD = ("board", "target", "engine", "est. ms/block", "decided by", "deadline ms", "verdict", "fits")


def rows(assessments: list[dict]) -> list[tuple]:
    """One line per board and engine: the verdict against the deadline, the deciding estimate's
    range and name, the deadline, and whether the set fits the board's memories."""
    return [
        (
            a["board"],
            a["target"],
            a["engine"],
            span_ms(*a["range_ms"]),
            a["decided_by"],
            f"{a['deadline_ms']:.2f}",
            a["verdict"],
            fit_cell(a),
        )
        for a in assessments
    ]


def wrap(text: str, **options) -> str:
    """Prose at WIDTH columns, never breaking a name such as llvm-mca at its hyphen."""
    return textwrap.fill(text, WIDTH, break_on_hyphens=False, **options)


def intro() -> str:
    """What the table's figures are and how its verdicts are drawn."""
    return wrap(
        "Estimated for each board (bench/boards.json) from the latest emulated or counted run of each target and "
        "engine: the set's time per block there, not measured, streaming the weights from where they fit included. "
        f"Verdict against the block's deadline: meets when the range's top is within {100 * BUDGET_SHARE:.0f}% of "
        "it, misses when its bottom is over it, at risk otherwise or when only a floor is known. Decided by llvm-mca "
        "where its hot loop accounts for the instructions QEMU -icount counted (the loop's cycles on the board's "
        "core, the rest at its CPI range), else by instr x clock (the count at the CPI range); where nothing counts "
        "instructions (QEMU user mode), only a floor. Fits: memory only. --details: each estimate, where each part "
        "goes."
    )


def details(a: dict) -> str:
    """Everything behind one line of the table: the verdict and why that estimate decides, each
    estimate and how it comes about, each memory's use and where each part goes."""
    deadline = a["deadline_ms"]
    lines = [
        f"{a['board_name']} / {a['engine']} on {a['target']} (from {a['result']}): {a['verdict']}, "
        f"{span_ms(*a['range_ms'])} ms by {a['decided_by']} against {deadline:.2f} ms (meets within "
        f"{ms(BUDGET_SHARE * deadline)} ms); {a['basis']}",
    ]
    for e in a["estimates"]:
        lines.append(f"  {e['model']} ({e['bound']}): {span(e)} ms: {e['how']}")
    used = ", ".join(f"{m['name']} {m['used']:,} of {m['bytes']:,}" for m in a["fit"]["memories"] if m["used"])
    lines.append(f"  memory: {'fits' if a['fits'] else 'does not fit'}; bytes used: {used}")
    lines += [f"    {p['part']}: {p['bytes']:,} bytes in {p['memory']}" for p in a["fit"]["placed"]]
    lines += [f"    {p['part']}: {p['bytes']:,} bytes fit nowhere ({p['role']})" for p in a["fit"]["unplaced"]]
    return "\n".join(wrap(line, subsequent_indent=" " * 6) for line in lines)


def render(assessed: list[dict], with_details: bool = False) -> str:
    """`bench boards`: the prose, the table (WIDTH columns), and with_details each line's story."""
    out = [intro(), table.render(rows(assessed), HEAD)]
    if with_details:
        out += ["\n" + details(a) for a in assessed]
    return "\n".join(out)


# Per-sample figures: a counted layers result (bench layers --target cortex-m7) seen from each board.

AUDIO_RATE = 48_000


def layers_file(paths: list[Path]) -> Path | None:
    """The layers result among `bench boards`'s arguments, when one is given on its own (the
    run results' path otherwise)."""
    found = [p for p in map(Path, paths) if p.is_file() and _is_layers(p)]
    if found and len(paths) > 1:
        raise SuiteError("a layers result goes on its own (bench boards FILE), not among run results", found[0])
    return found[0] if found else None


def _is_layers(path: Path) -> bool:
    try:
        doc = jsonfile.read(path, jsonfile.RESULT_BYTES, "result")
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
    """The largest layer of `kind` with one input that runs within BUDGET_SHARE of `board` on
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
    within = [m for m in measured if m[1] <= BUDGET_SHARE]
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
    largest GRU and LSTM with one input within BUDGET_SHARE of it."""
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
                f"Largest GRU and LSTM with one input within {100 * BUDGET_SHARE:.0f}% of one core at {rate}, "
                "estimated for each board at the top of its CPI range: units (share); +: the largest size "
                "measured, a larger one may fit too; none: not even the smallest measured",
                WIDTH,
            ),
            table.render(largest_rows(doc, boards_), ("board", "engine", "largest GRU", "largest LSTM")),
        ]
    )
