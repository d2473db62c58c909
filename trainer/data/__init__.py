"""Data for each task: the real set when it is under the data directory, synthetic otherwise."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.errors import SuiteError
from trainer.data import dynamics, emotion, groove, harmony, melody
from trainer.data.base import Dataset, cached_parse, split_sequences

log = logging.getLogger("trainer.data")

SOURCES = {"emotion": emotion, "melody": melody, "harmony": harmony, "dynamics": dynamics, "groove": groove}
REAL_SETS = {"emotion": "DEAM", "melody": "Lakh MIDI / scores in melody/", "harmony": "scores in harmony/",
             "dynamics": "MAESTRO", "groove": "Groove MIDI"}


def found(task: str, data_dir: Path) -> bool:
    """Whether `data_dir` holds any file of the task's real set (its index, if it has one, read)."""
    return data_dir.is_dir() and bool(SOURCES[task].jobs(data_dir))


def load(task: str, data_dir: str | Path | None, synthetic_steps: int, seed: int = 0,
         max_files: int | None = None, progress: bool = True, required: bool = False) -> Dataset:
    """The task's real data set if any of its files parse, else a synthetic one, said so in a warning
    and the description. `data_dir` None: synthetic, as asked for. `required` (a folder the user
    named): no usable real set is a SuiteError naming the folder, never a silent synthetic set."""
    module = SOURCES[task]
    if data_dir is None:
        return synthetic(task, synthetic_steps, seed, "synthetic (asked for with --synthetic)", [])
    data_dir = Path(data_dir)
    jobs = module.jobs(data_dir) if data_dir.is_dir() else []
    if max_files is not None:
        jobs = jobs[:max_files]
    seqs, keys, files, skipped = [], [], [], []
    cache = data_dir / ".cache" / task
    for path, parse, extra in tqdm(jobs, desc=f"{task}: reading", unit="file", disable=None if progress and jobs else True,
                                   leave=False):
        if not path.is_file():
            log.warning("skipping %s: listed by the data set's index but missing", path)
            skipped.append(str(path))
            continue
        parsed = cached_parse(path, parse, cache, f"{module.VERSION}|{extra}")
        if parsed is None:
            skipped.append(str(path))
            continue
        files.append(str(path))
        for i, seq in enumerate(parsed):
            seqs.append(seq)
            keys.append(f"{path.relative_to(data_dir)}:{i}")
    if seqs:
        train, val = split_sequences(seqs, keys)
        if train and val:
            desc = f"{REAL_SETS[task]}: {len(files)} files under {data_dir}"
            return Dataset(task, "real", desc, train, val, files, skipped)
        problem = f"too little {REAL_SETS[task]} data to split into train and validation"
    elif jobs:
        problem = f"none of the {len(jobs)} files of {REAL_SETS[task]} could be read"
    else:
        problem = f"no {REAL_SETS[task]} found"
    if required:
        raise SuiteError(f"{problem} (for the {task} task)", data_dir)
    log.warning("%s: %s under %s; training on synthetic data instead", task, problem, data_dir)
    return synthetic(task, synthetic_steps, seed, f"synthetic ({problem} under {data_dir})", skipped)


def synthetic(task: str, steps: int, seed: int, description: str, skipped: list[str]) -> Dataset:
    rng = np.random.default_rng(seed)
    module = SOURCES[task]
    train = module.synthetic(rng, steps)
    val = module.synthetic(rng, max(steps // 8, 256))
    return Dataset(task, "synthetic", description, train, val, [], skipped)
