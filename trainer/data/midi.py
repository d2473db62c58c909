"""Notes and pedal events out of a standard MIDI file, in seconds (tempo changes applied by mido)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

DRUM_CHANNEL = 9


@dataclass
class Performance:
    notes: np.ndarray  # structured: start, end, pitch, velocity, channel
    pedal: np.ndarray  # [k, 2]: time, value of CC64 (sustain)
    tempo_bpm: float   # the first tempo of the file


NOTE_DTYPE = np.dtype([("start", "f8"), ("end", "f8"), ("pitch", "i2"), ("velocity", "i2"), ("channel", "i2")])


def read(path: str | Path) -> Performance:
    mid = mido.MidiFile(str(path))
    now, tempo = 0.0, None
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes, pedal = [], []
    for msg in mid:  # merged tracks, delta times in seconds
        now += msg.time
        if msg.type == "set_tempo" and tempo is None:
            tempo = mido.tempo2bpm(msg.tempo)
        elif msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            started = open_notes.get((msg.channel, msg.note))
            if started:
                t0, vel = started.pop(0)
                notes.append((t0, now, msg.note, vel, msg.channel))
        elif msg.type == "control_change" and msg.control == 64:
            pedal.append((now, msg.value))
    for (channel, pitch), started in open_notes.items():  # notes never released end with the file
        notes.extend((t0, now, pitch, vel, channel) for t0, vel in started)
    if not notes:
        raise ValueError("no notes")
    arr = np.array(notes, dtype=NOTE_DTYPE)
    arr.sort(order=["start", "pitch"])
    return Performance(arr, np.array(pedal, dtype=np.float64).reshape(-1, 2), tempo or 120.0)
