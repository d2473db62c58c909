"""pyperf's worker for the Python-side peers: `python -m bench.peers_worker --engine E ...` times
one block of each model and of the whole set, state carried, with pyperf's runner (its processes,
calibration and statistics). `bench compare-engines` runs it and reads the JSON it writes (-o).

pyperf runs each benchmark in fresh worker processes that execute this whole module, so a model is
loaded in the first call of the benchmark that needs it: inside a warm-up, whose value pyperf
drops, and only the models that benchmark uses."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyperf

from bench import peers
from common import manifest


def add_cmdline_args(cmd, args):
    cmd.extend(["--engine", args.engine, "--models-dir", str(args.models_dir), "--checkpoints", str(args.checkpoints)])


class Block:
    """One block of some models, loaded on first use, inputs cycling through the test vectors."""

    def __init__(self, args, names: list[str]):
        self.args, self.names, self.steps = args, names, None

    def __call__(self):
        if self.steps is None:
            steps, vectors = peers.load(self.args.engine, self.args.models_dir, self.args.checkpoints, self.names)
            self.steps = [(steps[n], itertools.cycle(vectors[n][0])) for n in self.names]
        for step, feed in self.steps:
            step(next(feed))


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args, processes=3, values=5, warmups=1)
    runner.argparser.add_argument("--engine", choices=peers.ENGINES, required=True)
    runner.argparser.add_argument("--models-dir", type=Path, required=True)
    runner.argparser.add_argument("--checkpoints", type=Path, required=True)
    args = runner.parse_args()
    names = manifest.models(manifest.load(args.models_dir))
    for name in names:
        runner.bench_func(f"{args.engine}/{name}", Block(args, [name]))
    runner.bench_func(f"{args.engine}/set", Block(args, names))


if __name__ == "__main__":
    main()
