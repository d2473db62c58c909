"""What each model's input columns and output values mean, so a plugin author knows what to feed
and how to read the answer. The trainer's encoders fill the columns in this order; the exporter
copies the names into build/models/manifest.json."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_kind: str  # "logits": softmax for probabilities, argmax for the class; "values": use as they are
    feed: str  # how to fill the inputs
    read: str  # how to read the outputs


PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
EMOTION_GRID = 8
CHORD_QUALITIES = ("major", "minor", "diminished", "augmented", "dominant-seventh")
CHORD_EXTRAS = ("diminished-seventh", "half-diminished-seventh", "other", "rest")
MELODY_LOW, MELODY_HIGH = 36, 99
VELOCITY_BINS = 16
# General MIDI drum notes are gathered into these voices (trainer/data/groove.py maps them).
DRUM_VOICES = (
    "kick",
    "snare",
    "side_stick",
    "clap",
    "closed_hihat",
    "pedal_hihat",
    "open_hihat",
    "low_tom",
    "mid_tom",
    "high_tom",
    "crash",
    "ride",
    "ride_bell",
    "tambourine",
    "cowbell",
    "other",
)
STEPS_PER_BAR = 16

EMOTION = Layout(
    inputs=tuple(f"opensmile_{i:03d}" for i in range(128)),
    outputs=tuple(f"valence{v}_arousal{a}" for v in range(EMOTION_GRID) for a in range(EMOTION_GRID)),
    output_kind="logits",
    feed="the first 128 openSMILE features of the block (DEAM's feature columns after frameTime), "
    "each as sign(x) * log1p(|x|)",
    read="one cell of an 8x8 valence/arousal grid; bin k of each axis covers [-1 + k/4, -1 + (k+1)/4)",
)

MELODY = Layout(
    inputs=tuple(f"note_{p}" for p in range(MELODY_LOW, MELODY_HIGH + 1)),
    outputs=tuple(f"next_midi_{p}" for p in range(128)),
    output_kind="logits",
    feed=f"one-hot of the current MIDI pitch, moved by octaves into {MELODY_LOW}-{MELODY_HIGH}",
    read="the next MIDI pitch, 0-127",
)

HARMONY = Layout(
    inputs=tuple(f"sounding_midi_{p}" for p in range(128)),
    outputs=tuple(f"{root}_{q}" for root in PITCH_CLASSES for q in CHORD_QUALITIES) + CHORD_EXTRAS,
    output_kind="logits",
    feed="1 for each MIDI pitch sounding on the current beat, 0 elsewhere",
    read="the next beat's chord: 12 roots x 5 qualities, then diminished 7th, half-diminished 7th, other, rest",
)

DYNAMICS = Layout(
    inputs=(
        *(f"pitch_class_{pc}" for pc in PITCH_CLASSES),
        *(f"octave_{o}" for o in range(8)),
        "pitch",
        "log_ioi_prev",
        "log_ioi_next",
        "log_duration",
        "log_chord_size",
        "pedal_on",
        "density_1s",
        "density_4s",
        "interval",
        "highest_in_chord",
        "lowest_in_chord",
        "mean_pitch_8",
    ),
    outputs=tuple(
        f"velocity_{k * 128 // VELOCITY_BINS}_{(k + 1) * 128 // VELOCITY_BINS - 1}" for k in range(VELOCITY_BINS)
    ),
    output_kind="logits",
    feed="per note: pitch-class and octave one-hots, pitch/127, log1p of the onset gaps (s) before and "
    "after and of the duration, log1p of the chord size, sustain pedal, notes in the last 1 s / 10 "
    "and 4 s / 40, interval from the previous note / 24 (clipped), highest and lowest of its chord, "
    "mean of the last 8 pitches / 127",
    read="the note's velocity as one of 16 bins of 8; the expected velocity is the softmax-weighted bin centres",
)

GROOVE = Layout(
    inputs=(
        *(f"hit_{v}" for v in DRUM_VOICES),
        *(f"next_hit_{v}" for v in DRUM_VOICES),
        *(f"prev_hit_{v}" for v in DRUM_VOICES),
        *(f"position_{s}" for s in range(STEPS_PER_BAR)),
    ),
    outputs=(*(f"velocity_{v}" for v in DRUM_VOICES), *(f"offset_{v}" for v in DRUM_VOICES)),
    output_kind="values",
    feed="one 16th-note step: which voices hit now, at the next and at the previous step (0/1), and the "
    "step's position in the bar (one-hot of 16)",
    read="per voice that hits: velocity in [0, 1] (x127 for MIDI) and offset from the grid in [-1, 1] "
    "(half a 16th each way); values for voices that do not hit mean nothing",
)
