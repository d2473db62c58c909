"""Sequences, data sets, the per-file parse cache and window sampling, shared by every task."""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import atomic, jsonfile
from common.errors import SuiteError

log = logging.getLogger("trainer.data")

VAL_FRACTION = 0.1


@dataclass
class Sequence:
    """One piece: per-step inputs [T, in] and per-step target arrays keyed by name."""

    inputs: np.ndarray
    targets: dict[str, np.ndarray]
    split: str | None = None  # "train" / "val" when the data set's own layout says so

    def __len__(self):
        return len(self.inputs)


@dataclass
class Dataset:
    task: str
    source: str           # "real" or "synthetic"
    description: str      # where it came from, for the run log and the checkpoint
    train: list[Sequence]
    val: list[Sequence]
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def steps(self) -> tuple[int, int]:
        return sum(map(len, self.train)), sum(map(len, self.val))


# A data set index's split names (MAESTRO's and Groove MIDI's: train, validation, test) -> ours.
# A set's test split stays unseen; any other name is refused, never taken as train.
SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}


def stable_split(key: str) -> str:
    """Assign a piece to train or val by a hash of its name, the same on every machine."""
    return "val" if zlib.crc32(key.encode()) % 100 < VAL_FRACTION * 100 else "train"


def split_sequences(seqs: list[Sequence], keys: list[str]) -> tuple[list[Sequence], list[Sequence]]:
    sides = {"train": [], "val": [], "test": []}
    for seq, key in zip(seqs, keys):
        sides[SPLITS[seq.split or stable_split(key)]].append(seq)
    train, val = sides["train"], sides["val"]
    if not val and len(train) > 1:  # a tiny set still needs something to validate on
        val.append(train.pop())
    return train, val


def index_split(row: dict[str, str], number: int, table: Path) -> str:
    """The split a data set's index gives the row on line `number`: train where the index has no
    split column, else one of SPLITS, or a SuiteError naming the file, the line and the split."""
    if "split" not in row:
        return "train"
    if row["split"].strip() not in SPLITS:
        raise SuiteError(f"line {number}: unknown split {row['split']!r} (known: {', '.join(SPLITS)})", table)
    return row["split"].strip()


# --- index tables -------------------------------------------------------------------------------

def read_table(path: Path, required: tuple[str, ...], ragged: bool = False, **csv_options) -> list[dict[str, str]]:
    """The rows of a data set's CSV index, checked: text, a header holding `required`, every row as
    long as the header (shorter rows allowed when `ragged`: DEAM's songs differ in length). A problem
    is the user's (SuiteError naming the file), never a traceback; the file is read within bounds
    (common/jsonfile.py: a regular file, at most DATA_TABLE_BYTES)."""
    data = jsonfile.read_bytes(path, jsonfile.DATA_TABLE_BYTES, "data set index", "no such file")
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""), **csv_options)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in required if c not in header]
        if missing:
            raise SuiteError(f"no {', '.join(missing)} column in its header ({', '.join(header) or 'empty'})",
                             path)
        rows = []
        for number, row in enumerate(reader, 2):
            if None in row or (None in row.values() and not ragged) or any(row.get(c) is None for c in required):
                raise SuiteError(f"line {number} has a different number of fields than the header", path)
            rows.append({k.strip(): v for k, v in row.items() if v is not None})
        return rows
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SuiteError(f"not a CSV text table ({exc})", path) from None


# --- the per-file parse cache -------------------------------------------------------------------

def _pack(seqs: list[Sequence]) -> bytes:
    arrays = {"lengths": np.array([len(s) for s in seqs], dtype=np.int64),
              "inputs": np.concatenate([s.inputs for s in seqs]) if seqs else np.zeros((0, 0), np.float32),
              "splits": np.array([s.split or "" for s in seqs])}
    for key in (seqs[0].targets if seqs else {}):
        arrays["t_" + key] = np.concatenate([s.targets[key] for s in seqs])
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _unpack(path: Path) -> list[Sequence]:
    with np.load(io.BytesIO(jsonfile.read_bytes(path, jsonfile.PARSE_CACHE_BYTES, "parse cache entry"))) as z:
        bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
        targets = {k[2:]: z[k] for k in z.files if k.startswith("t_")}
        splits = z["splits"]
        inputs = z["inputs"]
    return [Sequence(inputs[a:b], {k: v[a:b] for k, v in targets.items()}, str(sp) or None)
            for a, b, sp in zip(bounds[:-1], bounds[1:], splits)]


def cached_parse(path: Path, parse, cache_dir: Path, version: str) -> list[Sequence] | None:
    """Parse one file through `parse(path) -> list[Sequence]`, caching the arrays.

    The cache key holds the file's path, size and mtime and the parser's version, so an edited
    file or parser is parsed again. A file that fails to parse is skipped with a warning naming it.
    """
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{version}".encode()).hexdigest()
    cached = cache_dir / f"{key}.npz"
    if cached.exists():
        try:
            return _unpack(cached)
        except Exception as exc:  # a damaged cache entry is parsed again, not trusted
            log.warning("cache entry %s unreadable (%s); parsing %s again", cached, exc, path)
    try:
        seqs = [s for s in parse(path) if len(s) >= 2]
    except Exception as exc:
        log.warning("skipping %s: %s: %s", path, type(exc).__name__, exc)
        return None
    if seqs:
        atomic.write_bytes(cached, _pack(seqs))
    return seqs


# --- batches ------------------------------------------------------------------------------------

def _stack(seqs: list[Sequence], spans: list[tuple[int, int, int]], length: int, in_size: int) -> dict:
    """Copy the (sequence, start, stop) spans into zero-padded arrays with a step mask."""
    n = len(spans)
    batch = {"inputs": np.zeros((n, length, in_size), np.float32), "mask": np.zeros((n, length), bool)}
    for key, arr in seqs[0].targets.items():
        batch[key] = np.zeros((n, length) + arr.shape[1:], arr.dtype)
    for row, (i, a, b) in enumerate(spans):
        seq = seqs[i]
        batch["inputs"][row, : b - a] = seq.inputs[a:b]
        batch["mask"][row, : b - a] = True
        for key, arr in seq.targets.items():
            batch[key][row, : b - a] = arr[a:b]
    return batch


def random_batches(seqs: list[Sequence], rng: np.random.Generator, batches: int, batch_size: int,
                   length: int):
    """Random windows, sequences drawn in proportion to their length."""
    lengths = np.array([len(s) for s in seqs], dtype=np.float64)
    p = lengths / lengths.sum()
    in_size = seqs[0].inputs.shape[1]
    for _ in range(batches):
        spans = []
        for i in rng.choice(len(seqs), size=batch_size, p=p):
            start = int(rng.integers(0, max(1, len(seqs[i]) - length + 1)))
            spans.append((int(i), start, min(len(seqs[i]), start + length)))
        yield _stack(seqs, spans, length, in_size)


def eval_batches(seqs: list[Sequence], batch_size: int, length: int, limit_steps: int | None = None):
    """Every step of every sequence once, in consecutive windows; the same on every call."""
    spans, steps = [], 0
    for i, seq in enumerate(seqs):
        for a in range(0, len(seq), length):
            spans.append((i, a, min(len(seq), a + length)))
            steps += spans[-1][2] - a
            if limit_steps is not None and steps >= limit_steps:
                break
        if limit_steps is not None and steps >= limit_steps:
            break
    in_size = seqs[0].inputs.shape[1]
    for k in range(0, len(spans), batch_size):
        yield _stack(seqs, spans[k:k + batch_size], length, in_size)
