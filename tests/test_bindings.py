"""The cffi bindings: the exported headers compiled into a host library reproduce torch, carry state
between calls, are rebuilt exactly when an input changed, and refuse bad input clearly."""

import json
import shutil

import numpy as np
import pytest

from bench import bindings
from common import engines, manifest, rtneural
from common.errors import SuiteError
from common.layout import PARITY_TOLERANCE
from models.catalog import get
from tests.conftest import SMALL

TOLERANCE = PARITY_TOLERANCE
# The generated engine always; each RTNeural backend where RTNeural is found (skipped, saying why).
ENGINES = [engines.GENERATED] + [
    pytest.param(b, marks=pytest.mark.skipif(rtneural.find() is None, reason=rtneural.MISSING))
    for b in (*rtneural.BACKENDS, engines.JSON)
]


def vectors(models_dir, name):
    doc = json.loads((models_dir / f"{name}.vectors.json").read_text())
    return np.array(doc["inputs"], dtype=np.float32), np.array(doc["outputs"], dtype=np.float32)


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bindings")


@pytest.mark.parametrize("backend", ENGINES)
def test_compiled_models_match_torch(exported, lib_dir, backend):
    models = bindings.Models.build(exported, backend, lib_dir)
    assert models.names == SMALL
    for name in SMALL:
        spec = get(name)
        assert (models.input_size(name), models.output_size(name)) == (spec.input_size, spec.output_size)
        assert models.parameter_count(name) == spec.parameter_count
        inputs, expected = vectors(exported, name)
        models.reset(name)
        outputs = models.run(name, inputs)
        assert np.abs(outputs - expected).max() <= TOLERANCE, (backend, name)


def test_state_carries_between_calls_and_reset_clears_it(exported, lib_dir):
    models = bindings.Models.build(exported, "generated", lib_dir)
    name = "dynamics_engine"
    inputs, expected = vectors(exported, name)
    models.reset(name)
    stepwise = np.stack([models.forward(name, x) for x in inputs[:8]])
    assert np.abs(stepwise - expected[:8]).max() <= TOLERANCE
    # without a reset the next call continues from step 8, so it differs from step 0's answer
    assert np.abs(models.forward(name, inputs[0]) - expected[0]).max() > TOLERANCE
    models.reset(name)
    assert np.abs(models.forward(name, inputs[0]) - expected[0]).max() <= TOLERANCE


def test_library_is_rebuilt_exactly_when_a_header_changes(exported, tmp_path):
    models_dir = tmp_path / "models"
    shutil.copytree(exported, models_dir)
    first = bindings.build(models_dir, "generated", tmp_path / "lib")
    stamp = first.stat().st_mtime_ns
    assert bindings.build(models_dir, "generated", tmp_path / "lib") == first
    assert first.stat().st_mtime_ns == stamp
    header = models_dir / "groove_predictor.generated.h"
    header.write_text(header.read_text() + "\n// changed\n")
    with pytest.raises(SuiteError, match="changed since export") as err:  # not re-exported: refused, named
        bindings.build(models_dir, "generated", tmp_path / "lib")
    assert err.value.path == header
    doc = json.loads((models_dir / "manifest.json").read_text())  # as a new export would record it
    doc["sha256"]["groove_predictor.generated.h"] = manifest.sha256(header)
    (models_dir / "manifest.json").write_text(json.dumps(doc))
    second = bindings.build(models_dir, "generated", tmp_path / "lib")
    assert second != first and second.exists()
    assert not list((tmp_path / "lib").glob("*.tmp"))


def test_bad_name_and_bad_shape_are_refused(exported, lib_dir):
    models = bindings.Models.build(exported, "generated", lib_dir)
    with pytest.raises(SuiteError, match=r"no model 'bass_line'.*dynamics_engine"):
        models.reset("bass_line")
    with pytest.raises(ValueError, match=r"dynamics_engine takes \[steps, 32\] inputs, not \[1, 31\]"):
        models.forward("dynamics_engine", np.zeros(31))
    assert models.lib.rtmb_reset(len(SMALL)) == -1 and models.lib.rtmb_name(-1) == bindings.ffi.NULL


def test_missing_export_names_the_file(tmp_path):
    with pytest.raises(SuiteError) as err:
        bindings.build(tmp_path, "generated", tmp_path / "lib")
    assert err.value.path == tmp_path / "manifest.json" and "make export" in str(err.value)


def test_missing_rtneural_says_what_to_install(exported, tmp_path, monkeypatch):
    monkeypatch.delenv("RTNEURAL_DIR", raising=False)
    monkeypatch.setattr(rtneural, "find", lambda: None)
    with pytest.raises(SuiteError, match="RTNeural not found"):
        bindings.build(exported, "stl", tmp_path / "lib")


@pytest.mark.skipif(rtneural.find() is None, reason=rtneural.MISSING)
def test_the_json_engine_refuses_a_model_file_it_cannot_read(exported, tmp_path):
    """RTNeural reading the JSON when loaded: a file damaged after the build is an error, not a crash."""
    models_dir = tmp_path / "models"
    shutil.copytree(exported, models_dir)
    library = bindings.build(models_dir, engines.JSON, tmp_path / "lib")
    (models_dir / f"{SMALL[0]}.json").write_text('{"in_shape": [null, null, 3], "layers": [')
    with pytest.raises(SuiteError, match="could not load the models"):
        bindings.Models(library)
