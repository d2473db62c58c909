"""`bench compare-engines` says what it measures while the Python-side engines run: a line as each
engine starts and ends, one from each pyperf worker process as it starts, one per benchmark done."""

import re

from bench import lineup, peers
from common import layout, manifest


def test_every_worker_process_of_a_python_engine_says_what_it_does(exported, trained, capsys):
    engine = lineup.python_engine("torch", exported, trained / "checkpoints", quick=True)
    lines = capsys.readouterr().err.splitlines()
    names = manifest.models(manifest.load(exported))
    assert lines[0].startswith("torch (PyTorch eager): loading the models from ")
    assert lines[1].startswith(f"torch: timing one block of each of {len(names)} models and of the set")
    assert lines[-1].startswith("torch: done in ") and lines[-1].endswith(
        f"set {engine['set']['p50']:,.1f} us per block (p50), parity ok {engine['parity_max_abs_error']:.1e}"
    )
    body = lines[2:-1]
    for k, label in enumerate([*names, layout.SET], 1):
        done = next(i for i, line in enumerate(body) if line.startswith(f"  torch / {label}: median "))
        processes = int(re.search(r"\((\d+) worker processes; (\d+) of (\d+) benchmarks\)", body[done])[1])
        assert body[done].endswith(f"; {k} of {len(names) + 1} benchmarks)")
        started = body[:done]
        assert started == [f"  torch / {label}: a worker process calibrating the loop count"] + [
            f"  torch / {label}: a worker process timing {peers.PYPERF_QUICK['values']} values"
        ] * (processes - 1), "a worker process of the benchmark did not say what it does"
        body = body[done + 1 :]
    assert body == []
