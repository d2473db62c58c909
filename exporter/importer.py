"""`python -m exporter import FILE...`: model files of other projects -> models of an export folder.

Each file is read by its format's reader (exporter/formats/), becomes RTNeural JSON with its test
vectors -- the reference the file carries (AIDA-X's input/output batches, PyTorch's own outputs),
or a test signal fitting its rate with the float64 reference runtime's outputs -- and joins the
models already in the folder, which are kept. Then every file of the folder is derived anew
(exporter/folder.py), written whole or not at all.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from common import cgen, jsonfile, layout
from common.errors import SuiteError
from common.git import project_commit
from exporter import folder, formats, jsonio, runtime, signal
from exporter.formats import Imported
from exporter.layers import sizes

DEFAULT_SAMPLE_RATE = 48000
# Of test signal for an audio model whose file carries no reference: long enough for the plucked
# notes, the silence and the loud passage to show what int8 costs, short enough that the int8
# engine's expected outputs (its arithmetic stepped in numpy, ~0.5 ms a step for a GRU-8) take
# about half a minute.
DEFAULT_SECONDS = 1.0


def sha256(path: Path) -> str:
    return jsonfile.sha256(path, jsonfile.IMPORT_BYTES, "model file", "check the path")


def vectors_for(imp: Imported, rate: str, seconds: float) -> tuple[np.ndarray, np.ndarray, str]:
    """(inputs, reference outputs, where they come from) for an imported model."""
    in_size, _ = sizes(imp.model_json)
    if imp.reference is not None:
        inputs, outputs = imp.reference
        return (
            np.asarray(inputs, np.float32),
            np.asarray(outputs, np.float32),
            f"the reference in the {imp.format} file",
        )
    inputs = signal.for_model(rate, in_size, seconds, imp.sample_rate or DEFAULT_SAMPLE_RATE)
    what = "guitar-like test signal" if rate == "sample" else "smooth random features"
    return inputs, runtime.Model(imp.model_json).run(inputs).astype(np.float32), f"{what}, float64 reference runtime"


def model(imp: Imported, file: dict, name: str, rate: str, seconds: float, commit: str) -> folder.Model:
    """One imported model, its reference checked against the reference runtime first; `file` is
    where it came from ({"file", "sha256"})."""
    in_size, out_size = sizes(imp.model_json)
    inputs, outputs, source = vectors_for(imp, rate, seconds)
    if imp.reference is not None:  # the file's own reference must be what its weights compute
        err = float(np.abs(runtime.Model(imp.model_json).run(inputs) - outputs).max())
        if not layout.within(err, layout.PARITY_TOLERANCE):
            raise SuiteError(
                f"the model's weights give outputs up to {err:.3g} away from the reference the file "
                f"carries (tolerance {layout.PARITY_TOLERANCE:g}): not a file this reader understands",
                file["file"],
            )
    file = {"format": imp.format, **file}
    model_json = {
        **imp.model_json,
        "metadata": {
            "schema": folder.SCHEMA,
            "model": name,
            "name": name,
            "rate": rate,
            "source": file,
            "sample_rate": imp.sample_rate,
            "input_size": in_size,
            "output_size": out_size,
            "vectors": source,
            "file_metadata": imp.metadata,
            "project_commit": commit,
        },
    }
    row = {"model": name, "rate": rate, "source": file}
    if imp.sample_rate:
        row["sample_rate"] = int(imp.sample_rate)
    if imp.model_json.get("skip"):
        row["skip"] = True
    if imp.metadata:
        row["file_metadata"] = imp.metadata
    print(
        f"{name}: {len(inputs):,} test steps ({source}); computing each reduced precision's expected outputs",
        file=sys.stderr,
        flush=True,
    )
    return folder.prepare(name, model_json, inputs, outputs, row, {"model": name, "data": source})


def import_files(
    paths: list[Path],
    out_dir: Path,
    name: str | None = None,
    rate: str | None = None,
    seconds: float = DEFAULT_SECONDS,
    prefixes: list[str] | None = None,
    trust_code: bool = False,
) -> list[folder.Model]:
    """Import every model of `paths` into `out_dir`, keeping the models there; returns the new ones.
    `trust_code`: load TorchScript files, which run code they carry (exporter/formats/pytorch.py)."""
    read = [
        ({"file": Path(p).name, "sha256": sha256(Path(p))}, imp)
        for p in paths
        for imp in formats.read(Path(p), prefixes, rate=rate, trust_code=trust_code)
    ]
    if name and len(read) != 1:
        raise SuiteError(f"--name names one model, and these files hold {len(read)}; import them one at a time")
    return add(read, out_dir, name, rate, seconds)


def import_module(module, input_size: int, name: str, out_dir: Path, rate: str = "block") -> folder.Model:
    """From Python: a torch nn.Module of supported layers (Linear, LSTM, GRU, Conv1d, BatchNorm1d,
    activations) into `out_dir`, its parity against torch's own outputs checked."""
    from exporter.formats import pytorch

    imp = pytorch.from_module(module, input_size, name, rate)
    weights = jsonio.dumps(imp.model_json["layers"]).encode()
    file = {"file": f"{type(module).__name__} (a torch module)", "sha256": hashlib.sha256(weights).hexdigest()}
    (new,) = add([(file, imp)], out_dir, name, rate, DEFAULT_SECONDS)
    return new


def add(read: list[tuple[dict, Imported]], out_dir: Path, name, rate, seconds: float) -> list[folder.Model]:
    """The models read, joined to those of `out_dir` (kept), and the folder written anew."""
    there = folder.read(out_dir)
    taken = {m.name: m.row["source"]["file"] for m in there}
    commit = project_commit()
    new = []
    for file, imp in read:
        n = cgen.identifier(name or imp.name)
        if n in taken:
            raise SuiteError(
                f"a model named {n} is already in {out_dir} (from {taken[n]}); import it under another "
                "name (--name NAME), or into another folder (--out DIR)",
                file["file"],
            )
        taken[n] = file["file"]
        new.append(model(imp, file, n, rate or imp.rate, seconds, commit))
    folder.write(out_dir, [*there, *new], commit)
    return new
