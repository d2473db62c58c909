"""A layer of 2,048 inputs through the int8 generated engine on every target it runs on: models of
known weights exported into tmp_path, built and run by `bench run` with parity checked on the
target itself. The Cortex-M7's smlad kernel once extended the activations into a stack buffer
sized for 1,024 inputs, so a wider layer wrote past it; the buffer is now sized by the layer's
input count at compile time (rtmb_kernels.h: dsp_capacity)."""

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from bench import targets
from common import layout
from exporter import convert, importer, jsonio, runtime
from exporter.formats import Imported, pytorch
from exporter.layers import walk
from exporter.layers.base import stored
from tests.test_bench import run_bench
from tests.test_layers import Seq

WIDE = 2048  # twice the inputs the old buffer held
STEPS = layout.PROBE_STEPS  # of test vectors, the fewest an export takes: 8 KB each in every image
INT8 = "generated-int8"
MODELS = {  # the wide layer first in each
    "wide_dense": lambda: Seq(nn.Linear(WIDE, 8)),
    "wide_lstm": lambda: Seq(nn.LSTM(WIDE, 8, batch_first=True), nn.Linear(8, 2)),
    "wide_gru": lambda: Seq(nn.GRU(WIDE, 8, batch_first=True), nn.Linear(8, 2)),
}
TARGETS = [t.name for t in targets.load().values() if INT8 in t.engines]


@pytest.fixture(scope="module")
def wide_models(tmp_path_factory):
    """An export folder of the MODELS, their reference the float64 runtime on seeded inputs."""
    out = tmp_path_factory.mktemp("wide") / "models"
    x = np.random.default_rng(7).normal(0, 1.0, (STEPS, WIDE)).astype(np.float32)
    read = []
    for n, (name, make) in enumerate(MODELS.items()):
        torch.manual_seed(n)
        model_json = convert.to_json(make().eval(), WIDE, name)
        (wide, _), *_ = walk(model_json)
        assert stored(wide, "int8") == "int8"  # held in int8, not kept in float32 as a small layer
        imp = Imported(name, pytorch.FORMAT, model_json, "block", reference=(x, runtime.Model(model_json).run(x)))
        weights = hashlib.sha256(jsonio.dumps(model_json["layers"]).encode()).hexdigest()
        read.append(({"file": f"{name} (a torch module)", "sha256": weights}, imp))
    importer.add(read, out, None, "block", importer.DEFAULT_SECONDS)
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_a_layer_of_2048_inputs_runs_with_parity(target, wide_models, tmp_path, pio_ready, capsys):
    """Built, run and within the parity tolerance of the int8 reference. (With the old buffer both
    Cortex-M7 images took a bus fault in the first wide layer and spun in its handler, and bench run
    gave up when the harness did not answer; the other targets never used that buffer.)"""
    code, doc = run_bench(target, INT8, wide_models, tmp_path, "--no-callgrind")
    assert code == 0, capsys.readouterr()
    assert doc["parity_ok"] and set(doc["models"]) == set(MODELS)
    for name, m in doc["models"].items():
        assert m["parity_max_abs_error"] <= layout.PARITY_TOLERANCE, name
