"""Where each stage's files live, and the constants more than one stage must agree on.

The stages meet only through these folders: `trainer` writes CHECKPOINTS, `exporter` reads them and
writes MODELS_DIR, `bench` reads that and writes RUNS_DIR. Every default path in the tools, the
Makefile's included, comes from here or matches it.
"""

from __future__ import annotations

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

DATA_DIR = PROJECT / "data"
CHECKPOINTS = PROJECT / "checkpoints"
MODELS_DIR = PROJECT / "build" / "models"
RUNS_DIR = PROJECT / "reports" / "runs"

# Max abs error a float32 engine may show against PyTorch on the test vectors. Measured worst
# across the five trained models and every RTNeural backend: 2.9e-6 (docs/EXPORT.md).
PARITY_TOLERANCE = 1e-5

# The test vectors: steps of one continuous validation sequence, so recurrent state is exercised.
PROBE_STEPS = 64

# The word the harness, the results and the gate use, beside model names, for all of an export's
# models together (a block's latency, instructions per block, the binary's sections); and the
# word `--models` takes for every model. No model may be called either (common/cgen.identifier).
SET = "set"
ALL = "all"
RESERVED_NAMES = frozenset([SET, ALL])

# Per audio sample: the longest block a sample-rate model takes in one call (RTMB_MAX_BLOCK_SIZE),
# and the most steps of a model's test vectors compiled into a program (a board has no file
# system; 8192 samples are 0.17 s at 48 kHz); the Python checks run the whole vectors.
MAX_BLOCK_SIZE = 4096
TARGET_VECTOR_STEPS = 8192
RATES = ("block", "sample")  # one step per audio block, or one per audio sample

# The int8 engine keeps a layer of fewer parameters than this in float32 (exporter/layers/base.py:
# stored): below it quantising each input costs more than int8 sums save (measured per sample on
# x86: an int8 GRU-32 with one input was 1.2x its float32 time, an LSTM-32 with 32 inputs 0.88x),
# and its float weights are at most 32 KB.
INT8_MIN_PARAMETERS = 8192

# What a reduced precision may cost a model, as signal-to-noise ratio against its reference
# outputs; below it `bench run` and the report say so. 30 dB: the error's RMS about 3% of the
# signal's.
INT8_SNR_BAR_DB = 30.0


def within(error: float, tolerance: float = PARITY_TOLERANCE) -> bool:
    """`error <= tolerance`, written so that a NaN error fails."""
    return error <= tolerance
