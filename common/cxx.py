"""Compiling a C++ program or library once per distinct input: the output's name carries a hash of
the sources, the headers it includes, the flags and RTNeural's commit, so a rebuild happens exactly
when one of them changed, and an interrupted compile never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from common.errors import SuiteError


def cached(
    stem: str,
    source: Path,
    flags: list[str],
    inputs: list[Path],
    build_dir: Path,
    salt: str = "",
    what: str | None = None,
    suffix: str = "",
) -> Path:
    """Compile `source` with g++ `flags` into `build_dir/<stem>-<hash><suffix>` unless that exists."""
    digest = hashlib.sha256()
    for part in (source.read_bytes(), *(p.read_bytes() for p in inputs), " ".join(flags).encode(), salt.encode()):
        digest.update(part)
    out = build_dir / f"{stem}-{digest.hexdigest()[:12]}{suffix}"
    if out.exists():
        return out
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    done = subprocess.run(["g++", *flags, str(source), "-o", str(tmp)], capture_output=True, text=True)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SuiteError(f"{what or stem} did not compile:\n{done.stderr[-3000:]}", inputs[0] if inputs else source)
    tmp.replace(out)
    return out
