"""The targets, as platformio.ini describes them: bench reads the same environments `pio run` builds."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from common import engines
from common.errors import SuiteError
from common.layout import PROJECT

INI = PROJECT / "platformio.ini"
RUN_KINDS = {"native": "measured", "qemu-user": "emulated", "qemu-system": "counted"}
QEMU_APT = {"qemu-user": "qemu-user", "qemu-system": "qemu-system-arm"}


@dataclass(frozen=True)
class Target:
    name: str  # what bench calls it: x86, aarch64, armv7, cortex-m7
    env: str  # the PlatformIO environment
    board: str
    toolchain: str  # compiler prefix
    apt: str
    os: str
    run: str  # native | qemu-user | qemu-system
    qemu: tuple[str, ...]
    backend: str  # the RTNeural backend `custom_engine = auto` picks
    engines: tuple[str, ...]  # the engines validated on this target, the generated one first
    build_flags: tuple[str, ...]
    arch: tuple[str, ...] = ()  # the machine flags (custom_arch)

    @property
    def compiler(self) -> str:
        return f"{self.toolchain}g++"

    @property
    def max_blocks(self) -> int:
        """The most blocks the harness built for this target records (BENCH_MAX_BLOCKS)."""
        for flag in self.build_flags:
            if flag.startswith("-DBENCH_MAX_BLOCKS="):
                return int(flag.split("=", 1)[1])
        raise SuiteError(f"env:{self.env} sets no -DBENCH_MAX_BLOCKS in its build_flags", INI)

    @property
    def timing(self) -> str:
        """How the latency figures come about: measured on this CPU, emulated, or counted."""
        return RUN_KINDS[self.run]

    def missing(self) -> list[str]:
        """What is not installed, each with the command that installs it."""
        out = []
        if not shutil.which(self.compiler):
            out.append(f"{self.compiler} (apt-get install {self.apt})")
        if self.qemu and not shutil.which(self.qemu[0]):
            out.append(f"{self.qemu[0]} (apt-get install {QEMU_APT[self.run]})")
        return out


def load(ini: Path = INI) -> dict[str, Target]:
    from platformio.project.config import ProjectConfig

    config = ProjectConfig(str(ini))
    targets = {}
    for env in config.envs():

        def get(key, default="", section=f"env:{env}"):
            return config.get(section, key, default)

        name = get("custom_target", env)
        targets[name] = Target(
            name=name,
            env=env,
            board=get("custom_board"),
            toolchain=get("custom_toolchain") or "",
            apt=get("custom_apt"),
            os=get("custom_os", "linux"),
            run=get("custom_run", "native"),
            qemu=tuple(shlex.split(get("custom_qemu") or "")),
            backend=get("custom_backend", "eigen"),
            engines=tuple(engines.check(e) for e in shlex.split(get("custom_engines", "generated"))),
            build_flags=tuple(f for flags in get("build_flags", []) for f in shlex.split(flags)),
            arch=tuple(shlex.split(get("custom_arch") or "")),
        )
    return targets


def emulator_version(target: Target) -> str | None:
    """The emulator's version line and how it counts ("QEMU emulator version 7.2.17 ... -icount shift=0")."""
    if not target.qemu:
        return None
    out = subprocess.run([target.qemu[0], "--version"], capture_output=True, text=True)
    line = out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else target.qemu[0]
    icount = (
        " ".join(target.qemu[target.qemu.index("-icount") : target.qemu.index("-icount") + 2])
        if "-icount" in target.qemu
        else ""
    )
    return f"{line} {icount}".strip()


def get(name: str) -> Target:
    targets = load()
    for t in targets.values():
        if name in (t.name, t.env):
            return t
    raise SuiteError(f"unknown target {name!r}; known: {', '.join(targets)} (see bench targets)", INI)
