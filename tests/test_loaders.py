"""The loaders on real files (a Bach chorale, a MAESTRO performance, Essen tunes) and on the
distributed layouts of the sets this machine lacks, written small by the tests."""

import csv
import logging
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest

from trainer import data
from trainer.data import dynamics, harmony, melody, midi
from trainer.data.prepare import music21_corpus


@pytest.fixture(scope="module")
def chorale() -> Path:
    from music21 import corpus

    return Path(corpus.getWork("bwv66.6"))


def test_real_chorale_gives_chords_on_the_beat(chorale):
    (seq,) = harmony.parse(chorale)
    assert seq.inputs.shape[1] == 128 and len(seq) > 20
    assert set(np.unique(seq.inputs)) == {0.0, 1.0}
    assert seq.inputs.sum(1).min() >= 3 and seq.inputs.sum(1).max() <= 4  # four voices
    classes = seq.targets["next_chord"]
    assert classes.min() >= 0 and classes.max() < 64
    # bwv66.6 is in F# minor: its tonic chord (root F# = 6, minor = index 1) is among the commonest
    assert 6 * 5 + 1 in np.bincount(classes).argsort()[-3:]


def test_chord_classes():
    assert harmony.chord_class(0, "major") == 0
    assert harmony.chord_class(7, "dominant-seventh") == 39
    assert harmony.chord_class(2, "diminished-seventh") == harmony.DIM7
    assert harmony.chord_class(None, "") == harmony.REST
    assert harmony.chord_class(5, "quartal") == harmony.OTHER


def test_real_maestro_performance(maestro_midi):
    perf = midi.read(maestro_midi)
    seqs = dynamics.parse(maestro_midi)
    assert sum(map(len, seqs)) == len(perf.notes) > 1000
    v = np.concatenate([s.targets["dynamics"] for s in seqs])
    assert v.min() >= 1 and v.max() <= 127 and v.std() > 5  # a real performance varies its dynamics
    x = np.concatenate([s.inputs for s in seqs])
    assert x.shape[1] == 32 and np.isfinite(x).all()
    assert np.allclose(x[:, :12].sum(1), 1)  # one pitch class per note
    assert x[:, 25].max() == 1.0  # the pianist uses the sustain pedal


def test_maestro_layout_is_found_and_split(tmp_path, maestro_midi):
    root = tmp_path / "maestro-v3.0.0"
    (root / "2018").mkdir(parents=True)
    for name in ("a", "b"):
        shutil.copy(maestro_midi, root / "2018" / f"{name}.midi")
    with open(root / "maestro-v3.0.0.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["canonical_composer", "canonical_title", "split", "year", "midi_filename", "duration"])
        w.writerow(["X", "A", "train", 2018, "2018/a.midi", 1])
        w.writerow(["X", "B", "validation", 2018, "2018/b.midi", 1])
    ds = data.load("dynamics", tmp_path, synthetic_steps=100, progress=False)
    assert ds.source == "real" and len(ds.files) == 2
    assert sum(map(len, ds.train)) == sum(map(len, ds.val))  # one performance each side
    again = data.load("dynamics", tmp_path, synthetic_steps=100, progress=False)  # from the cache
    assert np.array_equal(again.train[0].inputs, ds.train[0].inputs)


def test_essen_abc_tunes():
    seqs = melody.parse(music21_corpus() / "essenFolksong" / "erk5.abc")
    assert len(seqs) > 5
    for seq in seqs:
        assert seq.inputs.shape[1] == 64 and np.allclose(seq.inputs.sum(1), 1)
        assert seq.targets["next_note"].min() >= 36 and seq.targets["next_note"].max() <= 96


def test_lakh_style_midi_skyline(tmp_path):
    path = tmp_path / "lmd_full" / "0" / "0123abcd.mid"
    path.parent.mkdir(parents=True)
    write_midi(path, [(0, 60, 64, 0), (0, 48, 64, 0), (480, 62, 64, 0), (960, 64, 64, 0), (960, 36, 100, 9)])
    assert melody.skyline(path) == [60, 62, 64]
    ds = data.load("melody", tmp_path, synthetic_steps=100, progress=False)
    assert ds.source == "synthetic"  # one two-step tune cannot be split; says so and falls back


def test_broken_files_are_skipped_with_a_warning_naming_them(tmp_path, chorale, caplog):
    scores = tmp_path / "harmony"
    scores.mkdir()
    for i in range(3):
        shutil.copy(chorale, scores / f"good{i}.mxl")
    (scores / "broken.mxl").write_bytes(b"this is not a zip file")
    with caplog.at_level(logging.WARNING):
        ds = data.load("harmony", tmp_path, synthetic_steps=100, progress=False)
    assert ds.source == "real" and len(ds.files) == 3
    assert ds.skipped == [str(scores / "broken.mxl")]
    assert "broken.mxl" in caplog.text


def test_absent_sets_fall_back_to_synthetic_and_say_so(tmp_path):
    for task in data.SOURCES:
        ds = data.load(task, tmp_path / "nowhere", synthetic_steps=300, progress=False)
        assert ds.source == "synthetic" and "synthetic" in ds.description and ds.train and ds.val


def test_groove_midi_layout(tmp_path):
    (tmp_path / "groove" / "drummer1").mkdir(parents=True)
    for name, _split in (("a", "train"), ("b", "validation")):
        # 120 bpm: a 16th is 120 ticks at 480 ppq; kick on the beat, a hat 20 ticks late
        write_midi(
            tmp_path / "groove" / "drummer1" / f"{name}.mid",
            [(480 * b, 36, 100, 9) for b in range(8)] + [(480 * b + 240 + 20, 42, 50, 9) for b in range(8)],
        )
    with open(tmp_path / "groove" / "info.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature", "midi_filename", "split"]
        )
        w.writerow(["drummer1", "s", "1", "rock", 120, "beat", "4-4", "drummer1/a.mid", "train"])
        w.writerow(["drummer1", "s", "2", "rock", 120, "beat", "4-4", "drummer1/b.mid", "validation"])
    ds = data.load("groove", tmp_path, synthetic_steps=100, progress=False)
    assert ds.source == "real"
    seq = ds.train[0]
    y, mask = seq.targets["groove"], seq.targets["groove_mask"]
    assert seq.inputs.shape[1] == 64 and y.shape[1] == 32
    assert mask[0, 0] and y[0, 0] == pytest.approx(100 / 127)  # kick on step 0
    assert mask[2, 4] and y[2, 16 + 4] == pytest.approx(2 * 20 / 120, abs=1e-3)  # hat late by 1/6 of a 16th


def test_deam_layout(tmp_path):
    feats = tmp_path / "DEAM" / "features"
    feats.mkdir(parents=True)
    ann = tmp_path / "DEAM" / "annotations" / "dynamic (per second annotations)"
    ann.mkdir(parents=True)
    times = [15000 + 500 * i for i in range(20)]
    for song in ("2", "3", "5", "7", "11", "13", "17", "19", "23", "29", "31"):
        rows = [[t / 1000, *list(np.linspace(-3, 3, 130) * (i + 1))] for i, t in enumerate(times)]
        with open(feats / f"{song}.csv", "w") as f:
            f.write(";".join(["frameTime"] + [f"F{i}" for i in range(130)]) + "\n")
            f.writelines(";".join(map(str, r)) + "\n" for r in rows)
    for name, value in (("valence", 0.9), ("arousal", -0.9)):
        with open(ann / f"{name}.csv", "w") as f:
            f.write("song_id," + ",".join(f"sample_{t}ms" for t in times) + "\n")
            for song in ("2", "3", "5", "7", "11", "13", "17", "19", "23", "29", "31"):
                f.write(song + "," + ",".join([str(value)] * len(times)) + "\n")
    ds = data.load("emotion", tmp_path, synthetic_steps=100, progress=False)
    assert ds.source == "real" and len(ds.files) == 11
    seq = ds.train[0]
    assert seq.inputs.shape == (20, 128)
    assert set(seq.targets["emotion"]) == {7 * 8 + 0}  # high valence, low arousal


def write_midi(path: Path, notes):
    """notes: (tick, pitch, velocity, channel); each lasts 60 ticks."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = sorted(
        [(t, "note_on", p, v, c) for t, p, v, c in notes] + [(t + 60, "note_off", p, 0, c) for t, p, v, c in notes]
    )
    now = 0
    for t, kind, p, v, c in events:
        track.append(mido.Message(kind, note=p, velocity=v, channel=c, time=t - now))
        now = t
    mid.save(str(path))
