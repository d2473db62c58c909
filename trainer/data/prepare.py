"""`make data`: place the real music reachable from package registries into the layouts the
loaders read, record where each set came from, and parse each once into the cache."""
from __future__ import annotations

import csv
import io
import logging
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from common import atomic
from common.errors import SuiteError
from trainer import data

log = logging.getLogger("trainer.data")

MIDITOK = "miditok==3.1.0"  # its source package ships 10 MAESTRO performances; 2.x ships none
ESSEN_QUICK = ("kinder0.abc", "ballad10.abc")
CHORALES_QUICK = 160


def music21_corpus() -> Path:
    import music21
    return Path(music21.__file__).parent / "corpus"


def place_melody(data_dir: Path, profile: str) -> dict:
    essen = music21_corpus() / "essenFolksong"
    names = ESSEN_QUICK if profile == "quick" else sorted(
        p.name for p in essen.glob("*.abc") if not p.name.startswith("test"))
    dest = data_dir / "melody" / "essen"
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(essen / name, dest / name)
    return {"set": "melody", "files": len(names), "path": str(dest),
            "origin": "Essen folk song collection (ABC), from the music21 corpus (PyPI music21)",
            "licence": "music21 corpus terms: distributed with the encoders' permission, non-commercial use "
                       "(music21/corpus/essenFolksong/license.txt)"}


def place_harmony(data_dir: Path, profile: str) -> dict:
    from music21 import corpus

    paths = sorted(Path(p) for p in corpus.getComposer("bach") if str(p).endswith(".mxl"))
    if profile == "quick":
        paths = paths[:CHORALES_QUICK]
    dest = data_dir / "harmony" / "bach-chorales"
    dest.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copy2(p, dest / p.name)
    return {"set": "harmony", "files": len(paths), "path": str(dest),
            "origin": "J. S. Bach four-part chorales (MusicXML), from the music21 corpus (PyPI music21)",
            "licence": "music21 corpus terms: distributed with the encoders' permission; "
                       "some not for commercial use (music21/corpus/license.txt)"}


def miditok_sdist(sources: Path) -> Path:
    found = sorted(sources.glob("miditok-3.1.0.tar.gz"))
    if found:
        return found[0]
    sources.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", MIDITOK, "-d", str(sources)]
    if subprocess.run(cmd).returncode != 0:
        raise SuiteError(f"could not download the {MIDITOK} source package (pip download failed)", sources)
    return miditok_sdist(sources)


def place_dynamics(data_dir: Path, sources: Path) -> dict:
    sdist = miditok_sdist(sources)
    root = data_dir / "maestro-v3.0.0"
    rows = []
    with tarfile.open(sdist) as tar:
        members = sorted((m for m in tar.getmembers() if "/MIDIs_one_track/Maestro_" in m.name),
                         key=lambda m: int(Path(m.name).stem.split("_")[1]))
        for k, m in enumerate(members):
            rel = f"2018/{Path(m.name).stem}.midi"
            atomic.write_bytes(root / rel, tar.extractfile(m).read())
            rows.append({"canonical_composer": "unknown", "canonical_title": Path(m.name).stem,
                         "split": "validation" if k >= len(members) - 2 else "train", "year": 2018,
                         "midi_filename": rel, "audio_filename": "", "duration": ""})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(root / "maestro-v3.0.0.csv", buf.getvalue())
    return {"set": "dynamics", "files": len(rows), "path": str(root),
            "origin": f"MAESTRO v3 piano performances shipped in the {MIDITOK} source package "
                      "(tests/MIDIs_one_track/Maestro_*.mid), laid out as MAESTRO distributes them",
            "licence": "MAESTRO: CC BY-NC-SA 4.0"}


def write_sources(data_dir: Path, sets: list[dict]) -> None:
    atomic.write_json(data_dir / "sources.json", sets)
    lines = ["# Data sets in this folder", "", "Written by `make data`; one row per real set.", "",
             "| set | files | origin | licence |", "|---|---|---|---|"]
    lines += [f"| {s['set']} | {s['files']} | {s['origin']} | {s['licence']} |" for s in sets]
    lines += ["", "Emotion (DEAM) and groove (Groove MIDI) are not reachable here; put them under this "
              "folder as distributed and the loaders find them. Until then those models train on synthetic data."]
    atomic.write_text(data_dir / "SOURCES.md", "\n".join(lines) + "\n")


def prepare_all(data_dir: Path, sources: Path, profile: str) -> list[dict]:
    sets = [place_melody(data_dir, profile), place_harmony(data_dir, profile), place_dynamics(data_dir, sources)]
    write_sources(data_dir, sets)
    for s in sets:  # parse once now, so training reads the cache
        ds = data.load(s["set"], data_dir, synthetic_steps=0)
        s["steps"] = sum(ds.steps)
        log.info("%s: %s, %d train / %d validation steps", s["set"], ds.description, *ds.steps)
    return sets
