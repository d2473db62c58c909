"""The stages meet through files, not imports: trainer, exporter and bench each use only `models/`
and `common/` (and themselves); the firmware build and the bindings never load torch."""

import ast
import os
import subprocess
import sys

from tests.conftest import ROOT

PACKAGES = ("common", "models", "trainer", "exporter", "bench", "firmware")
# package -> the project packages it must never import
FORBIDDEN = {
    "common": {"models", "trainer", "exporter", "bench"},
    "models": {"trainer", "exporter", "bench"},
    "trainer": {"exporter", "bench"},
    "exporter": {"trainer", "bench"},
    "bench": {"trainer", "exporter"},
    "firmware": {"bench", "exporter", "trainer", "models"},
}


def imports(source: str) -> set[str]:
    """Top-level package names a module imports, wherever in the module the import stands."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations() -> list[str]:
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in sorted(imports(path.read_text()) & forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_the_checker_sees_imports_anywhere_in_a_module():
    assert imports("import trainer.data\nfrom exporter.header import x\ndef f():\n    from bench import y\n") == {
        "trainer",
        "exporter",
        "bench",
    }
    assert imports("from . import sibling\nfrom .x import y\n") == set()


def test_no_stage_imports_another():
    assert violations() == []


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}
    )


def test_bench_and_its_bindings_load_no_torch():
    done = run_python(
        "import sys, bench.bindings, bench.cli, bench.results, common.manifest, models.catalog\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_shim_does_make_torch_unimportable(no_torch):
    done = run_python("import torch", PYTHONPATH=str(no_torch))
    assert done.returncode != 0 and "unimportable in this test" in done.stderr
