"""Reading a torch checkpoint, checked before it is trusted, in four steps: the archive's integrity
(torch.load does not check the CRC of its zip members, so a flipped bit in a weight would load
silently), a bounded load that unpickles only tensors and plain data (`weights_only`), the schema of
every key the reader uses, then the weights against the model's declaration, every one finite.

Every refusal is one SuiteError naming the file and the key: `<file>: <key>: <what was expected>`.
Nothing here knows what our checkpoints hold: each reader passes the keys it reads (models/checkpoint.py
for export and evaluate, the trainer for a resume) and the tensors its model declares.
"""

from __future__ import annotations

import math
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import SuiteError

# The largest checkpoint of the five models is EmotionRecognizer's latest.pt, 5.7 MB (weights and
# Adam's two moments); ten times that leaves room for a larger declaration and refuses a file that
# cannot be one of ours before it is read.
MAX_BYTES = 64 << 20
CHUNK = 1 << 20  # archive members are read (and their CRC computed) this much at a time
LISTED = 4  # weight problems named in one line before "and N more"


def refuse(path: str | Path, key: str, what: str) -> SuiteError:
    """The error for `key` of the checkpoint at `path`: `<file>: <key>: <what>`."""
    return SuiteError(f"{key}: {what}", path)


def read(path: str | Path) -> dict:
    """The checkpoint at `path` as a dict: a regular file within MAX_BYTES, an intact zip archive,
    loaded with tensors and plain data only. Schema, weights and values are the caller's to check."""
    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise SuiteError("not a regular file; a checkpoint is one written by torch.save", path)
    if info.st_size > MAX_BYTES:
        raise SuiteError(f"{info.st_size:,} bytes: larger than a checkpoint can be ({MAX_BYTES:,} at most)", path)
    verify_archive(path)
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure of the unpickler on a file that is the user's to fix
        raise SuiteError(f"not a readable checkpoint ({type(exc).__name__}: {first_line(exc)})", path) from None
    if not isinstance(doc, dict):
        raise SuiteError(f"not a readable checkpoint (it holds {shown(doc)}, not a dict of keys)", path)
    return doc


def verify_archive(path: Path) -> None:
    """Every member of the zip archive torch.save writes read through, so that zipfile checks its CRC,
    and the members together no larger than MAX_BYTES (a compressed member could unpack to more)."""
    with open(path, "rb") as f:  # an OSError here is the file system's, which the tools report naming the file
        try:
            archive = zipfile.ZipFile(f)
        except Exception as exc:  # not a zip at all: truncated, garbage, an old pickle-only torch file
            raise SuiteError(
                f"not a readable checkpoint (not the zip archive torch.save writes: {first_line(exc)})", path
            ) from None
        with archive:
            members = archive.infolist()
            unpacked = sum(m.file_size for m in members)
            if unpacked > MAX_BYTES:
                raise SuiteError(
                    f"damaged archive: its members unpack to {unpacked:,} bytes ({MAX_BYTES:,} at most)", path
                )
            for member in members:
                problem = member_problem(archive, member)
                if problem:
                    raise SuiteError(f"damaged archive: member {printable(member.filename)} {problem}", path)


def member_problem(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> str | None:
    """What is wrong with one member, read to its end: None when it reads whole with its CRC."""
    try:
        with archive.open(member) as f:
            while f.read(CHUNK):
                pass
    except zipfile.BadZipFile as exc:
        # zipfile reports a wrong checksum only at the end of the member, as "Bad CRC-32 for file ..."
        return "fails its CRC" if "CRC" in str(exc) else f"is unreadable ({first_line(exc)})"
    except Exception as exc:  # a damaged header, compression or size: zipfile raises many kinds
        return f"is unreadable ({type(exc).__name__}: {first_line(exc)})"
    return None


@dataclass(frozen=True)
class Key:
    """A key a reader uses: what it must hold, in words for the message, and the test of it."""

    name: str
    expected: str
    valid: Callable[[object], bool]
    required: bool = True


def check_keys(path: str | Path, doc: dict, keys: tuple[Key, ...]) -> None:
    """The first key of `keys` missing from `doc` or failing its test, as a SuiteError."""
    for key in keys:
        if key.name not in doc:
            if key.required:
                raise refuse(path, key.name, f"missing; expected {key.expected}")
            continue
        value = doc[key.name]
        if not key.valid(value):
            raise refuse(path, key.name, f"{shown(value)}; expected {key.expected}")


# --- tests for Key.valid: each takes any object and never raises ---------------------------------


def is_whole(value, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def is_number(value) -> bool:
    """A finite real number (a bool is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_text(value, empty: bool = True) -> bool:
    return isinstance(value, str) and (empty or bool(value))


def is_record(value, fields: dict[str, Callable[[object], bool]]) -> bool:
    """A dict holding at least `fields`, each passing its test."""
    return isinstance(value, dict) and all(k in value and ok(value[k]) for k, ok in fields.items())


# --- the weights and the optimiser against the model ---------------------------------------------


def check_weights(path: str | Path, weights: dict, declared: dict[str, torch.Tensor]) -> None:
    """`weights` (name -> tensor) against the model's `declared` state: each missing or unexpected
    name and each shape or dtype that differs named, in one line; then every value finite."""
    problems = [
        f"weight {name}: missing; the model declares {dims(t.shape)}"
        for name, t in declared.items()
        if name not in weights
    ]
    for name, value in weights.items():
        if name not in declared:
            problems.append(f"weight {printable(name)}: not in the model's declaration")
        elif not isinstance(value, torch.Tensor):
            problems.append(f"weight {name}: {shown(value)}, not a tensor")
        elif value.shape != declared[name].shape:
            problems.append(
                f"weight {name}: shape {dims(value.shape)}, the model declares {dims(declared[name].shape)}"
            )
        elif value.dtype != declared[name].dtype:
            problems.append(f"weight {name}: dtype {value.dtype}, the model declares {declared[name].dtype}")
    if not problems:
        problems = [
            f"weight {name}: {bad:,} of {value.numel():,} values are not finite (NaN or infinity)"
            for name, value in weights.items()
            if (bad := non_finite(value))
        ]
    if problems:
        more = f"; and {len(problems) - LISTED} more" if len(problems) > LISTED else ""
        raise SuiteError("; ".join(problems[:LISTED]) + more, path)


def check_optimizer(path: str | Path, saved, reference: dict, params: list[tuple[str, torch.Size]]) -> None:
    """A saved optimiser state against `reference`, the state_dict of the optimiser built for the
    model, whose parameters are `params` (name, shape) in its order: the same groups of the same
    sizes, hyperparameters of the same kinds, and every state tensor shaped as its parameter and finite.
    (torch's own load_state_dict checks only the group sizes; the rest would fail at the first step.)"""
    if not (
        isinstance(saved, dict) and isinstance(saved.get("state"), dict) and isinstance(saved.get("param_groups"), list)
    ):
        raise refuse(path, "optimizer", f"{shown(saved)}; expected an optimiser's state (state and param_groups)")
    groups, expected = saved["param_groups"], reference["param_groups"]
    if len(groups) != len(expected):
        raise refuse(path, "optimizer.param_groups", f"{len(groups)} groups; the model's optimiser has {len(expected)}")
    ids = []
    for i, (group, ref) in enumerate(zip(groups, expected, strict=True)):
        where = f"optimizer.param_groups[{i}]"
        if not (isinstance(group, dict) and isinstance(group.get("params"), list)):
            raise refuse(path, where, f"{shown(group)}; expected a dict with the list of its parameters")
        if len(group["params"]) != len(ref["params"]):
            raise refuse(
                path, where, f"{len(group['params'])} parameters; the model's optimiser has {len(ref['params'])}"
            )
        for name, value in ref.items():
            if name != "params" and not same_kind(group, name, value):
                raise refuse(path, f"{where}.{name}", f"{shown(group.get(name))}; expected {kind(value)}")
        ids += group["params"]
    if not all(is_whole(i) for i in ids) or len(set(ids)) != len(ids):
        raise refuse(path, "optimizer.param_groups", "expected each parameter's id, a whole number, once")
    position = {pid: k for k, pid in enumerate(ids)}  # torch matches saved ids to parameters in this order
    for pid, entry in saved["state"].items():
        where = f"optimizer.state[{pid!r}]"
        if pid not in position:
            raise refuse(path, where, "not the id of a parameter in param_groups")
        if not isinstance(entry, dict):
            raise refuse(path, where, f"{shown(entry)}; expected a dict of tensors")
        name, shape = params[position[pid]]
        for k, value in entry.items():
            if not isinstance(value, torch.Tensor):
                if not is_number(value):
                    raise refuse(path, f"{where}.{k}", f"{shown(value)}; expected a tensor or a finite number")
            elif value.ndim and value.shape != shape:
                raise refuse(path, f"{where}.{k}", f"shape {dims(value.shape)}, its parameter {name} has {dims(shape)}")
            elif non_finite(value):
                raise refuse(path, f"{where}.{k}", f"{non_finite(value):,} values not finite (NaN or infinity)")


def same_kind(group: dict, name: str, reference) -> bool:
    """Whether a saved hyperparameter is of the kind the fresh optimiser's is. A flag (bool or None)
    may be absent: torch fills in those a checkpoint of an older version lacks; numbers may not."""
    if name not in group:
        return reference is None or isinstance(reference, bool)
    value = group[name]
    if reference is None or isinstance(reference, bool):
        return value is None or isinstance(value, bool)
    if isinstance(reference, (tuple, list)):
        return isinstance(value, (tuple, list)) and len(value) == len(reference) and all(map(is_number, value))
    return is_number(value)


def kind(reference) -> str:
    if reference is None or isinstance(reference, bool):
        return "a flag (true, false or none)"
    if isinstance(reference, (tuple, list)):
        return f"{len(reference)} finite numbers"
    return "a finite number"


# --- helpers -------------------------------------------------------------------------------------


def non_finite(value: torch.Tensor) -> int:
    """How many values of a tensor are NaN or infinite (an integer tensor has none)."""
    if not (value.is_floating_point() or value.is_complex()):
        return 0
    return int((~torch.isfinite(value)).sum())


def dims(shape) -> str:
    """A shape as the messages write it: (256, 64)."""
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def shown(value) -> str:
    """A value in a message: short, whatever it is."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {dims(value.shape)}"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "...'"
    if isinstance(value, (list, tuple, dict)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def printable(text: str) -> str:
    """A name from the file as a message shows it: on one line, whatever characters it holds."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
