"""The regression gate can fail, and fails for the right reason; the baseline changes only with a
reason; the report renders from saved results, deterministically, skipping a bad file by name."""

import copy
import json
from pathlib import Path

import pytest

from bench import baseline, cli, compare, figures, harness, report, results, targets
from common.errors import SuiteError
from tests.test_bench import OUTPUT, fake_build

SECOND = OUTPUT.replace('"model":"dynamics_engine"', '"model":"groove_predictor"')


def make_doc(
    target="x86", engine="generated", instructions=None, text=10_000, allocations=0, parity=9.5e-07, drop=None
) -> dict:
    lines = OUTPUT.splitlines()
    extra = [line for line in SECOND.splitlines() if '"groove_predictor"' in line]
    text_out = "\n".join(lines[:-1] + extra + lines[-1:]) + "\n"
    text_out = text_out.replace('"forward_allocations":0', f'"forward_allocations":{allocations}')
    text_out = text_out.replace("9.5e-07", json.dumps(parity), 1)
    out = harness.parse(text_out)
    if drop:
        del out["models"][drop]
    build = fake_build()
    build.sizes = {"text": text, "data": 200, "bss": 300, "sections": {".text": text}}
    if instructions is None and targets.get(target).timing != "counted":
        instructions = {"set": 100_000, "dynamics_engine": 40_000, "groove_predictor": 60_000}
    return results.document(targets.get(target), engine, build, out, instructions, None, "abc", counter="tool-1")


def gate(base_docs, current_docs, threshold=3.0):
    base = [f for d in base_docs for f in figures.of(d)]
    cur = [f for d in current_docs for f in figures.of(d)]
    rows = compare.compare(base, cur, threshold)
    return rows, compare.failed(rows)


def test_an_identical_run_passes():
    rows, bad = gate([make_doc()], [make_doc()])
    assert not bad and {r.status for r in rows} == {"ok"}


def test_ten_percent_more_instructions_on_one_model_fails_and_names_it():
    slower = make_doc(instructions={"set": 104_000, "dynamics_engine": 44_000, "groove_predictor": 60_000})
    rows, bad = gate([make_doc()], [slower])
    assert [(r.model, r.metric, r.status) for r in bad] == [
        ("dynamics_engine", "instructions", "REGRESSION"),
        ("set", "instructions", "REGRESSION"),
    ]
    assert rows[0].change == pytest.approx(0.10)  # the worst first
    assert "x86/generated/dynamics_engine" in compare.render(rows, [], 3.0)


def test_a_change_below_the_threshold_passes():
    slightly = make_doc(instructions={"set": 102_000, "dynamics_engine": 40_800, "groove_predictor": 61_000})
    _, bad = gate([make_doc()], [slightly])
    assert not bad


def test_a_larger_binary_fails():
    _, bad = gate([make_doc()], [make_doc(text=11_000)])
    assert [(r.model, r.metric) for r in bad] == [("set", "text")]


def test_parity_above_tolerance_fails():
    _, bad = gate([make_doc()], [make_doc(parity=3e-5)])
    assert [(r.model, r.metric, r.note) for r in bad] == [("dynamics_engine", "parity", "above the tolerance 1e-05")]


def test_a_nan_parity_fails():
    _, bad = gate([make_doc()], [make_doc(parity=float("nan"))])
    assert [r.metric for r in bad] == ["parity"]


def test_a_model_missing_from_current_fails_with_its_name():
    _, bad = gate([make_doc()], [make_doc(drop="groove_predictor")])
    assert {(r.model, r.status, r.note) for r in bad} == {("groove_predictor", "FAIL", "missing from CURRENT")}


def test_a_heap_allocation_in_forward_fails():
    _, bad = gate([make_doc()], [make_doc(allocations=1)])
    assert [(r.metric, r.note) for r in bad] == [("forward_allocations", "forward() allocates")]


def test_other_tools_are_not_comparable_and_an_engine_not_run_is_not_compared():
    other = make_doc(instructions={"set": 200_000, "dynamics_engine": 80_000, "groove_predictor": 120_000})
    other["counter"] = "tool-2"
    rows, bad = gate([make_doc(), make_doc(engine="stl")], [other])
    assert not bad and {r.engine for r in rows} == {"generated"}
    assert {r.status for r in rows if r.metric == "instructions"} == {"not comparable"}


def test_cortex_m7_instructions_come_from_the_counted_clock():
    doc = make_doc(target="cortex-m7")
    counted = {f.model: f.value for f in figures.of(doc) if f.metric == "instructions"}
    assert counted == {"dynamics_engine": 2800, "groove_predictor": 2800, "set": 2900}  # p50 us x 1000


def save(docs, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        results.write(copy.deepcopy(doc), folder)
    return folder


def test_bench_compare_exit_codes_and_markdown(tmp_path, capsys):
    base = save([make_doc()], tmp_path / "base")
    same = save([make_doc()], tmp_path / "same")
    worse = save([make_doc(text=20_000)], tmp_path / "worse")
    assert cli.main(["compare", str(base), str(same)]) == 0
    assert cli.main(["compare", str(base), str(worse), "--markdown", str(tmp_path / "gate.md")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "x86/generated/set" in out and "Wall-clock, for information" in out
    md = (tmp_path / "gate.md").read_text()
    assert md.startswith("**Regression gate: FAILED** (threshold 3%)") and "| x86 | generated | set | text |" in md
    assert cli.main(["compare", str(base), str(worse), "--threshold", "150"]) == 0


def test_baseline_changes_only_with_a_reason_and_says_what_it_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(baseline, "PATH", tmp_path / "baseline" / "baseline.json")
    runs = save([make_doc()], tmp_path / "runs")
    with pytest.raises(SystemExit):
        cli.main(["baseline", "update", str(runs)])  # --reason is required
    assert cli.main(["baseline", "update", str(runs), "--reason", "first"]) == 0
    assert "added x86/generated/dynamics_engine/instructions = 40000" in capsys.readouterr().out
    save([make_doc(text=12_000)], runs)
    assert cli.main(["baseline", "update", str(runs), "--reason", "bigger tables"]) == 0
    assert "replaced x86/generated/set/text: 10000 -> 12000" in capsys.readouterr().out
    figs, doc = baseline.load(tmp_path / "baseline")
    assert doc["reason"] == "bigger tables" and [h["reason"] for h in doc["history"]] == ["first", "bigger tables"]
    assert cli.main(["compare", str(tmp_path / "baseline"), str(runs)]) == 0
    with pytest.raises(SuiteError, match="with a reason"):
        baseline.update(figs, "  ", [])


def test_report_renders_deterministically_and_skips_a_bad_file(tmp_path, capsys):
    runs = save([make_doc(), make_doc(engine="stl"), make_doc(target="cortex-m7")], tmp_path / "runs")
    (runs / "broken.json").write_text("{")
    (runs / "foreign.json").write_text(json.dumps({"schema": "someone-else/1"}))
    assert (
        cli.main(
            [
                "report",
                str(runs),
                "--out",
                str(tmp_path / "a"),
                "--checkpoints",
                str(tmp_path / "none"),
                "--models-dir",
                str(tmp_path / "none"),
                "--peers",
                str(tmp_path / "none"),
                "--layers",  # not the checkout's reports/layers: these runs alone
                str(tmp_path / "none"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"{runs / 'broken.json'}" in err and f"{runs / 'foreign.json'}" in err
    report.render([runs], tmp_path / "b", None, None)
    names = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert names == [
        "README.md",
        "index.html",
        "plots/boards.png",
        "plots/instructions_history.png",
        "plots/latency_cortex-m7.png",
        "plots/latency_x86.png",
        "plots/memory.png",
    ]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    readme = (tmp_path / "a" / "README.md").read_text()
    assert "| cortex-m7 | generated | counted |" in readme and "not a board's time" in readme
    page = (tmp_path / "a" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "http" not in page.replace("https://", "")
    assert "Real boards" in readme and "daisy-seed" in readme  # the Cortex-M7 run, seen from its boards


def test_the_roofline_bound_is_the_longer_of_bytes_and_multiply_adds():
    from bench import roofline

    cal = {
        "peak_macs_per_s": 1e9,
        "bandwidth": {
            4000: {"warm_bytes_per_s": 1e9, "cold_bytes_per_s": 1e8},
            1000: {"warm_bytes_per_s": 1e10, "cold_bytes_per_s": 1e8},
        },
    }
    assert roofline.bound_us(cal, 1000, "float32") == pytest.approx(4.0)  # 4000 bytes at 1 GB/s
    assert roofline.bound_us(cal, 1000, "float32", cold=True) == pytest.approx(40.0)
    assert roofline.bound_us(cal, 1000, "int8") == pytest.approx(1.0)  # 1000 multiply-adds at 1 G/s


def test_compare_engines_runs_compiled_and_python_engines_with_parity(exported, trained, tmp_path, capsys):
    """One run: the generated engines through the harness, PyTorch through pyperf, a roofline."""
    from bench import pio_core

    pio_core.install()
    code = cli.main(
        [
            "compare-engines",
            "--target",
            "x86",
            "--python-engines",
            "torch",
            "--blocks",
            "50",
            "--cold",
            "3",
            "--quick",
            "--models-dir",
            str(exported),
            "--checkpoints",
            str(trained / "checkpoints"),
            "--out",
            str(tmp_path / "peers"),
            "--runs",
            str(tmp_path / "runs"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    (path,) = (tmp_path / "peers").iterdir()
    doc = json.loads(path.read_text())
    engines = {e["engine"]: e for e in doc["engines"]}
    assert {"generated", "generated-f16", "generated-int8", "torch"} <= set(engines)
    assert all(e["parity_ok"] and e["bound_us"] > 0 and e["set"]["p50"] > 0 for e in engines.values())
    assert engines["torch"]["kind"] == "python (pyperf)" and engines["generated"]["instructions_per_block"] > 0
    assert doc["calibration"]["peak_macs_per_s"] > 0 and "roofline from this run" in out
    with pytest.raises(SystemExit):
        cli.main(["compare-engines", "--python-engines", "tensorflow"])
