"""What each model is trained to do: its loss, its task metric and the trivial baseline beside it.

A batch is a dict of tensors: `inputs` [B, T, in], `mask` [B, T] (real steps, not padding) and
the task's own target keys (`emotion`, `next_note`, `next_chord`, `dynamics`, `groove` with
`groove_mask`). Metrics are returned as (sum, count) so they add up across batches.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainer.data import dynamics, groove
from trainer.data.base import Sequence


class Classification:
    """Next-step class prediction scored by top-1 accuracy against the most frequent class."""

    loss_name = "cross-entropy"
    metric_name = "accuracy"
    baseline_name = "most frequent"
    higher_is_better = True

    def __init__(self, key: str):
        self.key = key

    def format(self, value: float) -> str:
        return f"{value:.1%}"

    def loss(self, out, batch):
        mask = batch["mask"]
        return F.cross_entropy(out[mask], self.classes(batch)[mask])

    def classes(self, batch):
        return batch[self.key]

    def metric(self, out, batch):
        mask = batch["mask"]
        hits = (out[mask].argmax(-1) == self.classes(batch)[mask]).sum()
        return float(hits), int(mask.sum())

    def baseline(self, train: list[Sequence], val: list[Sequence]) -> float:
        counts = np.bincount(np.concatenate([self._targets(s) for s in train]))
        val_targets = np.concatenate([self._targets(s) for s in val])
        return float(np.mean(val_targets == counts.argmax()))

    def _targets(self, seq):
        return seq.targets[self.key]


class VelocityBins(Classification):
    """Velocity as a distribution over bins; scored by the MAE of its expected velocity
    against always predicting the training set's mean velocity."""

    metric_name = "velocity MAE"
    baseline_name = "mean velocity"
    higher_is_better = False

    def format(self, value: float) -> str:
        return f"{value:.2f}"

    centres = (torch.arange(dynamics.BINS, dtype=torch.float32) + 0.5) * 128 / dynamics.BINS

    def classes(self, batch):
        return torch.as_tensor(dynamics.velocity_bin(batch[self.key].cpu().numpy()), device=batch["mask"].device)

    def metric(self, out, batch):
        mask = batch["mask"]
        expected = out[mask].softmax(-1) @ self.centres.to(out.device)
        return float((expected - batch[self.key][mask].float()).abs().sum()), int(mask.sum())

    def baseline(self, train, val):
        mean = np.concatenate([s.targets[self.key] for s in train]).mean()
        return float(np.abs(np.concatenate([s.targets[self.key] for s in val]) - mean).mean())


class Microtiming:
    """Per-voice velocity and offset, regressed only where a voice hits; scored by the
    velocity MAE (in MIDI units) on hits against predicting the mean hit velocity."""

    loss_name = "masked MSE"
    metric_name = "hit velocity MAE"
    baseline_name = "mean velocity"
    higher_is_better = False

    def format(self, value: float) -> str:
        return f"{value:.2f}"

    def loss(self, out, batch):
        mask = batch[groove.MASK] & batch["mask"][..., None]
        return F.mse_loss(out[mask], batch[groove.TARGET][mask])

    def metric(self, out, batch):
        hits = (batch[groove.MASK] & batch["mask"][..., None])[..., : groove.VOICES]
        err = (out[..., : groove.VOICES] - batch[groove.TARGET][..., : groove.VOICES]).abs()[hits] * 127
        return float(err.sum()), int(hits.sum())

    def baseline(self, train, val):
        def hit_velocities(seqs):
            return np.concatenate(
                [s.targets[groove.TARGET][:, : groove.VOICES][s.targets[groove.MASK][:, : groove.VOICES]] for s in seqs]
            )

        mean = hit_velocities(train).mean()
        return float(np.abs(hit_velocities(val) - mean).mean() * 127)


TASKS = {
    "emotion": Classification("emotion"),
    "melody": Classification("next_note"),
    "harmony": Classification("next_chord"),
    "dynamics": VelocityBins("dynamics"),
    "groove": Microtiming(),
}
