"""Dynamics: 32 score features of a note in, its velocity (as one of 16 bins) out.

Real source: MAESTRO as distributed (`maestro-v3.0.0.csv` with `split` and `midi_filename`,
year folders of `.midi` files), found anywhere under the data directory.
"""
from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import numpy as np

from models import layouts
from trainer.data import midi
from trainer.data.base import Sequence, index_split, read_table

VERSION = "dynamics-1"
TARGET = "dynamics"
BINS = layouts.VELOCITY_BINS
FEATURES = len(layouts.DYNAMICS.inputs)  # filled in that order by features()
PIECE_NOTES = 512  # a performance is cut into pieces of this many notes


def jobs(data_dir: Path):
    """The MIDI files that MAESTRO metadata CSVs list, each with its split."""
    return [(path, partial(parse, split=split), split) for path, split in index(data_dir)]


def index(data_dir: Path) -> list[tuple[Path, str]]:
    out = []
    for table in sorted(data_dir.rglob("maestro-v*.csv")):
        for number, row in enumerate(read_table(table, ("midi_filename",)), 2):
            out.append((table.parent / row["midi_filename"], index_split(row, number, table)))
    return out


def velocity_bin(velocity):
    return np.clip(np.asarray(velocity) * BINS // 128, 0, BINS - 1)


def features(perf: midi.Performance) -> np.ndarray:
    """Per note: pitch class and octave one-hots, timing, chord position, pedal and density."""
    n = perf.notes
    start, end, pitch = n["start"], n["end"], n["pitch"].astype(np.int64)
    x = np.zeros((len(n), FEATURES), np.float32)
    x[np.arange(len(n)), pitch % 12] = 1.0
    x[np.arange(len(n)), 12 + np.clip(pitch // 12 - 1, 0, 7)] = 1.0
    ioi_prev = np.diff(start, prepend=start[0])
    ioi_next = np.diff(start, append=start[-1])
    onset = np.round(start, 2)
    chord_size = np.zeros(len(n))
    highest = np.zeros(len(n))
    lowest = np.zeros(len(n))
    _, group, counts = np.unique(onset, return_inverse=True, return_counts=True)
    for g in range(len(counts)):
        idx = np.flatnonzero(group == g)
        chord_size[idx] = len(idx)
        highest[idx[np.argmax(pitch[idx])]] = 1.0
        lowest[idx[np.argmin(pitch[idx])]] = 1.0
    pedal_on = np.zeros(len(n))
    if len(perf.pedal):
        k = np.searchsorted(perf.pedal[:, 0], start, side="right") - 1
        pedal_on = np.where(k >= 0, perf.pedal[np.maximum(k, 0), 1] >= 64, 0.0)
    density1 = np.searchsorted(start, start, side="right") - np.searchsorted(start, start - 1.0)
    density4 = np.searchsorted(start, start, side="right") - np.searchsorted(start, start - 4.0)
    interval = np.diff(pitch, prepend=pitch[0])
    mean8 = np.convolve(pitch, np.ones(8) / 8, mode="full")[: len(pitch)]
    x[:, 20] = pitch / 127.0
    x[:, 21] = np.log1p(ioi_prev)
    x[:, 22] = np.log1p(ioi_next)
    x[:, 23] = np.log1p(end - start)
    x[:, 24] = np.log1p(chord_size)
    x[:, 25] = pedal_on
    x[:, 26] = density1 / 10.0
    x[:, 27] = density4 / 40.0
    x[:, 28] = np.clip(interval, -24, 24) / 24.0
    x[:, 29] = highest
    x[:, 30] = lowest
    x[:, 31] = mean8 / 127.0
    return x


def pieces(x: np.ndarray, velocity: np.ndarray, split: str | None) -> list[Sequence]:
    return [Sequence(x[a:a + PIECE_NOTES], {TARGET: velocity[a:a + PIECE_NOTES]}, split)
            for a in range(0, len(x), PIECE_NOTES)]


def parse(path: Path, split: str | None = None) -> list[Sequence]:
    perf = midi.read(path)
    perf.notes = perf.notes[perf.notes["channel"] != midi.DRUM_CHANNEL]
    return pieces(features(perf), perf.notes["velocity"].astype(np.int64), split)


def synthetic(rng: np.random.Generator, steps: int) -> list[Sequence]:
    """Piano-like notes whose velocity follows phrase arches, melody-over-accompaniment
    balance and note density, so the features predict it."""
    seqs, total = [], 0
    while total < steps:
        count = PIECE_NOTES
        ioi = rng.choice([0.0, 0.125, 0.25, 0.5], size=count, p=[0.3, 0.3, 0.3, 0.1])
        start = np.cumsum(ioi)
        pitch = np.clip(60 + np.cumsum(rng.integers(-4, 5, size=count)) % 24 - 12 + 12 * (ioi == 0), 21, 108)
        dur = rng.choice([0.1, 0.25, 0.5, 1.0], size=count)
        pedal = np.stack([start[::16], (np.arange(len(start[::16])) % 2) * 127.0], axis=1)
        notes = np.zeros(count, dtype=midi.NOTE_DTYPE)
        notes["start"], notes["end"], notes["pitch"] = start, start + dur, pitch
        perf = midi.Performance(notes, pedal, 120.0)
        x = features(perf)
        phrase = np.sin(np.pi * (np.arange(count) % 64) / 64)  # a rise and fall every 64 notes
        velocity = 40 + 45 * phrase + 15 * x[:, 29] - 10 * x[:, 30] + 8 * x[:, 26] + rng.normal(0, 4, count)
        seqs.extend(pieces(x, np.clip(velocity, 1, 127).astype(np.int64), None))
        total += count
    return seqs
