"""What every command-line tool shares: a parser made the same way (a function per subcommand,
its handler set with `set_defaults`, defaults shown in `--help`, `--version`), and what it does
with a failure: one line naming the file and the problem, a non-zero exit code, no traceback;
Ctrl-C stops cleanly with exit 130 and SIGTERM with 143, each saying what was kept; and the checks
every argument gets before any work (counts and numbers within bounds, no output onto an input)."""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from common import layout
from common.errors import SuiteError

INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports it
TERMINATED = 128 + signal.SIGTERM  # 143
USER_ERROR = 2  # what argparse exits with, and every tool with the user's error
NOT_INSTALLED = "unknown (not installed: pip install -e .)"


class UsageError(Exception):
    """An argument that cannot be used with the others (checked after parsing, before any work):
    reported by the subcommand's parser as argparse reports its own (usage, `error: argument
    --flag: ...`, exit 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a CI job cancelled, a container stopped), raised where the program stands as
    Ctrl-C raises KeyboardInterrupt, so that every `finally` runs: a half-written temp file or folder
    is removed (common/atomic.py) instead of being left behind by a process that just died."""

    signum = signal.SIGTERM


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, carrying what the command kept (raised by `keeping`)."""

    def __init__(self, kept: str, signum: int = signal.SIGINT):
        super().__init__(kept)
        self.kept = kept
        self.signum = signum


def _terminate(signum, frame) -> None:
    # A second SIGTERM while the first one's cleanup runs would cut it short: ignore it (kill -9
    # still ends the process; the writers sweep what that leaves, common/atomic.py).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Within it, SIGTERM raises Terminated (in the main thread, the only one signals reach)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def nothing_kept() -> str:
    return "nothing was half-written"


def guard(work: Callable[[], int], on_interrupt: Callable[[], str] = nothing_kept) -> int:
    """Run `work`, turning the user's errors, I/O errors, Ctrl-C and SIGTERM into a message and an
    exit code (128 + the signal's number, as a shell reports a process the signal ended)."""
    try:
        with _sigterm_raises():
            return work()
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        print(f"\n{what}: {exc.kept if isinstance(exc, Interrupted) else on_interrupt()}", file=sys.stderr)
        return 128 + signum


@contextmanager
def keeping(kept: Callable[[], str]) -> Iterator[None]:
    """Within it, Ctrl-C and SIGTERM say `kept()` (what the work had saved by then) instead of guard's
    default."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt as exc:
        raise Interrupted(kept(), getattr(exc, "signum", signal.SIGINT)) from None


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


def number(low: float, high: float, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (above low, with `above`), else an argparse
    error naming the flag. float() takes "nan" and "inf"; neither is a number any flag means."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if value < low or (above and value == low) or value > high:
            bound = f"above {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: give a number {bound}")
        return value

    return parse


def refuse_overwrite(outputs, inputs) -> None:
    """Before any work: no output of a command is one of its inputs, lies inside an input folder
    (where it would replace a file the command reads, or be read as one by the next run), or is a
    folder holding an input (an output may be replaced whole); nor does one output lie on another.
    `outputs` and `inputs` are (flag or metavar, path) pairs, a None path skipped; SuiteError names
    both."""
    outputs = [(flag, Path(p)) for flag, p in outputs if p is not None]
    inputs = [(flag, Path(p)) for flag, p in inputs if p is not None]
    checks = [(o, i, ONTO_INPUT) for o in outputs for i in inputs]
    checks += [(a, b, ONTO_OUTPUT) for a, b in itertools.permutations(outputs, 2)]
    for (flag, out), (other_flag, other), what in checks:
        problem = _onto(out, other)
        if problem:
            raise SuiteError(f"{flag} {out}: {problem} {other_flag} {other}, {what}")


ONTO_INPUT = "an input of this command; write it elsewhere (a command never writes onto its own input)"
ONTO_OUTPUT = "another output of this command; give each output a place of its own"


def _same(a: Path, b: Path) -> bool:
    """One file or folder, by identity where both exist (a hard link, a link, another spelling)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _onto(out: Path, src: Path) -> str | None:
    """How writing `out` would destroy `src`, or None."""
    if _same(out, src):
        return "is"
    o, i = out.resolve(), src.resolve()
    if i.is_relative_to(o):
        return "would replace a folder holding"
    if o.is_relative_to(i) and i.is_dir():
        return "lies inside"
    return None


def model_names(text: str) -> tuple[str, ...] | None:
    """`--models` as every tool takes it: None for `all`, else the comma-separated names in snake case
    (a display name such as GroovePredictor as groove_predictor), each once, in the order given; an
    empty name or one named twice is the user's error."""
    if text.strip() == layout.ALL:
        return None
    names = tuple(re.sub(r"(?<!^)(?=[A-Z])", "_", n.strip()).lower() for n in text.split(","))
    if not all(names):
        raise SuiteError(f"--models {text!r}: an empty name; give comma-separated names or {layout.ALL}")
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise SuiteError(f"--models {text!r}: {twice} is named twice")
    return names


def shown(value) -> str:
    """A default as --help shows it: a path inside the project relative to it (as the README and the
    Makefile write them), a list of paths space-separated."""
    if isinstance(value, (list, tuple)):
        return " ".join(shown(v) for v in value)
    if isinstance(value, Path) and value.is_absolute() and value.is_relative_to(layout.PROJECT):
        return str(value.relative_to(layout.PROJECT))
    return str(value)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in --help, except where there is nothing to show (a switch, no default),
    and with paths inside the project shown relative to it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action.default, bool) or action.default in ("", []):
            return action.help or ""
        return super()._get_help_string(action)

    def _expand_help(self, action: argparse.Action) -> str:
        if action.default in (None, argparse.SUPPRESS) or isinstance(action.default, (bool, str)):
            return super()._expand_help(action)
        action = copy.copy(action)
        action.default = shown(action.default)
        return super()._expand_help(action)


def distribution() -> str:
    """The installed distribution these packages came with (its name is pyproject.toml's)."""
    return metadata.packages_distributions().get(__name__.split(".")[0], [None])[0] or ""


def version() -> str:
    try:
        return metadata.version(distribution())
    except (metadata.PackageNotFoundError, ValueError):
        return NOT_INSTALLED


class VersionAction(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked for (finding
    the distribution reads every installed package's metadata)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        name = distribution()
        print(f"{parser.prog} {version()}{f' ({name})' if name else ''}")  # on stdout, as argparse's own
        parser.exit()


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A tool's top-level parser: defaults in --help, and --version."""
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    p.add_argument("--version", action=VersionAction, help="the installed version, and exit")
    return p


def commands(p: argparse.ArgumentParser, dest: str = "command") -> argparse._SubParsersAction:
    return p.add_subparsers(dest=dest, required=True, metavar=dest.upper())


def command(
    sub: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], int], help: str
) -> argparse.ArgumentParser:
    """A subcommand: its parser (defaults in --help) with `handler(args) -> exit code` set on it."""
    p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
    p.set_defaults(handler=handler, command_parser=p)
    return p


def group(sub: argparse._SubParsersAction, name: str, help: str, dest: str) -> argparse._SubParsersAction:
    """A subcommand of subcommands (`bench baseline update`): the inner one's handler runs."""
    p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
    return commands(p, dest)


def main(p: argparse.ArgumentParser, argv=None) -> int:
    """Parse, then run the chosen subcommand's handler under `guard` (a handler says what Ctrl-C
    leaves kept through `keeping`); a UsageError it raises is reported by the subcommand's parser."""
    args = p.parse_args(argv)
    try:
        return guard(lambda: args.handler(args))
    except UsageError as exc:
        args.command_parser.error(str(exc))
