"""GuitarML's PyTorch export: CoreAudioML `networks.py` `SimpleRNN.save_model` (GuitarML/CoreAudioML,
the trainer of GuitarML/Automated-GuitarAmpModelling), the file Proteus and NeuralSeed load:

    {"model_data": {"model": "SimpleRNN", "input_size": 1, "skip": 1, "output_size": 1,
                    "unit_type": "LSTM" | "GRU", "num_layers": 1, "hidden_size": 40, "bias_fl": true},
     "state_dict": {"rec.weight_ih_l0": [[...]] ([G*H][in]), "rec.weight_hh_l0": ([G*H][H]),
                    "rec.bias_ih_l0": [...], "rec.bias_hh_l0": [...],   (and _l1, ... when stacked)
                    "lin.weight": [[...]] ([out][H]), "lin.bias": [...]}}

SimpleRNN.forward is `lin(rec(x)) + x[:, :, 0:skip]`: with skip 1 the first input is added to the
output, as Proteus (`src/RTNeuralLSTM.cpp`: `model.forward(inData + i) + inData[i]`) and NeuralSeed
(`NeuralSeed/neuralseed.cpp`: `model.forward(input_arr) + input`) do. It becomes
model_json["skip"] = True, which adds the first inputs to the outputs (a conditioned model's audio
column). The weights are set as those plugins set them: Proteus's set_weights
transposes rec.weight_ih/hh (RTNeural's setWVals/setUVals take [in][4H]) and sums the two LSTM
biases; NeuralSeed's `scripts/convert_json_to_c_header_gru.py` transposes, swaps the GRU's (r, z)
blocks to (z, r) and keeps the two GRU biases as two rows; both set lin.weight [out][H] with
DenseT::setWeights (our JSON kernel is its transpose). bias_fl false: a Linear without bias.
The file carries no reference and no sample rate; the rate is "sample" unless the caller says.
"""

from __future__ import annotations

from pathlib import Path

from common.errors import SuiteError
from exporter.formats import Imported
from exporter.formats._shared import as_doc, checked, dense_layer, load_json, name_from, rate_for, rnn_layers

FORMAT = "guitarml"
UNITS = {"LSTM": "lstm", "GRU": "gru"}


def detect(doc_or_path) -> bool:
    doc = as_doc(doc_or_path, "GuitarML model")
    return isinstance(doc, dict) and isinstance(doc.get("model_data"), dict) and "state_dict" in doc


def _int(data: dict, key: str, path, low: int, high: int, default=None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SuiteError(f"model_data.{key} {value!r}: expected a whole number from {low} to {high}", path)
    return value


def from_doc(doc, path, rate: str | None = None) -> list[Imported]:
    if not detect(doc):
        raise SuiteError("not a GuitarML model (model_data and state_dict)", path)
    data, state = doc["model_data"], doc["state_dict"]
    if not isinstance(state, dict):
        raise SuiteError("state_dict: expected an object of arrays", path)
    model = data.get("model", "SimpleRNN")
    if model != "SimpleRNN":
        raise SuiteError(f"layer 0 ({model}): model_data.model {model!r} is not supported; supported: SimpleRNN", path)
    unit = data.get("unit_type")
    if unit not in UNITS:
        raise SuiteError(f"layer 0 ({unit}): unit_type {unit!r} is not supported; supported: LSTM, GRU", path)
    in_size = _int(data, "input_size", path, 1, 1 << 20)
    hidden = _int(data, "hidden_size", path, 1, 1 << 20)
    out_size = _int(data, "output_size", path, 1, 1 << 20)
    num_layers = _int(data, "num_layers", path, 1, 64, default=1)
    skip = _int(data, "skip", path, 0, 1 << 20, default=0)
    if skip > 1:
        raise SuiteError(
            f"model_data.skip {skip}: Proteus and NeuralSeed add one input to the output; skip 0 or 1", path
        )
    layers = rnn_layers(UNITS[unit], state, "rec.", in_size, num_layers, path, f"layer 0 ({unit})")
    if int(layers[-1]["shape"][-1]) != hidden:
        raise SuiteError(f"layer 0 ({unit}): hidden size {layers[-1]['shape'][-1]}, model_data says {hidden}", path)
    if "lin.weight" not in state:
        raise SuiteError(f"layer {num_layers} (Linear): no lin.weight", path)
    bias_fl = bool(data.get("bias_fl", True))
    if bias_fl and "lin.bias" not in state:
        raise SuiteError(f"layer {num_layers} (Linear): no lin.bias, though model_data.bias_fl is true", path)
    bias = state["lin.bias"] if bias_fl else None
    layers.append(dense_layer(state["lin.weight"], bias, hidden, path, f"layer {num_layers} (Linear)"))
    if int(layers[-1]["shape"][-1]) != out_size:
        raise SuiteError(
            f"layer {num_layers} (Linear): {layers[-1]['shape'][-1]} outputs, model_data says {out_size}", path
        )
    model_json = {"in_shape": [None, None, in_size], "layers": layers}
    if skip:
        model_json["skip"] = True
    checked(model_json, path)
    metadata = {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool))}
    return [Imported(name_from(path), FORMAT, model_json, rate_for(rate or "sample", in_size, path), metadata=metadata)]


def read(path: str | Path, rate: str | None = None) -> list[Imported]:
    return from_doc(load_json(path, "GuitarML model"), path, rate)
