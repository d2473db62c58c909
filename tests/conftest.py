import tarfile
from pathlib import Path

import pytest

from trainer.profiles import Profile

ROOT = Path(__file__).resolve().parents[1]
MIDITOK_SDIST = ROOT / ".cache" / "sources" / "miditok-3.1.0.tar.gz"

TINY = Profile("tiny", max_epochs=4, steps_per_epoch=3, batch_size=4, seq_len=16, learning_rate=1e-3,
               patience=2, min_delta=0.0, synthetic_steps=600, val_steps=128)


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
