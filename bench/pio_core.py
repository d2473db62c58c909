"""Make PlatformIO work with no registry: its build engine (SCons, from PyPI) as the core package
`tool-scons`, and the settings that would otherwise stall a build on network calls.

`python -m bench.pio_core` (part of `make setup`) writes into the project's core dir
(`core_dir` in platformio.ini, `.pio-core/`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common import atomic
from common.layout import PROJECT

CORE_DIR = PROJECT / ".pio-core"
SCONS_SHIM = """\
# PlatformIO runs <core>/packages/tool-scons/scons.py; this one runs the SCons installed from PyPI.
import sys

from SCons.Script.Main import main

sys.exit(main())
"""
# Settings that stop telemetry and the weekly upgrade check (a 60 s stall with no network).
SETTINGS = {"enable_telemetry": "No", "check_platformio_interval": "36500"}


def scons_version() -> str:
    """SCons 4.11.1 -> PlatformIO's package version 4.41101.0 (what its core dependency asks for)."""
    import SCons

    major, minor, patch = (int(p) for p in SCons.__version__.split(".")[:3])
    return f"{major}.{40000 + minor * 100 + patch}.0"


def install(core_dir: Path = CORE_DIR) -> Path:
    pkg = core_dir / "packages" / "tool-scons"
    version = scons_version()
    atomic.write_text(pkg / "scons.py", SCONS_SHIM)
    atomic.write_json(
        pkg / "package.json",
        {"name": "tool-scons", "version": version, "description": "SCons from PyPI, for offline builds"},
    )
    atomic.write_json(
        pkg / ".piopm",
        {
            "type": "tool",
            "name": "tool-scons",
            "version": version,
            "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None},
        },
        indent=None,
    )
    env = {**os.environ, "PLATFORMIO_CORE_DIR": str(core_dir)}
    pio = Path(sys.executable).with_name("pio")
    for key, value in SETTINGS.items():
        subprocess.run([str(pio), "settings", "set", key, value], env=env, check=True, stdout=subprocess.DEVNULL)
    return pkg


if __name__ == "__main__":
    print(f"PlatformIO core ready offline: {install()}")
