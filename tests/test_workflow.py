"""The GitHub Actions workflow is valid against GitHub's workflow schema (check-jsonschema's vendored
copy, offline), runs the README's commands through .ci/run, and reports the gate from where `make
regress` writes it."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "bench.yml"


def check(path: Path) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True
    )


def test_the_workflow_is_valid():
    done = check(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "old, new",
    [
        ("    runs-on: ubuntu-24.04\n", ""),  # a job must say where it runs
        ("  pull_request:\n", "  pull_requests:\n"),  # no such event
        ("      pull-requests: write", "      pull-requests: admin"),  # no such permission level
        ("        run: .ci/run\n", "        run: .ci/run\n        uses: actions/checkout@v4\n"),  # both at once
    ],
)
def test_a_broken_workflow_is_refused(tmp_path, old, new):
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / "bench.yml"
    broken.write_text(text.replace(old, new, 1))
    done = check(broken)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Schema validation errors were encountered" in done.stdout + done.stderr


def steps() -> list[dict]:
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    return job["steps"]


def test_it_runs_the_readme_commands_through_ci_run():
    block = (ROOT / "README.md").read_text().split("## Set-up and tests", 1)[1].split("```")[1]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    ci_run = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    found = [next(i for i, line in enumerate(ci_run) if line.startswith(c)) for c in commands]
    assert commands == ["make setup", "make lint", "make test", "make regress"] and found == sorted(found)
    assert [s["run"] for s in steps() if s.get("run") == ".ci/run"]


def test_it_reports_the_gate_from_where_make_regress_writes_it():
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    regress_dir = re.search(r"^REGRESS_DIR := (\S+)$", makefile, re.M)[1]
    (gate,) = [line.strip() for line in makefile.splitlines() if "/bench compare " in line]
    gate = shlex.split(gate.replace("$(REGRESS_DIR)", regress_dir).replace("$(VENV)", ".venv"))
    markdown, junit = gate[gate.index("--markdown") + 1], gate[gate.index("--junit") + 1]
    (comment,) = [s for s in steps() if s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@")]
    assert comment["with"]["path"] == markdown
    kept = [s["with"]["path"] for s in steps() if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert any(junit in path.split() for path in kept), "the JUnit file make regress writes is not kept"
