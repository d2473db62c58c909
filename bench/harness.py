"""Running the harness program on a target and reading what it prints (one JSON object a line)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from bench.targets import Target
from common import layout, remote
from common.errors import SuiteError


def command(target: Target, program: Path, args: list[str]) -> list[str]:
    """The command line that runs `program` on `target`: directly, under QEMU user mode, or as the
    kernel of a QEMU machine whose semihosting hands it the arguments."""
    if target.run == "native":
        return [str(program), *args]
    if target.run == "qemu-user":
        return [*target.qemu, str(program), *args]
    qemu = list(target.qemu)
    i = qemu.index("-semihosting-config")
    qemu[i + 1] += "".join(f",arg={a}" for a in ["program", *args])
    return [*qemu, "-kernel", str(program)]


def run(target: Target, program: Path, args: list[str], timeout: float = 600) -> str:
    cmd = command(target, program, args)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SuiteError(f"no answer after {timeout:.0f} s from: {' '.join(cmd)}", program) from None
    if done.returncode != 0:
        raise SuiteError(f"exited with {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}", program)
    return done.stdout


def run_on_board(
    board: remote.Board, target: Target, engine: str, program: Path, args: list[str], timeout: float = 600
) -> str:
    """Put the program on the board (a folder per environment and engine), run it there, and
    return what it printed; a program killed there, or failing, is an error naming the board."""
    folder = board.put([program], f"{target.env}-{engine}")
    command = " ".join(shlex.quote(a) for a in [*board.run_prefix, f"./{program.name}", *args])
    code, out, err = board.run(f"cd {shlex.quote(folder)} && {command}", timeout=timeout)
    if code == remote.SSH_FAILED:
        raise SuiteError(
            f"board {board.name}: lost the SSH connection during the run; no result is saved: {err[-300:]}"
        )
    if code == remote.TIMED_OUT:
        raise SuiteError(f"board {board.name}: no result after {timeout:.0f} s; stopped there, no result is saved")
    if code > 128 or code < 0:
        signal = code - 128 if code > 128 else -code
        raise SuiteError(f"board {board.name}: the program was killed there (signal {signal}); no result is saved")
    if code != 0:
        raise SuiteError(
            f"board {board.name}: the program exited with {code}; no result is saved: {(err or out).strip()[-500:]}"
        )
    return out


def parse(text: str, source: str = "harness output") -> dict:
    """The program's JSON lines, gathered: meta, per-model figures, the set, heap and process."""
    out = {"meta": None, "models": {}, "set": None, "set_cold": None, "heap": None, "process": None, "warnings": []}
    done = False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line.startswith("{"):
            continue  # an emulator's or a library's own chatter
        try:
            obj = json.loads(line)
            kind = obj.pop("type")
        except (json.JSONDecodeError, KeyError) as exc:
            raise SuiteError(f"line {number} is not a harness record ({exc}): {line[:120]}", source) from None
        if kind == "meta":
            out["meta"] = obj
        elif kind in ("parity", "model", "latency", "latency_cold"):
            name = obj.pop("model")
            if kind == "latency" and name == layout.SET:  # the whole set, beside the models
                out["set"] = obj
                continue
            if kind == "latency_cold" and name == layout.SET:
                out["set_cold"] = obj
                continue
            entry = out["models"].setdefault(name, {})
            if kind == "model":
                entry.update(obj)
            else:
                entry[kind] = obj
        elif kind in ("heap", "process"):
            out[kind] = obj
        elif kind == "warning":
            out["warnings"].append(str(obj.get("message", obj)))
        elif kind == "done":
            done = True
    if not done or out["meta"] is None or out["set"] is None:
        raise SuiteError("the output ends before the harness said it was done (did the program crash?)", source)
    for name, entry in out["models"].items():
        for part in ("parity", "latency", "parameters"):
            if part not in entry:
                raise SuiteError(f"model {name} has no {part} record", source)
    return out
