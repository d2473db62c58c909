"""Finding RTNeural (never part of this project) and the compiler flags for each backend.

Looked for in `RTNEURAL_DIR` (a checkout: the folder holding `RTNeural/` and `modules/`), then in
`.deps/RTNeural` (where `make setup` fetches the pinned commit), then in the compiler's system
include path (a folder holding `RTNeural/RTNeural.h`, with RTNeural's `modules/json` beside it, as
RTNeural includes it relatively).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from common.errors import SuiteError
from common.layout import PROJECT

# The one place the RTNeural this project is tested with is named (make setup fetches it).
URL = "https://github.com/jatinchowdhury18/RTNeural.git"
PIN = "1fb1f075a5d66e85bfc8f488c3f3626840cb3a1d"
XSIMD_URL = "https://github.com/xtensor-stack/xsimd.git"
XSIMD_PIN = "a00c81f7b9e808a42aedcf7da2fbb1f9a636da34"  # the commit RTNeural's modules/xsimd points at
DEPS_DIR = PROJECT / ".deps" / "RTNeural"

BACKENDS = ("eigen", "xsimd", "stl")
SETUP_HINT = "make setup fetches it where GitHub is reachable, or set RTNEURAL_DIR to a checkout"
MISSING = (
    "RTNeural not found (only tests of RTNeural itself need it; the generated engine does not): make setup "
    f"fetches it into .deps/RTNeural where GitHub is reachable, or set RTNEURAL_DIR to a checkout of {URL} "
    f"at {PIN[:12]} (the folder holding RTNeural/ and modules/)"
)


@dataclass(frozen=True)
class RTNeural:
    root: Path

    @property
    def commit(self) -> str:
        if (self.root / ".git").exists() and shutil.which("git"):
            out = subprocess.run(["git", "-C", str(self.root), "rev-parse", "HEAD"], capture_output=True, text=True)
            if out.returncode == 0:
                return out.stdout.strip()
        return "unknown"

    def flags(self, backend: str, alignment: int = 16) -> list[str]:
        """Defines and include paths for one backend (`eigen`, `xsimd` or `stl`)."""
        # -isystem: RTNeural and its libraries are third-party; their warnings are not ours to fix
        flags = [f"-isystem{self.root}", "-DRTNEURAL_NAMESPACE=RTNeural", f"-DRTNEURAL_DEFAULT_ALIGNMENT={alignment}"]
        if backend == "eigen":
            flags += ["-DRTNEURAL_USE_EIGEN=1", "-DEIGEN_STACK_ALLOCATION_LIMIT=0", f"-isystem{eigen_dir(self.root)}"]
        elif backend == "xsimd":
            flags += ["-DRTNEURAL_USE_XSIMD=1", f"-isystem{xsimd_dir(self.root)}"]
        elif backend != "stl":
            raise SuiteError(f"unknown RTNeural backend {backend!r}; choose from {', '.join(BACKENDS)}")
        return flags


def eigen_dir(root: Path) -> Path:
    for d in (root / "modules" / "Eigen", Path("/usr/include/eigen3")):
        if (d / "Eigen" / "Dense").exists():
            return d
    raise SuiteError("Eigen not found: install libeigen3-dev (apt-get install libeigen3-dev)", root / "modules/Eigen")


def xsimd_dir(root: Path) -> Path:
    """xsimd 10 or newer: RTNeural's pinned submodule, or headers in the compiler's include path."""
    for d in [root / "modules" / "xsimd" / "include", *compiler_include_dirs()]:
        config = d / "xsimd" / "config" / "xsimd_config.hpp"
        if config.exists():
            major = re.search(r"#define XSIMD_VERSION_MAJOR (\d+)", config.read_text())
            if major and int(major.group(1)) >= 10:
                return d
    raise SuiteError(
        "xsimd >= 10 not found (Debian's xsimd 8 lacks what RTNeural uses): check out "
        "github.com/xtensor-stack/xsimd at the commit RTNeural pins into RTNeural/modules/xsimd",
        root / "modules/xsimd",
    )


@cache
def compiler_include_dirs(compiler: str = "g++") -> tuple[Path, ...]:
    if not shutil.which(compiler):
        return ()
    out = subprocess.run([compiler, "-E", "-x", "c++", "-", "-v"], input="", capture_output=True, text=True)
    block = out.stderr.split("#include <...> search starts here:")[-1].split("End of search list.")[0]
    return tuple(Path(line.strip()) for line in block.splitlines() if line.strip())


def find() -> RTNeural | None:
    env = os.environ.get("RTNEURAL_DIR")
    if env:
        root = Path(env).expanduser()
        if not (root / "RTNeural" / "RTNeural.h").exists():
            raise SuiteError("RTNEURAL_DIR points at no RTNeural checkout (no RTNeural/RTNeural.h there)", root)
        if not (root / "modules" / "json" / "json.hpp").exists():
            raise SuiteError(
                "RTNEURAL_DIR is an incomplete RTNeural checkout: no modules/json/json.hpp "
                "(RTNeural includes it; check out the whole repository)",
                root,
            )
        return RTNeural(root.resolve())
    if (DEPS_DIR / "RTNeural" / "RTNeural.h").exists() and (DEPS_DIR / "modules" / "json" / "json.hpp").exists():
        return RTNeural(DEPS_DIR)  # make setup's checkout: complete, since it is renamed in only when done
    for d in compiler_include_dirs():
        if (d / "RTNeural" / "RTNeural.h").exists() and (d / "modules" / "json" / "json.hpp").exists():
            return RTNeural(d)
    return None


def require() -> RTNeural:
    found = find()
    if found is None:
        raise SuiteError(MISSING)
    return found
