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
