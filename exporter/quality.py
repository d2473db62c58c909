"""What a reduced precision costs an audio model, in the field's figures: signal-to-noise ratio
(dB) and error-to-signal ratio (ESR, the loss amp-capture projects train on). Either is NaN when a
side holds a NaN or an infinity, so NaN fails every bar.

>>> import numpy as np
>>> ref = np.sin(np.linspace(0, 20, 1000))
>>> round(snr_db(ref, ref + 0.01 * ref), 1)
40.0
>>> round(error_to_signal(ref, ref + 0.1 * ref), 3)
0.01
>>> snr_db(ref, ref * np.nan)
nan
>>> error_to_signal([1.0, 2.0], [1.0, np.inf])
nan
>>> snr_db(np.ones((4, 1)), np.ones(4))
Traceback (most recent call last):
ValueError: reference of shape (4, 1) and output of shape (4,): compared element by element, they must agree
"""

from __future__ import annotations

import numpy as np


def _powers(reference, got) -> tuple[float, float]:
    ref, got = np.asarray(reference, np.float64), np.asarray(got, np.float64)
    if ref.shape != got.shape:  # broadcasting [n][1] against [n] would compare every pair
        raise ValueError(
            f"reference of shape {ref.shape} and output of shape {got.shape}: compared element by element, "
            "they must agree"
        )
    err = got - ref
    if not (np.isfinite(ref).all() and np.isfinite(err).all()):
        return float("nan"), float("nan")
    return float(np.sum(ref * ref)), float(np.sum(err * err))


def snr_db(reference, got) -> float:
    """10 log10(signal power / error power); inf when identical, -inf for a silent reference."""
    signal, noise = _powers(reference, got)
    if np.isnan(signal):
        return float("nan")
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(signal / noise)) if signal > 0 else float("-inf")


def error_to_signal(reference, got) -> float:
    """sum of squared error / sum of squared reference (0 when identical; inf for a silent reference)."""
    signal, noise = _powers(reference, got)
    if np.isnan(signal):
        return float("nan")
    if noise == 0:
        return 0.0
    return noise / signal if signal > 0 else float("inf")
