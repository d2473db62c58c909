"""The model table in docs/ML_ARCHITECTURE.md, derived from the declarations.

`python -m models.docs` rewrites the table between its markers; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import atomic
from models.catalog import MODELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "ML_ARCHITECTURE.md"
BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"


def describe(layer) -> str:
    act = f" {layer.activation}" if getattr(layer, "activation", None) else ""
    return f"{layer.kind.upper() if layer.kind != 'dense' else 'Dense'} {layer.out}{act}"


def table() -> str:
    rows = ["| model | in -> out | layers | parameters | budget | float32 | task |", "|---|---|---|---|---|---|---|"]
    for s in MODELS.values():
        rows.append(
            f"| {s.name} | {s.input_size} -> {s.output_size} | {' -> '.join(map(describe, s.layers))} | "
            f"{s.parameter_count:,} | {s.target_parameters:,} ({s.parameter_count / s.target_parameters - 1:+.0%}) "
            f"| {s.parameter_count * 4 / 1024:.0f} KiB | {s.purpose} |"
        )
    total = sum(s.parameter_count for s in MODELS.values())
    rows.append(f"| **all five** | | | **{total:,}** | 1,000,000 | **{total * 4 / 1e6:.2f} MB** | |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    text = DOC.read_text()
    atomic.write_text(DOC, render(text))
    sys.exit(0)
