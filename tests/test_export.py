"""`make export` and `make validate` end to end on small trained checkpoints, the header against
real RTNeural where it is found, determinism, and bad input."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from common import cgen, engines, manifest, rtneural
from common.errors import SuiteError
from exporter import header
from exporter.cli import main as exporter_main
from models import checkpoint
from models.catalog import get
from tests.conftest import ROOT, SMALL
from tests.reference import REFERENCE, needs_reference

FOUND = rtneural.find()
needs_rtneural = pytest.mark.skipif(FOUND is None, reason=rtneural.MISSING)


def export(trained: Path, out: Path, *extra) -> int:
    return exporter_main(
        [
            "export",
            "--models",
            ",".join(SMALL),
            "--checkpoints",
            str(trained / "checkpoints"),
            "--out",
            str(out),
            *extra,
        ]
    )


SET_FILES = [
    "manifest.json",
    "model_table.h",
    "model_vectors.h",
    "models.h",
    "rtmb_kernels.h",
    *(f"{e}{s}" for e in ("generated", "generated-f16", "generated-int8", "rtneural-json") for s in (".h", "_table.h")),
    "model_vectors-generated-f16.h",
    "model_vectors-generated-int8.h",
]


def test_export_writes_the_files_and_is_deterministic(trained, tmp_path):
    assert export(trained, tmp_path / "a") == 0
    assert export(trained, tmp_path / "b") == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    per_model = (".json", ".h", ".generated.h", ".generated-f16.h", ".generated-int8.h", ".vectors.json")
    assert names == sorted([f"{n}{s}" for n in SMALL for s in per_model] + SET_FILES)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_same_checkpoints_export_the_same_anywhere_with_or_without_data(trained, tmp_path, maestro_midi):
    """Export reads the checkpoint alone: copied elsewhere, run from another folder beside a data/
    with real MAESTRO data in it, it writes the same bytes as from a folder with no data at all."""
    outs = {}
    for place, with_data in (("here", False), ("there", True)):
        root = tmp_path / place
        shutil.copytree(trained / "checkpoints", root / "checkpoints")
        if with_data:
            (root / "data" / "maestro").mkdir(parents=True)
            shutil.copy(maestro_midi, root / "data" / "maestro" / "a.midi")
            (root / "data" / "maestro" / "maestro-v3.0.0.csv").write_text("split,midi_filename\nvalidation,a.midi\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "exporter",
                "export",
                "--models",
                ",".join(SMALL),
                "--checkpoints",
                "checkpoints",
                "--out",
                "out",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 0, done.stderr
        outs[place] = {p.name: p.read_bytes() for p in (root / "out").iterdir()}
    assert outs["here"] == outs["there"]


def test_manifest_describes_the_export(trained, tmp_path):
    export(trained, tmp_path)
    doc = manifest.load(tmp_path)
    assert manifest.models(doc) == SMALL and doc["schema"] == "rt-music-bench/manifest/3"
    assert manifest.engine_files(doc, "rtneural") == ["models.h", "model_table.h", *(f"{n}.h" for n in SMALL)]
    assert manifest.engine_files(doc, "generated") == [
        "generated.h",
        "generated_table.h",
        "rtmb_kernels.h",
        *(f"{n}.generated.h" for n in SMALL),
    ]
    row = doc["models"][0]
    spec = get(row["name"])
    assert (row["input_size"], row["output_size"], row["parameters"]) == (32, 16, spec.parameter_count)
    assert row["weight_bytes"] == 4 * spec.parameter_count
    assert row["layout"]["inputs"][:2] == ["pitch_class_C", "pitch_class_C#"] and len(row["layout"]["inputs"]) == 32
    assert row["layout"]["outputs"][-1] == "velocity_120_127" and row["layout"]["output_kind"] == "logits"
    assert row["engines"]["rtneural"] == {
        "header": "dynamics_engine.h",
        "namespace": "models::dynamics_engine",
        "dtype": "float32",
        "tolerance": 1e-5,
        "error_vs_float32": 0.0,
    }
    assert row["engines"]["generated"]["namespace"] == "generated::dynamics_engine"
    assert doc["engines"]["generated"] == {
        "umbrella": "generated.h",
        "table": "generated_table.h",
        "vectors": "model_vectors.h",
        "needs": "nothing",
    }
    int8 = row["engines"]["generated-int8"]
    assert int8["dtype"] == "int8" and int8["namespace"] == "generated_int8::dynamics_engine"
    assert 0 < row["engines"]["generated-f16"]["error_vs_float32"] < int8["error_vs_float32"] < 0.1
    assert doc["engines"]["generated-int8"]["vectors"] == "model_vectors-generated-int8.h"
    assert row["checkpoint"]["file"] == "dynamics_engine/best.pt" and len(row["checkpoint"]["sha256"]) == 64
    for name, digest in doc["sha256"].items():
        assert manifest.sha256(tmp_path / name) == digest, name
    assert set(doc["sha256"]) == {p.name for p in tmp_path.iterdir()} - {"manifest.json"}
    table = (tmp_path / "model_table.h").read_text()
    assert '{"dynamics_engine", ::models::dynamics_engine::kInputSize' in table and "constexpr int kCount = 2;" in table
    assert "::generated::groove_predictor::Model" in (tmp_path / "generated_table.h").read_text()


def test_damaged_manifest_is_named(trained, tmp_path):
    export(trained, tmp_path)
    path = tmp_path / "manifest.json"
    doc = json.loads(path.read_text())
    doc["models"][0]["input_size"] = -3
    path.write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match="models/0/input_size") as err:
        manifest.load(tmp_path)
    assert err.value.path == path
    path.write_text("{")
    with pytest.raises(SuiteError, match="unreadable manifest"):
        manifest.load(tmp_path)


def test_exported_json_vectors_and_header_contract(trained, tmp_path):
    export(trained, tmp_path)
    spec = get("dynamics_engine")
    model_json = json.loads((tmp_path / "dynamics_engine.json").read_text())
    meta = model_json["metadata"]
    assert meta["model"] == "DynamicsEngine" and meta["parameter_count"] == spec.parameter_count
    assert meta["declaration_version"] == spec.version and meta["training_data"]["source"] == "synthetic"
    assert meta["torch_version"] == str(torch.__version__) and meta["project_commit"]
    assert model_json["in_shape"] == [None, None, 32]
    assert [(e["type"], e["activation"]) for e in model_json["layers"]] == [
        ("dense", "tanh"),
        ("lstm", "tanh"),
        ("dense", ""),
    ]
    vec = json.loads((tmp_path / "dynamics_engine.vectors.json").read_text())
    assert len(vec["inputs"]) == 64 and len(vec["inputs"][0]) == 32 and len(vec["outputs"][0]) == 16
    _, ckpt = checkpoint.load(trained / "checkpoints/dynamics_engine/best.pt", spec)
    assert (np.array(vec["inputs"], np.float32) == checkpoint.probe_inputs(ckpt)).all()  # the probe, exactly
    assert "first validation piece" in vec["probe"]
    text = (tmp_path / "dynamics_engine.h").read_text()
    for line in (
        "namespace models::dynamics_engine {",
        "constexpr int kInputSize = 32;",
        "constexpr int kOutputSize = 16;",
        f"constexpr std::size_t kParameterCount = {spec.parameter_count};",
        "inline void loadWeights(Model& model) {",
    ):
        assert line in text
    assert (
        "RTNeural::ModelT<float, kInputSize, kOutputSize,\n    RTNeural::DenseT<float, 32, 64>,\n"
        "    RTNeural::TanhActivationT<float, 64>,\n    RTNeural::LSTMLayerT<float, 64, 40>,\n"
        "    RTNeural::DenseT<float, 40, 16>>;" in text
    )
    assert "#include <fstream>" not in text and "parseJson" not in text  # no file access on a board
    assert (tmp_path / "models.h").read_text().count("#include") == 2


def validate_args(checkpoints: Path, out: Path) -> list[str]:
    return [
        "validate",
        "--models",
        ",".join(SMALL),
        "--checkpoints",
        str(checkpoints),
        "--out",
        str(out),
        "--no-rtneural",
    ]


def test_validate_passes_and_catches_a_tampered_header(trained, tmp_path, capsys):
    export(trained, tmp_path)
    args = validate_args(trained / "checkpoints", tmp_path)
    assert exporter_main(args) == 0
    out = capsys.readouterr().out
    assert f"GroovePredictor: checked {trained / 'checkpoints/groove_predictor/best.pt'}" in out
    report = json.loads((tmp_path / "validation.json").read_text())
    assert all(m["ok"] and m["max_abs_error"]["reference"] <= 1e-5 for m in report["models"])
    assert all(m["max_abs_error"]["checkpoint"] == 0.0 for m in report["models"])
    h = tmp_path / "groove_predictor.h"
    h.write_text(h.read_text().replace("kParameterCount = ", "kParameterCount = 1"))
    assert exporter_main(args) == 1
    assert "groove_predictor.h: changed since export" in capsys.readouterr().err


def test_validate_checks_the_checkpoint_it_is_given(trained, tmp_path, capsys):
    """Another checkpoint of the same model is not the one exported: named, and its outputs differ."""
    export(trained, tmp_path / "out")
    other = tmp_path / "other"
    shutil.copytree(trained / "checkpoints", other)
    spec = get("dynamics_engine")
    path = other / "dynamics_engine/best.pt"
    _, ck = checkpoint.load(path, spec)
    ck["state_dict"]["layers.2.bias"] += 0.5
    checkpoint.save(path, ck)
    assert exporter_main(validate_args(other, tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert f"{path} is not the checkpoint this export was made from" in err
    assert "DynamicsEngine: checkpoint: max abs error 0.5" in err


def test_checkpoint_of_the_old_format_says_retrain(trained, tmp_path, capsys):
    shutil.copytree(trained / "checkpoints", tmp_path / "checkpoints")
    path = tmp_path / "checkpoints/groove_predictor/best.pt"
    ck = torch.load(path, weights_only=True)
    ck["format"] = 1
    del ck["probe"]
    torch.save(ck, path)
    assert export(tmp_path, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert str(path) in err and "format 1 holds no probe" in err and "make train FRESH=1" in err
    assert not (tmp_path / "out").exists()


def test_hex_float_literals_are_exact():
    for x in (0.1, -3.25, 1e-30, 0.0, 123456.78):
        f = float(torch.tensor(x, dtype=torch.float32))
        assert float.fromhex(cgen.hex_float(f)[:-1]) == f


def test_missing_or_mismatched_checkpoint_fails_and_keeps_earlier_exports(trained, tmp_path, capsys):
    assert export(trained, tmp_path / "out") == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    broken = tmp_path / "broken"
    shutil.copytree(trained / "checkpoints", broken / "checkpoints")
    shutil.copy(broken / "checkpoints/dynamics_engine/best.pt", broken / "checkpoints/groove_predictor/best.pt")
    assert export(broken, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "groove_predictor/best.pt" in err and "not for GroovePredictor" in err
    (broken / "checkpoints/groove_predictor/best.pt").unlink()
    assert export(broken, tmp_path / "out") == 2
    assert "no checkpoint here" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_nan_weight_in_checkpoint_is_refused(trained, tmp_path, capsys):
    shutil.copytree(trained / "checkpoints", tmp_path / "checkpoints")
    path = tmp_path / "checkpoints/dynamics_engine/best.pt"
    spec = get("dynamics_engine")
    _, ck = checkpoint.load(path, spec)
    ck["state_dict"]["layers.1.weight_hh_l0"][0, 0] = float("nan")
    checkpoint.save(path, ck)
    assert export(tmp_path, tmp_path / "out") == 2
    assert (
        f"{path}: weight layers.1.weight_hh_l0: 1 of 6,400 values are not finite (NaN or infinity)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def compile_flags(include: Path, backend="stl"):
    return ["g++", "-std=c++17", *FOUND.flags(backend), f"-I{include}"]


@needs_rtneural
def test_generated_headers_compile_against_rtneural(trained, tmp_path):
    export(trained, tmp_path)
    done = subprocess.run(
        [*compile_flags(tmp_path), "-fsyntax-only", "-x", "c++", str(tmp_path / "models.h")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@needs_rtneural
def test_three_rtneural_paths_agree_with_torch(trained, tmp_path):
    """json_parser::parseJson, ModelT::parseJson and the header's loadWeights, in real RTNeural."""
    export(trained, tmp_path)
    code = exporter_main(
        [
            "validate",
            "--models",
            ",".join(SMALL),
            "--checkpoints",
            str(trained / "checkpoints"),
            "--out",
            str(tmp_path),
            "--build-dir",
            str(tmp_path / "check"),
            "--backend",
            "stl",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "validation.json").read_text())
    for m in report["models"]:
        assert set(m["max_abs_error"]) == {
            "checkpoint",
            "reference",
            "generated",
            "generated-f16",
            "generated-int8",
            "json_parser",
            "modelt_parse_json",
            "header",
        }
        assert max(m["max_abs_error"].values()) <= 1e-5


@needs_rtneural
@needs_reference
def test_header_generator_on_rtneural_reference_models(tmp_path):
    """Headers made from RTNeural's own conv/batchnorm/PReLU/GRU/LSTM files reproduce its outputs."""
    cases = {"conv": "conv", "gru": "gru", "lstm": "lstm", "dense": "dense"}
    for name in cases:
        model_json = json.loads((REFERENCE / "models" / f"{name}.json").read_text())
        (tmp_path / f"{name}.h").write_text(header.render(name, model_json, f"RTNeural reference {name}"))
    main = tmp_path / "main.cpp"
    main.write_text(
        "#include <fstream>\n#include <iostream>\n#include <memory>\n"
        + "".join(f'#include "{n}.h"\n' for n in cases)
        + """
template <typename M> double run(M& model, const char* x, const char* y) {
    std::ifstream xs(x), ys(y);
    double worst = 0, in, expected;
    while (xs >> in && ys >> expected) {
        float v = float(in);
        model.forward(&v);
        worst = std::max(worst, std::abs(double(model.getOutputs()[0]) - expected));
    }
    return worst;
}
int main(int, char** argv) {
"""
        + "".join(
            f"""    {{ auto m = std::make_unique<models::{n}::Model>(); models::{n}::loadWeights(*m);
      std::cout << "{n} " << run(*m, argv[{2 * i + 1}], argv[{2 * i + 2}]) << "\\n"; }}
"""
            for i, n in enumerate(cases)
        )
        + "}\n"
    )
    exe = tmp_path / "main"
    done = subprocess.run([*compile_flags(tmp_path), "-O1", str(main), "-o", str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    data = [str(REFERENCE / "test_data" / f"{cases[n]}_{s}_python.csv") for n in cases for s in "xy"]
    out = subprocess.run([str(exe), *data], capture_output=True, text=True, check=True).stdout
    errors = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()}
    assert set(errors) == set(cases)
    assert all(e <= 1e-5 for e in errors.values()), errors  # float32 in RTNeural vs double references


def test_cli_runs_as_a_module(trained, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "validate",
            "--out",
            str(tmp_path / "nothing"),
            "--checkpoints",
            str(trained / "checkpoints"),
            "--no-rtneural",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "missing: export the models first (make export)" in done.stderr


# The C++ element types the generated engines store weights in, and their sizes.
STORED_TYPES = {"float": 4, "std::uint16_t": 2, "std::int8_t": 1, "std::int32_t": 4}
WEIGHT_ARRAY = re.compile(r"MODELS_WEIGHTS_ATTR inline constexpr (\S+) (\w+)\[(\d+)\] = \{(.*?)\};", re.S)


@pytest.mark.parametrize("engine", list(engines.PRECISIONS))
def test_weight_bytes_are_the_arrays_the_header_stores(exported, engine):
    """kWeightBytes (what results, report, gate and boards show) is the sum of the weight arrays the
    engine's header really holds, counted element by element: int8 with its scales and sums, float16
    at 2 bytes. A precision reporting float32's size fails here."""
    rows = {row["name"]: row for row in json.loads((exported / "manifest.json").read_text())["models"]}
    for name in SMALL:
        text = (exported / f"{name}.{engine}.h").read_text()
        arrays = WEIGHT_ARRAY.findall(text)
        assert arrays, f"{name}.{engine}.h: no weight arrays found"
        total = 0
        for ctype, array, declared, values in arrays:
            count = len([v for v in values.split(",") if v.strip()])
            assert count == int(declared), f"{array}: {count} values for [{declared}]"
            total += STORED_TYPES[ctype] * count
        stated = int(re.search(r"kWeightBytes = (\d+);", text)[1])
        assert stated == total, f"{name}.{engine}.h states {stated:,} bytes, its arrays hold {total:,}"
        full = 4 * rows[name]["parameters"]
        assert total == full if engine == engines.GENERATED else total < 0.8 * full
