"""Atomic file writes: a temp file beside the target, fsync, then rename.

A reader (or a run killed halfway) sees the old file or the new one, never half of one. A path
that is a symbolic link is written through: its target is replaced and the link kept. The temp
names carry the writer's process id, so that a writer sweeps the temp files and folders a killed
writer left (kill -9 runs no cleanup) without touching a live one's. An I/O error names the file
being written (a full disk is `error: <file>: No space left on device`, not the bare strerror).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

TEMP, OLD = ".tmp", ".old"  # the suffixes of a file or folder being written, and of one being replaced


def _through_link(path: str | os.PathLike) -> Path:
    """Where a write to `path` goes: the target of a symbolic link (dangling or not), else `path`."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    except OverflowError:
        return True  # no process id: not a name a writer here made, so not one to remove
    return True


def _sweep(path: Path) -> None:
    """Remove the temp files and folders that writers of `path` left when killed (their process is
    gone); a live writer's are left alone."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+({re.escape(TEMP)}|{re.escape(OLD)})")
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            found = pattern.fullmatch(entry.name)
            if found is None or _alive(int(found[1])):
                continue
            stale = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()


def _naming(exc: OSError, path: Path, tmp: Path) -> OSError | None:
    """`exc` again, naming `path`, where it names no file or only the temp one written in its stead
    (a write's ENOSPC names none: `error: No space left on device` says nothing of where); None
    where it names a file already."""
    if exc.errno is None or exc.filename not in (None, str(tmp)):
        return None
    return OSError(exc.errno, exc.strerror, str(path))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path to write; it replaces `path` only if the block succeeds."""
    path = _through_link(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=TEMP, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        named = _naming(exc, path, Path(tmp))
        if named is None:
            raise
        raise named from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path, obj, indent: int | None = 2) -> None:
    """Strict JSON: a NaN or an infinity is a ValueError naming the file, never written (Python
    would write `NaN`/`Infinity`, which no other JSON reader takes; a figure that is not a number is
    written as null by its writer, with why)."""
    try:
        text = json.dumps(obj, indent=indent, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not written: {exc} (NaN or infinity)") from None
    write_text(path, text + "\n")


def write_new(path, data: bytes) -> None:
    """Write `path` atomically, never replacing a file already there: FileExistsError if one is.

    The bytes go to a temp file first, then are linked in under the name, which fails rather than
    replaces (unlike rename), so two writers of the same name cannot lose one another's file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=TEMP, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        named = _naming(exc, path, Path(tmp))
        if named is None:
            raise
        raise named from exc
    finally:
        os.unlink(tmp)


def replace_folder(folder: str | os.PathLike, files: dict[str, bytes]) -> None:
    """Make `folder` hold exactly `files` (name -> bytes), all or nothing.

    Everything is written into a sibling temp folder first; only when all of it is on disk is the
    old folder moved aside and the new one renamed into place. A failure (a full disk, Ctrl-C,
    SIGTERM) leaves the old folder untouched and no temp folder behind. A `folder` that is a
    symbolic link keeps it: the folder it points to is the one replaced.
    """
    folder = _through_link(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _sweep(folder)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(folder), suffix=TEMP, dir=folder.parent))
    old = None
    name = None
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        name = None
        os.chmod(tmp, 0o777 & ~_umask())
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=_prefix(folder), suffix=OLD, dir=folder.parent))
            os.rmdir(old)
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException as exc:
        if old is not None and not folder.exists():
            os.replace(old, folder)  # stopped between the two renames: the old folder goes back
        shutil.rmtree(tmp, ignore_errors=True)
        named = _naming(exc, folder / name, tmp / name) if isinstance(exc, OSError) and name else None
        if named is None:
            raise
        raise named from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
