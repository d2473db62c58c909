"""The roofline beside the engines: this machine's multiply-add rate and its bandwidth at the
weights' sizes, measured in the same run (bench/calibrate.cpp), and each engine's bound: the
longer of streaming its weights once and doing its multiply-adds at the peak rate."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from common import cxx, layout
from common.errors import SuiteError

SOURCE = Path(__file__).with_name("calibrate.cpp")
BYTES_PER_WEIGHT = {"float32": 4, "float16": 2, "int8": 1}


def calibrate(parameters: int, flags: list[str], build_dir: Path = layout.PROJECT / "build" / "calibrate") -> dict:
    """{"peak_macs_per_s", "bandwidth": {bytes: {"warm_bytes_per_s", "cold_bytes_per_s"}}} at the
    sizes the weights take in each precision."""
    exe = cxx.cached(
        "calibrate",
        SOURCE,
        ["-std=c++17", "-O3", "-ffp-contract=fast", *flags],
        [SOURCE],
        build_dir,
        what="the calibration program",
    )
    sizes = sorted({parameters * b for b in BYTES_PER_WEIGHT.values()})
    done = subprocess.run([str(exe), *map(str, sizes)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SuiteError(f"calibration failed ({done.returncode}): {done.stderr[-300:]}", exe)
    doc = json.loads(done.stdout)
    return {
        "peak_macs_per_s": doc["peak_macs_per_s"],
        "bandwidth": {
            b["bytes"]: {k: b[k] for k in ("warm_bytes_per_s", "cold_bytes_per_s")} for b in doc["bandwidth"]
        },
    }


def bound_us(calibration: dict, parameters: int, dtype: str, cold: bool = False) -> float:
    """The fastest a block could be: weights streamed once (from the caches warm, from memory cold),
    or the multiply-adds at the peak rate, whichever takes longer."""
    size = parameters * BYTES_PER_WEIGHT[dtype]
    bandwidth = calibration["bandwidth"][size]["cold_bytes_per_s" if cold else "warm_bytes_per_s"]
    return 1e6 * max(size / bandwidth, parameters / calibration["peak_macs_per_s"])
