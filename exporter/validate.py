"""`make validate`: check what `make export` wrote against the checkpoints it is given, per model.

- every file the manifest lists is the one export wrote (sha256), and the manifest's row matches
  the declaration (sizes, parameter count, fingerprint);
- the checkpoint given is the one the export was made from, and PyTorch running it on the test
  inputs gives the stored outputs;
- parameter counts equal in the declaration, the torch module, the JSON and the manifest;
- the reference runtime reproduces PyTorch on the vectors within the tolerance;
- where RTNeural is found: a check program per model loads the JSON with json_parser::parseJson
  and ModelT::parseJson and the header with loadWeights, and each reproduces PyTorch likewise.
A NaN or infinite error is a failure wherever a tolerance is checked.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import atomic, cxx, engines, jsonfile, layout, manifest, rtneural, table
from common.errors import SuiteError
from exporter import runtime, vectors
from exporter.layers import count
from models import checkpoint
from models.network import deployed_parameter_count
from models.spec import ModelSpec

CHECK_SOURCE = Path(__file__).with_name("check_model.cpp")
ENGINE_CHECK_SOURCE = Path(__file__).with_name("check_engine.cpp")
CPP_PATHS = ("json_parser", "modelt_parse_json", "header")
# The generated engine is held to emlearn's standard: no warning at all, none about float precision.
STRICT = ("-Wall", "-Wextra", "-Wdouble-promotion", "-Wfloat-conversion", "-Werror")


@dataclass
class Report:
    spec: ModelSpec
    checkpoint: Path
    tolerance: float = layout.PARITY_TOLERANCE
    counts: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)  # path -> max abs error against torch
    problems: list = field(default_factory=list)
    rtneural: str = "not found"

    @property
    def ok(self) -> bool:
        return not self.problems


MAX_VECTOR_BYTES = 256 << 20


def read_json(path: Path) -> dict:
    return jsonfile.read(path, MAX_VECTOR_BYTES, "test vectors")


def read_vectors(path: Path, in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Test vectors: `inputs` [steps][in_size] (finite) and `outputs` [steps][out_size], steps >= 1."""
    doc = read_json(path)
    arrays = []
    for key, width in (("inputs", in_size), ("outputs", out_size)):
        if not isinstance(doc, dict) or key not in doc:
            raise SuiteError(f"no {key!r} in the test vectors", path)
        try:
            a = np.asarray(doc[key], dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise SuiteError(f"{key} is not a table of numbers ({exc})", path) from None
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != width:
            raise SuiteError(f"{key} has shape {list(a.shape)}, expected [steps >= 1, {width}]", path)
        arrays.append(a)
    inputs, outputs = arrays
    if len(inputs) != len(outputs):
        raise SuiteError(f"{len(inputs)} input steps but {len(outputs)} output steps", path)
    if not np.isfinite(inputs).all():
        raise SuiteError("an input is NaN or infinite", path)
    return inputs, outputs


def row(doc: dict, spec: ModelSpec, out_dir: Path) -> dict:
    for m in doc["models"]:
        if m["name"] == spec.snake_name:
            return m
    raise SuiteError(
        f"{spec.snake_name} was not exported here; it has {', '.join(manifest.models(doc))}", out_dir / manifest.NAME
    )


def check_files(doc: dict, out_dir: Path, names: list[str]) -> list[str]:
    problems = []
    for name in names:
        path = out_dir / name
        if not path.is_file():
            problems.append(f"{path}: missing; export again (make export)")
        elif manifest.sha256(path) != doc["sha256"].get(name):
            problems.append(f"{path}: changed since export (sha256 differs from the manifest); export again")
    return problems


def check_python(spec: ModelSpec, doc: dict, out_dir: Path, checkpoints: Path) -> Report:
    m = row(doc, spec, out_dir)
    ckpt_path = checkpoint.best(checkpoints, spec)
    rep = Report(spec, ckpt_path, m["engines"]["rtneural"]["tolerance"])
    rep.problems += check_files(
        doc, out_dir, [m["files"]["json"], m["files"]["vectors"], m["engines"]["rtneural"]["header"]]
    )
    declared = {
        "input_size": spec.input_size,
        "output_size": spec.output_size,
        "parameters": spec.parameter_count,
        "declaration_fingerprint": spec.fingerprint(),
    }
    for key, value in declared.items():
        if m[key] != value:
            rep.problems.append(f"manifest says {key} {m[key]!r}, the declaration {value!r}")
    model_json = runtime.read(out_dir / m["files"]["json"])
    inputs, outputs = read_vectors(out_dir / m["files"]["vectors"], spec.input_size, spec.output_size)
    torch_model, _ = checkpoint.load(ckpt_path, spec)
    if checkpoint.sha256(ckpt_path) != m["checkpoint"]["sha256"]:
        rep.problems.append(
            f"{ckpt_path} is not the checkpoint this export was made from "
            f"(epoch {m['checkpoint']['epoch']}, sha256 {m['checkpoint']['sha256'][:12]}); "
            "export again (make export)"
        )
    rep.counts = {
        "declaration": spec.parameter_count,
        "torch": deployed_parameter_count(torch_model),
        "json": sum(count(e) for e in model_json["layers"]),
        "manifest": m["parameters"],
    }
    if len(set(rep.counts.values())) != 1:
        rep.problems.append(f"parameter counts differ: {rep.counts}")
    rep.errors["checkpoint"] = max_error(vectors.torch_outputs(torch_model, inputs), outputs)
    rep.errors["reference"] = max_error(runtime.Model(model_json).run(inputs), outputs)
    return rep


def max_error(got: np.ndarray, expected: np.ndarray) -> float:
    """The largest absolute difference; NaN when either side has a NaN or an infinity."""
    with np.errstate(invalid="ignore"):  # inf - inf is NaN here, on purpose
        diff = np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))
    return float(diff.max()) if np.isfinite(diff).all() else float("nan")


def check_program(spec: ModelSpec, out_dir: Path, build_dir: Path, found: rtneural.RTNeural, backend: str) -> Path:
    """Compile (or reuse) the check program for one model."""
    flags = [
        "-std=c++17",
        "-O2",
        *found.flags(backend),
        f"-I{out_dir.resolve()}",
        f'-DMODEL_HEADER="{spec.snake_name}.h"',
        f"-DMODEL_NS={spec.snake_name}",
    ]
    return cxx.cached(
        f"check-{spec.snake_name}-{backend}",
        CHECK_SOURCE,
        flags,
        [out_dir / f"{spec.snake_name}.h"],
        build_dir,
        found.commit,
        what=f"check program for {spec.name}",
    )


def check_rtneural(rep: Report, out_dir: Path, build_dir: Path, found: rtneural.RTNeural, backend: str) -> None:
    base = out_dir / rep.spec.snake_name
    exe = check_program(rep.spec, out_dir, build_dir, found, backend)
    run = subprocess.run(
        [str(exe), str(base.with_suffix(".json")), str(base.with_suffix(".vectors.json"))],
        capture_output=True,
        text=True,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if run.returncode != 0 or not lines:
        rep.problems.append(f"RTNeural check program failed ({run.returncode}): {run.stderr.strip()[-500:]}")
        return
    result = json.loads(lines[-1][len("RESULT ") :])
    for path in CPP_PATHS:
        rep.errors[path] = float(result[path])
    rep.rtneural = f"{backend} @ {found.commit[:12]}"


def check_generated(reports: list[Report], doc: dict, out_dir: Path, build_dir: Path, engine: str) -> None:
    """Compile the generated engine at one precision for every exported model (host g++, strict
    warnings) and run it through its test vectors (PyTorch's outputs for float32, the reference
    runtime's on the same rounded weights otherwise); each model's error joins its report."""
    shared = doc["engines"][engine]
    names = [*manifest.engine_files(doc, engine), shared["vectors"]]
    flags = [
        *("-std=c++17", "-O2", *STRICT, *engines.GENERATED_FLAGS, f"-I{out_dir.resolve()}"),
        *(f'-DRTMB_MODEL_TABLE="{shared["table"]}"', f'-DRTMB_MODEL_VECTORS="{shared["vectors"]}"'),
    ]
    exe = cxx.cached(
        f"check-{engine}",
        ENGINE_CHECK_SOURCE,
        flags,
        [out_dir / n for n in names],
        build_dir,
        what=f"the {engine} engine",
    )
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if run.returncode != 0 or not lines:
        for rep in reports:
            rep.problems.append(f"{engine} engine check failed ({run.returncode}): {run.stderr.strip()[-500:]}")
        return
    errors = json.loads(lines[-1][len("RESULT ") :])
    for rep in reports:
        rep.errors[engine] = float(errors[rep.spec.snake_name])


def validate(
    specs: list[ModelSpec],
    out_dir: Path,
    checkpoints: Path,
    build_dir: Path,
    backend: str = "eigen",
    use_rtneural: bool = True,
) -> tuple[list[Report], str | None]:
    out_dir = Path(out_dir)
    doc = manifest.load(out_dir)
    reports = [check_python(spec, doc, out_dir, checkpoints) for spec in specs]
    for engine in engines.PRECISIONS:
        check_generated(reports, doc, out_dir, Path(build_dir), engine)
    found = rtneural.find() if use_rtneural else None
    skipped = None
    if found is None:
        skipped = rtneural.MISSING if use_rtneural else "RTNeural checks turned off"
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:  # compiling is the slow part
            list(pool.map(lambda r: check_rtneural(r, out_dir, Path(build_dir), found, backend), reports))
    for rep in reports:
        for path, err in rep.errors.items():
            if not layout.within(err, rep.tolerance):
                rep.problems.append(f"{path}: max abs error {err:.3g} against torch exceeds {rep.tolerance:g}")
    atomic.write_json(
        out_dir / "validation.json",
        {
            "tolerance": layout.PARITY_TOLERANCE,
            "rtneural": None
            if found is None
            else {"root": str(found.root), "commit": found.commit, "backend": backend},
            "skipped": skipped,
            "models": [
                {
                    "model": r.spec.name,
                    "checkpoint": str(r.checkpoint),
                    "ok": r.ok,
                    "parameter_counts": r.counts,
                    "max_abs_error": r.errors,
                    "problems": r.problems,
                }
                for r in reports
            ],
        },
    )
    return reports, skipped


def render(reports: list[Report]) -> str:
    rows = []
    for r in reports:
        counts = "=".join(f"{c:,}" for c in dict.fromkeys(r.counts.values()))
        errs = [
            f"{r.errors[p]:.2e}" if p in r.errors else "skipped"
            for p in ("checkpoint", "reference", *engines.PRECISIONS, *CPP_PATHS)
        ]
        rows.append(
            (r.spec.name, counts, f"{r.spec.input_size}->{r.spec.output_size}", *errs, "ok" if r.ok else "FAIL")
        )
    return table.render(
        rows,
        (
            "model",
            "params (decl=torch=json=manifest)",
            "in->out",
            "checkpoint",
            "reference",
            *engines.PRECISIONS,
            *CPP_PATHS,
            "result",
        ),
    )
