import dataclasses
import doctest

import numpy as np
import pytest
import torch
from torch import nn

from common import cgen
from common.errors import SuiteError
from models import layouts, quantize
from models.catalog import MODELS, TOTAL_PARAMETER_BUDGET, get, select
from models.layers import GRU, LSTM, Dense
from models.network import deployed_parameter_count, torch_module
from trainer.data import dynamics, emotion, groove, harmony, melody
from trainer.tasks import TASKS

SIZES = {
    "EmotionRecognizer": (128, 64),
    "MelodyTransformer": (64, 128),
    "HarmonyPredictor": (128, 64),
    "DynamicsEngine": (32, 16),
    "GroovePredictor": (64, 32),
}


def test_the_five_models_and_their_sizes():
    assert {s.name: (s.input_size, s.output_size) for s in MODELS.values()} == SIZES


def test_parameter_counts_within_20_percent_of_their_budget():
    for spec in MODELS.values():
        assert abs(spec.parameter_count / spec.target_parameters - 1) <= 0.20, spec.name


def test_total_is_about_one_million_parameters_and_4_mb():
    total = sum(s.parameter_count for s in MODELS.values())
    assert 0.8 * TOTAL_PARAMETER_BUDGET <= total <= 1.2 * TOTAL_PARAMETER_BUDGET
    assert 3.2e6 <= total * 4 <= 4.8e6


def test_torch_module_matches_declaration():
    for spec in MODELS.values():
        model = spec.build()
        assert deployed_parameter_count(model) == spec.parameter_count
        raw = sum(p.numel() for p in model.parameters())
        lstm_extra = sum(4 * layer.out for layer in spec.layers if isinstance(layer, LSTM))
        assert raw == spec.parameter_count + lstm_extra  # PyTorch's second LSTM bias


def test_layers_are_ones_rtneural_runs_and_both_rnns_are_used():
    kinds = [layer.kind for spec in MODELS.values() for layer in spec.layers]
    assert set(kinds) <= {"dense", "lstm", "gru"}
    assert "lstm" in kinds and "gru" in kinds
    assert all(isinstance(layer, (Dense, LSTM, GRU)) for spec in MODELS.values() for layer in spec.layers)


def test_every_model_has_a_task_that_owns_its_loss_and_metric():
    for spec in MODELS.values():
        task = TASKS[spec.task]
        assert task.loss_name and task.metric_name and isinstance(task.higher_is_better, bool)
        assert task.format(0.5) in ("50.0%", "0.50")
    assert not hasattr(get("groove_predictor"), "loss")


def test_layouts_name_every_input_and_output_once():
    for spec in MODELS.values():
        lay = spec.layout
        assert len(lay.inputs) == spec.input_size and len(lay.outputs) == spec.output_size
        assert len(set(lay.inputs)) == len(lay.inputs) and len(set(lay.outputs)) == len(lay.outputs), spec.name
        assert lay.output_kind in ("logits", "values") and lay.feed and lay.read


def test_the_trainers_encoders_fill_the_declared_layouts():
    """The encoders size their arrays from the layouts, and put the named classes where named."""
    rng = np.random.default_rng(0)
    for module, spec in (
        (emotion, "emotion_recognizer"),
        (melody, "melody_transformer"),
        (harmony, "harmony_predictor"),
        (dynamics, "dynamics_engine"),
        (groove, "groove_predictor"),
    ):
        seq = module.synthetic(rng, 64)[0]
        assert seq.inputs.shape[1] == get(spec).input_size, spec
    assert layouts.HARMONY.outputs[harmony.chord_class(2, "minor")] == "D_minor"
    assert layouts.HARMONY.outputs[harmony.REST] == "rest"
    assert layouts.MELODY.inputs[melody.fold(60) - melody.LOW] == "note_60"
    assert layouts.DYNAMICS.outputs[int(dynamics.velocity_bin(100))] == "velocity_96_103"
    assert layouts.EMOTION.outputs[int(emotion.cell(0.9, -0.9))] == "valence7_arousal0"


@pytest.mark.parametrize(
    "text, message",
    [
        ("nosuch", "unknown model 'nosuch'"),
        ("dynamics_engine,DynamicsEngine", "dynamics_engine is named twice"),
        ("dynamics_engine,", "an empty name"),
    ],
)
def test_model_selection_errors_are_the_users(text, message):
    with pytest.raises(SuiteError, match=message):
        select(text)


def test_model_selection():
    assert [s.name for s in select("all")] == [s.name for s in MODELS.values()]
    assert [s.snake_name for s in select("groove_predictor, DynamicsEngine")] == ["groove_predictor", "dynamics_engine"]


def test_generated_names_are_legal_cpp_and_cgen_doctests_pass():
    for spec in MODELS.values():
        assert cgen.identifier(spec.snake_name) == spec.snake_name
    for bad in ("class", "2fast", "a-b", "x__y", "models"):
        with pytest.raises(ValueError):
            cgen.identifier(bad)
    result = doctest.testmod(cgen)
    assert result.attempted >= 4 and result.failed == 0
    result = doctest.testmod(quantize)
    assert result.attempted >= 2 and result.failed == 0


def test_streaming_forward_equals_one_step_at_a_time():
    torch.manual_seed(0)
    for spec in MODELS.values():
        model = spec.build().eval()
        x = torch.randn(1, 12, spec.input_size)
        whole, _ = model(x)
        state, steps = None, []
        for t in range(12):
            y, state = model(x[:, t : t + 1], state)
            steps.append(y)
        assert torch.allclose(whole, torch.cat(steps, 1), atol=1e-5), spec.name


def test_fingerprint_is_stable_and_tracks_the_layers():
    spec = get("dynamics_engine")
    assert spec.fingerprint() == get("DynamicsEngine").fingerprint()
    assert len({s.fingerprint() for s in MODELS.values()}) == 5
    wider = dataclasses.replace(spec, layers=(Dense(65, "tanh"), *spec.layers[1:]))
    assert wider.fingerprint() != spec.fingerprint()


def test_snake_names():
    assert list(MODELS) == [
        "emotion_recognizer",
        "melody_transformer",
        "harmony_predictor",
        "dynamics_engine",
        "groove_predictor",
    ]


def test_activation_is_checked():
    with pytest.raises(ValueError, match="unknown activation"):
        Dense(4, "swish")
    assert isinstance(torch_module(Dense(4, "elu"), 3)[1], nn.ELU)


def test_architecture_doc_table_is_derived_from_the_declarations():
    from models import docs

    text = docs.DOC.read_text()
    assert docs.render(text) == text, "docs/ML_ARCHITECTURE.md is stale: run python -m models.docs"
