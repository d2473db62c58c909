"""Emotion: 128 audio features per block in, one cell of an 8x8 valence/arousal grid out.

Real source: DEAM as distributed, found anywhere under the data directory: per-song feature CSVs
(`features/<song_id>.csv`, `;`-separated, a `frameTime` column then openSMILE features, one row
per 0.5 s) and the per-second dynamic annotations (`arousal.csv`, `valence.csv`: `song_id`, then
`sample_<ms>ms` columns, values in [-1, 1]). The first 128 feature columns are used, each scaled
by a fixed signed log so that no statistic of the data has to travel with the model.
"""
from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

import numpy as np

from common import jsonfile
from common.errors import SuiteError
from models import layouts
from trainer.data.base import Sequence, read_table

VERSION = "emotion-1"
TARGET = "emotion"
FEATURES = len(layouts.EMOTION.inputs)
GRID = layouts.EMOTION_GRID


def jobs(data_dir: Path):
    tables = annotation_tables(data_dir)
    if not tables:
        return []
    annotations = tuple(read_annotations(t) for t in tables)
    stamp = "|".join(str(t.stat().st_mtime_ns) for t in tables)
    return [(p, partial(parse, annotations=annotations), stamp) for p in find(data_dir)]


def find(data_dir: Path) -> list[Path]:
    return sorted(p for d in data_dir.rglob("features") if d.is_dir() for p in d.glob("*.csv"))


def annotation_tables(data_dir: Path) -> tuple[Path, Path] | None:
    arousal = sorted(data_dir.rglob("arousal.csv"))
    valence = sorted(data_dir.rglob("valence.csv"))
    return (valence[0], arousal[0]) if arousal and valence else None


def read_annotations(table: Path) -> dict[str, dict[int, float]]:
    """song_id -> {time in ms: value}."""
    out = {}
    for number, row in enumerate(read_table(table, ("song_id",), ragged=True, skipinitialspace=True), 2):
        song = row.pop("song_id").strip()
        try:
            out[song] = {int(k[7:-2]): float(v) for k, v in row.items()
                         if k.startswith("sample_") and k.endswith("ms") and v not in ("", "NaN")}
        except ValueError as exc:
            raise SuiteError(f"line {number}: {exc}", table) from None
    return out


def cell(valence, arousal):
    def bin_(v):
        return np.clip(((np.asarray(v) + 1) / 2 * GRID).astype(np.int64), 0, GRID - 1)
    return bin_(valence) * GRID + bin_(arousal)


def scale(features: np.ndarray) -> np.ndarray:
    return (np.sign(features) * np.log1p(np.abs(features))).astype(np.float32)


def parse(path: Path, annotations: tuple[dict, dict]) -> list[Sequence]:
    valence, arousal = annotations
    song = path.stem
    if song not in valence or song not in arousal:
        raise ValueError(f"song {song} has no valence/arousal annotation")
    text = jsonfile.read_bytes(path, jsonfile.DATA_TABLE_BYTES, "song's feature table", "no such file").decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    header = next(reader)
    rows = [r for r in reader if r]
    if header[0].strip() != "frameTime" or len(header) < FEATURES + 1:
        raise ValueError(f"expected frameTime and {FEATURES}+ feature columns, got {len(header)} columns")
    table = np.array([[float(v) for v in r[: FEATURES + 1]] for r in rows])
    ms = np.round(table[:, 0] * 1000).astype(int)
    keep = [i for i, t in enumerate(ms) if t in valence[song] and t in arousal[song]]
    if len(keep) < 2:
        raise ValueError("no feature frames at annotated times")
    v = [valence[song][ms[i]] for i in keep]
    a = [arousal[song][ms[i]] for i in keep]
    return [Sequence(scale(table[keep, 1:]), {TARGET: cell(v, a)})]


def synthetic(rng: np.random.Generator, steps: int) -> list[Sequence]:
    """Songs whose mood drifts slowly through the valence/arousal plane; the features are a
    fixed nonlinear mix of the mood plus noise, so the mood can be read back from them."""
    mix = np.random.default_rng(1234).normal(0, 1, (6, FEATURES))  # the same "audio" every run
    seqs, total = [], 0
    while total < steps:
        length = int(rng.integers(60, 120))
        drift = np.cumsum(rng.normal(0, 0.08, (length, 2)), axis=0) + rng.uniform(-0.7, 0.7, 2)
        va = np.tanh(drift)
        basis = np.column_stack([va, va[:, :1] * va[:, 1:], va ** 2, np.sin(3 * va[:, :1])])
        x = np.tanh(basis @ mix + rng.normal(0, 0.3, (length, FEATURES))).astype(np.float32)
        seqs.append(Sequence(x, {TARGET: cell(va[:, 0], va[:, 1])}))
        total += length
    return seqs
