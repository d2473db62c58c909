"""Checkpoints: written atomically, read back with a clear error when damaged or mismatched."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from common import atomic
from common.errors import SuiteError
from models.spec import ModelSpec

FORMAT = 1
REQUIRED = ("format", "model", "fingerprint", "epoch", "state_dict", "history", "finished")


def save(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    atomic.write_bytes(path, buf.getvalue())


def load(path: str | Path, spec: ModelSpec):
    """Read a checkpoint for `spec`: (the torch module in eval mode, the checkpoint dict).

    Raises SuiteError naming the file when it is missing, damaged or made for another declaration.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError("no checkpoint here (train the model first: make train)", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SuiteError(f"not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})", path)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        raise SuiteError(f"not a checkpoint of this project (expected keys {', '.join(REQUIRED)})", path)
    if ckpt["format"] != FORMAT:
        raise SuiteError(f"checkpoint format {ckpt['format']}, this version reads {FORMAT}", path)
    if ckpt["model"] != spec.name or ckpt["fingerprint"] != spec.fingerprint():
        raise SuiteError(
            f"written for {ckpt['model']} (declaration {ckpt['fingerprint']}), not for {spec.name} as now "
            f"declared ({spec.fingerprint()}); retrain it (make train FRESH=1)", path)
    model = spec.build()
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise SuiteError(f"weights do not fit {spec.name}: {str(exc).splitlines()[0]}", path)
    return model.eval(), ckpt
