"""pyperf's worker for the Python-side peers: `python -m bench.peers_worker --engine E ...` times
one block of each model and of the whole set, state carried, with pyperf's runner (its processes,
calibration and statistics). `bench compare-engines` runs it and reads the JSON it writes (-o).

pyperf runs each benchmark in fresh worker processes that execute this whole module, so a model is
loaded in the first call of the benchmark that needs it: inside a warm-up, whose value pyperf
drops, and only the models that benchmark uses.

Each worker process says what it does as it starts, and the main process says what each benchmark
gave, as lines on stderr starting with peers.PROGRESS (the workers' stderr is the main one's):
`bench compare-engines` shows them as they come, so no stretch of the minutes this takes is silent."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pyperf

from bench import peers
from common import layout, manifest


def add_cmdline_args(cmd, args):
    cmd.extend(["--engine", args.engine, "--models-dir", str(args.models_dir), "--checkpoints", str(args.checkpoints)])


def progress(text: str) -> None:
    print(peers.PROGRESS + text, file=sys.stderr, flush=True)


class Block:
    """One block of some models, loaded on first use, inputs cycling through the test vectors."""

    def __init__(self, args, label: str, names: list[str]):
        self.args, self.label, self.names, self.steps = args, label, names, None

    def __call__(self):
        if self.steps is None:
            doing = "calibrating the loop count" if self.args.calibrate_loops else f"timing {self.args.values} values"
            progress(f"{self.args.engine} / {self.label}: a worker process {doing}")
            steps, vectors = peers.load(self.args.engine, self.args.models_dir, self.args.checkpoints, self.names)
            self.steps = [(steps[n], itertools.cycle(vectors[n][0])) for n in self.names]
        for step, feed in self.steps:
            step(next(feed))


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args, **peers.PYPERF)
    runner.argparser.add_argument("--engine", choices=peers.ENGINES, required=True)
    runner.argparser.add_argument("--models-dir", type=Path, required=True)
    runner.argparser.add_argument("--checkpoints", type=Path, required=True)
    args = runner.parse_args()
    names = manifest.models(manifest.load(args.models_dir))
    benchmarks = [(name, [name]) for name in names] + [(layout.SET, names)]
    for k, (label, chosen) in enumerate(benchmarks, 1):
        bench = runner.bench_func(f"{args.engine}/{label}", Block(args, label, chosen))
        if bench is not None and not args.worker:  # the main process, once the benchmark's workers are done
            progress(
                f"{args.engine} / {label}: median {bench.median() * 1e6:,.1f} us per block "
                f"({bench.get_nrun()} worker processes; {k} of {len(benchmarks)} benchmarks)"
            )


if __name__ == "__main__":
    main()
