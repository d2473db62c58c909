"""`bench layers` results under the regression gate and in the report, from hand-written layers
documents: the gate flags a rise in a layer's instructions per sample and lets a small one pass,
gates only the generated engines, a baseline update from layers keeps the run results' figures, and
the report draws the layers section and plot."""

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from bench import baseline, cli, compare, layer_results, layers, report, results
from common.errors import SuiteError
from tests.test_report import make_doc, save

GENERATED = ("generated", "generated-f16", "generated-int8")
RTNEURAL = ("eigen", "xsimd", "stl")
# name, type, units, inputs, extra keys; per engine (ns per sample, instructions per sample)
LAYERS = [
    ("dense_8_in1", "dense", 8, 1, {}, [1.5, 1.3, 19.9, 5.2, 2.1, 5.0], [36, 36, 105, 58, 41, 61]),
    ("gru_8_in1", "gru", 8, 1, {}, [48.6, 48.7, 87.1, 78.0, 43.4, 281.7], [165, 181, 328, 416, 176, 1959]),
    ("lstm_16_in16", "lstm", 16, 16, {}, [90.0, 88.0, 120.0, 150.0, 95.0, 700.0], [600, 610, 900, 1200, 640, 5000]),
    (
        "conv1d_8_k3_d1",
        "conv1d",
        8,
        8,
        {"kernel_size": 3, "dilation": 1},
        [20.0, 21.0, 40.0, 30.0, 25.0, 80.0],
        [200, 224, 300, 250, 207, 563],
    ),
    ("tanh_8", "activation", 8, 8, {"activation": "tanh"}, [9.0, 9.1, 9.2, 8.0, 7.5, 60.0], [63, 63, 63, 60, 62, 700]),
]
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def layers_doc(with_rtneural=True, minutes=0, target="x86", counter="valgrind-3.19.0 callgrind", drop=()) -> dict:
    """A layers result as `bench layers` writes it, checked against bench/layers.schema.json."""
    names = [*GENERATED, *(RTNEURAL if with_rtneural else ())]
    rows = []
    for name, kind, units, inputs, extra, times, counts in LAYERS:
        if name in drop:
            continue
        figs = dict(zip([*GENERATED, *RTNEURAL], zip(times, counts, strict=True), strict=True))
        best = min(RTNEURAL, key=lambda e: figs[e][0]) if with_rtneural else None
        engines = {
            e: {
                "ns_per_sample": figs[e][0],
                "ns_per_sample_min": figs[e][0] * 0.9,
                "ns_per_sample_max": figs[e][0] * 1.1,
                "real_time_factor": 1e9 / (figs[e][0] * 48000),
                "instructions_per_sample": float(figs[e][1]),
                "vs_rtneural_best": figs[e][0] / figs[best][0] if best else None,
                "output_finite": True,
            }
            for e in names
        }
        row = {"name": name, "type": kind, "units": units, "inputs": inputs, **extra}
        rows.append({**row, "parameters": 100, "rtneural_best": best, "engines": engines})
    now = NOW + timedelta(minutes=minutes)
    doc = {
        "schema": layers.SCHEMA_ID,
        "id": results.run_id(now, target, "layers"),
        "created": now.isoformat(timespec="microseconds"),
        "target": {"name": target, "env": "native", "board": "this machine", "cpu": "Test CPU", "run": "native"},
        "config": {
            "seconds": 1.0,
            "rounds": 3,
            "block_size": 512,
            "sample_rate": 48000,
            "blocks_per_slice": 31,
            "warmup_blocks": 4,
            "samples_per_engine": 3 * 31 * 512,
            "counted_blocks": 2,
            "seed": 19,
            "layers": [],
        },
        "build": {"compiler": "g++ 12", "flags": ["-O3", "-march=x86-64-v3"], "alignment": 32},
        "engines": names,
        "unavailable": {} if with_rtneural else {e: "RTNeural not found" for e in RTNEURAL},
        "counter": counter,
        "rtneural_commit": "1fb1f075a5d6" if with_rtneural else None,
        "project_commit": "abc",
        "layers": rows,
    }
    layers.validate(doc)
    return doc


def scaled(doc: dict, layer: str, engine: str, factor: float) -> dict:
    doc = copy.deepcopy(doc)
    f = next(row for row in doc["layers"] if row["name"] == layer)["engines"][engine]
    f["instructions_per_sample"] *= factor
    return doc


def save_layers(docs, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        layers.write(copy.deepcopy(doc), folder)
    return folder


def test_only_the_generated_engines_instructions_are_gated():
    figs = layer_results.figures_of(layers_doc())
    assert {f.engine for f in figs} == set(GENERATED) and {f.metric for f in figs} == {"instructions_per_sample"}
    assert len(figs) == len(LAYERS) * len(GENERATED)
    gru = next(f for f in figs if f.engine == "generated" and f.model == "layers/gru_8_in1")
    assert gru.value == 165 and "valgrind-3.19.0 callgrind" in gru.provenance and "2 blocks of 512" in gru.provenance
    no_counts = layers_doc()
    for row in no_counts["layers"]:
        for f in row["engines"].values():
            f["instructions_per_sample"] = None
    assert layer_results.figures_of(no_counts) == []


@pytest.mark.parametrize(
    "layer, engine, factor, status",
    [
        ("gru_8_in1", "generated", 1.10, "REGRESSION"),
        ("gru_8_in1", "generated", 1.01, "ok"),
        ("tanh_8", "generated-f16", 1.04, "REGRESSION"),
        ("lstm_16_in16", "generated-int8", 0.90, "improved"),
        ("dense_8_in1", "generated-int8", 1.029, "ok"),
    ],
)
def test_the_gate_compares_each_layers_instructions_with_the_threshold(layer, engine, factor, status):
    base = layer_results.figures_of(layers_doc())
    current = layer_results.figures_of(scaled(layers_doc(minutes=5), layer, engine, factor))
    rows = compare.compare(base, current, 3.0)
    (row,) = [r for r in rows if (r.engine, r.model) == (engine, f"layers/{layer}")]
    assert row.status == status and row.change == pytest.approx(factor - 1)
    assert {r.status for r in rows if r is not row} == {"ok"}
    assert bool(compare.failed(rows)) == (status == "REGRESSION")


def test_rtneural_is_never_gated_and_a_missing_layer_or_other_counter_is_caught():
    rise = scaled(layers_doc(), "gru_8_in1", "eigen", 2.0)
    assert not compare.failed(
        compare.compare(layer_results.figures_of(layers_doc()), layer_results.figures_of(rise), 3)
    )
    missing = layer_results.figures_of(layers_doc(drop=("tanh_8",)))
    bad = compare.failed(compare.compare(layer_results.figures_of(layers_doc()), missing, 3.0))
    assert {(r.model, r.note) for r in bad} == {("layers/tanh_8", "missing from CURRENT")} and len(bad) == 3
    other = layer_results.figures_of(layers_doc(counter="valgrind-3.22.0 callgrind"))
    rows = compare.compare(layer_results.figures_of(layers_doc()), other, 3.0)
    assert {r.status for r in rows} == {"not comparable"}


def test_runs_and_layers_are_compared_side_by_side_and_apart(tmp_path, capsys):
    runs = save([make_doc()], tmp_path / "runs")
    lay = save_layers([layers_doc()], tmp_path / "layers")
    mixed = save([make_doc()], tmp_path / "mixed")
    save_layers([scaled(layers_doc(), "gru_8_in1", "generated", 1.10)], mixed)
    base = tmp_path / "base"
    base.mkdir()
    assert cli.main(["compare", str(runs), str(runs), str(lay)]) == 0  # baseline as result folders
    assert cli.main(["compare", str(lay), str(mixed)]) == 1
    out = capsys.readouterr().out
    assert "x86/generated/layers/gru_8_in1" in out and "+10.00%" in out and "165.0" in out
    # a run of either kind alone is compared with its own kind only: the other is "not run", not missing
    assert cli.main(["compare", str(runs), str(lay)]) == 0
    assert cli.main(["compare", str(lay), str(runs)]) == 0
    assert "missing from CURRENT" not in capsys.readouterr().out


def test_a_baseline_update_from_layers_keeps_the_run_figures_and_the_reverse(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(baseline, "PATH", tmp_path / "baseline" / "baseline.json")
    runs = save([make_doc()], tmp_path / "runs")
    lay = save_layers([layers_doc()], tmp_path / "layers")
    assert cli.main(["baseline", "update", str(runs), "--reason", "runs"]) == 0
    run_figures, _ = baseline.load(tmp_path / "baseline")
    assert cli.main(["baseline", "update", str(lay), "--reason", "layers"]) == 0
    out = capsys.readouterr().out
    assert "added x86/generated/layers/gru_8_in1/instructions_per_sample = 165" in out and "dropped" not in out
    figs, doc = baseline.load(tmp_path / "baseline")
    assert set(run_figures) <= set(figs) and len(figs) == len(run_figures) + len(LAYERS) * len(GENERATED)
    save([make_doc(text=12_000)], runs)  # runs again: the layers figures stay
    assert cli.main(["baseline", "update", str(runs), "--reason", "bigger tables"]) == 0
    assert "dropped" not in capsys.readouterr().out
    after, doc = baseline.load(tmp_path / "baseline")
    assert {f for f in figs if f.model.startswith("layers/")} <= set(after)
    assert [h["reason"] for h in doc["history"]] == ["runs", "layers", "bigger tables"]
    assert cli.main(["compare", str(tmp_path / "baseline"), str(runs), str(lay)]) == 0
    assert (
        cli.main(
            [
                "compare",
                str(tmp_path / "baseline"),
                str(save_layers([scaled(layers_doc(2), "tanh_8", "generated", 1.1)], tmp_path / "l2")),
            ]
        )
        == 1
    )


def test_a_baseline_update_from_uncounted_layers_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(baseline, "PATH", tmp_path / "baseline" / "baseline.json")
    doc = layers_doc(with_rtneural=False, counter=None)
    for row in doc["layers"]:
        for f in row["engines"].values():
            f["instructions_per_sample"] = None
    lay = save_layers([doc], tmp_path / "layers")
    assert cli.main(["baseline", "update", str(lay), "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {lay}: no gated figures") and err.count("\n") == 1
    assert not baseline.PATH.exists()


def render(tmp_path, layer_docs, name="out"):
    runs = save([make_doc()], tmp_path / "runs")
    folder = save_layers(layer_docs, tmp_path / f"layers-{name}")
    none = tmp_path / "none"
    return report.render([runs], tmp_path / name, none, none, none, folder)


def test_the_report_draws_the_layers_section_and_plot(tmp_path):
    older = layers_doc(minutes=-60)
    older["layers"] = older["layers"][:1]  # an older run of the target: not the one shown
    written, warnings = render(tmp_path, [older, layers_doc()])
    assert not warnings
    png = tmp_path / "out" / "plots" / "layers_x86.png"
    assert png in written and png.read_bytes().startswith(b"\x89PNG")
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "## Layer by layer on x86 (`bench layers`)" in readme
    assert "measured on this CPU" in readme and "counted (valgrind-3.19.0 callgrind)" in readme
    # generated float32 against RTNeural's best (xsimd, on every layer here): geometric means of
    # 1.5/2.1, 48.6/43.4, 90/95, 20/25, 9/7.5 and of 36/41, 165/176, 600/640, 200/207, 63/62
    assert "| generated | 0.94 | 3 of 5 | 0.95 | 4 of 5 |" in readme
    assert (
        "| RTNeural stl |" in readme
        and "| gru_8_in1 | xsimd | 43.4 | 1.12 | 1.12 | 2.01 | 1.80 | 1.00 | 6.49 |" in readme
    )
    assert "RTNeural's own" not in readme  # no layer_bench section in this result
    page = (tmp_path / "out" / "index.html").read_text()
    assert "alt='layers_x86.png'" in page and "<h2>Layer by layer on x86 (`bench layers`)</h2>" in page
    render(tmp_path, [older, layers_doc()], "again")
    assert png.read_bytes() == (tmp_path / "again" / "plots" / "layers_x86.png").read_bytes()


def test_the_report_without_rtneural_sets_the_engines_against_generated(tmp_path):
    render(tmp_path, [layers_doc(with_rtneural=False)])
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "over generated (float32)'s" in readme and "| generated-int8 | 2.30 | 0 of 5 | 1.67 | 0 of 5 |" in readme


def test_the_report_shows_rtneurals_layer_bench_beside_ours(tmp_path):
    from bench import rtneural_bench

    doc = layers_doc()
    section = {
        "source": "bench/layer_bench.cpp",
        "rtneural_commit": "1fb1f075a5d66e85",
        "flags": ["-std=c++17", "-O3"],
        "seconds": 1.0,
        "repeats": 3,
        "layers": [
            {"name": "gru_8_in1", "backend": b, "arguments": ["gru", "1", "8"], "runs": [50.0, 60.0, 55.0]}
            | {"real_time_factor": 55.0, "error": None}
            for b in RTNEURAL
        ],
        "not_covered": ["conv1d_8_k3_d1"],
    }
    section["layers"][2] |= {"runs": [], "real_time_factor": None, "error": "gru 1 8: killed by Segmentation fault"}
    doc["rtneural_layer_bench"] = rtneural_bench.beside(section, doc)
    layers.validate(doc)
    render(tmp_path, [doc])
    readme = (tmp_path / "out" / "README.md").read_text()
    ours = 1e9 / (78.0 * 48000)
    assert f"| gru_8_in1 | eigen | 55.0 | {ours:.0f} | {ours / 55:.2f} |" in readme
    assert "| gru_8_in1 | stl | failed: gru 1 8: killed by Segmentation fault | 74.0 | - |" in readme
    assert "Not in layer_bench: conv1d_8_k3_d1" in readme and "Layer<double>" in readme


def test_a_damaged_layers_file_is_skipped_by_name(tmp_path):
    folder = save_layers([layers_doc()], tmp_path / "layers-out")
    (folder / "broken.json").write_text("{")
    runs = save([make_doc()], tmp_path / "runs")
    none = tmp_path / "none"
    _, warnings = report.render([runs], tmp_path / "out", none, none, none, folder)
    assert len(warnings) == 1 and str(folder / "broken.json") in warnings[0]
    assert (tmp_path / "out" / "plots" / "layers_x86.png").exists()


def test_the_report_plots_a_counted_result_by_its_instructions():
    doc = json.loads(json.dumps(layers_doc()))
    doc["timing"] = "counted"
    for row in doc["layers"]:
        for f in row["engines"].values():
            f.update(ns_per_sample=None, ns_per_sample_min=None, ns_per_sample_max=None, real_time_factor=None)
    assert report.layers_columns(doc) == [("instructions_per_sample", "counted (QEMU -icount)")]
    assert report.layers_columns(layers_doc()) == [
        ("ns_per_sample", "measured on this CPU"),
        ("instructions_per_sample", "counted (callgrind)"),
    ]


def test_compare_with_nothing_to_compare_says_so(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.json").write_text("[]")
    with pytest.raises(SuiteError, match="no result files here"):
        compare.newest([empty])
    assert cli.main(["compare", str(empty), str(empty)]) == 2
    err = capsys.readouterr().err  # the count, and why each was skipped
    assert err.startswith(f"error: {empty}: no result files here (1 skipped: ") and "x.json: not a result" in err
