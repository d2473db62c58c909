"""Data for each task: the real set when it is under the data directory, synthetic otherwise."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trainer.data import dynamics, emotion, groove, harmony, melody
from trainer.data.base import Dataset, cached_parse, split_sequences

log = logging.getLogger("trainer.data")

SOURCES = {"emotion": emotion, "melody": melody, "harmony": harmony, "dynamics": dynamics, "groove": groove}
REAL_SETS = {"emotion": "DEAM", "melody": "Lakh MIDI / scores in melody/", "harmony": "scores in harmony/",
             "dynamics": "MAESTRO", "groove": "Groove MIDI"}


def load(task: str, data_dir: str | Path, synthetic_steps: int, seed: int = 0,
         max_files: int | None = None, progress: bool = True) -> Dataset:
    """The task's real data set if any of its files parse, else a synthetic one (and say so)."""
    module = SOURCES[task]
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
        log.warning("%s: too little real data under %s to split; using synthetic data", task, data_dir)
    rng = np.random.default_rng(seed)
    train = module.synthetic(rng, synthetic_steps)
    val = module.synthetic(rng, max(synthetic_steps // 8, 256))
    desc = f"synthetic (no {REAL_SETS[task]} found under {data_dir})"
    return Dataset(task, "synthetic", desc, train, val, [], skipped)
