"""Melody: the current note in, the next note's MIDI pitch out.

Real sources under the data directory:
- Lakh MIDI (`lmd_full/`, `lmd_matched/`, ... trees of `.mid` files named by MD5): the melody is
  the skyline, the highest note at each onset of the non-drum channels.
- Scores under `melody/` (ABC with many tunes per file, Humdrum, MusicXML, MIDI), as `make data`
  places the Essen folk songs of the music21 corpus.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models import layouts
from trainer.data import midi
from trainer.data.base import Sequence

VERSION = "melody-1"
TARGET = "next_note"
LOW, HIGH = layouts.MELODY_LOW, layouts.MELODY_HIGH  # the input one-hot spans these MIDI pitches
SCORE_SUFFIXES = {".abc", ".krn", ".mxl", ".musicxml", ".xml", ".mid", ".midi"}


def jobs(data_dir: Path):
    """(file, parser, cache key extra) for every real file under the data directory."""
    return [(p, parse, "") for p in find(data_dir)]


def find(data_dir: Path) -> list[Path]:
    lakh = [p for d in sorted(data_dir.glob("lmd*")) if d.is_dir() for p in sorted(d.rglob("*.mid"))]
    scores = sorted(p for p in (data_dir / "melody").rglob("*") if p.suffix.lower() in SCORE_SUFFIXES)
    return lakh + scores


def fold(pitch: int) -> int:
    """Move a pitch by octaves into the input range."""
    while pitch < LOW:
        pitch += 12
    while pitch > HIGH:
        pitch -= 12
    return pitch


def from_pitches(pitches) -> Sequence:
    pitches = np.asarray(pitches, dtype=np.int64)
    inputs = np.zeros((len(pitches) - 1, HIGH - LOW + 1), np.float32)
    inputs[np.arange(len(pitches) - 1), [fold(int(p)) - LOW for p in pitches[:-1]]] = 1.0
    return Sequence(inputs, {TARGET: pitches[1:]})


def skyline(path: Path) -> list[int]:
    notes = midi.read(path).notes
    notes = notes[notes["channel"] != midi.DRUM_CHANNEL]
    onsets = np.round(notes["start"], 3)
    top: dict[float, int] = {}
    for t, p in zip(onsets, notes["pitch"]):
        top[t] = max(top.get(t, 0), int(p))
    return [top[t] for t in sorted(top)]


def parse(path: Path) -> list[Sequence]:
    if path.suffix.lower() in (".mid", ".midi"):
        return [from_pitches(skyline(path))]
    from music21 import converter, stream

    parsed = converter.parse(str(path))
    scores = parsed.scores if isinstance(parsed, stream.Opus) else [parsed]
    seqs = []
    for score in scores:
        pitches = [max(p.midi for p in n.pitches) for n in score.flatten().notes]
        if len(pitches) >= 2:
            seqs.append(from_pitches(pitches))
    return seqs


def synthetic(rng: np.random.Generator, steps: int) -> list[Sequence]:
    """Tunes that move mostly by step on a major scale, with a recurring motif and cadence.

    Learnable: the next note depends on the current one and on where the phrase stands.
    """
    major = np.array([0, 2, 4, 5, 7, 9, 11])
    seqs, total = [], 0
    while total < steps:
        tonic = int(rng.integers(55, 67))
        length = int(rng.integers(32, 96))
        degree, degrees = 0, []
        motif = rng.integers(-2, 3, size=4)
        for i in range(length):
            if i % 8 < 4:  # the motif's steps, then a free random walk
                degree += int(motif[i % 4])
            else:
                degree += int(rng.choice([-2, -1, 1, 2], p=[0.15, 0.35, 0.35, 0.15]))
            degree = int(np.clip(degree, -7, 10))
            if i % 16 == 15:
                degree = 0  # phrases end on the tonic
            degrees.append(degree)
        pitches = [tonic + 12 * (d // 7) + major[d % 7] for d in degrees]
        seqs.append(from_pitches(pitches))
        total += length - 1
    return seqs
