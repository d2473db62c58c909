"""`make export`: each model's best checkpoint -> <name>.json, <name>.h, <name>.vectors.json, and
for the set models.h, model_table.h, model_vectors.h and manifest.json, under build/models/.

Export reads only the checkpoints: the test vectors come from the probe each checkpoint carries, so
the same checkpoints export to the same bytes anywhere, with or without data/ (apart from the
project commit stamped into the JSON and the manifest). All models are converted in memory first;
then the whole folder is replaced at once (written beside it, then renamed into place), so a failure
at any point, a full disk included, leaves the earlier export as it was and never a mix of the two.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import atomic, cgen, layout, manifest
from common.errors import SuiteError
from common.git import project_commit
from exporter import convert, engine, header, jsonio, tables, vectors
from models import checkpoint
from models.spec import ModelSpec

SCHEMA = 2  # of the "metadata" block in each model JSON


@dataclass
class Export:
    spec: ModelSpec
    model_json: dict
    headers: dict  # engine name -> the model's header for it
    vectors: dict
    expected: dict  # engine name -> the outputs its programs must reproduce on the vectors' inputs
    checkpoint: dict  # its row in the manifest


def prepare(spec: ModelSpec, checkpoints: Path, commit: str) -> Export:
    name = cgen.identifier(spec.snake_name)
    path = checkpoint.best(checkpoints, spec)
    model, ckpt = checkpoint.load(path, spec)
    model_json = convert.to_json(model, spec.input_size, spec.name)
    inputs = checkpoint.probe_inputs(ckpt)
    vec = {
        "model": spec.name,
        "data": ckpt["probe"]["source"],
        "probe": ckpt["probe"]["description"],
        "inputs": inputs,
        "outputs": vectors.torch_outputs(model, inputs),
    }
    source = {
        "file": f"{spec.snake_name}/{checkpoint.BEST}",
        "sha256": checkpoint.sha256(path),
        "epoch": int(ckpt["epoch"]),
        "probe": ckpt["probe"]["description"],
    }
    model_json["metadata"] = {
        "schema": SCHEMA,
        "model": spec.name,
        "name": name,
        "declaration_version": spec.version,
        "declaration_fingerprint": spec.fingerprint(),
        "parameter_count": spec.parameter_count,
        "input_size": spec.input_size,
        "output_size": spec.output_size,
        "task": spec.task,
        "checkpoint": {**source, "profile": ckpt.get("profile")},
        "training_data": ckpt.get("data", {}),
        "metrics": ckpt.get("metrics", {}),
        "torch_version": ckpt.get("torch_version"),
        "project_commit": commit,
    }
    comment = (
        f"{spec.name}: {spec.input_size} -> {spec.output_size}, {spec.parameter_count:,} parameters "
        f"({spec.parameter_count * 4 / 1024:.0f} KiB float32), declaration v{spec.version}, "
        f"trained on {ckpt.get('data', {}).get('source', '?')} data."
    )
    headers = {tables.RTNEURAL.name: header.render(name, model_json, comment)}
    expected = {tables.RTNEURAL.name: vec["outputs"], tables.RTNEURAL_JSON.name: vec["outputs"]}
    for eng in tables.GENERATED_ENGINES:
        headers[eng.name] = engine.render(name, model_json, comment, spec.name, eng.namespace, eng.precision)
        if eng.precision == "float32":
            expected[eng.name] = vec["outputs"]
        else:  # reduced precision: the reference of the same rounded (quantised) model
            expected[eng.name] = engine.reference(model_json, eng.precision).run(inputs).astype(np.float32)
    return Export(spec, model_json, headers, vec, expected, source)


def manifest_row(e: Export) -> dict:
    s = e.spec
    return {
        "name": s.snake_name,
        "model": s.name,
        "task": s.task,
        "declaration_version": s.version,
        "declaration_fingerprint": s.fingerprint(),
        "input_size": s.input_size,
        "output_size": s.output_size,
        "parameters": s.parameter_count,
        "weight_bytes": s.parameter_count * 4,
        "layout": {
            "inputs": list(s.layout.inputs),
            "outputs": list(s.layout.outputs),
            "output_kind": s.layout.output_kind,
            "feed": s.layout.feed,
            "read": s.layout.read,
        },
        "checkpoint": e.checkpoint,
        "files": {"json": f"{s.snake_name}.json", "vectors": f"{s.snake_name}.vectors.json"},
        "engines": {
            eng.name: {
                "header": eng.header(s.snake_name),
                "namespace": f"{eng.namespace}::{s.snake_name}",
                "dtype": eng.precision,
                "tolerance": layout.PARITY_TOLERANCE,
                # what the rounding costs: max abs difference from PyTorch's float32 outputs
                "error_vs_float32": float(np.abs(e.expected[eng.name] - e.vectors["outputs"]).max()),
            }
            for eng in tables.ENGINES
        },
    }


def export_all(specs: list[ModelSpec], checkpoints: Path, out_dir: Path) -> list[Export]:
    commit = project_commit()
    exports = [prepare(spec, checkpoints, commit) for spec in specs]  # all or nothing
    files: dict[str, str] = {}
    for e in exports:
        n = e.spec.snake_name
        files[f"{n}.json"] = jsonio.dumps(e.model_json)
        files[f"{n}.vectors.json"] = jsonio.dumps(e.vectors)
        files.update({eng.header(n): e.headers[eng.name] for eng in tables.ENGINES if not eng.runtime_json})
    for eng in tables.ENGINES:
        files[eng.umbrella] = tables.umbrella(specs, eng)
        files[eng.table] = tables.model_table(specs, eng)
    files[engine.KERNELS.name] = engine.KERNELS.read_text()
    for eng in tables.ENGINES:
        if eng.vectors not in files:
            sets = {
                e.spec.snake_name: {"inputs": e.vectors["inputs"], "outputs": e.expected[eng.name]} for e in exports
            }
            files[eng.vectors] = tables.vectors_header(specs, sets)
    doc = {
        "schema": manifest.SCHEMA_ID,
        "project_commit": commit,
        "probe_steps": layout.PROBE_STEPS,
        "vectors_header": "model_vectors.h",
        "engines": {
            eng.name: {"umbrella": eng.umbrella, "table": eng.table, "vectors": eng.vectors, "needs": eng.needs}
            for eng in tables.ENGINES
        },
        "models": [manifest_row(e) for e in exports],
        "sha256": {name: _sha256(text) for name, text in sorted(files.items())},
    }
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    blobs = {name: text.encode() for name, text in files.items()}
    blobs[manifest.NAME] = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    atomic.replace_folder(out_dir, blobs)
    return exports


def check_replaceable(out_dir: Path) -> None:
    """An export replaces its folder whole, so the folder must hold nothing but an earlier export."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise SuiteError("not a folder: give --out a folder for the export", out_dir)
    ours = {manifest.NAME, "validation.json"}
    try:  # an earlier export of any version lists its files; a damaged manifest lists none
        listed = json.loads((out_dir / manifest.NAME).read_text()).get("sha256", {})
        ours |= {name for name in listed if isinstance(name, str)}
    except (OSError, ValueError, AttributeError):
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


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
