"""Instructions per block from valgrind's callgrind: stable where times are noisy.

The harness runs twice with different block counts and no warm-up; the difference divided by the
difference in blocks leaves out loading and the parity check, and gives the instructions of one
block for the whole set and (from each model's inclusive count of its forward function) per model.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import layout
from common.errors import SuiteError

BLOCKS = (4, 24)
FORWARD = re.compile(r"(\w+)_forward\(")


def version() -> str:
    """The tool behind the counts, for the results' provenance: "valgrind-3.19.0 callgrind"."""
    out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    return f"{out.stdout.strip()} callgrind"


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_annotate") is not None


def counts(program: Path, blocks: int, workdir: Path) -> tuple[int, dict[str, int]]:
    out = workdir / f"callgrind.{blocks}"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            str(program),
            "--blocks",
            str(blocks),
            "--warmup",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SuiteError(f"valgrind failed: {done.stderr.strip()[-500:]}", program)
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", annotated, re.M).group(1).replace(",", ""))
    per_function = {}
    for line in annotated.splitlines():
        m = FORWARD.search(line)
        if m and line.strip()[0].isdigit():
            per_function[m.group(1)] = int(line.split()[0].replace(",", ""))
    return total, per_function


def per_block(program: Path) -> dict[str, int]:
    """{layout.SET: instructions per block, "<model>": instructions per forward()}."""
    with tempfile.TemporaryDirectory() as tmp:
        (t1, f1), (t2, f2) = (counts(program, n, Path(tmp)) for n in BLOCKS)
    span = BLOCKS[1] - BLOCKS[0]
    result = {layout.SET: round((t2 - t1) / span)}
    result.update({name: round((f2[name] - f1.get(name, 0)) / span) for name in f2})
    return result
