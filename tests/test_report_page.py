"""The report's page: one model rendered to markdown and HTML alike; the answers first (the fastest
engine per target that passes parity, the best engine per board, the gate's verdict against the
baseline); deadline verdicts only from a time measured on the CPU that runs the program; plots that
name their target and what their figures are; instructions as a percentage of the baseline;
memory per precision."""

import base64
import re

import pytest

from bench import baseline, figures, report
from tests.test_report import make_doc, save


@pytest.mark.parametrize(
    ("block", "markdown", "html"),
    [
        (report.Text("a <b>"), "a <b>", "<p>a &lt;b&gt;</p>"),
        (report.Text("why", note=True), "why", "<p class=note>why</p>"),
        (
            report.Table(("name", "bytes"), [("a|b", "1,234"), ("c", "+3.10%")]),
            "| name | bytes |\n|---|---|\n| a\\|b | 1,234 |\n| c | +3.10% |",
            "<td>a|b</td><td class=n>1,234</td></tr><tr><td>c</td><td class=n>+3.10%</td>",
        ),
        (report.Bullets(["one", "two"]), "- one\n- two", "<li>one</li><li>two</li>"),
        (
            report.Image("p.png", "A plot", b"\x89PNG"),
            "![A plot](plots/p.png)",
            "<img alt='p.png' title='A plot' src='data:image/png;base64,"
            + base64.b64encode(b"\x89PNG").decode()
            + "'>",
        ),
    ],
)
def test_each_block_renders_to_markdown_and_html(block, markdown, html):
    page = [report.Section("Title", [block], level=1), report.Section("Part", [])]
    md, page_html = report.to_markdown(page), report.to_html(page)
    assert md == f"# Title\n\n{markdown}\n\n## Part\n"
    assert html in page_html and "<h1>Title</h1>" in page_html and "<h2>Part</h2>" in page_html


def timed(target, engine, p50, p99=None, misses=0, parity=9.5e-07):
    doc = make_doc(target=target, engine=engine, parity=parity)
    doc["set"]["latency_us"].update(p50=p50, p99=p99 or p50, max=p99 or p50)
    doc["set"]["deadline_misses"] = misses
    return doc


def test_the_fastest_engine_per_target_passes_parity_and_says_what_its_figure_is():
    docs = [
        timed("x86", "generated", 30.0, 64.0),
        timed("x86", "generated-int8", 10.0, parity=3e-5),  # faster, but fails parity
        timed("armv7", "generated", 9_000.0, 15_000.0, misses=18),  # emulated: over the deadline
        timed("armv7", "stl", 8_000.0),
        make_doc(target="cortex-m7", engine="generated"),
        make_doc(target="cortex-m7", engine="stl"),
    ]
    docs[-1]["set"]["latency_us"]["p50"] = 2.0  # 2,000 instructions: fewer than generated's 2,900
    rows = report.fastest_rows(report.ordered(docs))
    assert rows == [
        (
            "armv7",
            "RTNeural stl",
            "8,000.0 us (p50)",
            "emulated (QEMU user mode)",
            "none: the emulator's time",
            "2 of 2",
        ),
        (
            "cortex-m7",
            "RTNeural stl",
            "2,000 instructions",
            "counted (QEMU -icount)",
            "none: a count, not a time",
            "2 of 2",
        ),
        ("x86", "generated", "30.0 us (p50)", "measured on this CPU", "meets: p99 0.60% of it, 0 misses", "1 of 2"),
    ]


def test_only_a_time_measured_on_its_cpu_is_set_against_the_deadline():
    docs = [timed("x86", "generated", 30.0, 12_800.0, misses=2), timed("armv7", "generated", 9_000.0, 15_000.0, 18)]
    x86, armv7 = report.summary_rows(docs)
    assert x86[5:7] == ("120.00%", "2") and armv7[5:7] == ("-", "-")
    assert report.deadline_verdict(docs[0]).startswith("misses: p99 120.00% of it, 2 misses")


@pytest.fixture
def drawn(monkeypatch):
    """The plots' figures instead of their PNG bytes, to look inside them."""
    from matplotlib import pyplot

    monkeypatch.setattr(report, "_png", lambda fig: fig)
    yield
    pyplot.close("all")


@pytest.mark.parametrize(
    ("target", "words", "deadline"),
    [
        ("x86", ["x86:", "measured on this CPU"], True),
        ("armv7", ["armv7:", "EMULATED", "not the board's", "no deadline drawn"], False),
        ("cortex-m7", ["cortex-m7:", "instructions per block COUNTED", "no deadline drawn"], False),
    ],
)
def test_a_latency_plot_names_its_target_and_figure_and_draws_the_deadline_only_where_measured(
    drawn, target, words, deadline
):
    doc = make_doc(target=target)
    ax = report.latency_plot(target, [doc]).axes[0]
    title = ax.get_title()
    assert all(w in title for w in words), title
    limit = doc["config"]["deadline_us"]
    drawn_at = [list(line.get_ydata()) for line in ax.get_lines()]
    assert ([limit, limit] in drawn_at) == deadline
    if target == "cortex-m7":  # the bars are the counted instructions, set and models
        heights = sorted(round(p.get_height()) for p in ax.patches)
        assert heights == sorted([figures.instructions(doc), *(figures.instructions(doc, m) for m in doc["models"])])


def history_docs():
    docs = []
    for k, (commit, count) in enumerate([("aaaa", 100_000), ("bbbb", 103_000), ("cccc", 50_000)]):
        doc = make_doc(instructions={"set": count, "dynamics_engine": 1, "groove_predictor": 1})
        doc.update(project_commit=commit, created=f"2026-01-0{k + 1}T00:00:00+00:00")
        docs.append(doc)
    return docs


@pytest.mark.parametrize(
    ("base", "label", "changes"),
    [
        ({("x86", "generated"): 100_000}, "x86 / generated", [0.0, 3.0, -50.0]),
        ({("x86", "generated"): 50_000}, "x86 / generated", [100.0, 106.0, 0.0]),
        ({}, "x86 / generated (1st run)", [0.0, 3.0, -50.0]),  # no baseline figure: against its first run
    ],
)
def test_the_instruction_history_is_one_panel_in_percent_of_the_baseline(drawn, base, label, changes):
    fig = report.history_plot(history_docs(), base, 3.0)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines[label].get_ydata()) == pytest.approx(changes)
    assert ax.get_yscale() == "symlog"  # linear around 100%: 3% reads as 3%
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "103%" in ticks and "100%" in ticks and "x86: callgrind" in ax.get_title()


def precision_doc(engine, weights, code=None, stack=None):
    doc = make_doc(engine=engine)
    for m in doc["models"].values():
        m.update(weight_bytes=weights, code_bytes=code, stack_bytes=stack)
    return doc


def test_memory_is_shown_per_precision_with_code_objects_and_stack_apart():
    f32 = precision_doc("generated", 78_272, code=4_000, stack=300)
    int8 = precision_doc("generated-int8", 20_352, code=5_000, stack=200)
    older = precision_doc("generated-f16", 78_272)  # a run from before the stored size: float32's
    rows = {r[1]: r for r in report.memory_rows([f32, int8, older])}
    objects = f"{sum(m['model_bytes'] for m in f32['models'].values()):,}"
    assert rows["generated"][2:7] == ("float32", "156,544", "8,000", objects, "300")
    assert rows["generated-int8"][2:7] == ("int8", "40,704", "10,000", objects, "200")
    assert rows["generated-f16"][3:7] == ("-", "-", objects, "-")
    table = report.weights_table([f32, int8, older])
    assert table.head == ("model", "generated (float32)", "generated-f16 (float16)", "generated-int8")
    assert table.rows[0] == ("dynamics_engine", "78,272", "-", "20,352")
    assert table.rows[-1] == ("all models", "156,544", "-", "40,704")


def test_the_memory_plot_draws_each_precision(drawn):
    docs = [precision_doc("generated", 78_272, 4_000, 300), precision_doc("generated-int8", 20_352, 5_000, 200)]
    ax = report.memory_plot(docs).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x86 / generated (float32)", "x86 / generated-int8"]
    widths = {round(p.get_width() * 1e6) for p in ax.patches}
    assert {156_544, 40_704, 8_000, 10_000, 300, 200} <= widths


def test_the_gate_answer_names_the_verdict_and_the_largest_changes_each_way(tmp_path):
    base_doc = make_doc(instructions={"set": 100_000, "dynamics_engine": 40_000, "groove_predictor": 60_000})
    baseline.update(figures.of(base_doc), "first", [], tmp_path / "baseline" / "baseline.json")
    worse = make_doc(instructions={"set": 104_000, "dynamics_engine": 44_000, "groove_predictor": 57_000})
    section, base, _ = report.gate_section([worse], [], tmp_path / "baseline", 3.0)
    assert section.heading.endswith(": FAILED (threshold 3%)") and len(base) == len(figures.of(base_doc))
    text, table = section.blocks
    assert text.text.startswith("2 of ") and "x86/generated (2)" in text.text
    assert [(r[2], r[6], r[7]) for r in table.rows] == [
        ("dynamics_engine", "+10.00%", "REGRESSION"),
        ("set", "+4.00%", "REGRESSION"),
        ("groove_predictor", "-5.00%", "improved"),
    ]
    passed, _, _ = report.gate_section([base_doc], [], tmp_path / "baseline", 3.0)
    assert passed.heading.endswith(": passed (threshold 3%)")
    missing, _, _ = report.gate_section([base_doc], [], tmp_path / "nowhere", 3.0)
    assert missing.heading.startswith("Regression gate: no baseline at")


def test_the_page_opens_with_the_answers_and_both_renderings_share_its_sections(tmp_path):
    base_doc = make_doc()
    baseline.update(figures.of(base_doc), "first", [], tmp_path / "baseline" / "baseline.json")
    emulated = timed("armv7", "generated", 9_000.0, 15_000.0, misses=18)
    runs = save([base_doc, make_doc(engine="stl"), make_doc(target="cortex-m7"), emulated], tmp_path / "runs")
    none = tmp_path / "none"
    report.render([runs], tmp_path / "out", none, none, none, none, tmp_path / "baseline")
    readme = (tmp_path / "out" / "README.md").read_text()
    page = (tmp_path / "out" / "index.html").read_text()
    md_heads = re.findall(r"^#+ (.*)$", readme, re.M)
    html_heads = [h.replace("&#x27;", "'") for h in re.findall(r"<h\d>(.*?)</h\d>", page)]
    assert md_heads == html_heads  # one model of the page, two renderings
    assert md_heads[:5] == [
        "Benchmark report",
        "Fastest engine per target (among those that pass parity)",
        "Per board: the best engine that meets the deadline and fits (estimated from the runs)",
        "Regression gate against " + str(tmp_path / "baseline") + ": passed (threshold 3%)",
        "Every target and engine (the latest run of each)",
    ]
    boards_table = readme.split("## Per board")[1].split("##")[0]
    assert "| Electrosmith Daisy Seed |" in boards_table and "no result of a target it runs" in boards_table
    armv7 = next(line for line in readme.splitlines() if line.startswith("| armv7 | generated | emulated |"))
    assert "%" not in armv7 and "| 9,000.0 | 15,000.0 | - | - |" in armv7  # its figures, no deadline verdict
    assert page.count("data:image/png;base64,") == len(list((tmp_path / "out" / "plots").iterdir()))


def test_a_damaged_baseline_is_said_on_the_page_not_a_traceback(tmp_path):
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "baseline.json").write_text("{")
    runs = save([make_doc()], tmp_path / "runs")
    none = tmp_path / "none"
    _, warnings = report.render([runs], tmp_path / "out", none, none, none, none, tmp_path / "baseline")
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "## Regression gate: the baseline" in readme and "cannot be read" in readme
    assert any("baseline.json" in w for w in warnings)
