"""The Python-side peers of the compiled engines, on the same trained models and test inputs: PyTorch
eager, TorchScript, and onnxruntime on the models exported to ONNX with their recurrent state as
explicit inputs and outputs. Each runs one block per call, state carried, on one thread, as a
plugin would. Timed with pyperf by `bench/peers_worker.py`; checked for parity here first."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from common import jsonfile, manifest
from common.errors import SuiteError

WHAT = {
    "torch": "PyTorch eager",
    "torchscript": "TorchScript, traced",
    "onnxruntime": "onnxruntime on the models exported to ONNX",
}
ENGINES = tuple(WHAT)
# pyperf's runs of each benchmark (bench/peers_worker.py), and those of `--quick`, a smoke run
PYPERF = {"processes": 3, "values": 5, "warmups": 1}
PYPERF_QUICK = {**PYPERF, "processes": 1, "values": 3}
# A line of the worker's output that `bench compare-engines` shows as it comes, without this prefix.
PROGRESS = "progress: "


def _step_module(model):
    """The model as one step with its state as explicit tensors: forward(x, *state) -> (y, *state)."""
    import torch
    from torch import nn

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = model.layers

        def forward(self, x, *state):
            state, new, k = list(state), [], 0
            for layer in self.layers:
                if isinstance(layer, nn.LSTM):
                    x, (h, c) = layer(x, (state[k], state[k + 1]))
                    new += [h, c]
                    k += 2
                elif isinstance(layer, nn.GRU):
                    x, h = layer(x, state[k])
                    new.append(h)
                    k += 1
                else:
                    x = layer(x)
            return (x, *new)

    zeros = []
    for layer in model.layers:
        if isinstance(layer, nn.LSTM):
            zeros += [torch.zeros(1, 1, layer.hidden_size)] * 2
        elif isinstance(layer, nn.GRU):
            zeros.append(torch.zeros(1, 1, layer.hidden_size))
    return Step().eval(), zeros


def load(engine: str, models_dir: Path, checkpoints: Path, only: list[str] | None = None) -> tuple[dict, dict]:
    """{model: step(x) -> outputs, state carried} and {model: (inputs, expected outputs)} for one
    Python engine (`only` some models), from the export's manifest and the checkpoints it names."""
    import torch

    from models import checkpoint
    from models.catalog import get

    torch.set_num_threads(1)
    doc = manifest.load(models_dir)
    steps, vectors = {}, {}
    for row in doc["models"]:
        if only is not None and row["name"] not in only:
            continue
        if "checkpoint" not in row:  # an imported model: no PyTorch module of ours to run it
            continue
        spec = get(row["name"])
        model, _ = checkpoint.load(Path(checkpoints) / row["checkpoint"]["file"], spec)
        vec = manifest_vectors(models_dir, row)
        vectors[row["name"]] = vec
        step, zeros = _step_module(model)
        steps[row["name"]] = _runner(engine, step, zeros, spec.input_size)
    return steps, vectors


def manifest_vectors(models_dir: Path, row: dict) -> tuple[np.ndarray, np.ndarray]:
    doc = jsonfile.read(Path(models_dir) / row["files"]["vectors"], jsonfile.VECTORS_BYTES, "test vectors")
    return np.asarray(doc["inputs"], np.float32), np.asarray(doc["outputs"], np.float32)


def _runner(engine: str, step, zeros, in_size: int):
    import torch

    if engine == "torch":
        return _torch_callable(step, zeros)
    example = (torch.zeros(1, 1, in_size), *zeros)
    if engine == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(step, example)
        return _torch_callable(traced, zeros)
    if engine == "onnxruntime":
        import onnxruntime

        names = [f"s{k}" for k in range(len(zeros))]
        buf = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                step,
                example,
                buf,
                input_names=["x", *names],
                output_names=["y", *(n + "_out" for n in names)],
                dynamo=False,
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
        initial = [z.numpy() for z in zeros]

        class Run:
            def __init__(self):
                self.reset()

            def reset(self):
                self.state = list(initial)

            def __call__(self, x):
                out = session.run(None, {"x": x.reshape(1, 1, -1), **dict(zip(names, self.state, strict=True))})
                self.state = out[1:]
                return out[0].reshape(-1)

        return Run()
    raise SuiteError(f"unknown Python engine {engine!r}; choose from {', '.join(ENGINES)}")


def _torch_callable(fn, zeros):
    import torch

    class Run:
        def __init__(self):
            self.reset()

        def reset(self):
            self.state = list(zeros)

        @torch.no_grad()
        def __call__(self, x):
            y, *self.state = fn(torch.from_numpy(x).view(1, 1, -1), *self.state)
            return y.view(-1).numpy()

    return Run()


def parity(steps: dict, vectors: dict) -> dict[str, float]:
    """Each model's max abs error against the test vectors, from a reset state."""
    errors = {}
    for name, step in steps.items():
        step.reset()
        inputs, outputs = vectors[name]
        got = np.stack([step(x) for x in inputs])
        diff = np.abs(got.astype(np.float64) - outputs)
        errors[name] = float(diff.max()) if np.isfinite(diff).all() else float("nan")
        step.reset()
    return errors
