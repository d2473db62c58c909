"""The test vectors as a C++ header, so the harness checks parity on a target with no filesystem."""
from __future__ import annotations

import json
import re
from pathlib import Path

from common import atomic
from common.errors import SuiteError
from exporter.header import array_code


def model_names(models_dir: Path) -> list[str]:
    """The models models.h lists in its MODELS_FOR_EACH macro, in order."""
    text = (models_dir / "models.h").read_text()
    m = re.search(r"#define MODELS_FOR_EACH\(X\) (.*)", text)
    if not m:
        raise SuiteError("no MODELS_FOR_EACH in it: export again with this version (make export)",
                         models_dir / "models.h")
    return re.findall(r"X\((\w+)\)", m.group(1))


def render(models_dir: Path) -> str:
    parts = ["// Test vectors of the exported models. Generated at build time; do not edit.\n#pragma once\n",
             "#ifndef MODELS_WEIGHTS_ATTR\n#define MODELS_WEIGHTS_ATTR\n#endif\n"]
    for name in model_names(models_dir):
        path = models_dir / f"{name}.vectors.json"
        try:
            vec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SuiteError(f"unreadable test vectors ({exc}); run make export", path)
        steps = len(vec["inputs"])
        parts.append(f"\nnamespace vectors::{name} {{\nconstexpr int kSteps = {steps};\n")
        parts.append(array_code("kInputs", vec["inputs"]))
        parts.append(array_code("kOutputs", vec["outputs"]))
        parts.append(f"}}  // namespace vectors::{name}\n")
    return "".join(parts)


def write(models_dir: Path, path: Path) -> None:
    """Write only when the text changes, so the build does not redo work for nothing."""
    text = render(Path(models_dir))
    if not path.exists() or path.read_text() != text:
        atomic.write_text(path, text)
