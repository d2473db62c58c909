"""One unit per layer kind, each knowing its torch weights, its RTNeural JSON entry, its ModelT
type, how the generated header loads it, and its reference numpy step. The tables below are
the only place the kinds are listed.

A unit's protocol: JSON_TYPES, TORCH_TYPES; weight_shapes(e, in_size), from_torch(module, in_size),
modelt(e, in_size), cpp(e, slot, prefix), Runtime(e, in_size) with reset() and step(x),
engine(e, in_size, precision); rounded(e, precision) where the engine rounds weights; and
rtneural(e) -> str | None: why RTNeural cannot run the JSON entry as written (None when it can; an
LSTM with a non-zero initial_state, which RTNeural's LSTMLayerT cannot start from), so a model
holding such an entry gets no RTNeural engine (see rtneural_problem).
"""

from exporter.layers import activation, batchnorm, conv1d, dense, gru, lstm, prelu
from exporter.layers.base import ExportError, count, out_size, sizes, walk

UNITS = (dense, lstm, gru, conv1d, batchnorm, prelu, activation)
BY_JSON_TYPE = {t: unit for unit in UNITS for t in unit.JSON_TYPES}
BY_TORCH_TYPE = {t: unit for unit in UNITS for t in unit.TORCH_TYPES}


def rtneural_problem(model_json: dict) -> str | None:
    """Why RTNeural (ModelT headers or its JSON loader) cannot run the model as written, naming the
    first layer it cannot run, or None."""
    for i, e in enumerate(model_json["layers"]):
        why = BY_JSON_TYPE[e["type"]].rtneural(e)
        if why:
            return f"layer {i} ({e['type']}): {why}"
    return None


__all__ = [
    "BY_JSON_TYPE",
    "BY_TORCH_TYPE",
    "UNITS",
    "ExportError",
    "count",
    "out_size",
    "rtneural_problem",
    "sizes",
    "walk",
]
