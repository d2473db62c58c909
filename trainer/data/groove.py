"""Groove: a quantized 16th-note drum step in, each voice's velocity and timing offset out.

Real source: the Groove MIDI Dataset as distributed (`info.csv` with `midi_filename`, `bpm`,
`split`; a folder per drummer), found anywhere under the data directory.

Input per step (64): the 16 voices' hits now, at the next step, at the previous step, and the
step's position in the bar (one-hot of 16). Output (32): per voice, velocity in [0, 1] and the
offset from the grid in [-1, 1] (half a 16th each way); only voices that hit count in the loss.
"""
from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import numpy as np

from models import layouts
from trainer.data import midi
from common.errors import SuiteError
from trainer.data.base import Sequence, index_split, read_table

VERSION = "groove-1"
TARGET = "groove"
MASK = "groove_mask"
VOICES = len(layouts.DRUM_VOICES)
STEPS_PER_BAR = layouts.STEPS_PER_BAR
PIECE_STEPS = 256
# General MIDI percussion notes -> our 16 voices (layouts.DRUM_VOICES); anything else is "other".
GM_VOICES = {35: 0, 36: 0, 38: 1, 40: 1, 37: 2, 39: 3, 42: 4, 22: 4, 44: 5, 46: 6, 26: 6,
             41: 7, 43: 7, 45: 8, 47: 8, 48: 9, 50: 9, 49: 10, 55: 10, 57: 10, 52: 10,
             51: 11, 59: 11, 53: 12, 54: 13, 56: 14}


def jobs(data_dir: Path):
    return [(path, partial(parse, bpm=bpm, split=split), f"{bpm}|{split}") for path, bpm, split in index(data_dir)]


def index(data_dir: Path) -> list[tuple[Path, float, str]]:
    out = []
    for table in sorted(data_dir.rglob("info.csv")):
        for number, row in enumerate(read_table(table, ("midi_filename", "bpm")), 2):
            try:
                bpm = float(row["bpm"])
            except ValueError:
                bpm = float("nan")
            if not 1 <= bpm <= 1000:
                raise SuiteError(f"line {number}: bpm {row['bpm']!r} is not a tempo", table)
            out.append((table.parent / row["midi_filename"], bpm, index_split(row, number, table)))
    return out


def from_grid(hits: np.ndarray, velocity: np.ndarray, offset: np.ndarray, split=None) -> list[Sequence]:
    """hits/velocity/offset: [steps, VOICES] on the 16th grid -> pieces of PIECE_STEPS."""
    steps = len(hits)
    nxt = np.vstack([hits[1:], np.zeros((1, VOICES))])
    prev = np.vstack([np.zeros((1, VOICES)), hits[:-1]])
    position = np.eye(STEPS_PER_BAR)[np.arange(steps) % STEPS_PER_BAR]
    x = np.hstack([hits, nxt, prev, position]).astype(np.float32)
    y = np.hstack([velocity, offset]).astype(np.float32)
    mask = np.hstack([hits, hits]).astype(bool)
    return [Sequence(x[a:a + PIECE_STEPS], {TARGET: y[a:a + PIECE_STEPS], MASK: mask[a:a + PIECE_STEPS]}, split)
            for a in range(0, steps, PIECE_STEPS)]


def parse(path: Path, bpm: float | None = None, split: str | None = None) -> list[Sequence]:
    perf = midi.read(path)
    notes = perf.notes
    if not (notes["channel"] == midi.DRUM_CHANNEL).any() and len(notes):
        drums = notes  # Groove MIDI files hold one drum track, whatever its channel
    else:
        drums = notes[notes["channel"] == midi.DRUM_CHANNEL]
    step = 60.0 / (bpm or perf.tempo_bpm) / 4
    grid = drums["start"] / step
    idx = np.round(grid).astype(np.int64)
    steps = int(idx.max()) + 1
    hits = np.zeros((steps, VOICES))
    velocity = np.zeros((steps, VOICES))
    offset = np.zeros((steps, VOICES))
    for i, note, off in zip(idx, drums, grid - idx):
        v = GM_VOICES.get(int(note["pitch"]), 15)
        if note["velocity"] / 127.0 > velocity[i, v]:  # the loudest of a flam counts
            hits[i, v], velocity[i, v], offset[i, v] = 1.0, note["velocity"] / 127.0, 2.0 * off
    return from_grid(hits, velocity, offset, split)


def synthetic(rng: np.random.Generator, steps: int) -> list[Sequence]:
    """Patterns in two styles that the hits give away: straight rock on closed hi-hat, and
    swung shuffle on ride, where off-beat 16ths come late. Accents fall on the beat."""
    seqs, total = [], 0
    while total < steps:
        swung = bool(rng.integers(0, 2))
        bars = 16
        n = bars * STEPS_PER_BAR
        pos = np.arange(n) % STEPS_PER_BAR
        hits = np.zeros((n, VOICES))
        hits[:, 11 if swung else 4] = (pos % 2 == 0) | (rng.random(n) < 0.2)
        hits[:, 0] = (pos % 8 == 0) | (rng.random(n) < 0.08)
        hits[:, 1] = (pos % 8 == 4) | (rng.random(n) < 0.04)
        accent = np.where(pos % 4 == 0, 0.85, np.where(pos % 2 == 0, 0.65, 0.45))[:, None]
        velocity = hits * np.clip(accent + rng.normal(0, 0.04, (n, VOICES)), 0, 1)
        late = (0.5 if swung else 0.05) * (pos % 2 == 1)
        offset = hits * np.clip(late[:, None] + rng.normal(0, 0.04, (n, VOICES)), -1, 1)
        seqs.extend(from_grid(hits, velocity, offset))
        total += n
    return seqs
