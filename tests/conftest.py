import sys
import tarfile
from pathlib import Path

import pytest
import torch

from common import layout
from models.catalog import get
from trainer.profiles import Profile
from trainer.train import train_model

ROOT = Path(__file__).resolve().parents[1]
MIDITOK_SDIST = ROOT / ".cache" / "sources" / "miditok-3.1.0.tar.gz"

TINY = Profile(
    "tiny",
    max_epochs=4,
    steps_per_epoch=3,
    batch_size=4,
    seq_len=16,
    learning_rate=1e-3,
    patience=2,
    min_delta=0.0,
    synthetic_steps=600,
    val_steps=128,
)


def train_command(tmp_path: Path, out: Path) -> list[str]:
    """`python -m trainer train` of GroovePredictor on synthetic data: a run long enough to stop."""
    return [
        sys.executable,
        "-m",
        "trainer",
        "train",
        "--models",
        "groove_predictor",
        "--synthetic",
        "--out",
        str(out),
        "--no-progress",
    ]


@pytest.fixture
def no_torch(tmp_path) -> Path:
    """A folder that, first on PYTHONPATH, makes `import torch` fail."""
    shim = tmp_path / "shim" / "torch"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('torch is unimportable in this test')\n")
    return shim.parent


@pytest.fixture
def tiny_profile():
    return TINY


@pytest.fixture(scope="session")
def maestro_midi(tmp_path_factory) -> Path:
    """A real MAESTRO performance, from the miditok source package `make setup` downloads."""
    if not MIDITOK_SDIST.exists():
        pytest.fail(f"{MIDITOK_SDIST} missing: run make setup")
    out = tmp_path_factory.mktemp("maestro") / "Maestro_1.midi"
    with tarfile.open(MIDITOK_SDIST) as tar:
        out.write_bytes(tar.extractfile("miditok-3.1.0/tests/MIDIs_one_track/Maestro_1.mid").read())
    return out


SMALL = ["dynamics_engine", "groove_predictor"]  # the two smallest models: quick to train, export and compile


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """Checkpoints of the small models trained with the tiny profile (synthetic data)."""
    root = tmp_path_factory.mktemp("trained")
    for name in SMALL:
        train_model(get(name), TINY, root / "no-data", root / "checkpoints", torch.device("cpu"), progress=False)
    return root


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory) -> Path:
    """build/models-style export of the small models: <name>.{json,h,vectors.json}, the set's headers
    and manifest.json."""
    from exporter.export import export_all

    out = tmp_path_factory.mktemp("exported")
    export_all([get(n) for n in SMALL], trained / "checkpoints", out)
    return out


@pytest.fixture(scope="session")
def pio_ready():
    """PlatformIO's build engine installed offline into the project's core dir (make setup does it)."""
    from bench import pio_core

    pio_core.install()


@pytest.fixture
def every_layer_int8(monkeypatch):
    """The int8 engine with no layer kept in float32 (layout.INT8_MIN_PARAMETERS is 8192, more than
    most test models' layers have): for the tests of its int8 kernels and their reference."""
    monkeypatch.setattr(layout, "INT8_MIN_PARAMETERS", 0)
