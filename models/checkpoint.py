"""Checkpoints, the boundary between training and export: where they live, what they hold, and
reading them back with a clear error when damaged or mismatched.

A checkpoint holds everything export needs, so the same file exports the same way anywhere: the
weights, what the model was trained on, and a probe of validation inputs (PROBE_STEPS or more steps
of one continuous sequence, chosen at training time) that become the test vectors.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from common import atomic, jsonfile
from common import checkpoint as checked
from common.errors import SuiteError
from common.layout import PROBE_STEPS
from models.spec import ModelSpec

FORMAT = 2
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
    """The checkpoint's sha256, read within its bound (a regular file only: common/jsonfile.py)."""
    return jsonfile.sha256(path, checked.MAX_BYTES, "checkpoint", "train the model first (make train)")


# What the checkpoint says it is for, checked first: a checkpoint of another model is named as one.
IDENTITY = (
    checked.Key("model", "a model's name", lambda v: checked.is_text(v, empty=False)),
    checked.Key("fingerprint", "the declaration's fingerprint", lambda v: checked.is_text(v, empty=False)),
)


def keys(spec: ModelSpec) -> tuple[checked.Key, ...]:
    """The other keys `load`'s readers use (export, validate, `trainer evaluate`, the Python-side
    peers), with what each must hold; `format` and IDENTITY are checked before them, the weights after."""
    probe = f"{PROBE_STEPS}+ finite steps of {spec.input_size} inputs (float32), a source and a description"
    return (
        checked.Key("epoch", "a whole number >= 0", checked.is_whole),
        checked.Key(
            "state_dict",
            "a dict of weight name -> tensor",
            lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
        ),
        checked.Key("probe", probe, lambda v: is_probe(v, spec)),
        checked.Key("profile", "a training profile's name", checked.is_text, required=False),
        checked.Key("seed", "a whole number >= 0", checked.is_whole, required=False),
        checked.Key("torch_version", "a version string", checked.is_text, required=False),
        checked.Key(
            "data", "a dict of text and whole numbers", lambda v: is_plain(v, checked.is_whole), required=False
        ),
        checked.Key(
            "metrics", "a dict of text and finite numbers", lambda v: is_plain(v, checked.is_number), required=False
        ),
    )


def is_probe(value, spec: ModelSpec) -> bool:
    inputs = value.get("inputs") if isinstance(value, dict) else None
    return (
        isinstance(inputs, torch.Tensor)
        and inputs.dtype == torch.float32
        and inputs.ndim == 2
        and inputs.shape[1] == spec.input_size
        and inputs.shape[0] >= PROBE_STEPS
        and not checked.non_finite(inputs)
        and checked.is_text(value.get("source"))
        and checked.is_text(value.get("description"))
    )


def is_plain(value, number) -> bool:
    """A dict of text -> text or `number`: what a checkpoint's metadata carries into the export's JSON."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and (checked.is_text(v) or number(v)) for k, v in value.items()
    )


def load(path: str | Path, spec: ModelSpec):
    """Read a checkpoint for `spec`: (the torch module in eval mode, the checkpoint dict).

    Raises SuiteError naming the file (and the key) when it is missing, damaged (an archive member
    failing its CRC), of an older format, made for another declaration, lacking a key its readers
    use or holding one of the wrong kind, or when its weights do not fit the model or are not all
    finite (common/checkpoint.py). Only tensors and plain data are unpickled, never code.
    """
    path = Path(path)
    if not path.exists():
        raise SuiteError("no checkpoint here (train the model first: make train)", path)
    ckpt = checked.read(path)
    if "format" not in ckpt:
        required = ["format", *(k.name for k in (*IDENTITY, *keys(spec)) if k.required)]
        raise SuiteError(f"not a checkpoint of this project (expected keys {', '.join(required)})", path)
    if checked.is_whole(ckpt["format"]) and ckpt["format"] == 1:
        raise SuiteError(
            "checkpoint format 1 holds no probe of validation inputs for the test vectors; "
            "retrain it (make train FRESH=1)",
            path,
        )
    if not (checked.is_whole(ckpt["format"]) and ckpt["format"] == FORMAT):
        raise SuiteError(f"checkpoint format {checked.shown(ckpt['format'])}, this version reads {FORMAT}", path)
    checked.check_keys(path, ckpt, IDENTITY)
    if ckpt["model"] != spec.name or ckpt["fingerprint"] != spec.fingerprint():
        raise SuiteError(
            f"written for {ckpt['model']} (declaration {ckpt['fingerprint']}), not for {spec.name} as now "
            f"declared ({spec.fingerprint()}); retrain it (make train FRESH=1)",
            path,
        )
    checked.check_keys(path, ckpt, keys(spec))
    model = spec.build()
    checked.check_weights(path, ckpt["state_dict"], model.state_dict())
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def probe_inputs(ckpt: dict) -> np.ndarray:
    return ckpt["probe"]["inputs"].numpy().astype(np.float32)
