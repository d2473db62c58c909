"""Checkpoints, the boundary between training and export: where they live, what they hold, and
reading them back with a clear error when damaged or mismatched.

A checkpoint holds everything export needs, so the same file exports the same way anywhere: the
weights, what the model was trained on, and a probe of validation inputs (PROBE_STEPS or more steps
of one continuous sequence, chosen at training time) that become the test vectors.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch

from common import atomic
from common.errors import SuiteError
from common.layout import PROBE_STEPS
from models.spec import ModelSpec

FORMAT = 2
REQUIRED = ("format", "model", "fingerprint", "epoch", "state_dict", "history", "finished", "probe")
BEST, LATEST = "best.pt", "latest.pt"


def folder(root: str | Path, spec: ModelSpec) -> Path:
    return Path(root) / spec.snake_name


def best(root: str | Path, spec: ModelSpec) -> Path:
    """The checkpoint export reads: the epoch with the lowest validation loss."""
    return folder(root, spec) / BEST


def latest(root: str | Path, spec: ModelSpec) -> Path:
    """The checkpoint training resumes from: the last finished epoch."""
    return folder(root, spec) / LATEST


def make_probe(inputs: np.ndarray, source: str, description: str) -> dict:
    """The probe a checkpoint carries: float32 [steps, input size] and where it came from."""
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim != 2 or len(inputs) < PROBE_STEPS:
        raise ValueError(f"a probe needs at least {PROBE_STEPS} steps, got shape {list(inputs.shape)}")
    return {"inputs": torch.from_numpy(inputs.copy()), "source": source, "description": description}


def save(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    atomic.write_bytes(path, buf.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(path: str | Path, spec: ModelSpec):
    """Read a checkpoint for `spec`: (the torch module in eval mode, the checkpoint dict).

    Raises SuiteError naming the file when it is missing, damaged, of an older format or made for
    another declaration. Only tensors and plain data are unpickled (`weights_only`), never code.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError("no checkpoint here (train the model first: make train)", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SuiteError(f"not a readable checkpoint ({type(exc).__name__}: {first_line(exc)})", path) from None
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise SuiteError(f"not a checkpoint of this project (expected keys {', '.join(REQUIRED)})", path)
    if ckpt["format"] == 1:
        raise SuiteError(
            "checkpoint format 1 holds no probe of validation inputs for the test vectors; "
            "retrain it (make train FRESH=1)",
            path,
        )
    if ckpt["format"] != FORMAT:
        raise SuiteError(f"checkpoint format {ckpt['format']!r}, this version reads {FORMAT}", path)
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise SuiteError(f"not a checkpoint of this project (no {', '.join(missing)})", path)
    if ckpt["model"] != spec.name or ckpt["fingerprint"] != spec.fingerprint():
        raise SuiteError(
            f"written for {ckpt['model']} (declaration {ckpt['fingerprint']}), not for {spec.name} as now "
            f"declared ({spec.fingerprint()}); retrain it (make train FRESH=1)",
            path,
        )
    probe = ckpt["probe"]
    if not (
        isinstance(probe, dict)
        and isinstance(probe.get("inputs"), torch.Tensor)
        and probe["inputs"].ndim == 2
        and probe["inputs"].shape[1] == spec.input_size
        and probe["inputs"].shape[0] >= PROBE_STEPS
        and bool(torch.isfinite(probe["inputs"]).all())
    ):
        raise SuiteError(f"its probe is not {PROBE_STEPS}+ finite steps of {spec.input_size} inputs", path)
    model = spec.build()
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise SuiteError(f"weights do not fit {spec.name}: {first_line(exc)}", path) from None
    return model.eval(), ckpt


def first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def probe_inputs(ckpt: dict) -> np.ndarray:
    return ckpt["probe"]["inputs"].numpy().astype(np.float32)
