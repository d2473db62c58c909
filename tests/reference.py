"""Where RTNeural's own reference models and data are: ../shared/rtneural-reference beside the
project (as on the build machines and in CI), or RTNEURAL_REFERENCE."""
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("RTNEURAL_REFERENCE", ROOT.parent / "shared" / "rtneural-reference"))

needs_reference = pytest.mark.skipif(not (REFERENCE / "models").is_dir(),
                                     reason=f"RTNeural reference data not found at {REFERENCE}")


def csv(name: str) -> np.ndarray:
    return np.loadtxt(REFERENCE / "test_data" / f"{name}_python.csv", ndmin=2)
