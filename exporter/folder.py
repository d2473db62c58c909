"""An export folder (build/models/): models in, every file of the folder out.

A model is two files: `<name>.json`, its RTNeural JSON with a `metadata` block, and
`<name>.vectors.json`, its test inputs, the reference outputs (PyTorch's, or the ones the imported
file carries) and the outputs each reduced-precision engine must give. Everything else in the
folder -- each engine's header per model, the umbrellas, the model tables, the C++ test vectors and
`manifest.json` -- is derived from those two files and the model's manifest row, so `make export`
and `python -m exporter import` both end here, and an import into a folder that holds an export
(or an export into one that holds imports) keeps the models already there: they are read back
from their files, not looked up anywhere.

The folder is replaced whole or not at all (written beside it, then renamed into place).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from common import atomic, jsonfile, layout, manifest
from common.errors import SuiteError
from exporter import engine, header, jsonio, quality, runtime, tables, vectors
from exporter.layers import ExportError, count, rtneural_problem, sizes, walk

# The metadata block of each model JSON: 3 adds `rate` and `skip`, and makes training fields optional.
SCHEMA = 3
ROUNDED = [eng for eng in tables.GENERATED_ENGINES if eng.precision != "float32"]


@dataclass
class Model:
    """One model of an export folder: its two files' contents and its own manifest fields."""

    name: str  # snake case: file names and the C++ namespace
    model_json: dict  # RTNeural JSON, with "metadata"
    vectors: dict  # "inputs", "outputs" (the reference), "engines" (each rounded engine's outputs)
    row: dict  # the manifest row's fields that are not derived (model, rate, source, training)

    @property
    def rate(self) -> str:
        return self.row["rate"]

    @cached_property
    def unavailable(self) -> dict[str, str]:
        return unavailable(self.model_json)

    @property
    def engines(self) -> list[tables.Engine]:
        return [eng for eng in tables.ENGINES if eng.name not in self.unavailable]


def unavailable(model_json: dict) -> dict[str, str]:
    """{engine: why it cannot run this model} for the engines that cannot: RTNeural's where a layer
    is one RTNeural cannot run as written (e.g. a learned initial state), a precision that cannot
    hold the weights (float16 beyond 65504)."""
    out = {}
    problem = rtneural_problem(model_json)
    if problem:
        out.update({tables.RTNEURAL.name: problem, tables.RTNEURAL_JSON.name: problem})
    for eng in tables.GENERATED_ENGINES:
        try:
            engine.steps(model_json, "model", eng.precision)
        except ExportError as exc:
            out[eng.name] = f"layer {exc.layer}: {exc.reason}"
    return out


def prepare(name: str, model_json: dict, inputs, outputs, row: dict, extra_vectors: dict | None = None) -> Model:
    """A model from its JSON and reference: the expected outputs of each reduced-precision engine
    are computed here (the reference runtime on the rounded weights; for int8 the engine's own
    arithmetic), once, and kept in the vectors file."""
    inputs = np.asarray(inputs, np.float32)
    outputs = np.asarray(outputs, np.float32)
    if problem := vectors.too_few(len(inputs)):  # what no reader takes: a longer --seconds or reference
        raise SuiteError(f"model {name}: {problem}")
    model = Model(name, model_json, {**(extra_vectors or {}), "inputs": inputs, "outputs": outputs}, row)
    if tables.GENERATED.name in model.unavailable:
        raise SuiteError(f"the generated engine cannot run it: {model.unavailable[tables.GENERATED.name]}")
    model.vectors["engines"] = {
        eng.name: engine.reference(model_json, eng.precision).run(inputs).astype(np.float32)
        for eng in model.engines
        if eng in ROUNDED
    }
    return model


def read(out_dir: Path, older: str = "refuse") -> list[Model]:
    """The models an export folder holds, read back from their files (checked), in manifest order.
    An empty or new folder holds none; so does, with older="drop", an export of an earlier version
    of the suite (it held only checkpoint exports, which `make export` writes anew)."""
    out_dir = Path(out_dir)
    path = out_dir / manifest.NAME
    if not path.exists():
        return []
    found = manifest.schema_of(path)
    if found != manifest.SCHEMA_ID:
        if older == "drop":
            return []
        raise SuiteError(f"an export of another version ({found}); export again first (make export)", path)
    doc = manifest.load(out_dir)
    models = []
    for m in doc["models"]:
        files = [m["files"]["json"], m["files"]["vectors"]]
        manifest.verify(out_dir, doc, files)
        model_json = runtime.read(out_dir / files[0])
        vec = read_vectors(out_dir / files[1], *sizes(model_json))
        fields = {k: v for k, v in m.items() if k not in DERIVED}
        models.append(Model(m["name"], model_json, vec, fields))
    return models


def read_vectors(path: Path, in_size: int, out_size: int) -> dict:
    """A vectors file: `inputs` [steps][in_size] (finite), `outputs` and each engine's outputs
    [steps][out_size]; SuiteError names the file and what is wrong."""
    doc = jsonfile.read(path, jsonfile.VECTORS_BYTES, "test vectors")
    if not isinstance(doc, dict):
        raise SuiteError("not a test vectors object", path)
    out = dict(doc)
    tables_ = [("inputs", in_size, doc.get("inputs")), ("outputs", out_size, doc.get("outputs"))]
    engines = doc.get("engines", {})
    if not isinstance(engines, dict):
        raise SuiteError("engines is not an object", path)
    tables_ += [(f"engines.{k}", out_size, v) for k, v in engines.items()]
    arrays = {}
    for key, width, value in tables_:
        if value is None:
            raise SuiteError(f"no {key!r} in the test vectors", path)
        vectors.check_numbers(key, value, path)
        try:
            a = np.asarray(value, dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise SuiteError(f"{key} is not a table of numbers ({exc})", path) from None
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != width:
            raise SuiteError(f"{key} has shape {list(a.shape)}, expected [steps >= 1, {width}]", path)
        if len(a) != len(arrays.get("inputs", a)):
            what = "output" if key == "outputs" else key
            raise SuiteError(f"{len(arrays['inputs'])} input steps but {len(a)} {what} steps", path)
        arrays[key] = a
    if problem := vectors.too_few(len(arrays["inputs"])):
        raise SuiteError(problem, path)
    if not np.isfinite(arrays["inputs"]).all():
        raise SuiteError("an input is NaN or infinite", path)
    out["inputs"], out["outputs"] = arrays["inputs"], arrays["outputs"]
    out["engines"] = {k: arrays[f"engines.{k}"] for k in engines}
    return out


# Row fields derived from the files on every write (the rest of a row is the model's own).
DERIVED = (
    "name",
    "input_size",
    "output_size",
    "parameters",
    "weight_bytes",
    "layers",
    "files",
    "engines",
    "unavailable",
)


def describe(model_json: dict) -> str:
    """The layers in one line, e.g. "lstm 1->40, dense 40->1"."""
    parts = []
    for e, size in walk(model_json):
        if e["type"] == "activation":
            parts.append(e["activation"])
            continue
        kind = e["type"] + (f" k{e['kernel_size'][-1]} d{e['dilation'][-1]}" if e["type"] == "conv1d" else "")
        parts.append(f"{kind} {size}->{int(e['shape'][-1])}" + (f" {e['activation']}" if e.get("activation") else ""))
    return ", ".join(parts) + (", + input (skip)" if model_json.get("skip") else "")


def row(m: Model) -> dict:
    in_size, out_size = sizes(m.model_json)
    params = sum(count(e) for e in m.model_json["layers"])
    ref = m.vectors["outputs"]
    engines = {}
    for eng in m.engines:
        got = m.vectors["engines"].get(eng.name, ref)
        entry = {
            "header": eng.header(m.name),
            "namespace": f"{eng.namespace}::{m.name}",
            "dtype": eng.precision,
            "tolerance": layout.PARITY_TOLERANCE,
            # what the rounding costs: against the reference outputs (PyTorch's, or the file's)
            "error_vs_float32": _finite(np.abs(got - ref).max()),
        }
        if eng.precision != "float32":
            entry["snr_db"] = _finite(quality.snr_db(ref, got))
            entry["error_to_signal"] = _finite(quality.error_to_signal(ref, got))
        engines[eng.name] = entry
    return {
        **m.row,
        **({"unavailable": m.unavailable} if m.unavailable else {}),
        "name": m.name,
        "input_size": in_size,
        "output_size": out_size,
        "parameters": params,
        "weight_bytes": params * 4,
        "layers": describe(m.model_json),
        "files": {"json": f"{m.name}.json", "vectors": f"{m.name}.vectors.json"},
        "engines": engines,
    }


def _finite(x: float) -> float | None:
    """A figure for JSON: None where it is not a finite number (a silent reference has no SNR)."""
    return float(x) if np.isfinite(x) else None


def files(models: list[Model], commit: str) -> dict[str, bytes]:
    """Every file of the folder, from its models."""
    rows = [row(m) for m in models]
    out: dict[str, str] = {}
    for m, r in zip(models, rows, strict=True):
        n = m.name
        out[f"{n}.json"] = jsonio.dumps(m.model_json)
        out[f"{n}.vectors.json"] = jsonio.dumps(m.vectors)
        comment = f"{r['model']}: {r['layers']}; {r['parameters']:,} parameters, one step per {r['rate']}"
        for eng in m.engines:
            if eng.runtime_json:
                continue
            if eng is tables.RTNEURAL:
                out[eng.header(n)] = header.render(n, m.model_json, comment)
            else:
                out[eng.header(n)] = engine.render(n, m.model_json, comment, n, eng.namespace, eng.precision)
    used = {}
    for eng in tables.ENGINES:
        mine = [(m, r) for m, r in zip(models, rows, strict=True) if eng.name in r["engines"]]
        if not mine:
            continue  # no model of the folder runs on it
        # The float32 engines share one vectors header (the reference outputs), unless an engine runs
        # only some of the models: its table's order is then its own, and so is its header.
        vectors = eng.vectors if len(mine) == len(models) else f"model_vectors-{eng.name}.h"
        used[eng.name] = {"umbrella": eng.umbrella, "table": eng.table, "vectors": vectors, "needs": eng.needs}
        out[eng.umbrella] = tables.umbrella([r for _, r in mine], eng)
        out[eng.table] = tables.model_table([r for _, r in mine], eng)
        if vectors not in out:
            sets = {
                m.name: {
                    "inputs": m.vectors["inputs"],
                    "outputs": m.vectors["engines"].get(eng.name, m.vectors["outputs"]),
                }
                for m, _ in mine
            }
            out[vectors] = tables.vectors_header([r for _, r in mine], sets)
    out[engine.KERNELS.name] = engine.KERNELS.read_text()
    doc = {
        "schema": manifest.SCHEMA_ID,
        "project_commit": commit,
        "vectors_header": "model_vectors.h",
        "engines": used,
        "models": rows,
        "sha256": {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sorted(out.items())},
    }
    blobs = {name: text.encode() for name, text in out.items()}
    blobs[manifest.NAME] = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    return blobs


def write(out_dir: Path, models: list[Model], commit: str) -> None:
    """Replace the folder with these models' files, whole or not at all."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    atomic.replace_folder(out_dir, files(models, commit))


def check_replaceable(out_dir: Path) -> None:
    """A write replaces the folder whole, so the folder must hold nothing but an earlier export."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise SuiteError("not a folder: give --out a folder for the export", out_dir)
    ours = {manifest.NAME, "validation.json"}
    try:  # an earlier export of any version lists its files; a damaged manifest lists none
        listed = jsonfile.read(out_dir / manifest.NAME, jsonfile.MANIFEST_BYTES, "manifest").get("sha256", {})
        ours |= {name for name in listed if isinstance(name, str)}
    except (SuiteError, AttributeError):
        pass
    strangers = sorted(
        p.name for p in out_dir.iterdir() if p.name not in ours and not (p.is_file() and p.suffix in (".json", ".h"))
    )
    if strangers:
        raise SuiteError(
            f"holds files that are not an export ({', '.join(strangers[:5])}); an export replaces "
            "its folder whole, so give --out an empty or new folder",
            out_dir,
        )
