"""Memory per model and per precision, as the harness measures it and the results carry it: the
weights as stored, the model object, its own code (from the image's symbols), the deepest stack of
one forward() (painted on the target), and the peak RSS without the cold blocks' eviction buffer;
the gate on them, and `bench run`'s summary, which gives deadline misses only for measured time."""

import copy
import json
from pathlib import Path

import pytest

from bench import build as bench_build
from bench import compare, figures, harness, results, run, targets
from bench.figures import Figure
from common.errors import SuiteError
from tests.conftest import ROOT, SMALL
from tests.test_bench import fake_build

MODEL = "dynamics_engine"
OUTPUT = """\
{"type":"meta","target":"native","engine":"generated","models":1,"blocks":3,"warmup":1,"block_size":512,"sample_rate":48000,"deadline_us":10666.667,"timer":"steady_clock","ticks_per_second":1000000000,"stack_probe_bytes":65536}
{"type":"parity","model":"dynamics_engine","steps":64,"max_abs_error":9.5e-07}
{"type":"model","model":"dynamics_engine","rate":"block","steps_per_block":1,"input_size":32,"output_size":16,"parameters":19568,"weight_bytes":78272,"model_bytes":1536,"load_heap_bytes":0,"stack_bytes":168}
{"type":"heap","forward_allocations":0,"forward_bytes":0}
{"type":"latency","model":"dynamics_engine","blocks":3,"unit":"us","mean":2.9,"p50":2.8,"p95":3.0,"p99":3.1,"max":4.0,"min":2.7,"deadline_misses":0,"real_time_factor":0.00027}
{"type":"latency","model":"set","blocks":3,"unit":"us","mean":3.0,"p50":2.9,"p95":3.1,"p99":3.2,"max":4.1,"min":2.8,"deadline_misses":2,"real_time_factor":0.00028}
{"type":"process","peak_rss_kib":7320,"peak_rss_covers":"all_but_eviction_buffer"}
{"type":"done"}
"""
PROCESS = '{"type":"process","peak_rss_kib":7320,"peak_rss_covers":"all_but_eviction_buffer"}'
OLD_PROCESS = '{"type":"process","peak_rss_kib":138348}'  # a harness from before: read at the end
NO_OS = '{"type":"process","peak_rss_kib":-1,"peak_rss_covers":"all_but_eviction_buffer"}'
BOARD = {"name": "pi@rpi4:22", "label": "rpi4", "machine": "aarch64", "run_prefix": None}


def make_doc(output: str = OUTPUT, target: str = "x86", device: dict | None = None, code: dict | None = None) -> dict:
    build = fake_build({MODEL: 4960} if code is None else code)
    return results.document(
        targets.get(target), "generated", build, harness.parse(output), None, None, "abc", device=device
    )


@pytest.mark.parametrize(
    "target, device, process, kib, covers",
    [
        ("x86", None, PROCESS, 7320, "all_but_eviction_buffer"),
        ("x86", None, OLD_PROCESS, 138348, "whole_run"),
        ("aarch64", None, PROCESS, 7320, "emulator_process"),  # qemu-user: /proc/self is the emulator's
        ("aarch64", BOARD, PROCESS, 7320, "all_but_eviction_buffer"),
        ("aarch64", {**BOARD, "run_prefix": "qemu-aarch64"}, PROCESS, 7320, "emulator_process"),
        ("cortex-m7", None, NO_OS, None, None),
    ],
)
def test_the_peak_rss_says_what_it_covers(target, device, process, kib, covers):
    doc = make_doc(OUTPUT.replace(PROCESS, process), target, device)
    assert doc["process"] == {"peak_rss_kib": kib, "peak_rss_covers": covers}


@pytest.mark.parametrize(
    "model_line_stack, code, stack_bytes, code_bytes",
    [
        (',"stack_bytes":168', {MODEL: 4960}, 168, 4960),
        (',"stack_bytes":null', {MODEL: 4960}, None, 4960),  # deeper than the harness's probe
        ("", {}, None, None),  # a harness from before, an image whose symbols hold no such model
    ],
)
def test_each_model_carries_its_memory(model_line_stack, code, stack_bytes, code_bytes):
    doc = make_doc(OUTPUT.replace(',"stack_bytes":168', model_line_stack), code=code)
    m = doc["models"][MODEL]
    assert (m["weight_bytes"], m["model_bytes"]) == (78272, 1536)
    assert (m["stack_bytes"], m["code_bytes"]) == (stack_bytes, code_bytes)


def test_results_written_before_the_memory_figures_still_load(tmp_path):
    """Old documents get code bytes from their symbols, no stack, and a peak RSS of the whole run."""
    new = make_doc()
    old = copy.deepcopy(new)
    del old["models"][MODEL]["code_bytes"], old["models"][MODEL]["stack_bytes"], old["process"]["peak_rss_covers"]
    old["process"]["peak_rss_kib"] = 138348
    loaded = results.load(results.write(old, tmp_path))
    assert loaded["models"][MODEL]["code_bytes"] == 4960 and loaded["models"][MODEL]["stack_bytes"] is None
    assert loaded["process"] == {"peak_rss_kib": 138348, "peak_rss_covers": "whole_run"}
    assert results.load(results.write(new, tmp_path)) == new  # a new one loads as written


def test_every_saved_result_loads_with_the_memory_figures():
    docs, warnings = results.load_many([ROOT / "reports" / "runs"])
    assert docs and not warnings
    for doc in docs:
        assert all({"code_bytes", "stack_bytes"} <= set(m) for m in doc["models"].values())
        assert (doc["process"]["peak_rss_covers"] is None) == (doc["process"]["peak_rss_kib"] is None)


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d["models"][MODEL].update(stack_bytes=0), f"models/{MODEL}/stack_bytes"),
        (lambda d: d["models"][MODEL].update(code_bytes=-1), f"models/{MODEL}/code_bytes"),
        (lambda d: d["models"][MODEL].update(code_bytes="4k"), f"models/{MODEL}/code_bytes"),
        (lambda d: d["process"].update(peak_rss_covers="most"), "process/peak_rss_covers"),
    ],
)
def test_the_schema_rejects_bad_memory_figures(tmp_path, mutate, where):
    doc = make_doc()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match="not a valid rt-music-bench/result/2") as err:
        results.load(path)
    assert where in str(err.value)


def gated(doc: dict) -> dict[str, float]:
    return {f.metric: f.value for f in figures.of(doc) if f.model == MODEL}


def test_code_and_stack_bytes_are_gated_per_model():
    assert {"weight_bytes": 78272, "code_bytes": 4960, "stack_bytes": 168}.items() <= gated(make_doc()).items()
    # not measured: no figure, rather than a zero
    assert {"code_bytes", "stack_bytes"}.isdisjoint(gated(make_doc(OUTPUT.replace("168", "null"), code={})))


def with_value(figs: list[Figure], metric: str, value: float | None) -> list[Figure]:
    out = [f for f in figs if f.metric != metric]
    base = next(f for f in figs if f.metric == metric and f.model == MODEL)
    return out + ([] if value is None else [Figure(**{**vars(base), "value": value})])


@pytest.mark.parametrize("metric", ["code_bytes", "stack_bytes"])
@pytest.mark.parametrize(
    "base, current, status",
    [
        (None, 168, compare.NEW),  # a baseline from before these figures: new, not a failure
        (168, 168, compare.OK),
        (168, 200, compare.REGRESSION),  # 19% more, over the 3% threshold
        (168, 170, compare.OK),  # 1.2% more, within it
        (200, 168, compare.IMPROVED),
        (168, None, compare.FAIL),  # no longer measured
    ],
)
def test_the_gate_compares_them_as_exact_counts(metric, base, current, status):
    figs = figures.of(make_doc())
    rows = compare.compare(with_value(figs, metric, base), with_value(figs, metric, current), threshold=3)
    (row,) = [r for r in rows if r.metric == metric and r.model == MODEL]
    assert row.status == status
    assert compare.failed(rows) == ([row] if status in compare.FAILING else [])


@pytest.mark.parametrize(
    "target, verdict",
    [("x86", True), ("aarch64", False), ("cortex-m7", False)],  # measured, emulated, counted
)
def test_the_summary_gives_misses_only_for_measured_time(target, verdict):
    text = run.summary(make_doc(target=target))
    assert ("deadline misses 2" in text) == verdict and ("mean/deadline" in text) == verdict
    assert ("(deadline 10667 us)" in text) == verdict and ("no deadline verdict" in text) != verdict
    memory = text[text.index("weights (B)") :].splitlines()
    assert memory[2].split() == [MODEL, "78,272", "4,960", "1,536", "168"]
    assert memory[3].split()[-4:] == ["78,272", "4,960", "1,536", "168"]  # the set: sums, the deepest stack


@pytest.mark.parametrize(
    "target, process, cold_blocks, says",
    [
        ("x86", PROCESS, 10, "peak RSS 7,320 KiB (the whole run but the cold blocks' cache-eviction buffer)"),
        ("x86", OLD_PROCESS, 10, "peak RSS 138,348 KiB (the whole run, the cold blocks' cache-eviction buffer"),
        ("x86", PROCESS, 0, "peak RSS 7,320 KiB (the whole run)"),
        ("aarch64", PROCESS, 0, "peak RSS 7,320 KiB (the emulator's process, not the program's own)"),
        ("cortex-m7", NO_OS, 0, "peak RSS n/a (no OS)"),
    ],
)
def test_the_summary_says_what_the_peak_rss_covers(target, process, cold_blocks, says):
    doc = make_doc(OUTPUT.replace(PROCESS, process), target)
    doc["set"]["cold_blocks"] = cold_blocks
    assert says in run.summary(doc)


# On the targets themselves: the harness built with the exported test models.


def built(target: str, engine: str, exported: Path, root: Path, extra: tuple[str, ...] = ()) -> Path:
    return bench_build.build(targets.get(target), engine, exported, root, extra_flags=extra).program


def harness_run(target: str, program: Path, args: list[str]) -> dict:
    return harness.parse(harness.run(targets.get(target), program, args))


QUICK = ["--blocks", "3", "--warmup", "1"]


@pytest.mark.parametrize(
    "target, engine",
    [("x86", "generated"), ("x86", "generated-f16"), ("x86", "generated-int8"), ("aarch64", "generated")],
)
def test_the_stack_is_measured_and_the_same_whatever_the_environment(
    target, engine, exported, tmp_path, pio_ready, monkeypatch
):
    """Painted on the target (natively, under qemu-user): a figure per model inside the probe, the
    same when the stack starts elsewhere modulo 64 bytes (the environment's size moves it)."""
    if targets.get(target).missing():
        pytest.skip(f"needs {', '.join(targets.get(target).missing())}")
    program = built(target, engine, exported, tmp_path)
    out = harness_run(target, program, QUICK)
    probe = out["meta"]["stack_probe_bytes"]
    stacks = {name: m["stack_bytes"] for name, m in out["models"].items()}
    assert set(stacks) == set(SMALL) and all(0 < s <= probe * 3 // 4 for s in stacks.values()), stacks
    for pad in (8, 24, 40):
        monkeypatch.setenv("RTMB_PAD", "x" * pad)
        again = harness_run(target, program, QUICK)
        assert {name: m["stack_bytes"] for name, m in again["models"].items()} == stacks


def test_the_peak_rss_leaves_out_the_eviction_buffer(exported, tmp_path, pio_ready):
    program = built("x86", "generated", exported, tmp_path)
    cold, warm = (harness_run("x86", program, [*QUICK, "--cold", n])["process"] for n in ("2", "0"))
    assert cold["peak_rss_covers"] == "all_but_eviction_buffer"
    assert cold["peak_rss_kib"] < 2 * warm["peak_rss_kib"]  # not the buffer's 131,072 KiB more


@pytest.mark.parametrize("probe", [16, 1024])
def test_a_stack_too_deep_for_the_probe_is_said_so_not_given_as_a_size(probe, exported, tmp_path, pio_ready):
    """Each forward() here writes 100 to 200 bytes deep, and over frames it reserves but does not
    write: with 16 bytes painted, the deepest changed word once read as 48 bytes. Within 1 KiB of
    the probe's end (or a quarter of it) there is no figure, only a warning."""
    program = built("x86", "generated", exported, tmp_path, (f"-DBENCH_STACK_PROBE_BYTES={probe}",))
    out = harness_run("x86", program, QUICK)
    assert out["meta"]["stack_probe_bytes"] == probe
    assert all(m["stack_bytes"] is None for m in out["models"].values())
    for name in SMALL:
        said = f"stack of {name} not measured: forward() came within 1024 bytes of the end of the {probe}-byte"
        assert any(w.startswith(said) for w in out["warnings"]), out["warnings"]


def test_the_stack_is_measured_on_the_cortex_m7(exported, tmp_path, pio_ready):
    target = targets.get("cortex-m7")
    if target.missing():
        pytest.skip(f"needs {', '.join(target.missing())}")
    out = harness_run("cortex-m7", built("cortex-m7", "generated-int8", exported, tmp_path), QUICK)
    probe = out["meta"]["stack_probe_bytes"]
    assert probe > 0 and all(0 < m["stack_bytes"] <= probe * 3 // 4 for m in out["models"].values())
    assert out["process"]["peak_rss_kib"] == -1  # no OS: no such figure
