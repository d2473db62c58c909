"""Model files of the field -> RTNeural Keras-style JSON, one reader module per format.

Every reader turns one file into `Imported` models: the model as RTNeural JSON (the suite's one
model format after import), the reference the file carries (if any), and what the file says about
itself. Nothing here writes files; `exporter.importer` turns an Imported into an export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RATES = ("sample", "block")  # one step per audio sample, or one per audio block


@dataclass
class Imported:
    """One model read from a file of another project."""

    name: str  # a snake_case suggestion (from the file name), checked and overridable by --name
    format: str  # the reader's FORMAT, e.g. "aida-x"
    model_json: dict  # {"in_shape": [None, None, n], "layers": [...]} (weights as float32 arrays),
    # plus "skip": True where the file's model adds its first inputs to its outputs (GuitarML, AIDA-X)
    rate: str = "sample"  # the format's own rate (RATES)
    reference: tuple[np.ndarray, np.ndarray] | None = None  # inputs [steps][in], outputs [steps][out]
    sample_rate: int | None = None  # the audio rate the model was trained at, where the file says
    metadata: dict = field(default_factory=dict)  # what the file says about itself (kept in the manifest)


# The readers, most specific first: detect() of each says whether a document is its format.
READERS = ("nam", "guitarml", "aida_x", "rtneural_json", "rtneural_torch")
FORMATS = (
    "RTNeural JSON, RTNeural's PyTorch state-dict JSON, AIDA-X, GuitarML (Proteus, NeuralSeed), NAM (LSTM), TorchScript"
)


def read(
    path, prefixes: list[str] | None = None, *, rate: str | None = None, trust_code: bool = False
) -> list[Imported]:
    """The models in a file of any format above, the reader picked by the file's content (never its
    name alone); SuiteError (one line, naming the file) when no reader takes it or the one that does
    finds a problem. `prefixes`: the layer prefixes of an RTNeural state-dict JSON, in order (else
    inferred). `rate`: overrides the format's rate (RATES). `trust_code`: load a TorchScript file,
    which runs code it carries (exporter.formats.pytorch)."""
    import importlib
    from pathlib import Path

    from common import jsonfile
    from common.errors import SuiteError
    from exporter.formats import _shared, pytorch

    path = Path(path)
    data = jsonfile.read_bytes(path, jsonfile.IMPORT_BYTES, "model file", _shared.MISSING)  # once, within bounds
    if pytorch.detect(data):
        if prefixes is not None:
            raise SuiteError("layer prefixes apply to a PyTorch state-dict JSON, not to a torch file", path)
        return pytorch.read(path, rate=rate, trust_code=trust_code, data=data)
    doc = jsonfile.parse(data, "model file", path)
    for module_name in READERS:
        reader = importlib.import_module(f"exporter.formats.{module_name}")
        if reader.detect(doc):
            if module_name == "rtneural_torch":
                return reader.from_doc(doc, path, prefixes, rate)
            if prefixes is not None:
                raise SuiteError(f"layer prefixes apply to a PyTorch state-dict JSON, not to {reader.FORMAT}", path)
            return reader.from_doc(doc, path, rate)
    raise SuiteError(f"not a model file this suite reads; it reads {FORMATS}", path)
