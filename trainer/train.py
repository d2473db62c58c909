"""The training loop: early stopping, latest/best checkpoints, resume, history and curves."""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common import atomic, table
from common import checkpoint as checked
from common.errors import SuiteError
from common.layout import PROBE_STEPS
from models import checkpoint
from models.spec import ModelSpec
from trainer import data
from trainer.data.base import Dataset, eval_batches, random_batches
from trainer.precision import rounded
from trainer.profiles import Profile
from trainer.tasks import TASKS

log = logging.getLogger("trainer")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SuiteError("--device cuda asked for, but torch sees no CUDA device")
    if name == "mps" and not torch.backends.mps.is_available():
        raise SuiteError("--device mps asked for, but torch sees no MPS device")
    return torch.device(name)


def to_tensors(batch: dict, device: torch.device) -> dict:
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}


@torch.no_grad()
def evaluate_model(model, task_name: str, batches, device: torch.device | str = "cpu") -> dict:
    """Mean loss and the task metric over batches of any task's format (numpy or tensor dicts)."""
    task = TASKS[task_name]
    device = torch.device(device)
    model.eval()
    loss_sum = loss_n = metric_sum = metric_n = 0.0
    finite = True
    for batch in batches:
        if not isinstance(batch["inputs"], torch.Tensor):
            batch = to_tensors(batch, device)
        out, _ = model(batch["inputs"])
        finite = finite and bool(torch.isfinite(out[batch["mask"]]).all())
        steps = int(batch["mask"].sum())
        loss_sum += float(task.loss(out, batch)) * steps
        loss_n += steps
        s, n = task.metric(out, batch)
        metric_sum += s
        metric_n += n
    if not loss_n:
        raise ValueError("no steps to evaluate")
    return {"loss": loss_sum / loss_n, "metric": metric_sum / max(metric_n, 1), "finite_outputs": finite}


def evaluate_at(model, precision: str, task_name: str, batches, source: Path, name: str) -> dict:
    """evaluate_model on `model` rounded as the engine computes at `precision`, refusing (a SuiteError
    naming `source`, the checkpoint) weights that precision cannot hold, and outputs, loss or metric
    that are not all finite: an argmax over NaN outputs still gives a plausible accuracy, so the
    metric alone would not show it."""
    try:
        at = rounded(model, precision)
    except ValueError as exc:  # a weight beyond float16's range (models.quantize.float16)
        raise SuiteError(f"{name} at {precision}: {exc}", source) from None
    result = evaluate_model(at, task_name, batches)
    if not (result["finite_outputs"] and math.isfinite(result["loss"]) and math.isfinite(result["metric"])):
        raise SuiteError(
            f"{name} at {precision}: outputs not finite (NaN or infinity) on the validation data; no metric to report",
            source,
        )
    return result


@dataclass
class Result:
    spec: ModelSpec
    dataset: str
    source: str
    best_val_loss: float
    metric: float
    baseline: float
    epochs: int
    stop_reason: str
    seconds: float
    error: str | None = None
    history: list = field(default_factory=list)


def write_history(out_dir: Path, spec: ModelSpec, history: list[dict], baseline: float) -> None:
    atomic.write_json(out_dir / "history.json", {"model": spec.name, "baseline": baseline, "epochs": history})
    if not history:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic.write_text(out_dir / "history.csv", buf.getvalue())
    plot_curves(out_dir / "curves.png", spec, history, baseline)


def plot_curves(path: Path, spec: ModelSpec, history: list[dict], baseline: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = TASKS[spec.task]
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    best = best_epoch(history)
    ax1.axvline(best["epoch"], color="grey", ls=":", label=f"best (epoch {best['epoch']})")
    ax1.set(xlabel="epoch", ylabel=f"{task.loss_name} loss", title=f"{spec.name}: loss")
    ax1.legend()
    ax2.plot(epochs, [h["val_metric"] for h in history], "o-", color="C2", label="model")
    ax2.axhline(baseline, color="C3", ls="--", label=f"baseline ({task.baseline_name})")
    ax2.set(xlabel="epoch", ylabel=task.metric_name, title=f"{spec.name}: validation {task.metric_name}")
    ax2.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def train_model(
    spec: ModelSpec,
    profile: Profile,
    data_dir: Path,
    out_dir: Path,
    device: torch.device,
    seed: int = 0,
    fresh: bool = False,
    progress: bool = True,
    dataset: Dataset | None = None,
    data_required: bool = False,
) -> Result:
    """Train one model, resuming from its `latest` checkpoint unless `fresh`. `data_dir` None:
    synthetic data; `data_required`: the task's real set must be in `data_dir` (data.load)."""
    run = Training(spec, profile, out_dir, device, seed, progress)
    if run.latest.exists() and not fresh:
        resumed = run.resume()
        if resumed["finished"]:
            return already_trained(spec, resumed)
        log.info("%s: resuming from %s after epoch %d", spec.name, run.latest, run.start)
    data = run.load_data(data_dir, dataset, data_required)
    for epoch in range(run.start, profile.max_epochs):
        stop = run.run_epoch(epoch, data)
        if stop:
            return run.result(stop, data)
    # No epoch was left to train: the resumed checkpoint, not marked finished, already had max_epochs
    # epochs (a profile shortened since, or a checkpoint marked unfinished by hand).
    return run.result(Stop(max_epochs_reached(profile)), data)


@dataclass(frozen=True)
class Stop:
    """Why training ends after an epoch. `failed`: the loss stopped being finite, which makes the run an
    error; the checkpoints stay as the last finite epoch left them."""

    reason: str
    failed: bool = False


@dataclass(frozen=True)
class TrainingData:
    """The data set and what every epoch reuses from it, derived once per run."""

    dataset: Dataset
    baseline: float
    val_batches: list[dict]
    info: dict  # the checkpoint's `data`: where the data came from
    probe: dict


HISTORY_ENTRY = {
    "epoch": lambda v: checked.is_whole(v, 1),
    "train_loss": checked.is_number,
    "val_loss": checked.is_number,
    "val_metric": checked.is_number,
    "seconds": checked.is_number,
}
# What a resume reads beyond what every reader of a checkpoint does (models/checkpoint.keys): the
# keys Training.save_checkpoints writes into `latest` for the run to continue, or to report it finished.
RESUME_KEYS = (
    checked.Key("profile", "the training profile's name", checked.is_text),
    checked.Key("optimizer", "the optimiser's state (state and param_groups)", lambda v: isinstance(v, dict)),
    checked.Key(
        "history",
        f"a non-empty list of epochs, each with {', '.join(HISTORY_ENTRY)}",
        lambda v: isinstance(v, list) and bool(v) and all(checked.is_record(h, HISTORY_ENTRY) for h in v),
    ),
    checked.Key("best_val_loss", "a finite number", checked.is_number),
    checked.Key("bad_epochs", "a whole number >= 0", checked.is_whole),
    checked.Key("finished", "true or false", lambda v: isinstance(v, bool)),
    checked.Key("stop_reason", "why training stopped (text; empty while it runs)", checked.is_text),
    checked.Key(
        "data",
        "where the data came from (source, description)",
        lambda v: checked.is_record(v, {"source": checked.is_text, "description": checked.is_text}),
    ),
    checked.Key(
        "metrics",
        "the run's metrics, with the baseline",
        lambda v: checked.is_record(v, {"baseline": checked.is_number}),
    ),
)


class Training:
    """One model's training run: its model and optimiser, the counters a `latest` checkpoint carries
    forward (history, best validation loss, epochs without a real improvement), and a method per step."""

    def __init__(
        self, spec: ModelSpec, profile: Profile, out_dir: Path, device: torch.device, seed: int, progress: bool
    ):
        self.t0 = time.time()
        self.spec, self.profile, self.device, self.seed, self.progress = spec, profile, device, seed, progress
        self.task = TASKS[spec.task]
        self.folder = checkpoint.folder(out_dir, spec)
        self.latest, self.best_path = checkpoint.latest(out_dir, spec), checkpoint.best(out_dir, spec)
        torch.manual_seed(seed)
        self.model = spec.build().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=profile.learning_rate)
        self.start, self.history, self.best_val_loss, self.bad_epochs = 0, [], math.inf, 0

    def resume(self) -> dict:
        """Take the model, the optimiser and the counters from the `latest` checkpoint; returns it.
        Every key read is checked first (RESUME_KEYS, the history against the epoch, the optimiser's
        groups against this model's), so a damaged checkpoint is refused naming the key, and kept."""
        resumed, ckpt = checkpoint.load(self.latest, self.spec)
        checked.check_keys(self.latest, ckpt, RESUME_KEYS)
        epochs = [h["epoch"] for h in ckpt["history"]]
        if epochs != list(range(1, ckpt["epoch"] + 1)):
            raise checked.refuse(
                self.latest,
                "history",
                f"epochs {compact(epochs)}; expected one entry per epoch up to epoch {ckpt['epoch']}",
            )
        checked.check_optimizer(
            self.latest,
            ckpt["optimizer"],
            self.optimizer.state_dict(),
            [(name, p.shape) for name, p in self.model.named_parameters()],
        )
        if ckpt["profile"] != self.profile.name:
            raise SuiteError(
                f"trained so far with profile {ckpt['profile']!r}, not {self.profile.name!r}: resume "
                f"with --profile {ckpt['profile']}, or start over with --fresh (FRESH=1)",
                self.latest,
            )
        self.model.load_state_dict(resumed.state_dict())
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.start, self.history = ckpt["epoch"], ckpt["history"]
        self.best_val_loss, self.bad_epochs = ckpt["best_val_loss"], ckpt["bad_epochs"]
        return ckpt

    def load_data(self, data_dir: Path | None, dataset: Dataset | None, required: bool = False) -> TrainingData:
        """`dataset`, or the task's set loaded from `data_dir` (synthetic where none is there and it is
        not `required`; synthetic when `data_dir` is None)."""
        profile = self.profile
        if dataset is None:
            dataset = data.load(
                self.spec.task, data_dir, profile.synthetic_steps, self.seed, progress=self.progress, required=required
            )
        log.info(
            "%s: %s data, %s (%d train / %d validation steps)",
            self.spec.name,
            dataset.source,
            dataset.description,
            *dataset.steps,
        )
        return TrainingData(
            dataset,
            baseline=self.task.baseline(dataset.train, dataset.val),
            val_batches=[
                to_tensors(b, self.device)
                for b in eval_batches(dataset.val, profile.batch_size, profile.seq_len, profile.val_steps)
            ],
            info={"source": dataset.source, "description": dataset.description, "files": len(dataset.files)},
            probe=choose_probe(dataset),
        )

    def run_epoch(self, epoch: int, data: TrainingData) -> Stop | None:
        """Train, validate, record and save one epoch (0-based); why training ends after it, if it does."""
        losses = self.train_epoch(epoch, data.dataset)
        if len(losses) < self.profile.steps_per_epoch or not all(
            math.isfinite(p.sum().item()) for p in self.model.parameters()
        ):
            return Stop(f"NaN loss in epoch {epoch + 1}", failed=True)
        val = evaluate_model(self.model, self.spec.task, data.val_batches, self.device)
        if not math.isfinite(val["loss"]):
            return Stop(f"NaN validation loss in epoch {epoch + 1}", failed=True)
        self.record(epoch, losses, val)
        improved = self.count_patience(val["loss"])
        stop = self.stop_after(epoch)
        self.save_checkpoints(epoch, val, improved, stop, data)
        write_history(self.folder, self.spec, self.history, data.baseline)
        return stop

    def train_epoch(self, epoch: int, dataset: Dataset) -> list[float]:
        """One epoch of optimiser steps; the losses, cut short at the first that is not finite."""
        profile = self.profile
        rng = np.random.default_rng([self.seed, epoch])  # per-epoch stream: a resumed run sees the same batches
        torch.manual_seed(self.seed * 100_003 + epoch)
        self.model.train()
        losses = []
        bar = tqdm(
            random_batches(dataset.train, rng, profile.steps_per_epoch, profile.batch_size, profile.seq_len),
            total=profile.steps_per_epoch,
            desc=f"{self.spec.name} epoch {epoch + 1}/{profile.max_epochs}",
            unit="batch",
            disable=None if self.progress else True,
            leave=False,
        )  # None: off when not a terminal
        for batch in bar:
            batch = to_tensors(batch, self.device)
            out, _ = self.model(batch["inputs"])
            loss = self.task.loss(out, batch)
            if not torch.isfinite(loss):
                break
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        return losses

    def record(self, epoch: int, losses: list[float], val: dict) -> None:
        """Append the epoch to the history and log it."""
        self.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "val_loss": val["loss"],
                "val_metric": val["metric"],
                "seconds": round(time.time() - self.t0, 2),
            }
        )
        log.info(
            "%s epoch %d/%d: train loss %.4f, validation loss %.4f, %s %.4g",
            self.spec.name,
            epoch + 1,
            self.profile.max_epochs,
            self.history[-1]["train_loss"],
            val["loss"],
            self.task.metric_name,
            val["metric"],
        )

    def count_patience(self, val_loss: float) -> bool:
        """Update the best loss and the epochs without a real improvement; whether this epoch is a new best."""
        # Any improvement makes a new best checkpoint; only one by more than min_delta (relative,
        # so it means the same for a loss of 2.0 and one of 0.002) resets the patience.
        self.bad_epochs = 0 if val_loss < self.best_val_loss * (1 - self.profile.min_delta) else self.bad_epochs + 1
        improved = val_loss < self.best_val_loss
        if improved:
            self.best_val_loss = val_loss
        return improved

    def stop_after(self, epoch: int) -> Stop | None:
        """Early stop once the patience has run out; otherwise stop after the profile's last epoch."""
        profile = self.profile
        if self.bad_epochs >= profile.patience:
            return Stop(f"early stop: no improvement > {profile.min_delta:.1%} for {profile.patience} epochs")
        if epoch + 1 == profile.max_epochs:
            return Stop(max_epochs_reached(profile))
        return None

    def save_checkpoints(self, epoch: int, val: dict, improved: bool, stop: Stop | None, data: TrainingData) -> None:
        """`latest` after every epoch, `best` too when the epoch is a new best: each holds everything
        export needs, and `latest` everything a resumed run needs to continue bit for bit."""
        payload = {
            "model": self.spec.name,
            "fingerprint": self.spec.fingerprint(),
            "declaration_version": self.spec.version,
            "epoch": epoch + 1,
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "best_val_loss": self.best_val_loss,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "finished": stop is not None,
            "stop_reason": stop.reason if stop else "",
            "probe": data.probe,
            "profile": self.profile.name,
            "seed": self.seed,
            "torch_version": str(torch.__version__),
            "data": data.info,
            "metrics": {
                "val_loss": val["loss"],
                "metric_name": self.task.metric_name,
                "metric": val["metric"],
                "baseline_name": self.task.baseline_name,
                "baseline": data.baseline,
            },
        }
        if improved:
            checkpoint.save(self.best_path, payload)
        checkpoint.save(self.latest, payload)

    def result(self, stop: Stop, data: TrainingData) -> Result:
        """What the run ended with; a failed stop is an error naming the best checkpoint it kept."""
        best = best_epoch(self.history) if self.history else {"val_metric": math.nan}
        error = f"{self.spec.name}: {stop.reason}; training stopped, best checkpoint kept at {self.best_path}"
        return Result(
            self.spec,
            data.dataset.description,
            data.dataset.source,
            self.best_val_loss,
            best["val_metric"],
            data.baseline,
            len(self.history),
            stop.reason,
            time.time() - self.t0,
            error if stop.failed else None,
            self.history,
        )


def already_trained(spec: ModelSpec, ckpt: dict) -> Result:
    """The result a finished `latest` checkpoint recorded, without training again (0 seconds)."""
    log.info("%s: already trained (%s); FRESH=1 to train again", spec.name, ckpt["stop_reason"])
    return Result(
        spec,
        ckpt["data"]["description"],
        ckpt["data"]["source"],
        ckpt["best_val_loss"],
        best_epoch(ckpt["history"])["val_metric"],
        ckpt["metrics"]["baseline"],
        ckpt["epoch"],
        ckpt["stop_reason"],
        0.0,
        history=ckpt["history"],
    )


def compact(values: list, shown: int = 6) -> str:
    """A list in a message: its first few values."""
    return "[" + ", ".join(map(str, values[:shown])) + (", ..." if len(values) > shown else "") + "]"


def max_epochs_reached(profile: Profile) -> str:
    return f"reached max_epochs ({profile.max_epochs})"


def best_epoch(history: list[dict]) -> dict:
    """The history entry with the lowest validation loss: the epoch `best.pt` holds."""
    return min(history, key=lambda h: h["val_loss"])


def choose_probe(dataset: Dataset) -> dict:
    """The validation inputs export turns into test vectors: the first PROBE_STEPS steps of the first
    validation sequence that long, so recurrent state runs through one continuous piece. Where no
    piece is that long (short folk tunes), the pieces are played back to back, as a player would."""
    for seq in dataset.val:
        if len(seq) >= PROBE_STEPS:
            return checkpoint.make_probe(
                seq.inputs[:PROBE_STEPS],
                dataset.source,
                f"{dataset.description}: the first validation piece of {PROBE_STEPS}+ steps",
            )
    stream = np.concatenate([s.inputs for s in dataset.val])
    if len(stream) < PROBE_STEPS:
        raise SuiteError(
            f"{dataset.task}: validation data has only {len(stream)} steps, {PROBE_STEPS} needed for the test vectors"
        )
    return checkpoint.make_probe(
        stream[:PROBE_STEPS], dataset.source, f"{dataset.description}: validation pieces back to back"
    )


def summary_table(results: list[Result]) -> str:
    rows = []
    for r in results:
        task = TASKS[r.spec.task]
        rows.append(
            (
                r.spec.name,
                r.source,
                f"{r.spec.parameter_count:,}",
                r.epochs,
                f"{r.best_val_loss:.4f}",
                task.metric_name,
                task.format(r.metric),
                f"{task.format(r.baseline)} ({task.baseline_name})",
                r.stop_reason if not r.error else "ERROR: " + r.stop_reason,
            )
        )
    return table.render(
        rows, ("model", "data", "params", "epochs", "best val loss", "metric", "model", "baseline", "stopped")
    )
