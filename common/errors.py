"""The one error type the command-line tools turn into a message and an exit code."""

from __future__ import annotations

from pathlib import Path


class SuiteError(Exception):
    """A problem with the user's input: printed as `error: <file>: <problem>`, exit 2."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
