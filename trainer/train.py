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
from common.errors import SuiteError
from common.layout import PROBE_STEPS
from models import checkpoint
from models.spec import ModelSpec
from trainer import data
from trainer.data.base import Dataset, eval_batches, random_batches
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
    for batch in batches:
        if not isinstance(batch["inputs"], torch.Tensor):
            batch = to_tensors(batch, device)
        out, _ = model(batch["inputs"])
        steps = int(batch["mask"].sum())
        loss_sum += float(task.loss(out, batch)) * steps
        loss_n += steps
        s, n = task.metric(out, batch)
        metric_sum += s
        metric_n += n
    if not loss_n:
        raise ValueError("no steps to evaluate")
    return {"loss": loss_sum / loss_n, "metric": metric_sum / max(metric_n, 1)}


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
    best = min(history, key=lambda h: h["val_loss"])
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
) -> Result:
    """Train one model, resuming from its `latest` checkpoint unless `fresh`."""
    t0 = time.time()
    latest, best_path = checkpoint.latest(out_dir, spec), checkpoint.best(out_dir, spec)
    out_dir = checkpoint.folder(out_dir, spec)
    task = TASKS[spec.task]
    torch.manual_seed(seed)
    model = spec.build().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.learning_rate)
    start, history, best_loss, bad = 0, [], math.inf, 0

    if latest.exists() and not fresh:
        resumed, ckpt = checkpoint.load(latest, spec)
        if ckpt.get("profile") != profile.name:
            raise SuiteError(
                f"trained so far with profile {ckpt.get('profile')!r}, not {profile.name!r}: resume "
                f"with --profile {ckpt.get('profile')}, or start over with --fresh (FRESH=1)",
                latest,
            )
        model.load_state_dict(resumed.state_dict())
        optimizer.load_state_dict(ckpt["optimizer"])
        start, history = ckpt["epoch"], ckpt["history"]
        best_loss, bad = ckpt["best_val_loss"], ckpt["bad_epochs"]
        if ckpt["finished"]:
            log.info("%s: already trained (%s); FRESH=1 to train again", spec.name, ckpt["stop_reason"])
            best = min(history, key=lambda h: h["val_loss"])
            return Result(
                spec,
                ckpt["data"]["description"],
                ckpt["data"]["source"],
                best_loss,
                best["val_metric"],
                ckpt["metrics"]["baseline"],
                start,
                ckpt["stop_reason"],
                0.0,
                history=history,
            )
        log.info("%s: resuming from %s after epoch %d", spec.name, latest, start)

    if dataset is None:
        dataset = data.load(spec.task, data_dir, profile.synthetic_steps, seed, progress=progress)
    log.info(
        "%s: %s data, %s (%d train / %d validation steps)",
        spec.name,
        dataset.source,
        dataset.description,
        *dataset.steps,
    )
    baseline = task.baseline(dataset.train, dataset.val)
    val_batches = [
        to_tensors(b, device) for b in eval_batches(dataset.val, profile.batch_size, profile.seq_len, profile.val_steps)
    ]
    data_info = {"source": dataset.source, "description": dataset.description, "files": len(dataset.files)}
    probe = choose_probe(dataset)

    stop_reason, error = f"reached max_epochs ({profile.max_epochs})", None
    for epoch in range(start, profile.max_epochs):
        rng = np.random.default_rng([seed, epoch])  # per-epoch stream: a resumed run sees the same batches
        torch.manual_seed(seed * 100_003 + epoch)
        model.train()
        losses = []
        bar = tqdm(
            random_batches(dataset.train, rng, profile.steps_per_epoch, profile.batch_size, profile.seq_len),
            total=profile.steps_per_epoch,
            desc=f"{spec.name} epoch {epoch + 1}/{profile.max_epochs}",
            unit="batch",
            disable=None if progress else True,
            leave=False,
        )  # None: off when not a terminal
        for batch in bar:
            batch = to_tensors(batch, device)
            out, _ = model(batch["inputs"])
            loss = task.loss(out, batch)
            if not torch.isfinite(loss):
                break
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        if len(losses) < profile.steps_per_epoch or not all(math.isfinite(p.sum().item()) for p in model.parameters()):
            stop_reason = f"NaN loss in epoch {epoch + 1}"
            error = f"{spec.name}: {stop_reason}; training stopped, best checkpoint kept at {best_path}"
            break
        val = evaluate_model(model, spec.task, val_batches, device)
        if not math.isfinite(val["loss"]):
            stop_reason = f"NaN validation loss in epoch {epoch + 1}"
            error = f"{spec.name}: {stop_reason}; training stopped, best checkpoint kept at {best_path}"
            break
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "val_loss": val["loss"],
                "val_metric": val["metric"],
                "seconds": round(time.time() - t0, 2),
            }
        )
        log.info(
            "%s epoch %d/%d: train loss %.4f, validation loss %.4f, %s %.4g",
            spec.name,
            epoch + 1,
            profile.max_epochs,
            history[-1]["train_loss"],
            val["loss"],
            task.metric_name,
            val["metric"],
        )
        # Any improvement makes a new best checkpoint; only one by more than min_delta (relative,
        # so it means the same for a loss of 2.0 and one of 0.002) resets the patience.
        bad = 0 if val["loss"] < best_loss * (1 - profile.min_delta) else bad + 1
        improved = val["loss"] < best_loss
        if improved:
            best_loss = val["loss"]
        finished = bad >= profile.patience or epoch + 1 == profile.max_epochs
        if bad >= profile.patience:
            stop_reason = f"early stop: no improvement > {profile.min_delta:.1%} for {profile.patience} epochs"
        payload = {
            "model": spec.name,
            "fingerprint": spec.fingerprint(),
            "declaration_version": spec.version,
            "epoch": epoch + 1,
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "best_val_loss": best_loss,
            "bad_epochs": bad,
            "history": history,
            "finished": finished,
            "stop_reason": stop_reason if finished else "",
            "probe": probe,
            "profile": profile.name,
            "seed": seed,
            "torch_version": str(torch.__version__),
            "data": data_info,
            "metrics": {
                "val_loss": val["loss"],
                "metric_name": task.metric_name,
                "metric": val["metric"],
                "baseline_name": task.baseline_name,
                "baseline": baseline,
            },
        }
        if improved:
            checkpoint.save(best_path, payload)
        checkpoint.save(latest, payload)
        write_history(out_dir, spec, history, baseline)
        if finished:
            break

    best = min(history, key=lambda h: h["val_loss"]) if history else {"val_metric": math.nan}
    return Result(
        spec,
        dataset.description,
        dataset.source,
        best_loss,
        best["val_metric"],
        baseline,
        len(history),
        stop_reason,
        time.time() - t0,
        error,
        history,
    )


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
