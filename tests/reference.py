"""Where RTNeural's own reference models and data are (its `models/` and `test_data/` folders):
RTNEURAL_REFERENCE, else ../shared/rtneural-reference beside the project (as on the build
machines), else the RTNeural checkout that RTNEURAL_DIR names, which holds the same files."""

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    if os.environ.get("RTNEURAL_REFERENCE"):
        return Path(os.environ["RTNEURAL_REFERENCE"])
    candidates = [ROOT.parent / "shared" / "rtneural-reference"]
    if os.environ.get("RTNEURAL_DIR"):
        candidates.append(Path(os.environ["RTNEURAL_DIR"]))
    return next((c for c in candidates if (c / "models").is_dir() and (c / "test_data").is_dir()), candidates[0])


REFERENCE = reference_dir()

needs_reference = pytest.mark.skipif(
    not (REFERENCE / "models").is_dir(), reason=f"RTNeural reference data not found at {REFERENCE}"
)


def csv(name: str) -> np.ndarray:
    return np.loadtxt(REFERENCE / "test_data" / f"{name}_python.csv", ndmin=2)
