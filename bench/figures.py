"""The figures of a result that do not depend on the machine's load, keyed by target, engine, model
and metric, each with the provenance that decides whether two of them can be compared. `bench
compare` gates on these and the baseline stores them; wall-clock times ride along, for information.

- `instructions`: per forward() and per block (model `set`): callgrind on x86; on Cortex-M7 QEMU's
  `-icount` virtual clock, 1 ns per instruction, so the p50 in microseconds x 1000 (exact there);
- `text`, `data`, `bss` and each allocated section of the binary (model `set`); per model
  `weight_bytes`, `code_bytes` (its own code, from the image's symbols) and `stack_bytes` (the
  deepest stack of one forward(), painted on the target), exact counts;
- `forward_allocations` (model `set`): heap allocations in forward(), which must stay 0;
- `parity`: the max abs error, which must stay within the run's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import results
from common import layout

SET = layout.SET  # the model name of the whole set's figures
# compared as a change against a threshold
GATED = ("instructions", "text", "data", "bss", "weight_bytes", "code_bytes", "stack_bytes")


@dataclass(frozen=True)
class Figure:
    target: str
    engine: str
    model: str
    metric: str
    value: float
    provenance: str  # figures of different provenance are not comparable
    limit: float | None = None  # parity: its tolerance

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.target, self.engine, self.model, self.metric)


@dataclass(frozen=True)
class Timing:
    """A wall-clock (or emulated) figure: shown, never gated."""

    target: str
    engine: str
    p50: float
    spread: float  # p99 - p50: the noise across blocks
    kind: str  # measured | emulated | counted
    cold_p50: float | None = None  # caches evicted before each block


def provenance(doc: dict, what: str) -> str:
    build = doc["build"]
    tool = doc.get("counter") or doc["timing"]["kind"]
    base = f"{build['compiler']} {' '.join(build['flags'])}"
    return f"{base} | {tool}" if what == "instructions" else base


def instructions(doc: dict, model: str = SET) -> int | None:
    """Instructions of one block of the set (model `set`) or of one forward() of a model:
    callgrind's count, or on a counted target QEMU's `-icount` virtual clock (1 ns per instruction,
    so the p50 in microseconds x 1000); None where nothing counted them."""
    m = doc["set"] if model == SET else doc["models"][model]
    count = m["instructions_per_block"] if model == SET else m["instructions_per_forward"]
    if count is None and doc["timing"]["kind"] == "counted":
        count = round(m["latency_us"]["p50"] * 1000)
    return count


def of(doc: dict) -> list[Figure]:
    """Every gated figure of one result document."""
    target, engine = doc["target"]["name"], results.engine_name(doc)
    out: list[Figure] = []

    def add(model, metric, value, what=None, limit=None):
        if value is not None:
            out.append(Figure(target, engine, model, metric, value, provenance(doc, what or metric), limit))

    for name, m in doc["models"].items():
        add(name, "instructions", instructions(doc, name))
        add(name, "weight_bytes", m["weight_bytes"])
        add(name, "code_bytes", m.get("code_bytes"))  # absent (None) in results written before them
        add(name, "stack_bytes", m.get("stack_bytes"))
        add(name, "parity", results.max_error([m]), limit=doc["parity_tolerance"])  # NaN: no figure, fails
    add(SET, "instructions", instructions(doc))
    binary = doc["build"]["binary"]
    for section in ("text", "data", "bss"):
        add(SET, section, binary[section])
    add(SET, "forward_allocations", doc["heap"]["forward_allocations"])
    return out


def timing(doc: dict) -> Timing:
    lat, cold = doc["set"]["latency_us"], doc["set"].get("latency_cold_us")
    return Timing(
        doc["target"]["name"],
        results.engine_name(doc),
        lat["p50"],
        lat["p99"] - lat["p50"],
        doc["timing"]["kind"],
        cold["p50"] if cold else None,
    )


def latest(docs: list[dict]) -> list[dict]:
    """The newest result of each target and engine."""
    newest: dict[tuple[str, str], dict] = {}
    for doc in sorted(docs, key=lambda d: d["created"]):
        newest[(doc["target"]["name"], results.engine_name(doc))] = doc
    return [newest[k] for k in sorted(newest)]
