"""`make validate`: check an export folder from its files alone, per model.

- every file the manifest lists is the one the export or import wrote (sha256);
- parameter counts agree in the JSON and the manifest;
- the reference runtime reproduces the model's reference outputs (PyTorch's, or the imported
  file's own) within the tolerance;
- the generated engine at every precision, compiled, reproduces its expected outputs;
- where RTNeural is found: a check program per model loads the JSON with json_parser::parseJson
  and ModelT::parseJson and the header with loadWeights, and each reproduces the reference likewise;
- for a model exported from a checkpoint of ours, where the checkpoints are given: the checkpoint
  is the one it was exported from, and PyTorch running it gives the stored outputs.
A NaN or infinite error is a failure wherever a tolerance is checked.
"""

from __future__ import annotations

import json
import math
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import atomic, cli, cxx, engines, layout, manifest, rtneural, table
from common.errors import SuiteError
from exporter import folder, runtime, vectors
from exporter.layers import count

CHECK_SOURCE = Path(__file__).with_name("check_model.cpp")
ENGINE_CHECK_SOURCE = Path(__file__).with_name("check_engine.cpp")
CPP_PATHS = ("json_parser", "modelt_parse_json", "header")
VALIDATION = "validation.json"  # the verdict, beside the export
# The generated engine is held to emlearn's standard: no warning at all, none about float precision.
STRICT = ("-Wall", "-Wextra", "-Wdouble-promotion", "-Wfloat-conversion", "-Werror")


@dataclass
class Report:
    row: dict  # the model's manifest row
    checkpoint: Path | None = None
    tolerance: float = layout.PARITY_TOLERANCE
    counts: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)  # path -> max abs error against the reference
    problems: list = field(default_factory=list)
    rtneural: str = "not found"

    @property
    def name(self) -> str:
        return self.row["name"]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_files(doc: dict, out_dir: Path, names: list[str]) -> list[str]:
    """`<file>: <why>` for each named file that is not the one export wrote (missing or edited)."""
    problems = []
    for name in names:
        problem = manifest.changed(out_dir / name, doc["sha256"].get(name))
        if problem:
            problems.append(f"{out_dir / name}: {problem}")
    return problems


def compiled_files(doc: dict) -> list[str]:
    """Every file the engine checks compile: each generated engine's umbrella, table, kernels, every
    model's header and the C++ test vectors (all models', whichever are validated)."""
    names = []
    for engine in engines.PRECISIONS:
        if engine in doc["engines"]:
            names += [*manifest.engine_files(doc, engine), doc["engines"][engine]["vectors"]]
    return list(dict.fromkeys(names))


def check_python(m: dict, doc: dict, out_dir: Path, checkpoints: Path | None) -> Report:
    rep = Report(m, tolerance=min(e["tolerance"] for e in m["engines"].values()))
    headers = [e["header"] for e in m["engines"].values()]
    rep.problems += check_files(
        doc, out_dir, list(dict.fromkeys([m["files"]["json"], m["files"]["vectors"], *headers]))
    )
    if rep.problems:
        return rep
    model_json = runtime.read(out_dir / m["files"]["json"])
    vec = folder.read_vectors(out_dir / m["files"]["vectors"], m["input_size"], m["output_size"])
    inputs, outputs = vec["inputs"], vec["outputs"]
    rep.counts = {"json": sum(count(e) for e in model_json["layers"]), "manifest": m["parameters"]}
    rep.errors["reference"] = max_error(runtime.Model(model_json).run(inputs), outputs)
    if "checkpoint" in m and checkpoints is not None:
        check_checkpoint(rep, m, checkpoints, inputs, outputs)
    if len(set(rep.counts.values())) != 1:
        rep.problems.append(f"parameter counts differ: {rep.counts}")
    return rep


def check_checkpoint(rep: Report, m: dict, checkpoints: Path, inputs, outputs) -> None:
    """A model of ours: the checkpoint it was exported from, run by PyTorch (the exporter's own
    stage input; nothing after the exporter reads checkpoints)."""
    from models import checkpoint
    from models.catalog import get
    from models.network import deployed_parameter_count

    spec = get(m["model"])
    path = checkpoint.best(checkpoints, spec)
    rep.checkpoint = path
    if spec.fingerprint() != m.get("declaration_fingerprint"):
        rep.problems.append(f"exported from another declaration of {spec.name}; export again (make export)")
        return
    if checkpoint.sha256(path) != m["checkpoint"]["sha256"]:
        rep.problems.append(
            f"{path} is not the checkpoint this export was made from "
            f"(epoch {m['checkpoint']['epoch']}, sha256 {m['checkpoint']['sha256'][:12]}); "
            "export again (make export)"
        )
    torch_model, _ = checkpoint.load(path, spec)
    rep.counts["declaration"] = spec.parameter_count
    rep.counts["torch"] = deployed_parameter_count(torch_model)
    rep.errors["checkpoint"] = max_error(vectors.torch_outputs(torch_model, inputs), outputs)


def max_error(got: np.ndarray, expected: np.ndarray) -> float:
    """The largest absolute difference; NaN when either side has a NaN or an infinity."""
    with np.errstate(invalid="ignore"):  # inf - inf is NaN here, on purpose
        diff = np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))
    return float(diff.max()) if np.isfinite(diff).all() else float("nan")


def check_program(name: str, out_dir: Path, build_dir: Path, found: rtneural.RTNeural, backend: str) -> Path:
    """Compile (or reuse) the check program for one model."""
    flags = [
        "-std=c++17",
        "-O2",
        *found.flags(backend),
        f"-I{out_dir.resolve()}",
        f'-DMODEL_HEADER="{name}.h"',
        f"-DMODEL_NS={name}",
    ]
    return cxx.cached(
        f"check-{name}-{backend}",
        CHECK_SOURCE,
        flags,
        [out_dir / f"{name}.h"],
        build_dir,
        found.commit,
        what=f"check program for {name}",
    )


def check_rtneural(rep: Report, out_dir: Path, build_dir: Path, found: rtneural.RTNeural, backend: str) -> None:
    base = out_dir / rep.name
    exe = check_program(rep.name, out_dir, build_dir, found, backend)
    skip = ["skip"] if rep.row.get("skip") else []
    run = subprocess.run(
        [str(exe), str(base.with_suffix(".json")), str(base.with_suffix(".vectors.json")), *skip],
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
    warnings) and run it through its test vectors (the reference outputs for float32, the
    reference runtime's on the same rounded weights otherwise); each model's error joins its
    report. The program holds at most layout.TARGET_VECTOR_STEPS steps of each model's vectors."""
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
        if rep.name in errors:
            rep.errors[engine] = float(errors[rep.name])


def names(text: str) -> list[str] | None:
    """`--models` as given (common.cli.model_names): checked before anything is read."""
    picked = cli.model_names(text)
    return None if picked is None else list(picked)


def select(doc: dict, wanted: list[str] | None, where: Path) -> list[dict]:
    """The manifest rows of the models named (all for None), in the order given."""
    if wanted is None:
        return list(doc["models"])
    have = manifest.models(doc)
    unknown = next((n for n in wanted if n not in have), None)
    if unknown:
        raise SuiteError(f"{unknown} is not in this export; it has {', '.join(have)}", where / manifest.NAME)
    return [next(m for m in doc["models"] if m["name"] == n) for n in wanted]


def validate(
    out_dir: Path,
    models: str = "all",
    checkpoints: Path | None = None,
    build_dir: Path | None = None,
    backend: str = "eigen",
    use_rtneural: bool = True,
) -> tuple[list[Report], str | None]:
    out_dir = Path(out_dir)
    build_dir = Path(build_dir or layout.PROJECT / "build" / "check")
    doc = manifest.load(out_dir)
    rows = select(doc, names(models), out_dir)
    # A validation that does not finish leaves no earlier verdict behind to be read as this one's.
    (out_dir / VALIDATION).unlink(missing_ok=True)
    # Nothing is compiled from an edited file: the first one stops the validation, in one line.
    for name in compiled_files(doc):
        manifest.verify(out_dir, doc, [name])
    reports = [check_python(m, doc, out_dir, checkpoints) for m in rows]
    for engine in engines.PRECISIONS:
        if engine in doc["engines"]:
            check_generated(reports, doc, out_dir, build_dir, engine)
    found = rtneural.find() if use_rtneural else None
    skipped = None
    if found is None:
        skipped = rtneural.MISSING if use_rtneural else "RTNeural checks turned off"
    else:
        runs = [r for r in reports if "rtneural" in r.row["engines"] and not r.problems]
        with ThreadPoolExecutor(max_workers=2) as pool:  # compiling is the slow part
            list(pool.map(lambda r: check_rtneural(r, out_dir, build_dir, found, backend), runs))
    for rep in reports:
        for path, err in rep.errors.items():
            if not layout.within(err, rep.tolerance):  # a NaN error ("nan") fails here too
                rep.problems.append(f"{path}: max abs error {err:.3g} against the reference exceeds {rep.tolerance:g}")
    atomic.write_json(
        out_dir / VALIDATION,
        {
            "tolerance": layout.PARITY_TOLERANCE,
            "rtneural": None
            if found is None
            else {"root": str(found.root), "commit": found.commit, "backend": backend},
            "skipped": skipped,
            "models": [
                {
                    "model": r.row["model"],
                    "name": r.name,
                    "source": r.row["source"]["format"],
                    "checkpoint": None if r.checkpoint is None else str(r.checkpoint),
                    "ok": r.ok,
                    "parameter_counts": r.counts,
                    # null where the error is not a number (the problem says why)
                    "max_abs_error": {k: e if math.isfinite(e) else None for k, e in r.errors.items()},
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
            f"{r.errors[p]:.2e}" if p in r.errors else "-"
            for p in ("checkpoint", "reference", *engines.PRECISIONS, *CPP_PATHS)
        ]
        size = f"{r.row['input_size']}->{r.row['output_size']}"
        rows.append(
            (r.row["model"], r.row["source"]["format"], r.row["rate"], counts, size, *errs, "ok" if r.ok else "FAIL")
        )
    return table.render(
        rows,
        (
            "model",
            "from",
            "rate",
            "params (json=manifest...)",
            "in->out",
            "checkpoint",
            "reference",
            *engines.PRECISIONS,
            *CPP_PATHS,
            "result",
        ),
    )
