"""The five models the plugin runs on every audio block.

Each is streaming: one input vector per block, one output vector back, state
carried in its recurrent layer. Widths follow the design's seed; recurrent
sizes were chosen so each parameter count lands within 20% of its budget.
"""
from models.layers import GRU, LSTM, Dense
from models.spec import ModelSpec

EMOTION_RECOGNIZER = ModelSpec(
    name="EmotionRecognizer", version=1, input_size=128, output_size=64,
    layers=(Dense(512, "tanh"), Dense(256, "tanh"), LSTM(160), Dense(64)),
    task="emotion", loss="cross_entropy", target_parameters=500_000,
    purpose="128 audio features per block -> logits over an 8x8 valence/arousal grid; "
            "the LSTM smooths mood over seconds of blocks.",
)

MELODY_TRANSFORMER = ModelSpec(
    name="MelodyTransformer", version=1, input_size=64, output_size=128,
    layers=(Dense(256, "tanh"), GRU(256), Dense(128)),
    task="melody", loss="cross_entropy", target_parameters=400_000,
    purpose="the current note (one-hot over MIDI 36-99) -> logits for the next MIDI pitch; "
            "the GRU holds the phrase so far.",
)

HARMONY_PREDICTOR = ModelSpec(
    name="HarmonyPredictor", version=1, input_size=128, output_size=64,
    layers=(Dense(256, "relu"), GRU(64), Dense(64)),
    task="harmony", loss="cross_entropy", target_parameters=100_000,
    purpose="the sounding MIDI notes of the current beat -> logits for the next chord "
            "(12 roots x 5 qualities, plus dim7, half-dim7, other, rest).",
)

DYNAMICS_ENGINE = ModelSpec(
    name="DynamicsEngine", version=1, input_size=32, output_size=16,
    layers=(Dense(64, "tanh"), LSTM(40), Dense(16)),
    task="dynamics", loss="cross_entropy", target_parameters=20_000,
    purpose="32 score features of a note -> logits over 16 velocity bins, for expressive "
            "dynamics; the LSTM follows the phrase's crescendos.",
)

GROOVE_PREDICTOR = ModelSpec(
    name="GroovePredictor", version=1, input_size=64, output_size=32,
    layers=(Dense(128, "tanh"), GRU(32), Dense(32)),
    task="groove", loss="masked_mse", target_parameters=25_000,
    purpose="a quantized 16th-note drum step (16 voices, context, position) -> velocity and "
            "timing offset per voice, to humanise a pattern.",
)

MODELS = {spec.snake_name: spec for spec in (
    EMOTION_RECOGNIZER, MELODY_TRANSFORMER, HARMONY_PREDICTOR, DYNAMICS_ENGINE, GROOVE_PREDICTOR,
)}

# The whole set must stay near the design's budget: ~1M parameters, ~4 MB of float32.
TOTAL_PARAMETER_BUDGET = 1_000_000


def get(name: str) -> ModelSpec:
    """Look a model up by snake-case or CamelCase name."""
    for spec in MODELS.values():
        if name in (spec.name, spec.snake_name):
            return spec
    raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
