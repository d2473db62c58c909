"""`make export`: each of our models' best checkpoint -> its RTNeural JSON and test vectors, then
every derived file of build/models/ (exporter/folder.py).

Export reads only the checkpoints: the test vectors come from the probe each checkpoint carries, so
the same checkpoints export to the same bytes anywhere, with or without data/ (apart from the
project commit stamped into the JSON and the manifest). Models imported into the folder
(`python -m exporter import`) are kept: they are read back from their files. All models are
converted in memory first; then the whole folder is replaced at once, so a failure at any point, a
full disk included, leaves the earlier export as it was and never a mix of the two.
"""

from __future__ import annotations

from pathlib import Path

from common import cgen
from common.errors import SuiteError
from common.git import project_commit
from exporter import convert, folder, vectors
from models import checkpoint
from models.spec import ModelSpec

SOURCE = "checkpoint"  # the source format of a model exported from our own training


def prepare(spec: ModelSpec, checkpoints: Path, commit: str) -> folder.Model:
    name = cgen.identifier(spec.snake_name)
    path = checkpoint.best(checkpoints, spec)
    model, ckpt = checkpoint.load(path, spec)
    model_json = convert.to_json(model, spec.input_size, spec.name)
    inputs = checkpoint.probe_inputs(ckpt)
    source = {"format": SOURCE, "file": f"{spec.snake_name}/{checkpoint.BEST}", "sha256": checkpoint.sha256(path)}
    training = {
        "task": spec.task,
        "declaration_version": spec.version,
        "declaration_fingerprint": spec.fingerprint(),
        "checkpoint": {**source, "epoch": int(ckpt["epoch"]), "probe": ckpt["probe"]["description"]},
        "layout": {
            "inputs": list(spec.layout.inputs),
            "outputs": list(spec.layout.outputs),
            "output_kind": spec.layout.output_kind,
            "feed": spec.layout.feed,
            "read": spec.layout.read,
        },
    }
    model_json["metadata"] = {
        "schema": folder.SCHEMA,
        "model": spec.name,
        "name": name,
        "rate": "block",
        "parameter_count": spec.parameter_count,
        "input_size": spec.input_size,
        "output_size": spec.output_size,
        **training,
        "checkpoint": {**training["checkpoint"], "profile": ckpt.get("profile")},
        "training_data": ckpt.get("data", {}),
        "metrics": ckpt.get("metrics", {}),
        "torch_version": ckpt.get("torch_version"),
        "project_commit": commit,
    }
    row = {"model": spec.name, "rate": "block", "source": source, **training}
    extra = {"model": spec.name, "data": ckpt["probe"]["source"], "probe": ckpt["probe"]["description"]}
    return folder.prepare(name, model_json, inputs, vectors.torch_outputs(model, inputs), row, extra)


def export_all(specs: list[ModelSpec], checkpoints: Path, out_dir: Path) -> list[folder.Model]:
    """Export `specs` into `out_dir` in place of the models of ours there, keeping the models
    imported there; returns what was exported."""
    commit = project_commit()
    exported = [prepare(spec, checkpoints, commit) for spec in specs]  # all or nothing
    names = {m.name for m in exported}
    there = folder.read(out_dir, older="drop")
    imported = [m for m in there if m.row["source"]["format"] != SOURCE]
    clash = sorted(names & {m.name for m in imported})
    if clash:
        raise SuiteError(
            f"holds an imported model named {clash[0]}, as one of ours; import it again under another "
            "name (python -m exporter import FILE --name NAME) or export into another folder (--out)",
            out_dir,
        )
    folder.write(out_dir, [*exported, *imported], commit)
    return exported
