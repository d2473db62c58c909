"""Property: every reader of a file between stages, fed a randomly damaged version of a valid file,
either reads it correctly or raises SuiteError naming that file; never any other exception."""

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import harness, results, targets
from common import manifest
from common.errors import SuiteError
from exporter import folder, runtime
from models import checkpoint
from models.catalog import get
from tests.test_bench import OUTPUT, fake_build
from trainer.data import dynamics, emotion, groove

# Bounded for CI: about 2 s per reader on the build machines.
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def damaged_bytes(draw, data: bytes) -> bytes:
    """Truncated, with bytes flipped, inserted or cut out."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "cut"]))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def damaged_json(draw, doc):
    """The document with one value somewhere replaced by random JSON, or one key deleted."""
    doc = json.loads(json.dumps(doc))
    node, key = doc, None
    for _ in range(draw(st.integers(0, 6))):
        children = (
            list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        )
        if not children:
            break
        key, child = draw(st.sampled_from(children))
        if not isinstance(child, (dict, list)) or draw(st.booleans()):
            break
        node = child
    if (
        key is None
        or not isinstance(node, (dict, list))
        or key not in (node if isinstance(node, dict) else range(len(node)))
    ):
        return draw(JSON_VALUES)
    if isinstance(node, dict) and draw(st.booleans()):
        del node[key]
    else:
        node[key] = draw(JSON_VALUES)
    return doc


def read_or_named_error(read, path: Path):
    try:
        read(path)
    except SuiteError as exc:
        assert exc.path == path, f"error names {exc.path}, not {path}: {exc}"


def damage_file(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def valid(exported) -> dict:
    return {
        "manifest": (exported / "manifest.json").read_bytes(),
        "model": (exported / "dynamics_engine.json").read_bytes(),
        "vectors": (exported / "dynamics_engine.vectors.json").read_bytes(),
    }


def reader(kind: str):
    spec = get("dynamics_engine")
    return {
        "manifest": lambda p: manifest.load(p.parent),
        "model": runtime.read,
        "vectors": lambda p: folder.read_vectors(p, spec.input_size, spec.output_size),
        "result": results.load,
        "checkpoint": lambda p: checkpoint.load(p, spec),
        "maestro": lambda p: dynamics.index(p.parent),
        "groove": lambda p: groove.index(p.parent),
        "deam": emotion.read_annotations,
    }[kind]


NAMES = {
    "manifest": "manifest.json",
    "model": "m.json",
    "vectors": "v.json",
    "result": "r.json",
    "checkpoint": "best.pt",
    "maestro": "maestro-v3.0.0.csv",
    "groove": "info.csv",
    "deam": "valence.csv",
}


def check(tmp_path_factory, kind: str, data: bytes):
    folder = tmp_path_factory.mktemp(kind)
    read_or_named_error(reader(kind), damage_file(folder, NAMES[kind], data))
    shutil.rmtree(folder)


@pytest.mark.parametrize("kind", ["manifest", "model", "vectors"])
def test_damaged_export_files(kind, valid, tmp_path_factory):
    doc = json.loads(valid[kind])

    @SETTINGS
    @given(st.one_of(damaged_bytes(valid[kind]), damaged_json(doc).map(lambda d: json.dumps(d).encode())))
    def prop(data):
        check(tmp_path_factory, kind, data)

    prop()


def test_damaged_results(tmp_path_factory):
    doc = results.document(targets.get("x86"), "stl", fake_build(), harness.parse(OUTPUT), None, "a", "b")
    data = json.dumps(doc).encode()

    @SETTINGS
    @given(st.one_of(damaged_bytes(data), damaged_json(doc).map(lambda d: json.dumps(d).encode())))
    def prop(data):
        check(tmp_path_factory, "result", data)

    prop()


def test_damaged_checkpoints(trained, tmp_path_factory):
    path = trained / "checkpoints" / "dynamics_engine" / "best.pt"
    data = path.read_bytes()
    ckpt = torch.load(path, weights_only=True)
    plain = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "probe")}

    def rebuilt(changed: dict) -> bytes:
        buf = io.BytesIO()
        torch.save({**ckpt, **changed}, buf)
        return buf.getvalue()

    structural = damaged_json(plain).map(lambda d: rebuilt(d if isinstance(d, dict) else {"format": d}))
    swapped = st.sampled_from(
        [
            {"probe": {"inputs": torch.zeros(3, 32)}},
            {"probe": [1, 2]},
            {"probe": {"inputs": torch.full((64, 32), float("inf"))}},
            {"state_dict": {"layers.0.0.weight": torch.zeros(2)}},
            {"state_dict": [1]},
            {"format": "2"},
        ]
    ).map(rebuilt)

    @SETTINGS
    @given(st.one_of(damaged_bytes(data), structural, swapped))
    def prop(data):
        check(tmp_path_factory, "checkpoint", data)

    prop()


@pytest.mark.parametrize(
    "kind, text",
    [
        ("maestro", "canonical_composer,split,year,midi_filename,duration\nBach,train,2004,2004/a.midi,10.5\n"),
        (
            "groove",
            "drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,split\n"
            "drummer1,s1,1,funk,120,beat,4-4,drummer1/a.mid,train\n",
        ),
        ("deam", "song_id,sample_15000ms,sample_15500ms\n2,0.1,-0.2\n3,0.3\n"),
    ],
)
def test_damaged_dataset_indexes(kind, text, tmp_path_factory):
    @SETTINGS
    @given(damaged_bytes(text.encode()))
    def prop(data):
        check(tmp_path_factory, kind, data)

    prop()
