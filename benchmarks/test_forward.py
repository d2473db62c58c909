"""pytest-benchmark figures for forward() of the compiled models, called through the cffi bindings
(`make benchmark`). They measure; they assert nothing about time. MODELS_DIR (default build/models)
says which export to build, RTMB_ENGINE (default generated) which engine."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bench import bindings
from common import engines, layout, manifest

MODELS_DIR = Path(os.environ.get("MODELS_DIR", layout.MODELS_DIR))
BACKEND = os.environ.get("RTMB_ENGINE", engines.GENERATED)
if engines.available(BACKEND):
    pytest.skip(f"{BACKEND}: {engines.available(BACKEND)}", allow_module_level=True)
if not (MODELS_DIR / manifest.NAME).exists():
    pytest.skip(f"{MODELS_DIR / manifest.NAME} missing: run make export first", allow_module_level=True)

MODELS = bindings.Models.build(MODELS_DIR, BACKEND)


def inputs(name: str) -> np.ndarray:
    doc = json.loads((MODELS_DIR / f"{name}.vectors.json").read_text())
    return np.array(doc["inputs"], dtype=np.float32)


@pytest.mark.parametrize("name", MODELS.names)
def test_forward_one_block(benchmark, name):
    """One block through Python: cffi's call overhead included, as a Python host would see it."""
    x = inputs(name)[0]
    MODELS.reset(name)
    benchmark.extra_info.update(backend=BACKEND, library=MODELS.library.name)
    benchmark(MODELS.forward, name, x)


@pytest.mark.parametrize("name", MODELS.names)
def test_forward_64_blocks(benchmark, name):
    """64 consecutive blocks in one call: the call overhead amortised, close to the model's own cost."""
    xs = inputs(name)[:64]
    MODELS.reset(name)
    benchmark.extra_info.update(backend=BACKEND, blocks=len(xs))
    benchmark(MODELS.run, name, xs)


def test_forward_whole_set(benchmark):
    """One audio block of the plugin: forward() of every model once."""
    xs = {name: inputs(name)[0] for name in MODELS.names}

    def block():
        for name, x in xs.items():
            MODELS.forward(name, x)

    benchmark.extra_info.update(backend=BACKEND)
    benchmark(block)
