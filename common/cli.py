"""What every command-line tool does with a failure: one line naming the file and the problem, a
non-zero exit code, no traceback; Ctrl-C stops cleanly with exit 130 and says what was kept."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from common.errors import SuiteError

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


def guard(work: Callable[[], int], on_interrupt: Callable[[], str] = lambda: "nothing was half-written") -> int:
    """Run `work`, turning the user's errors, I/O errors and Ctrl-C into a message and an exit code."""
    try:
        return work()
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {on_interrupt()}", file=sys.stderr)
        return INTERRUPTED


def count(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], else an argparse error naming the flag."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {bound}")
        return value

    return parse
