"""The figures of a result that do not depend on the machine's load, keyed by target, engine, model
and metric, each with the provenance that decides whether two of them can be compared. `bench
compare` gates on these and the baseline stores them; wall-clock times ride along, for information.

- `instructions`: per forward() and per block (model `set`): callgrind on x86; on Cortex-M7 QEMU's
  `-icount` virtual clock, 1 ns per instruction, so the p50 in microseconds x 1000 (exact there);
- `text`, `data`, `bss` and each allocated section of the binary (model `set`); `weight_bytes`;
- `forward_allocations` (model `set`): heap allocations in forward(), which must stay 0;
- `parity`: the max abs error, which must stay within the run's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import results
from common import layout

SET = layout.SET  # the model name of the whole set's figures
GATED = ("instructions", "text", "data", "bss", "weight_bytes")  # compared as a change against a threshold


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


def of(doc: dict) -> list[Figure]:
    """Every gated figure of one result document."""
    target, engine = doc["target"]["name"], results.engine_name(doc)
    out: list[Figure] = []

    def add(model, metric, value, what=None, limit=None):
        if value is not None:
            out.append(Figure(target, engine, model, metric, value, provenance(doc, what or metric), limit))

    counted = doc["timing"]["kind"] == "counted"
    for name, m in doc["models"].items():
        count = m["instructions_per_forward"]
        if count is None and counted:
            count = round(m["latency_us"]["p50"] * 1000)
        add(name, "instructions", count)
        add(name, "weight_bytes", m["weight_bytes"])
        add(name, "parity", m["parity_max_abs_error"], limit=doc["parity_tolerance"])
    count = doc["set"]["instructions_per_block"]
    if count is None and counted:
        count = round(doc["set"]["latency_us"]["p50"] * 1000)
    add(SET, "instructions", count)
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
