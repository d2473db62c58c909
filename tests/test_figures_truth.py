"""A figure that is wrong is never shown as right (issue 21, root cause 3): a manifest tolerance that
is no bar is refused; a NaN or infinite parity error is a failed parity recorded as null with why,
in strict JSON; the report, the gate and the baseline never take a failing, NaN or missing figure as
ok; validate and the reference runtime stop at a file that changed since export, in one line."""

import json
import math
import shutil
from pathlib import Path

import pytest

from bench import baseline, cli, compare, report, results, trackers
from bench.figures import Figure
from common import atomic, layout, manifest
from common.errors import SuiteError
from exporter import runtime
from exporter.cli import main as exporter_main
from tests.test_report import make_doc, save


def strict(text: str):
    """json.loads that refuses NaN and Infinity, as every JSON reader but Python's does."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def export_copy(exported: Path, tmp_path: Path) -> Path:
    out = tmp_path / "models"
    shutil.copytree(exported, out)
    return out


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


# --- tolerances are finite, positive and no looser than the bar -----------------------------------


@pytest.mark.parametrize(
    "tolerance, shown, why",
    [
        (math.inf, "Infinity", "is not a finite number"),
        (1e30, "1e+30", "is looser than the bar 1e-05"),
        (math.nan, "NaN", "is not a finite number"),
        (0, "0", "is not above 0"),
        (-1e-6, "-1e-06", "is not above 0"),
        (2 * layout.PARITY_TOLERANCE, "2e-05", "is looser than the bar 1e-05"),
    ],
)
def test_a_tolerance_that_is_no_bar_is_refused_naming_file_model_and_value(
    exported, tmp_path, capsys, tolerance, shown, why
):
    models = export_copy(exported, tmp_path)
    path = models / manifest.NAME
    doc = json.loads(path.read_text())
    doc["models"][-1]["engines"]["generated"]["tolerance"] = tolerance
    path.write_text(json.dumps(doc))  # Python's json writes Infinity and NaN, as a hand edit would
    name = doc["models"][-1]["name"]
    with pytest.raises(SuiteError) as err:
        manifest.load(models)
    assert err.value.path == path
    assert str(err.value) == f"{path}: model {name}, engine generated: tolerance {shown} {why}" + (
        " (common/layout.py)" if "looser" in why else ""
    )
    # every tool that reads the manifest stops there, before any work, in one line
    assert exporter_main(["validate", "--out", str(models), "--no-rtneural", "--build-dir", str(tmp_path / "b")]) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: {err.value}"
    assert not (tmp_path / "b").exists()


def test_a_tighter_tolerance_is_kept(exported, tmp_path):
    models = export_copy(exported, tmp_path)
    path = models / manifest.NAME
    doc = json.loads(path.read_text())
    doc["models"][0]["engines"]["generated"]["tolerance"] = 1e-6
    path.write_text(json.dumps(doc))
    assert manifest.load(models)["models"][0]["engines"]["generated"]["tolerance"] == 1e-6


# --- results are strict JSON; a parity error that is not a number fails, recorded as null ---------


@pytest.mark.parametrize(
    "error, shown",
    [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")],
)
def test_a_parity_error_that_is_not_a_number_is_a_failed_parity_in_strict_json(tmp_path, error, shown):
    doc = make_doc(parity=error)  # the harness prints NaN / Infinity for it
    model = doc["models"]["dynamics_engine"]
    assert doc["parity_ok"] is False
    assert model["parity_max_abs_error"] is None
    assert model["parity_problem"] == f"max abs error {shown}: not a finite number (an output was NaN or infinite)"
    path = results.write(doc, tmp_path)
    saved = strict(path.read_text())
    assert saved["parity_ok"] is False and saved["models"]["dynamics_engine"]["parity_max_abs_error"] is None
    assert results.load(path)["parity_ok"] is False


def test_a_finite_error_above_the_tolerance_fails_with_its_figure():
    doc = make_doc(parity=8.1)
    assert doc["parity_ok"] is False and doc["models"]["dynamics_engine"]["parity_max_abs_error"] == 8.1


@pytest.mark.parametrize(
    "error, tolerance, cell",
    [
        # written before these checks: a NaN error beside parity_ok true
        (math.nan, 1e-5, "FAIL: max abs error NaN: not a finite number (an output was NaN or infinite)"),
        # a manifest tolerance of Infinity let an error of 8.1 pass
        (8.1, math.inf, "FAIL: judged against no bar: tolerance Infinity is not a finite number"),
        (3e-5, 1e-5, "FAIL 3.0e-05 (above 1e-05)"),
    ],
)
def test_an_old_result_that_says_ok_beside_a_wrong_figure_is_read_and_shown_as_failed(tmp_path, error, tolerance, cell):
    doc = make_doc()
    assert doc["parity_ok"] is True
    doc["models"]["dynamics_engine"]["parity_max_abs_error"] = error
    doc["parity_tolerance"] = tolerance
    doc["parity_ok"] = True  # what such a file says
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))  # NaN and Infinity as Python wrote them
    loaded = results.load(path)
    assert loaded["parity_ok"] is False
    (row,) = report.summary_rows([loaded])
    assert row[report.SUMMARY_HEAD.index("parity (max error)")] == cell
    assert not any(str(c).startswith("ok") for c in row)


def test_the_report_shows_ok_only_for_a_passing_parity():
    (row,) = report.summary_rows([make_doc()])
    assert row[report.SUMMARY_HEAD.index("parity (max error)")] == "ok 9.5e-07"


# --- the gate fails on a NaN, current or baseline ---------------------------------------------------


def fig(metric: str, value: float, limit: float | None = None) -> Figure:
    return Figure("x86", "generated", "dynamics_engine", metric, value, "g++ -O3", limit)


@pytest.mark.parametrize(
    "base, current, note",
    [
        (fig("instructions", 40_000), fig("instructions", math.nan), "not a number in CURRENT"),
        (fig("instructions", math.nan), fig("instructions", 40_000), "not a number in BASELINE"),
        (fig("text", 10_000), fig("text", math.inf), "not a number in CURRENT"),
        (fig("parity", 1e-6, 1e-5), fig("parity", math.nan, 1e-5), "not a number in CURRENT"),
        (fig("parity", 1e-6, 1e-5), fig("parity", 8.1, math.inf), "tolerance Infinity is not a finite number"),
        (fig("parity", 1e-6, 1e-5), fig("parity", 3e-5, 1e-5), "above the tolerance 1e-05"),
    ],
)
def test_the_gate_fails_a_figure_that_is_not_a_number(base, current, note):
    (row,) = compare.compare([base], [current], 3.0)
    assert (row.status, row.note) == (compare.FAIL, note)
    assert compare.failed([row])


def test_bench_compare_exits_1_on_a_nan_parity(tmp_path, capsys):
    base = save([make_doc()], tmp_path / "base")
    nan = save([make_doc(parity=math.nan)], tmp_path / "nan")
    assert cli.main(["compare", str(base), str(nan)]) == 1
    assert "not a number in CURRENT" in capsys.readouterr().out


# --- a baseline update refuses a failing, NaN or partial run unless told ------------------------------


@pytest.fixture
def committed(tmp_path, monkeypatch) -> Path:
    """A baseline of a good run of two models, where bench/baseline.py looks for it."""
    monkeypatch.setattr(baseline, "PATH", tmp_path / "baseline" / "baseline.json")
    assert cli.main(["baseline", "update", str(save([make_doc()], tmp_path / "good")), "--reason", "first"]) == 0
    return baseline.PATH


@pytest.mark.parametrize(
    "run, flag, what",
    [
        (lambda: make_doc(parity=3e-5), "--accept-failing", "failing: parity of dynamics_engine 3e-05 (limit 1e-05)"),
        (
            lambda: make_doc(parity=math.nan),
            "--accept-failing",
            "failing: parity of dynamics_engine not a number (limit 1e-05)",
        ),
        (
            lambda: make_doc(drop="groove_predictor"),
            "--accept-partial",
            "partial against the baseline: no figures of groove_predictor",
        ),
        (
            lambda: make_doc(instructions={}),
            "--accept-partial",
            "partial against the baseline: no instructions of dynamics_engine, groove_predictor, set",
        ),
    ],
)
def test_a_baseline_update_refuses_a_failing_nan_or_partial_run_unless_told(
    committed, tmp_path, capsys, run, flag, what
):
    before = committed.read_bytes()
    capsys.readouterr()
    runs = save([run()], tmp_path / "runs")
    (file,) = runs.glob("*.json")
    assert cli.main(["baseline", "update", str(runs), "--reason", "new figures"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: {file}: {what}; the baseline is unchanged (give {flag} to take it)"
    assert committed.read_bytes() == before
    other = "--accept-partial" if flag == "--accept-failing" else "--accept-failing"
    assert cli.main(["baseline", "update", str(runs), "--reason", "new figures", other]) == 2  # the other flag: no
    assert committed.read_bytes() == before
    capsys.readouterr()

    assert cli.main(["baseline", "update", str(runs), "--reason", "new figures", flag]) == 0
    out = capsys.readouterr().out
    doc = strict(committed.read_text())
    assert doc["reason"] == f"new figures [accepted: x86/generated {what}]" == doc["history"][-1]["reason"]
    assert f"updated: {doc['reason']}" in out
    figs, _ = baseline.load(committed)
    assert all(math.isfinite(f.value) for f in figs), "a figure that is not a number is never recorded"


def test_a_good_run_updates_the_baseline_without_a_flag(committed, tmp_path, capsys):
    runs = save([make_doc(text=12_000)], tmp_path / "runs")
    assert cli.main(["baseline", "update", str(runs), "--reason", "bigger tables"]) == 0
    assert "replaced x86/generated/set/text: 10000 -> 12000" in capsys.readouterr().out
    assert strict(committed.read_text())["reason"] == "bigger tables"


# --- strict writers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_write_json_never_writes_a_nan_or_an_infinity(tmp_path, value):
    path = tmp_path / "out.json"
    with pytest.raises(ValueError, match=f"{path}: not written"):
        atomic.write_json(path, {"figure": value})
    assert not path.exists() and not list(tmp_path.iterdir())


def test_the_pytest_benchmark_export_is_strict_json_with_finite_noise_bounds():
    doc = make_doc()
    out = strict(trackers.export([doc], "pytest-benchmark"))
    (bench,) = [b for b in out["benchmarks"] if b["name"] == "dynamics_engine[generated]"]
    lat = doc["models"]["dynamics_engine"]["latency_us"]
    stats = bench["stats"]
    assert 0 < stats["stddev"] <= (lat["max"] - lat["min"]) * 1e-6  # never above the range
    assert stats["iqr"] == pytest.approx((lat["p95"] - lat["min"]) * 1e-6)
    assert "upper bounds" in bench["extra_info"]["bounds"]


# --- validate and the reference runtime stop at a file changed since export ---------------------------


@pytest.mark.parametrize(
    "name", ["groove_predictor.generated.h", "groove_predictor.generated-int8.h", "rtmb_kernels.h", "generated_table.h"]
)
def test_validate_refuses_an_edited_engine_file_before_compiling_it(exported, tmp_path, capsys, name):
    models = export_copy(exported, tmp_path)
    path = models / name
    recorded = manifest.sha256(path)
    path.write_text(path.read_text() + "\n// edited\n")
    (models / "validation.json").write_text('{"models": []}')  # an earlier verdict, not this one's
    args = ["validate", "--out", str(models), "--models", "dynamics_engine", "--no-rtneural"]
    assert exporter_main([*args, "--checkpoints", str(tmp_path / "none"), "--build-dir", str(tmp_path / "b")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: {path}: changed since export: sha256 {manifest.sha256(path)} expected {recorded}; "
        "export again (make export)"
    )
    assert not (tmp_path / "b").exists(), "nothing was compiled"
    assert not (models / "validation.json").exists()


def test_the_reference_runtime_refuses_an_edited_json_of_an_export(exported, tmp_path):
    models = export_copy(exported, tmp_path)
    path = models / "dynamics_engine.json"
    recorded = manifest.sha256(path)
    doc = json.loads(path.read_text())
    doc["layers"][0]["weights"][0][0][0] += 1.0
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError) as err:
        runtime.read(path)
    assert err.value.path == path
    assert err.value.problem.startswith(f"changed since export: sha256 {manifest.sha256(path)} expected {recorded}")
    loose = tmp_path / "loose.json"  # the same file outside an export: a model file like any other
    shutil.copy(path, loose)
    assert runtime.read(loose)["layers"][0]["weights"][0][0][0] == doc["layers"][0]["weights"][0][0][0]
