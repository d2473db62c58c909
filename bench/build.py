"""Building the harness for a target and engine through PlatformIO (the same `pio run -e <env>` a
user runs), in a build folder per engine so switching engines reuses each one's objects."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.targets import Target
from common import engines, layout, manifest
from common.errors import SuiteError
from common.layout import PROJECT

# Sections of an ELF that hold no part of the program as loaded: debug data, notes, attributes.
NOT_LOADED = (
    ".debug",
    ".comment",
    ".note",
    ".ARM.attributes",
    ".gnu.attributes",
    ".stab",
    ".symtab",
    ".strtab",
    ".shstrtab",
    ".gnu_debuglink",
)
QUIET_PIO = {"PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No", "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true"}


@dataclass
class Build:
    program: Path
    seconds: float
    reused: bool  # nothing had changed: the earlier program was kept
    compiler: str
    flags: list[str]
    sizes: dict  # text / data / bss from the toolchain's `size`, and every section's size
    symbols: dict  # the linked image's symbols summed per model (symbols())


def build_dir(engine: str) -> Path:
    return PROJECT / ".pio" / f"build-{engine}"


def program_path(target: Target, engine: str, root: Path | None = None) -> Path:
    suffix = ".elf" if target.os == "baremetal" else ""
    return (root or build_dir(engine)) / target.env / f"program{suffix}"


def pio_env(engine: str, root: Path, models_dir: Path | None) -> dict:
    env = {**os.environ, **QUIET_PIO, "RTMB_ENGINE": engine, "PLATFORMIO_BUILD_DIR": str(root)}
    if models_dir is not None:
        env["RTMB_MODELS_DIR"] = str(Path(models_dir).resolve())
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")  # the pio of this environment
    return env


def build(target: Target, engine: str, models_dir: Path | None = None, root: Path | None = None) -> Build:
    missing = target.missing()
    if missing:
        raise SuiteError(f"cannot build {target.name}: missing {', '.join(missing)}; make setup installs them")
    engine_flags = engines.flags(engine)
    models_dir = Path(models_dir or layout.MODELS_DIR)
    doc = manifest.load(models_dir)
    key = engines.manifest_key(engine)
    manifest.verify(models_dir, doc, [*manifest.engine_files(doc, key), doc["engines"][key]["vectors"]])
    root = root or build_dir(engine)
    program = program_path(target, engine, root)
    before = program.stat().st_mtime_ns if program.exists() else None
    t0 = time.time()
    done = subprocess.run(
        ["pio", "run", "-e", target.env],
        cwd=PROJECT,
        env=pio_env(engine, root, models_dir),
        capture_output=True,
        text=True,
    )
    seconds = time.time() - t0
    if done.returncode != 0:
        errors = [line for line in (done.stdout + done.stderr).splitlines() if "rror" in line]
        raise SuiteError(
            f"pio run -e {target.env} (engine {engine}) failed:\n" + "\n".join(errors[-15:]),
            PROJECT / "platformio.ini",
        )
    return Build(
        program=program,
        seconds=round(seconds, 2),
        reused=before == program.stat().st_mtime_ns,
        compiler=compiler_version(target),
        flags=[*target.build_flags, *engine_flags],
        sizes=sizes(target, program),
        symbols=symbols(target, program, manifest.models(doc)),
    )


def compiler_version(target: Target) -> str:
    out = subprocess.run([target.compiler, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.returncode == 0 else target.compiler


def sizes(target: Target, program: Path) -> dict:
    """Berkeley-format totals (text, data, bss) and, from `size -A`, every allocated section, so
    where the weights went (.rodata in flash, .weights in external memory) shows."""
    tool = f"{target.toolchain}size"
    out = subprocess.run([tool, str(program)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
    sections = {}
    listing = subprocess.run([tool, "-A", str(program)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        loaded = len(parts) == 3 and parts[0].startswith(".") and not parts[0].startswith(NOT_LOADED)
        if loaded and parts[1].isdigit() and int(parts[1]):
            sections[parts[0]] = int(parts[1])
    return {"text": text, "data": data, "bss": bss, "sections": sections}


# nm's symbol types: functions; initialised objects (u: a C++17 inline variable, GNU's unique
# global); zeroed ones
CODE, CONSTANT, STATE = "TtWw", "VvRrDdu", "Bb"


def symbols(target: Target, program: Path, names: list[str]) -> dict:
    """The linked image's symbols (nm -S), summed: per model its code (functions whose name holds
    the model's: its forward(), with the kernels inlined) and its constants (its weight arrays, and
    for int8 their scales), and the rest of the program's code and constants. What a model's
    object holds (its state, and with RTNeural a copy of the weights) is in the result's model_bytes."""
    out = subprocess.run(
        [f"{target.toolchain}nm", "-S", "-C", "--defined-only", str(program)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    models = {n: {"code": 0, "constants": 0} for n in names}
    other = {"code": 0, "constants": 0, "zeroed": 0}
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 4 or not all(c in "0123456789abcdef" for c in parts[1]):
            continue
        size, kind, name = int(parts[1], 16), parts[2], parts[3]
        what = "code" if kind in CODE else "constants" if kind in CONSTANT else "zeroed" if kind in STATE else None
        if what is None:
            continue
        model = next((n for n in names if n in name), None)
        if model is not None and what != "zeroed":
            models[model][what] += size
        else:
            other[what] += size
    return {"models": models, "other": other}
