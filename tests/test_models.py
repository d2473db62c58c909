import torch
from torch import nn

from models.catalog import MODELS, TOTAL_PARAMETER_BUDGET, get
from models.layers import GRU, LSTM, Dense, deployed_parameter_count
from trainer.tasks import TASKS

SIZES = {"EmotionRecognizer": (128, 64), "MelodyTransformer": (64, 128), "HarmonyPredictor": (128, 64),
         "DynamicsEngine": (32, 16), "GroovePredictor": (64, 32)}


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


def test_every_model_has_a_task_and_consistent_loss():
    for spec in MODELS.values():
        task = TASKS[spec.task]
        assert spec.loss == ("masked_mse" if spec.task == "groove" else "cross_entropy")
        assert task.metric_name


def test_streaming_forward_equals_one_step_at_a_time():
    torch.manual_seed(0)
    for spec in MODELS.values():
        model = spec.build().eval()
        x = torch.randn(1, 12, spec.input_size)
        whole, _ = model(x)
        state, steps = None, []
        for t in range(12):
            y, state = model(x[:, t:t + 1], state)
            steps.append(y)
        assert torch.allclose(whole, torch.cat(steps, 1), atol=1e-5), spec.name


def test_fingerprint_is_stable_and_tracks_the_layers():
    spec = get("dynamics_engine")
    assert spec.fingerprint() == get("DynamicsEngine").fingerprint()
    assert len({s.fingerprint() for s in MODELS.values()}) == 5
    import dataclasses
    wider = dataclasses.replace(spec, layers=(Dense(65, "tanh"),) + spec.layers[1:])
    assert wider.fingerprint() != spec.fingerprint()


def test_snake_names():
    assert list(MODELS) == ["emotion_recognizer", "melody_transformer", "harmony_predictor", "dynamics_engine",
                            "groove_predictor"]


def test_activation_is_checked():
    import pytest
    with pytest.raises(ValueError, match="unknown activation"):
        Dense(4, "swish")
    assert isinstance(Dense(4, "elu").torch_module(3)[1], nn.ELU)


def test_architecture_doc_table_is_derived_from_the_declarations():
    from models import docs
    text = docs.DOC.read_text()
    assert docs.render(text) == text, "docs/ML_ARCHITECTURE.md is stale: run python -m models.docs"
