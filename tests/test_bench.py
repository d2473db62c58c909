"""bench: the program's output, the result schema, the targets table, and (with RTNeural) a real
build through PlatformIO with its caching, and `bench run` end to end."""

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import build as bench_build
from bench import cli, harness, results, run, targets
from common import rtneural
from common.errors import SuiteError
from models.catalog import get
from tests.conftest import ROOT, SMALL

OUTPUT = """\
Layer: dense
{"type":"meta","target":"native","backend":"stl","models":1,"blocks":3,"warmup":1,"block_size":512,"sample_rate":48000,"deadline_us":10666.667,"timer":"steady_clock","ticks_per_second":1000000000}
{"type":"parity","model":"dynamics_engine","steps":64,"max_abs_error":9.5e-07}
{"type":"model","model":"dynamics_engine","input_size":32,"output_size":16,"parameters":19568,"weight_bytes":78272,"model_bytes":81728,"load_heap_bytes":82656}
{"type":"heap","forward_allocations":0,"forward_bytes":0}
{"type":"latency","model":"dynamics_engine","blocks":3,"unit":"us","mean":2.9,"p50":2.8,"p95":3.0,"p99":3.1,"max":4.0,"min":2.7,"deadline_misses":0,"real_time_factor":0.00027}
{"type":"latency","model":"set","blocks":3,"unit":"us","mean":3.0,"p50":2.9,"p95":3.1,"p99":3.2,"max":4.1,"min":2.8,"deadline_misses":0,"real_time_factor":0.00028}
{"type":"process","peak_rss_kib":12052}
{"type":"done"}
"""
FOUND = rtneural.find()
needs_build = pytest.mark.skipif(FOUND is None, reason=rtneural.MISSING)


def test_harness_warnings_are_kept_for_the_user():
    out = harness.parse(
        OUTPUT.replace('{"type":"done"}', '{"type":"warning","message":"unknown option --x"}\n{"type":"done"}')
    )
    assert out["warnings"] == ["unknown option --x"]


def test_parse_gathers_the_records():
    out = harness.parse(OUTPUT)
    assert out["meta"]["deadline_us"] == pytest.approx(10666.667)
    m = out["models"]["dynamics_engine"]
    assert m["parity"]["max_abs_error"] == 9.5e-07 and m["parameters"] == 19568 and m["latency"]["p99"] == 3.1
    assert out["set"]["p50"] == 2.9 and out["heap"]["forward_bytes"] == 0


@pytest.mark.parametrize(
    "broken, message",
    [
        (OUTPUT.replace('{"type":"done"}\n', ""), "ends before the harness said it was done"),
        (OUTPUT.replace('{"type":"heap"', '{"type":"heap",,'), "line 5 is not a harness record"),
        (
            OUTPUT.replace('{"type":"parity","model":"dynamics_engine","steps":64,"max_abs_error":9.5e-07}\n', ""),
            "model dynamics_engine has no parity record",
        ),
    ],
)
def test_parse_names_what_is_wrong(broken, message):
    with pytest.raises(SuiteError, match=message) as err:
        harness.parse(broken, "prog")
    assert str(err.value.path) == "prog"


def fake_build(code: dict | None = None) -> bench_build.Build:
    """A build of the harness; `code`: each model's code bytes (default: dynamics_engine's 4)."""
    return bench_build.Build(
        program=Path("program"),
        seconds=1.5,
        reused=False,
        compiler="g++ 12",
        flags=["-O3"],
        sizes={"text": 10, "data": 2, "bss": 3},
        symbols={
            "models": {
                name: {"code": size, "constants": 5}
                for name, size in ({"dynamics_engine": 4} if code is None else code).items()
            },
            "other": {"code": 3, "constants": 1, "zeroed": 2},
        },
    )


def make_doc(**changes):
    target = targets.get("x86")
    doc = results.document(
        target, "stl", fake_build(), harness.parse(OUTPUT), {"set": 100, "dynamics_engine": 90}, "abc", "def"
    )
    doc.update(changes)
    return doc


def test_a_board_result_names_its_board_and_how_it_was_timed(tmp_path):
    device = {"name": "pi@rpi4:22", "label": "rpi4", "machine": "aarch64", "run_prefix": None}
    target = targets.get("aarch64")
    doc = results.document(target, "generated", fake_build(), harness.parse(OUTPUT), None, None, "def", device=device)
    assert doc["target"]["name"] == "aarch64@rpi4" and doc["target"]["run"] == "board"
    assert doc["timing"]["kind"] == "measured" and "-aarch64@rpi4-generated-" in doc["id"]
    assert results.load(results.write(doc, tmp_path)) == doc
    emulated = results.document(
        target,
        "generated",
        fake_build(),
        harness.parse(OUTPUT),
        None,
        None,
        "def",
        device={**device, "run_prefix": "qemu-aarch64"},
    )
    assert emulated["timing"]["kind"] == "emulated"


def test_result_document_follows_the_schema(tmp_path):
    doc = make_doc()
    assert doc["schema"] == "rt-music-bench/result/2" and doc["parity_ok"]
    assert doc["models"]["dynamics_engine"]["instructions_per_forward"] == 90
    assert doc["set"]["instructions_per_block"] == 100 and doc["timing"]["kind"] == "measured"
    path = results.write(doc, tmp_path)
    assert path.name == f"{doc['id']}.json" and results.load(path) == doc
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.pop("heap"), "(top)"),
        (lambda d: d.update(backend="onnx"), "backend"),
        (lambda d: d["set"]["latency_us"].update(p99=-1.0), "set/latency_us/p99"),
        (lambda d: d["models"]["dynamics_engine"].pop("parity_max_abs_error"), "models/dynamics_engine"),
        (lambda d: d["target"].update(run="board", device={"name": "pi@rpi4"}), "target/device"),
    ],
)
def test_schema_rejects_broken_results(tmp_path, mutate, where):
    doc = copy.deepcopy(make_doc())
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match="not a valid rt-music-bench/result/2") as err:
        results.load(path)
    assert err.value.path == path and where in str(err.value)


def test_parity_above_tolerance_is_flagged():
    out = harness.parse(OUTPUT.replace("9.5e-07", "2e-05"))
    doc = results.document(targets.get("x86"), "stl", fake_build(), out, None, "a", "b")
    assert not doc["parity_ok"] and doc["set"]["instructions_per_block"] is None


def test_targets_come_from_platformio_ini():
    t = targets.load()
    assert {name: x.env for name, x in t.items()} == {
        "x86": "native",
        "aarch64": "rpi",
        "armv7": "rpi32",
        "cortex-m7": "cortex_m7",
        "cortex-m7-2mb": "cortex_m7_2mb",
    }
    assert t["aarch64"].compiler == "aarch64-linux-gnu-g++" and t["cortex-m7"].os == "baremetal"
    assert targets.get("rpi") is t["aarch64"] or targets.get("rpi").env == "rpi"
    with pytest.raises(SuiteError, match="unknown target 'sparc'"):
        targets.get("sparc")


def test_missing_toolchain_names_the_package():
    t = targets.get("aarch64")
    fake = targets.Target(**{**t.__dict__, "toolchain": "nosuch-linux-gnu-", "apt": "g++-nosuch"})
    assert fake.missing() == ["nosuch-linux-gnu-g++ (apt-get install g++-nosuch)"]
    with pytest.raises(SuiteError, match="apt-get install g\\+\\+-nosuch"):
        bench_build.build(fake, "stl")


def test_commands_per_run_kind():
    t = targets.load()
    assert harness.command(t["x86"], Path("p"), ["--blocks", "3"]) == ["p", "--blocks", "3"]
    assert harness.command(t["aarch64"], Path("p"), ["-x"])[:2] == ["qemu-aarch64", "-cpu"]
    cmd = harness.command(t["cortex-m7"], Path("p.elf"), ["--blocks", "3"])
    assert cmd[-2:] == ["-kernel", "p.elf"]
    assert "enable=on,target=native,arg=program,arg=--blocks,arg=3" in cmd


@pytest.mark.parametrize(
    "target, engine, says",
    [
        ("x86", "eigen", "engine eigen cannot run here: RTNeural not found"),
        # not a Cortex-M7 engine at all: said as that, whether or not RTNeural is here
        ("cortex-m7", "xsimd", "engine xsimd is not a cortex-m7 engine: it runs generated, generated-f16"),
        ("cortex-m7-2mb", "generated", "engine generated is not a cortex-m7-2mb engine: it runs generated-int8"),
    ],
)
def test_an_engine_that_cannot_run_says_why(target, engine, says, monkeypatch, capsys, exported, tmp_path):
    monkeypatch.delenv("RTNEURAL_DIR", raising=False)
    monkeypatch.setattr(rtneural, "find", lambda: None)
    argv = ["run", "--target", target, "--engine", engine, "--models-dir", str(exported), "--out", str(tmp_path)]
    assert cli.main(argv) == 2
    assert says in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before any work


def test_engines_per_target(monkeypatch, capsys):
    t = targets.load()
    generated = ("generated", "generated-f16", "generated-int8")
    assert t["x86"].engines == (*generated, "eigen", "xsimd", "stl", "rtneural-json")
    assert t["armv7"].engines == (*generated, "xsimd", "stl", "rtneural-json")
    assert t["cortex-m7"].engines == (*generated, "stl")  # no file system: no JSON read at run time
    assert t["cortex-m7-2mb"].engines == ("generated-int8",)
    monkeypatch.setattr(rtneural, "find", lambda: None)
    assert run.chosen_engines(t["x86"], None) == list(generated) == run.chosen_engines(t["x86"], "all")
    skipped = capsys.readouterr().err  # the engines left out are named, with why
    assert all(f"skipped engine {e}: RTNeural not found" in skipped for e in ("eigen", "xsimd", "stl"))
    assert cli.main(["engines"]) == 0
    out = capsys.readouterr().out
    rows = {tuple(line.split()[:3]): line for line in out.splitlines()[2:] if line.strip()}
    assert rows[("x86", "eigen", "no")].endswith("RTNeural not found") and ("x86", "generated-int8", "yes") in rows
    assert ("cortex-m7", "xsimd", "no") in rows and ("cortex-m7-2mb", "generated", "no") in rows


def test_results_of_schema_1_are_still_read():
    (path,) = sorted((ROOT / "reports" / "runs").glob("*-x86-eigen.json"))[:1]
    doc = results.load(path)
    assert doc["schema"] == "rt-music-bench/result/2" and doc["engine"] == "rtneural" and doc["backend"] == "eigen"
    assert results.engine_name(doc) == "eigen"


def test_build_is_reused_when_nothing_changed(exported, tmp_path, pio_ready):
    target = targets.get("x86")
    first = bench_build.build(target, "generated", exported, tmp_path)
    assert not first.reused and first.program.exists() and first.sizes["text"] > 0
    second = bench_build.build(target, "generated", exported, tmp_path)
    assert second.reused and second.program == first.program


def test_a_new_export_is_rebuilt(exported, trained, tmp_path, pio_ready):
    """The harness includes the engine's table through a header SCons scans: a changed export rebuilds."""
    from exporter.export import export_all

    models = tmp_path / "models"
    shutil.copytree(exported, models)
    first = bench_build.build(targets.get("x86"), "generated", models, tmp_path / "pio")
    export_all([get("dynamics_engine")], trained / "checkpoints", models)  # one model now, not two
    second = bench_build.build(targets.get("x86"), "generated", models, tmp_path / "pio")
    assert not second.reused and second.sizes["text"] < first.sizes["text"]


def run_bench(target: str, engine: str, exported: Path, tmp_path: Path, *extra: str) -> tuple[int, dict | None]:
    code = cli.main(
        [
            "run",
            "--target",
            target,
            "--engine",
            engine,
            "--blocks",
            "20",
            "--warmup",
            "2",
            "--models-dir",
            str(exported),
            "--out",
            str(tmp_path / "runs"),
            "--build-dir",
            str(tmp_path / "pio"),
            "--cold",
            "3",
            *extra,
        ]
    )
    paths = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    return code, results.load(paths[0]) if len(paths) == 1 else None


@pytest.mark.parametrize("engine", ["generated", "generated-f16", "generated-int8"])
@pytest.mark.parametrize("target", ["x86", "aarch64", "armv7", "cortex-m7"])
def test_the_generated_engine_runs_with_parity_on_every_target(target, engine, exported, tmp_path, pio_ready, capsys):
    """Natively, under qemu-user and under qemu-system, at every weight precision: built, run,
    checked on the target itself (reduced precisions against the reference of the same weights)."""
    code, doc = run_bench(target, engine, exported, tmp_path, "--no-callgrind")
    out = capsys.readouterr().out
    assert code == 0, out
    assert results.engine_name(doc) == engine and doc["backend"] is None and doc["rtneural_commit"] is None
    assert doc["dtype"] == {"generated": "float32", "generated-f16": "float16", "generated-int8": "int8"}[engine]
    cold = doc["set"]["latency_cold_us"]  # measured where time is measured (x86), not under emulation
    assert (cold is not None and doc["set"]["cold_blocks"] == 3) == (target == "x86")
    if target == "x86":
        assert all(m["latency_cold_us"]["p50"] > 0 for m in doc["models"].values())
    assert set(doc["models"]) == set(SMALL) and doc["parity_ok"] and doc["heap"]["forward_allocations"] == 0
    for name in SMALL:
        m = doc["models"][name]
        assert m["parameters"] == get(name).parameter_count and m["parity_max_abs_error"] <= 1e-5
        assert m["load_heap_bytes"] == 0  # the weights are used in place, never copied
        assert m["model_bytes"] < m["weight_bytes"]  # the model object holds state, not weights
        # the weights as this engine stores them: float32 4 bytes each, reduced precisions fewer
        full = 4 * m["parameters"]
        assert m["weight_bytes"] == full if engine == "generated" else m["weight_bytes"] < 0.8 * full
    if target == "cortex-m7":  # the weights once, in the external memory's .weights, none in RAM
        sections = doc["build"]["binary"]["sections"]
        stored = {"generated": 4, "generated-f16": 2, "generated-int8": 1}[engine]
        weights = sum(m["parameters"] for m in doc["models"].values()) * stored
        assert sections[".weights"] >= weights and doc["build"]["binary"]["bss"] < weights
        # the weights the results report are in the image's .weights (which holds the test vectors too)
        assert sum(m["weight_bytes"] for m in doc["models"].values()) <= sections[".weights"]
    assert f"{doc['target']['name']} / {engine}" in out and "saved" in out


def test_the_int8_set_fits_a_cortex_m7_with_2_mb_of_flash(exported, tmp_path, pio_ready, capsys):
    """The linker script holds the image to 2 MB of flash and 1 MB of RAM; it links and runs."""
    code, doc = run_bench("cortex-m7-2mb", "generated-int8", exported, tmp_path)
    assert code == 0, capsys.readouterr().out
    binary = doc["build"]["binary"]
    assert binary["text"] + binary["data"] <= 2 << 20 and binary["data"] + binary["bss"] <= 1 << 20
    assert ".weights" not in binary["sections"] and doc["parity_ok"]
    # the hottest inner loop is the smlad kernel: 4 outputs x 2 groups x 4 inputs a turn
    loop = doc["hot_loop"]
    assert loop["macs_per_iteration"] == 32 and loop["cycles_per_iteration"]["cortex-m7"] > 16
    weights = sum(m["constants"] for m in doc["build"]["symbols"]["models"].values())
    assert weights >= sum(m["parameters"] for m in doc["models"].values())  # int8: a byte a weight, plus scales


def test_bench_run_all_targets_with_one_engine(exported, tmp_path, pio_ready, capsys):
    """--target all: every target whose toolchain is here, one progress bar, one table at the end
    with the fastest engine per target and the boards its set fits."""
    code = cli.main(
        [
            *("run", "--target", "all", "--engine", "generated-int8", "--blocks", "10", "--warmup", "1"),
            *("--cold", "2", "--no-callgrind", "--models-dir", str(exported), "--out", str(tmp_path / "runs")),
            *("--build-dir", str(tmp_path / "pio")),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    docs = [results.load(p) for p in (tmp_path / "runs").iterdir()]
    assert sorted(d["target"]["name"] for d in docs) == ["aarch64", "armv7", "cortex-m7", "cortex-m7-2mb", "x86"]
    assert all(d["parity_ok"] and results.engine_name(d) == "generated-int8" for d in docs)
    assert "5 runs on 5 targets" in out
    table = out[out.index("boards it fits") :]
    assert "daisy-seed" in table and "rpi4" in table and "1/1 ok" in table


def test_bench_run_counts_instructions_on_x86(exported, tmp_path, pio_ready, capsys):
    if not shutil.which("valgrind"):
        pytest.skip("valgrind is not installed (make setup installs it)")
    code, doc = run_bench("x86", "generated", exported, tmp_path)
    assert code == 0, capsys.readouterr().out
    for name in SMALL:
        assert doc["models"][name]["instructions_per_forward"] > 1000
    assert doc["set"]["instructions_per_block"] >= sum(doc["models"][n]["instructions_per_forward"] for n in SMALL)


@needs_build
def test_bench_run_with_rtneural(exported, tmp_path, pio_ready, capsys):
    code, doc = run_bench("x86", "stl", exported, tmp_path, "--no-callgrind")
    assert code == 0, capsys.readouterr().out
    assert doc["engine"] == "rtneural" and doc["backend"] == "stl" and doc["parity_ok"]
    assert doc["rtneural_commit"]


def test_pio_run_needs_no_torch(exported, tmp_path, pio_ready, no_torch):
    """The PlatformIO build reads the export folder and finds the C++ dependencies; nothing else."""
    env = bench_build.pio_env("auto", tmp_path / "pio", exported)
    env["PYTHONPATH"] = str(no_torch)
    done = subprocess.run(
        ["pio", "run", "-e", "native"], cwd=bench_build.PROJECT, env=env, capture_output=True, text=True
    )
    output = done.stdout + done.stderr
    assert "unimportable in this test" not in output and "ImportError" not in output
    assert done.returncode == 0, output[-3000:]
    assert (tmp_path / "pio" / "native" / "program").exists()
    if FOUND is None:
        assert "RTNeural not found: building the generated engine" in output
