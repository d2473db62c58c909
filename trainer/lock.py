"""One training at a time per output folder: a second one into the same folder would replace the
first's checkpoints epoch by epoch, and both would exit 0.

The lock is `fcntl.flock` on a file in the folder: the operating system releases it when the holder
exits, however it exits (kill -9 included), so no stale lock is ever left to clear by hand. The file
itself stays (removing it on release would let a third run lock a new file while a second still
waits on the old one); what it says about its holder is read only while the lock is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from common.errors import SuiteError

NAME = ".training.lock"


def holder() -> dict:
    """Who takes the lock: this process, its host, when, and the command it runs."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(sys.argv),
    }


def describe(text: str) -> str:
    """The holder as the refusal names it, from the lock file's text."""
    try:
        who = json.loads(text)
        return f"pid {who['pid']} on {who['host']}, started {who['started']} ({who['command']})"
    except (ValueError, KeyError, TypeError):  # the holder is between taking the lock and writing it
        return "a process that has not said who it is yet"


@contextlib.contextmanager
def hold(folder: Path, flag: str = "--out") -> Iterator[None]:
    """Hold `folder`'s training lock for the block, or refuse naming who holds it. Creating the
    folder and the lock file is also the check that `flag` names a writable folder."""
    path = folder / NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise SuiteError(f"{flag} {folder}: cannot write there ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = describe(os.pread(fd, 4096, 0).decode(errors="replace"))
            raise SuiteError(
                f"another training writes into this folder: {who}; wait for it to end, or train into another {flag}",
                folder,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released: nobody to name any more
    finally:
        os.close(fd)
