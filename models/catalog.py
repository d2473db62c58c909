"""The five models the plugin runs on every audio block.

Each is streaming: one input vector per block, one output vector back, state carried in its
recurrent layer. Widths follow the design's seed; recurrent sizes were chosen so each parameter
count lands within 20% of its budget.
"""

from __future__ import annotations

from common.errors import SuiteError
from models import layouts
from models.layers import GRU, LSTM, Dense
from models.spec import ModelSpec

EMOTION_RECOGNIZER = ModelSpec(
    name="EmotionRecognizer",
    version=1,
    layout=layouts.EMOTION,
    layers=(Dense(512, "tanh"), Dense(256, "tanh"), LSTM(160), Dense(64)),
    task="emotion",
    target_parameters=500_000,
    purpose="128 audio features per block -> logits over an 8x8 valence/arousal grid; "
    "the LSTM smooths mood over seconds of blocks.",
)

MELODY_TRANSFORMER = ModelSpec(
    name="MelodyTransformer",
    version=1,
    layout=layouts.MELODY,
    layers=(Dense(256, "tanh"), GRU(256), Dense(128)),
    task="melody",
    target_parameters=400_000,
    purpose="the current note (one-hot over MIDI 36-99) -> logits for the next MIDI pitch; "
    "the GRU holds the phrase so far.",
)

HARMONY_PREDICTOR = ModelSpec(
    name="HarmonyPredictor",
    version=1,
    layout=layouts.HARMONY,
    layers=(Dense(256, "relu"), GRU(64), Dense(64)),
    task="harmony",
    target_parameters=100_000,
    purpose="the sounding MIDI notes of the current beat -> logits for the next chord "
    "(12 roots x 5 qualities, plus dim7, half-dim7, other, rest).",
)

DYNAMICS_ENGINE = ModelSpec(
    name="DynamicsEngine",
    version=1,
    layout=layouts.DYNAMICS,
    layers=(Dense(64, "tanh"), LSTM(40), Dense(16)),
    task="dynamics",
    target_parameters=20_000,
    purpose="32 score features of a note -> logits over 16 velocity bins, for expressive "
    "dynamics; the LSTM follows the phrase's crescendos.",
)

GROOVE_PREDICTOR = ModelSpec(
    name="GroovePredictor",
    version=1,
    layout=layouts.GROOVE,
    layers=(Dense(128, "tanh"), GRU(32), Dense(32)),
    task="groove",
    target_parameters=25_000,
    purpose="a quantized 16th-note drum step (16 voices, context, position) -> velocity and "
    "timing offset per voice, to humanise a pattern.",
)

MODELS = {
    spec.snake_name: spec
    for spec in (
        EMOTION_RECOGNIZER,
        MELODY_TRANSFORMER,
        HARMONY_PREDICTOR,
        DYNAMICS_ENGINE,
        GROOVE_PREDICTOR,
    )
}

# The whole set must stay near the design's budget: ~1M parameters, ~4 MB of float32.
TOTAL_PARAMETER_BUDGET = 1_000_000


def get(name: str) -> ModelSpec:
    """Look a model up by snake-case or CamelCase name; an unknown name is the user's error."""
    for spec in MODELS.values():
        if name in (spec.name, spec.snake_name):
            return spec
    raise SuiteError(f"unknown model {name!r}; known: {', '.join(MODELS)}")


def select(text: str) -> list[ModelSpec]:
    """`--models` as every tool takes it: "all", or comma-separated names, each once, in the order given."""
    if text.strip() == "all":
        return list(MODELS.values())
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise SuiteError(f"--models {text!r}: an empty name; give comma-separated names or all")
    specs = [get(n) for n in names]
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise SuiteError(f"--models {text!r}: {spec.snake_name} is named twice")
        seen.add(spec.name)
    return specs
