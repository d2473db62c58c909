"""`python -m common.deps` (part of `make setup`): RTNeural at the pinned commit, with its xsimd
submodule, into .deps/RTNeural, where GitHub can be reached.

RTNEURAL_DIR, when set, wins and is never touched. A checkout already at the pins is reused; one at
another commit is replaced. The clone goes to a temp folder beside the target and is renamed into
place only when complete, so discovery never finds half a checkout. Where the remote cannot be
reached, one line says so and setup goes on: the generated engine needs no RTNeural.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import rtneural

TIMEOUT = 300  # seconds for each git command: a clone of RTNeural is ~20 MB


class Unreachable(Exception):
    pass


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-c", "protocol.file.allow=always", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise Unreachable(f"git {args[0]} took more than {TIMEOUT} s") from None
    except FileNotFoundError:
        raise Unreachable("git is not installed") from None
    if done.returncode != 0:
        raise Unreachable((done.stderr.strip().splitlines() or [f"git {args[0]} failed"])[-1])
    return done.stdout.strip()


def head(path: Path) -> str | None:
    try:
        return git("rev-parse", "HEAD", cwd=path) if (path / ".git").exists() else None
    except Unreachable:
        return None


def at_pins(dest: Path, pin: str, xsimd_pin: str) -> bool:
    return head(dest) == pin and head(dest / "modules" / "xsimd") == xsimd_pin


def provision(
    dest: Path = rtneural.DEPS_DIR,
    url: str = rtneural.URL,
    pin: str = rtneural.PIN,
    xsimd_url: str = rtneural.XSIMD_URL,
    xsimd_pin: str = rtneural.XSIMD_PIN,
) -> str:
    """Make `dest` a checkout of RTNeural at `pin` with xsimd at `xsimd_pin`; say what was done."""
    if os.environ.get("RTNEURAL_DIR"):
        return f"RTNeural: using RTNEURAL_DIR={os.environ['RTNEURAL_DIR']} (left as it is)"
    if at_pins(dest, pin, xsimd_pin):
        return f"RTNeural: {dest} is at {pin[:12]} already"
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        git("clone", "--quiet", "--no-checkout", url, str(tmp))
        git("checkout", "--quiet", pin, cwd=tmp)
        git("submodule", "--quiet", "init", "modules/xsimd", cwd=tmp)
        git("config", "submodule.modules/xsimd.url", xsimd_url, cwd=tmp)
        git("submodule", "--quiet", "update", "modules/xsimd", cwd=tmp)
        if not at_pins(tmp, pin, xsimd_pin):
            raise Unreachable(f"the clone is not at {pin[:12]} with xsimd at {xsimd_pin[:12]}")
    except Unreachable as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return (
            f"RTNeural not fetched ({exc}); the generated engine works without it. To use RTNeural, set "
            f"RTNEURAL_DIR to a checkout of {rtneural.URL} at {pin} with modules/xsimd at {xsimd_pin}."
        )
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return f"RTNeural: fetched {pin[:12]} (xsimd {xsimd_pin[:12]}) into {dest}"


if __name__ == "__main__":
    print(
        provision(
            url=os.environ.get("RTNEURAL_URL", rtneural.URL), xsimd_url=os.environ.get("XSIMD_URL", rtneural.XSIMD_URL)
        )
    )
    sys.exit(0)
