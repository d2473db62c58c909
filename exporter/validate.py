"""`make validate`: check what `make export` wrote, per model.

- parameter counts equal in the declaration, the torch module, the JSON and kParameterCount;
- sizes equal in the declaration, the JSON, the header and the vectors;
- the reference runtime reproduces PyTorch on the vectors (max abs error <= TOLERANCE);
- where RTNeural is found: a check program per model loads the JSON with json_parser::parseJson
  and ModelT::parseJson and the header with loadWeights, and each reproduces PyTorch likewise.
"""
from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import atomic, cxx, rtneural
from common.errors import SuiteError
from exporter import runtime
from exporter.export import checkpoint_path
from exporter.layers import count
from models.layers import deployed_parameter_count
from models.spec import ModelSpec
from trainer import checkpoint

TOLERANCE = 1e-5
CHECK_SOURCE = Path(__file__).with_name("check_model.cpp")
CPP_PATHS = ("json_parser", "modelt_parse_json", "header")


@dataclass
class Report:
    spec: ModelSpec
    counts: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)   # path -> max abs error against torch
    problems: list = field(default_factory=list)
    rtneural: str = "not found"

    @property
    def ok(self) -> bool:
        return not self.problems


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError("missing: run make export first", path)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"not valid JSON ({exc})", path)


def header_constant(text: str, name: str, path: Path) -> int:
    m = re.search(rf"constexpr (?:int|std::size_t) {name} = (\d+);", text)
    if not m:
        raise SuiteError(f"no {name} in the header", path)
    return int(m.group(1))


def check_python(spec: ModelSpec, out_dir: Path, checkpoints: Path) -> Report:
    base = out_dir / spec.snake_name
    rep = Report(spec)
    model_json = read_json(base.with_suffix(".json"))
    vec = read_json(base.with_suffix(".vectors.json"))
    header_path = base.with_suffix(".h")
    if not header_path.exists():
        raise SuiteError("missing: run make export first", header_path)
    header = header_path.read_text()
    torch_model, _ = checkpoint.load(checkpoint_path(checkpoints, spec), spec)

    rep.counts = {"declaration": spec.parameter_count, "torch": deployed_parameter_count(torch_model),
                  "json": sum(count(e) for e in model_json["layers"]),
                  "header": header_constant(header, "kParameterCount", header_path)}
    if len(set(rep.counts.values())) != 1:
        rep.problems.append(f"parameter counts differ: {rep.counts}")
    inputs, outputs = np.asarray(vec["inputs"]), np.asarray(vec["outputs"])
    rep.sizes = {"declaration": (spec.input_size, spec.output_size),
                 "json": (int(model_json["in_shape"][-1]), int(model_json["layers"][-1]["shape"][-1])),
                 "header": (header_constant(header, "kInputSize", header_path),
                            header_constant(header, "kOutputSize", header_path)),
                 "vectors": (inputs.shape[1], outputs.shape[1])}
    if len(set(rep.sizes.values())) != 1:
        rep.problems.append(f"sizes differ: {rep.sizes}")
    ref = runtime.Model(model_json).run(inputs)
    rep.errors["reference"] = float(np.abs(ref - outputs).max())
    return rep


def check_program(spec: ModelSpec, out_dir: Path, build_dir: Path, found: rtneural.RTNeural,
                  backend: str) -> Path:
    """Compile (or reuse) the check program for one model."""
    flags = ["-std=c++17", "-O2", *found.flags(backend), f"-I{out_dir.resolve()}",
             f'-DMODEL_HEADER="{spec.snake_name}.h"', f"-DMODEL_NS={spec.snake_name}"]
    return cxx.cached(f"check-{spec.snake_name}-{backend}", CHECK_SOURCE, flags,
                      [out_dir / f"{spec.snake_name}.h"], build_dir, found.commit,
                      what=f"check program for {spec.name}")


def check_rtneural(rep: Report, out_dir: Path, build_dir: Path, found: rtneural.RTNeural, backend: str) -> None:
    base = out_dir / rep.spec.snake_name
    exe = check_program(rep.spec, out_dir, build_dir, found, backend)
    run = subprocess.run([str(exe), str(base.with_suffix(".json")), str(base.with_suffix(".vectors.json"))],
                         capture_output=True, text=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if run.returncode != 0 or not lines:
        rep.problems.append(f"RTNeural check program failed ({run.returncode}): {run.stderr.strip()[-500:]}")
        return
    result = json.loads(lines[-1][len("RESULT "):])
    for path in CPP_PATHS:
        rep.errors[path] = float(result[path])
    rep.rtneural = f"{backend} @ {found.commit[:12]}"


def validate(specs: list[ModelSpec], out_dir: Path, checkpoints: Path, build_dir: Path,
             backend: str = "eigen", use_rtneural: bool = True) -> tuple[list[Report], str | None]:
    out_dir = Path(out_dir)
    reports = [check_python(spec, out_dir, checkpoints) for spec in specs]
    found = rtneural.find() if use_rtneural else None
    skipped = None
    if found is None:
        skipped = rtneural.MISSING if use_rtneural else "RTNeural checks turned off"
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:  # compiling is the slow part
            list(pool.map(lambda r: check_rtneural(r, out_dir, Path(build_dir), found, backend), reports))
    for rep in reports:
        for path, err in rep.errors.items():
            if not err <= TOLERANCE:
                rep.problems.append(f"{path}: max abs error {err:.3g} against torch exceeds {TOLERANCE:g}")
    atomic.write_json(out_dir / "validation.json", {
        "tolerance": TOLERANCE, "rtneural": None if found is None else {"root": str(found.root),
                                                                       "commit": found.commit, "backend": backend},
        "skipped": skipped,
        "models": [{"model": r.spec.name, "ok": r.ok, "parameter_counts": r.counts, "sizes": r.sizes,
                    "max_abs_error": r.errors, "problems": r.problems} for r in reports]})
    return reports, skipped


def table(reports: list[Report]) -> str:
    head = ("model", "params (decl=torch=json=h)", "in->out", "reference", *CPP_PATHS, "result")
    rows = [head]
    for r in reports:
        counts = "=".join(f"{c:,}" for c in dict.fromkeys(r.counts.values()))
        errs = [f"{r.errors[p]:.2e}" if p in r.errors else "skipped" for p in ("reference", *CPP_PATHS)]
        rows.append((r.spec.name, counts, "{}->{}".format(*r.sizes["declaration"]), *errs,
                     "ok" if r.ok else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
