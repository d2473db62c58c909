"""Test inputs for a model whose file carries no reference: deterministic, and fitting its rate.

An audio model (one step per sample) gets what a guitar gives it: plucked notes decaying at about
0.5 peak, then silence (the state must settle, not ring or drift), then a loud strummed passage
that drives it into its nonlinearity. Extra inputs (an amp capture's gain and tone knobs) are held
for a block and step through a few settings. A block-rate model gets a smooth random sequence.
"""

from __future__ import annotations

import numpy as np

SEED = 20261130  # fixed: the same file imports to the same bytes anywhere
NOTES_HZ = (82.41, 110.0, 146.83, 196.0, 246.94, 329.63)  # a guitar's open strings
KNOB_SETTINGS = (0.5, 0.0, 1.0, 0.25, 0.75)


def pluck(freq: float, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A plucked string: harmonics that fade faster the higher they are, with a soft attack."""
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    for k in range(1, 9):
        out += np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t * (2.0 + 1.5 * k)) / k
    return out * np.minimum(1.0, t * sample_rate / 48)  # 1 ms attack at 48 kHz


def audio(seconds: float, sample_rate: int, inputs: int = 1, block: int = 512) -> np.ndarray:
    """[steps][inputs]: the guitar-like signal in column 0 (peak 0.5, then silence, then peak 1.0),
    the other columns knob settings held for `block` samples each."""
    rng = np.random.default_rng(SEED)
    n = max(1, round(seconds * sample_rate))
    played, quiet = int(n * 0.6), int(n * 0.15)
    x = np.zeros(n)
    note = max(1, sample_rate // 4)
    for start in range(0, played, note):
        length = min(note * 2, played - start)
        x[start : start + length] += pluck(NOTES_HZ[(start // note) % len(NOTES_HZ)], length, sample_rate, rng)
    x[:played] *= 0.5 / max(np.abs(x[:played]).max(), 1e-12)
    loud = n - played - quiet
    if loud > 0:
        chord = sum(pluck(f, loud, sample_rate, rng) for f in NOTES_HZ)
        x[played + quiet :] = chord / max(np.abs(chord).max(), 1e-12)
    columns = [x]
    for k in range(1, inputs):  # knobs: a setting per block, stepping through the settings
        blocks = np.arange(n) // block
        columns.append(np.asarray(KNOB_SETTINGS)[(blocks // 8 + k) % len(KNOB_SETTINGS)])
    return np.stack(columns, axis=1).astype(np.float32)


def features(steps: int, inputs: int) -> np.ndarray:
    """[steps][inputs] for a block-rate model: a smooth random walk in about [-1, 1]."""
    rng = np.random.default_rng(SEED)
    walk = np.cumsum(rng.normal(0, 0.3, (steps, inputs)), axis=0)
    return np.tanh(walk / np.sqrt(np.arange(1, steps + 1))[:, None] * 2).astype(np.float32)


def for_model(rate: str, inputs: int, seconds: float, sample_rate: int, block_steps: int = 256) -> np.ndarray:
    return audio(seconds, sample_rate, inputs) if rate == "sample" else features(block_steps, inputs)
