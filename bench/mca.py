"""The hottest inner loop of a linked program, and llvm-mca's steady-state cycles per iteration for
it on a given core: the static pipeline half of the per-board estimates (bench/boards.py).

The loop is found in the disassembly: a backward branch within a function closes a loop; of those
with no division in them (the activations' loops divide), the one doing the most multiply-adds
per iteration (counted from its instructions, below; for an int8 engine, the most integer ones) is
the kernel the models' matrices run through."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bench.targets import Target

TRIPLES = {
    "aarch64": "aarch64-linux-gnu",
    "armv7": "armv7-linux-gnueabihf",
    "cortex-m7": "thumbv7em-none-eabihf",
    "cortex-m7-2mb": "thumbv7em-none-eabihf",
}
MAX_BODY = 200  # instructions: longer bodies are straight-line code, not an inner loop
# multiply-adds one instruction does: (mnemonic pattern, operand pattern or None, count, integer?)
MACS = [
    (r"^fmla$", r"\.4s", 4, False),
    (r"^fmla$", r"\.2s", 2, False),
    (r"^(fmla|fmadd)$", None, 1, False),
    (r"^sdot$", None, 16, True),
    (r"^(smull|smull2|smlal|smlal2|umull|umull2)$", r"\.8h", 8, True),
    (r"^(vfma|vmla)\.f32$", r"\bq\d+", 4, False),
    (r"^(vfma|vmla)\.f32$", r"\bd\d+", 2, False),
    (r"^(vfma|vmla)\.f32$", None, 1, False),
    (r"^(vmull|vmlal)\.s8$", None, 8, True),
    (r"^smlad$", None, 2, True),
]
LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
DIVIDE = re.compile(r"^(v?f?div|vdiv\.f32|fdiv|[su]div)")  # an activation loop (tanh's p / q), not a matrix
CONDITIONS = "eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al"
BRANCH = re.compile(rf"^(b|b\.({CONDITIONS})|b({CONDITIONS})(\.[nw])?|b\.[nw]|cbn?z|tbn?z)$")


def macs(mnemonic: str, operands: str, integer: bool | None = None) -> int:
    """Multiply-adds the instruction does (only integer or only float ones where `integer` says)."""
    for name, operand, count, whole in MACS:
        if re.match(name, mnemonic) and (operand is None or re.search(operand, operands)):
            return count if integer is None or whole == integer else 0
    return 0


def jump(operands: str, address: int) -> int:
    """A branch's target address (the hex address objdump prints last, before `<symbol>`), or
    `address` when it has none."""
    target = re.search(r"(?:^|[\s,])(?:0x)?([0-9a-f]+)\s*(?:<[^>]*>)?\s*$", operands)
    return int(target.group(1), 16) if target else address


def loops(disassembly: str) -> list[dict]:
    """Every loop closed by a backward branch: its instructions (address order) and multiply-adds."""
    body: list[tuple[int, str, str]] = []
    found = []
    for line in disassembly.splitlines():
        if line.endswith(">:"):  # a new function
            body = []
            continue
        m = LINE.match(line)
        if not m:
            continue
        address, mnemonic, operands = int(m.group(1), 16), m.group(2), re.split(r"\s[@;]|//", m.group(3))[0].strip()
        body.append((address, mnemonic, operands))
        start = jump(operands, address)
        if BRANCH.match(mnemonic) and start < address:
            inside = [b for b in body if start <= b[0] <= address]
            if start < address and 1 < len(inside) <= MAX_BODY:
                count = sum(macs(mn, ops) for _, mn, ops in inside)
                inner = not any(BRANCH.match(mn) and start <= jump(ops, a) < a for a, mn, ops in inside[:-1])
                if count and inner and not any(DIVIDE.match(mn) for _, mn, _ in inside):
                    found.append({"start": start, "instructions": inside, "macs": count})
    return found


def hottest(target: Target, program: Path, integer: bool = False) -> dict | None:
    """The loop with the most multiply-adds per iteration, or None (no loop, or no objdump); with
    `integer` (an int8 engine, whose small layers stay float32) the most integer multiply-adds, where
    a loop has any: the float loop of a small layer may do more per iteration, but the weights are
    mostly in the integer kernels."""
    tool = f"{target.toolchain}objdump"
    if target.name not in TRIPLES or not shutil.which(tool):
        return None
    listing = subprocess.run([tool, "-d", "--no-show-raw-insn", str(program)], capture_output=True, text=True)
    return pick(loops(listing.stdout), integer)


def pick(candidates: list[dict], integer: bool) -> dict | None:
    """`hottest`'s choice among `loops`."""
    whole = [c for c in candidates if integer and any(macs(mn, ops, True) for _, mn, ops in c["instructions"])]
    return max(whole or candidates, key=lambda c: (c["macs"], -len(c["instructions"])), default=None)


def cycles(target: Target, loop: dict, cpu: str) -> dict | None:
    """llvm-mca's cycles per iteration of `loop` on `cpu` (branches left out; lines llvm-mca cannot
    parse dropped), or None where llvm-mca is missing or understands none of it."""
    tool = next(
        filter(None, (shutil.which(n) for n in ("llvm-mca", "llvm-mca-16", "llvm-mca-15", "llvm-mca-14"))), None
    )
    if tool is None:
        return None
    body = [(mn, re.sub(r"<[^>]*>", "", ops)) for _, mn, ops in loop["instructions"] if not BRANCH.match(mn)]
    lines = [f"{mn} {ops}".strip() for mn, ops in body]
    for _ in range(8):
        done = subprocess.run(
            [tool, f"-mtriple={TRIPLES[target.name]}", f"-mcpu={cpu}", "-iterations=200", "-"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            total = int(re.search(r"Total Cycles:\s+(\d+)", done.stdout).group(1))
            iterations = int(re.search(r"Iterations:\s+(\d+)", done.stdout).group(1))
            return {
                "cpu": cpu,
                "instructions": len(loop["instructions"]),
                "macs_per_iteration": loop["macs"],
                "cycles_per_iteration": total / iterations,
                "dropped": len(body) - len(lines),
            }
        bad = {int(n) - 1 for n in re.findall(r"<stdin>:(\d+):\d+: error", done.stderr)}
        if not bad:
            return None
        lines = [line for k, line in enumerate(lines) if k not in bad]
        if not lines:
            return None
    return None
