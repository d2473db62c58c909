"""The project's own commit, recorded in what the tools write."""

from __future__ import annotations

import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def project_commit() -> str:
    """HEAD, with "+dirty" when tracked files differ from it; "unknown" outside a git checkout."""

    def git(*args):
        out = subprocess.run(["git", "-C", str(PROJECT), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
