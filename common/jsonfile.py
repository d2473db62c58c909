"""Reading a file another stage wrote: the one way the suite reads one, within bounds.

Only a regular file is read (a symlink to one is fine): a FIFO would block the reader forever and a
device (/dev/zero) never ends, so anything else is refused before a byte of it is read. The open
itself cannot block (O_NONBLOCK), and what was opened is checked again (fstat), so a path swapped
between the check and the open is refused too. The size is bounded by reading at most one byte
more than the bound, never by the size the file system reports (0 for a device, a FIFO or a file
of /proc, a file growing while it is read); a reported size above the bound is refused before
a byte is read. A JSON document is bounded in depth, so neither the parser nor anything walking the
document after it (jsonschema, the readers' checks) recurses without bound. Every failure is a
SuiteError naming the file: printed as one line, `error: <file>: <what>`, exit 2.

The bounds of every kind of file, in bytes, are here. Each is far above any real file of its kind
(the largest of each in an export of the five models and the committed reports, in brackets), so
only a damaged or hostile file meets one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import jsonschema

from common.errors import SuiteError

MANIFEST_BYTES = 64 << 20  # build/models/manifest.json (39 KB)
MODEL_JSON_BYTES = 64 << 20  # an RTNeural model JSON (5.7 MB: 0.5M parameters)
VECTORS_BYTES = 512 << 20  # a model's test vectors (280 KB; an audio model's, --seconds 60: ~200 MB)
# Any file an export lists, hashed against the manifest: the largest of them, the vectors, or a
# model's C++ header, which spells the JSON's weights as hex floats (8.1 MB beside the JSON's 5.7 MB).
EXPORT_FILE_BYTES = max(VECTORS_BYTES, 2 * MODEL_JSON_BYTES)
RESULT_BYTES = 16 << 20  # a result of bench run (6 KB) or bench layers (150 KB)
BASELINE_BYTES = 16 << 20  # reports/baseline/baseline.json (280 KB)
TABLE_BYTES = 1 << 20  # bench's own tables: the board profiles and the layer set (8 KB)
IMPORT_BYTES = 64 << 20  # a model file of another project (NAM LSTM ~100 KB, AIDA-X ~200 KB, TorchScript)
DATA_TABLE_BYTES = 64 << 20  # a data set's CSV: its index or a song's features (MAESTRO's index: 200 KB)
PARSE_CACHE_BYTES = 256 << 20  # one data file's parsed sequences in the trainer's cache (a few MB)

# How deep a JSON document may nest: the deepest file the suite writes nests 6 levels (a model
# JSON's weights: layers, a layer, weights, a matrix, a row; bench's schemas 10), so 32 is ample,
# and a document within it is walked by jsonschema in a few hundred frames, well inside Python's
# recursion limit.
MAX_DEPTH = 32

_CHUNK = 1 << 20  # bytes per read() beyond the first, and per hashed block
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), "another kind of file")
    return f"not a regular file ({kind}); only regular files are read"


def _unreadable(exc: OSError, what: str) -> str:
    return f"unreadable {what} ({exc.strerror or exc})"


def _open(path: Path, what: str, missing: str) -> tuple[int, int]:
    """(a descriptor open on the regular file `path`, its reported size). The path is checked
    before it is opened, so no device is ever opened (opening one can act: a tape rewinds), and the
    descriptor after, should the path have changed in between."""
    try:
        mode = os.stat(path).st_mode  # follows a symlink: a link to a regular file is read
        if not stat.S_ISREG(mode):
            raise SuiteError(_not_regular(mode), path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SuiteError(f"missing: {missing}", path) from None
    except OSError as exc:
        raise SuiteError(_unreadable(exc, what), path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SuiteError(_not_regular(st.st_mode), path)
    return fd, st.st_size


def _chunks(path: Path, max_bytes: int, what: str, missing: str, first: int | None = None):
    """The file's bytes in chunks, at most `max_bytes` of them; SuiteError past that. `first`: the
    size of the first read (the reported size: a whole file in one read, without trusting it)."""
    fd, reported = _open(path, what, missing)
    try:
        if reported > max_bytes:  # a size too large is believed (a sparse file reads back as long); one within is not
            raise SuiteError(f"{reported:,} bytes: too large for {what} (at most {max_bytes:,})", path)
        total, size = 0, min(reported, max_bytes) + 1 if first is None else first
        while True:
            try:
                chunk = os.read(fd, min(size, max_bytes + 1 - total))
            except OSError as exc:
                raise SuiteError(_unreadable(exc, what), path) from None
            if not chunk:
                return
            total += len(chunk)
            if total > max_bytes:
                raise SuiteError(f"more than {max_bytes:,} bytes: too large for {what}", path)
            yield chunk
            size = _CHUNK
    finally:
        os.close(fd)


def read_bytes(path: str | Path, max_bytes: int, what: str, missing: str = "run make export first") -> bytes:
    """The whole regular file, at most `max_bytes`; `what` names the kind of file in messages,
    `missing` says how to get one."""
    return b"".join(_chunks(Path(path), max_bytes, what, missing))


def sha256(path: str | Path, max_bytes: int, what: str, missing: str = "run make export first") -> str:
    """The file's sha256, read as `read_bytes` reads it, a block at a time."""
    digest = hashlib.sha256()
    for chunk in _chunks(Path(path), max_bytes, what, missing, first=_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def depth(doc, limit: int = MAX_DEPTH) -> int:
    """How deep `doc` nests (a scalar 0, `[]` 1, `[[1]]` 2), walked without recursion; counting
    stops past `limit`."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            break
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def parse(data: bytes, what: str, source: str | Path) -> object:
    """A JSON document from UTF-8 bytes, at most MAX_DEPTH deep; SuiteError naming `source`."""
    too_deep = f"nested deeper than {MAX_DEPTH} levels (read as {what})"
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:  # the parser gives up near Python's recursion limit, far past MAX_DEPTH
        raise SuiteError(too_deep, source) from None
    except ValueError as exc:  # not UTF-8, not JSON, an integer of more digits than Python converts
        raise SuiteError(f"unreadable {what} ({exc})", source) from None
    if depth(doc) > MAX_DEPTH:
        raise SuiteError(too_deep, source)
    return doc


def read(path: str | Path, max_bytes: int, what: str, missing: str = "run make export first"):
    """The parsed document of a regular file of at most `max_bytes`, nested at most MAX_DEPTH deep;
    `what` names the kind of file in messages, `missing` says how to get one."""
    return parse(read_bytes(path, max_bytes, what, missing), what, Path(path))


def check(doc, schema: dict, schema_id: str, source) -> None:
    """SuiteError naming `source` and the first place `doc` breaks its JSON schema. A document
    deeper than MAX_DEPTH (one not read by `read`) is refused first: jsonschema recurses."""
    if depth(doc) > MAX_DEPTH:
        raise SuiteError(f"nested deeper than {MAX_DEPTH} levels (read as {schema_id})", source)
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise SuiteError(f"not a valid {schema_id} document at {where}: {exc.message}", source) from None
