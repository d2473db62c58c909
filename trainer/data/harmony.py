"""Harmony: the notes sounding on a beat in, the next beat's chord class out.

Real source: scores under `harmony/` (MusicXML, MXL, Humdrum, MIDI), such as the Bach chorales of
the music21 corpus that `make data` places there. Each score is chordified and sampled on the beat.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models import layouts
from trainer.data.base import Sequence

VERSION = "harmony-1"
TARGET = "next_chord"
QUALITIES = layouts.CHORD_QUALITIES
DIM7, HALF_DIM7, OTHER, REST = 60, 61, 62, 63
SUFFIXES = {".mxl", ".musicxml", ".xml", ".krn", ".mid", ".midi"}


def jobs(data_dir: Path):
    return [(p, parse, "") for p in find(data_dir)]


def find(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "harmony").rglob("*") if p.suffix.lower() in SUFFIXES)


def chord_class(root_pc: int | None, quality: str) -> int:
    """12 roots x 5 qualities, then diminished 7th, half-diminished 7th, other, rest."""
    if root_pc is None:
        return REST
    if quality in QUALITIES:
        return root_pc * len(QUALITIES) + QUALITIES.index(quality)
    return {"diminished-seventh": DIM7, "half-diminished-seventh": HALF_DIM7}.get(quality, OTHER)


def music21_quality(chord) -> str:
    if chord.isDominantSeventh():
        return "dominant-seventh"
    if chord.isDiminishedSeventh():
        return "diminished-seventh"
    if chord.isHalfDiminishedSeventh():
        return "half-diminished-seventh"
    return chord.quality


def from_chords(notes: list[list[int]], classes: list[int]) -> Sequence:
    inputs = np.zeros((len(notes) - 1, 128), np.float32)
    for i, pitches in enumerate(notes[:-1]):
        inputs[i, pitches] = 1.0
    return Sequence(inputs, {TARGET: np.asarray(classes[1:], dtype=np.int64)})


def parse(path: Path) -> list[Sequence]:
    from music21 import converter

    chords = converter.parse(str(path)).chordify().flatten().getElementsByClass("Chord")
    notes, classes = [], []
    for c in chords:
        if float(c.offset) % 1.0:  # on-beat chords only
            continue
        notes.append(sorted({p.midi for p in c.pitches}))
        classes.append(chord_class(c.root().pitchClass, music21_quality(c)) if c.pitches else REST)
    if len(notes) < 2:
        raise ValueError("fewer than two on-beat chords")
    return [from_chords(notes, classes)]


# Functional harmony for the synthetic set: degree -> (semitones above tonic, quality), and the
# degrees each one tends to move to.
DEGREES = {1: (0, "major"), 2: (2, "minor"), 4: (5, "major"), 5: (7, "dominant-seventh"), 6: (9, "minor")}
MOVES = {1: [4, 5, 6, 2], 2: [5], 4: [5, 1, 2], 5: [1, 6], 6: [2, 4]}
INTERVALS = {"major": (0, 4, 7), "minor": (0, 3, 7), "dominant-seventh": (0, 4, 7, 10)}


def synthetic(rng: np.random.Generator, steps: int) -> list[Sequence]:
    """Progressions in random keys moving by the usual functional steps, in varied voicings."""
    seqs, total = [], 0
    while total < steps:
        tonic = int(rng.integers(0, 12))
        length = int(rng.integers(24, 64))
        degree, notes, classes = 1, [], []
        for _ in range(length):
            offset, quality = DEGREES[degree]
            root = (tonic + offset) % 12
            bass = 36 + root
            voicing = [bass] + [int(48 + rng.integers(0, 12) + root + i) for i in INTERVALS[quality]]
            notes.append(sorted(set(voicing)))
            classes.append(chord_class(root, quality))
            degree = int(rng.choice(MOVES[degree]))
        seqs.append(from_chords(notes, classes))
        total += length - 1
    return seqs
