"""What `python -m trainer train` checks before its first epoch, so that a wrong argument or a
damaged checkpoint is refused at once, naming the flag or the file, and not after an epoch's work:
where the data comes from, the output folder, and each model's `latest` checkpoint to resume from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from common import layout
from common.cli import UsageError
from common.errors import SuiteError
from models.spec import ModelSpec
from trainer import data
from trainer.profiles import Profile
from trainer.train import Training


@dataclass(frozen=True)
class DataSource:
    """Where each model's data comes from: `folder` None for synthetic data (asked for); else the
    folder, whose sets must all be there when `required` (the user named it), or are taken where
    present, synthetic for the rest, said so (the default folder, before `make data` fills it)."""

    folder: Path | None
    required: bool

    def describe(self) -> str:
        if self.folder is None:
            return "synthetic data (--synthetic)"
        return f"data from {self.folder}" + ("" if self.required else " (synthetic for the sets it lacks)")


def data_source(data_dir: Path, synthetic: bool, specs: list[ModelSpec]) -> DataSource:
    """`--data-dir` and `--synthetic` checked against the models to train. The default folder may
    lack sets (`make train` runs before `make data` too); a folder the user names must hold each
    model's set, so that a mistyped path is an error rather than a silent synthetic training."""
    default = data_dir.resolve() == layout.DATA_DIR.resolve()
    if synthetic:
        if not default:
            raise UsageError(f"--synthetic reads no data: leave out --data-dir {data_dir}")
        return DataSource(None, required=False)
    if default:
        return DataSource(data_dir, required=False)
    if not data_dir.exists():
        raise SuiteError(f"--data-dir {data_dir}: no such folder (make data prepares one; --synthetic for none)")
    if not data_dir.is_dir():
        raise SuiteError(f"--data-dir {data_dir}: a file, not a folder of data sets")
    lacking = [f"{data.REAL_SETS[s.task]} for {s.name}" for s in specs if not data.found(s.task, data_dir)]
    if lacking:
        raise SuiteError(
            f"--data-dir {data_dir}: holds no {'; no '.join(lacking)}; "
            "train only the models it has data for (--models), or use --synthetic"
        )
    return DataSource(data_dir, required=True)


def out_folder(out: Path) -> Path:
    """`--out` as a folder to write into (lock.hold then creates it and proves it writable)."""
    if out.exists() and not out.is_dir():
        raise SuiteError(f"--out {out}: a file, not a folder")
    return out


def resumes(specs: list[ModelSpec], profile: Profile, out: Path, fresh: bool) -> None:
    """Each model's `latest` checkpoint, checked as its resume will check it (Training.resume), before
    the first model trains: a damaged one is refused now, not after the models before it."""
    if fresh:
        return
    for spec in specs:
        run = Training(spec, profile, out, torch.device("cpu"), seed=0, progress=False)
        if run.latest.exists():
            run.resume()
