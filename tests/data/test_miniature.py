"""The real datasets' published layouts in miniature, served on 127.0.0.1: every registry entry
round-trips download -> verify -> extract -> index -> load_dataset(profile="laptop"), and a
tampered archive is refused before anything is extracted.

The miniatures are built from the offline sets in the data cache (``make test`` prepares them
first); without them these tests skip and say which set is missing.
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf
import torch

from course_lib.data import download, load_dataset, miniature
from course_lib.data.download import (
    COMPLETE_MARKER,
    MINIATURE_INDEX,
    DatasetUnavailable,
    FixtureMirrorError,
    fetch,
)
from course_lib.data.real import GTZAN_GENRES, RAVDESS_EMOTIONS, SPEECH_COMMANDS_WORDS, index_dataset
from course_lib.data.registry import DATASETS, FIXTURE_MIRROR_ENV, fixture_mirror

# Independent references: what each dataset's publisher ships (not read from course_lib.data.miniature).
ESC50_FIRST_CATEGORIES = ("dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow")
CLASSES = {
    "speech_commands": list(SPEECH_COMMANDS_WORDS),
    "fsdd": [str(d) for d in range(10)],
    "gtzan": list(GTZAN_GENRES),
    "ravdess": list(RAVDESS_EMOTIONS),
}
AUDIO_FORMAT = {"gtzan": "AU", "librispeech_train_clean_100": "FLAC", "librispeech_dev_clean": "FLAC",
                "librispeech_test_clean": "FLAC"}
CLIP_SECONDS = {"speech_commands": 1.0, "esc50": 5.0}
# Files the published archives hold, relative to the dataset root fetch() returns.
PUBLISHED_FILES = {
    "speech_commands": ["validation_list.txt", "testing_list.txt", "_background_noise_/white_noise.wav",
                        "_background_noise_/README.md"],
    "fsdd": ["recordings"],
    "esc50": ["meta/esc50.csv", "audio"],
    "gtzan": ["blues"],
    "ravdess": ["Actor_01", "Actor_24"],
    "librispeech_train_clean_100": ["train-clean-100", "SPEAKERS.TXT", "CHAPTERS.TXT"],
    "librispeech_dev_clean": ["dev-clean", "SPEAKERS.TXT", "CHAPTERS.TXT"],
    "librispeech_test_clean": ["test-clean", "SPEAKERS.TXT"],
    "ljspeech": ["metadata.csv", "wavs"],
    "maestro_midi": ["maestro-v3.0.0.csv", "maestro-v3.0.0.json"],
}


def _offline_set_built(name: str) -> bool:
    from course_lib.data.offline.common import offline_dir

    return (offline_dir(name) / "manifest.json").is_file()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every miniature whose offline sets are built, built once into a temporary folder."""
    out = tmp_path_factory.mktemp("miniature")
    names = [n for n, (_, sets) in sorted(miniature.BUILDERS.items()) if all(map(_offline_set_built, sets))]
    if not names:
        pytest.skip("no offline set is built: python -m course_lib.data prepare")
    return out, miniature.build_all(out, names, build_missing=False)


def need(built, *names: str) -> None:
    for name in names:
        if name not in built[1]["datasets"]:
            sets = " ".join(f"--only {s}" for s in miniature.BUILDERS[name][1])
            pytest.skip(f"{name}: its offline set is not built (python -m course_lib.data prepare {sets})")


@pytest.fixture(scope="module")
def server(built):
    with miniature.MiniatureServer(built[0]) as srv:
        yield srv


@pytest.fixture()
def mirror(server, monkeypatch, tmp_path):
    """COURSE_FIXTURE_MIRROR set to the server; returns a fresh cache folder."""
    monkeypatch.setenv(FIXTURE_MIRROR_ENV, server.url)
    monkeypatch.setattr(download, "_announced_fixtures", set())  # announce again in every test
    return tmp_path / "cache"


def test_every_registry_entry_has_a_miniature():
    assert set(miniature.BUILDERS) == set(DATASETS), "add a builder to course_lib.data.miniature.BUILDERS"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_round_trip(name, built, mirror, capsys):
    need(built, name)
    info = DATASETS[name]
    entry = built[1]["datasets"][name]
    assert entry["archive"] == info.archive  # the registry's archive name and type
    assert ("md5" in entry) == (info.sha256 is None)  # the registry's kind of checksum

    root = fetch(name, cache_root=mirror, progress=False)
    out = capsys.readouterr().out
    assert out.count(f"{FIXTURE_MIRROR_ENV} is set: {name} comes from the miniature test fixture") == 1, out
    assert root == (mirror / "miniature" / built[1]["build"] / name / info.root).resolve()
    assert (root / info.marker).exists()
    assert (mirror / "miniature" / built[1]["build"] / name / COMPLETE_MARKER).is_file()
    for rel in PUBLISHED_FILES[name]:
        assert (root / rel).exists(), f"{name}: {rel} missing from the published layout"
    assert not (mirror / info.name).exists(), "a miniature must never land where the real dataset goes"

    for split, count in entry["counts"].items():
        records, classes = index_dataset(name, root, split)
        assert len(records) == count, (split, len(records), count)
        if name in CLASSES:
            assert classes == CLASSES[name]
        elif name == "esc50":
            assert classes == list(ESC50_FIRST_CATEGORIES[: len(classes)]) and len(classes) >= 2
        else:
            assert classes == [] and all(r.label == -1 for r in records)
        if classes:
            assert len({r.label for r in records}) >= 2, f"{name} {split}: one class only"
        if info.sr is None:  # MIDI
            import pretty_midi

            assert all(pretty_midi.PrettyMIDI(str(r.path)).instruments for r in records)
            continue
        for r in records[:3]:
            meta = sf.info(str(r.path))
            assert meta.samplerate == info.sr and meta.channels == 1, (r.path, meta)
            assert meta.format == AUDIO_FORMAT.get(name, "WAV") and meta.subtype == "PCM_16"
            if name in CLIP_SECONDS:
                assert meta.frames == int(CLIP_SECONDS[name] * info.sr)

    if info.sr is None:
        return
    for split, count in entry["counts"].items():
        ds = load_dataset(name, split, profile="laptop", cache_root=mirror, build_missing=False)
        assert ds.source == f"real:{name}" and "MINIATURE TEST FIXTURE" in ds.note
        if split == "train":
            assert 0 < len(ds) <= count  # the profile's data_fraction, per class
        else:  # LibriSpeech: one official subset per entry, whatever the split
            assert len(ds) == count
        wave, label, meta = ds[0]
        assert wave.dtype == torch.float32 and wave.shape[0] == 1 and wave.shape[1] > 0
        assert float(wave.abs().max()) > 0.0, "decoded silence"
        assert ds.classes == (CLASSES.get(name) or ds.classes)


def test_laptop_budget_override_reaches_the_training_subset(built, mirror, monkeypatch):
    need(built, "esc50")
    entry = built[1]["datasets"]["esc50"]
    monkeypatch.setenv("COURSE_BUDGET", "data_fraction=1.0,epochs=2")
    ds = load_dataset("esc50", "train", profile="laptop", cache_root=mirror, build_missing=False)
    assert len(ds) == entry["counts"]["train"]
    monkeypatch.delenv("COURSE_BUDGET")
    ds = load_dataset("esc50", "train", profile="laptop", cache_root=mirror, build_missing=False)
    assert len(ds) < entry["counts"]["train"]


def test_budget_override_parsing(monkeypatch):
    from course_lib.runtime import PROFILES, profile_budget

    monkeypatch.setenv("COURSE_BUDGET", "epochs=3, max_clips=none ,data_fraction=0.5")
    b = profile_budget("laptop")
    assert (b.epochs, b.max_clips, b.data_fraction) == (3, None, 0.5)
    assert b.batch_size == PROFILES["laptop"].batch_size
    monkeypatch.setenv("COURSE_BUDGET", "epoch=3")
    with pytest.raises(ValueError, match="COURSE_BUDGET.*epochs"):
        profile_budget("laptop")
    monkeypatch.setenv("COURSE_BUDGET", "epochs=three")
    with pytest.raises(ValueError, match="not a number"):
        profile_budget("laptop")


@pytest.mark.parametrize("name", ["librispeech_test_clean", "ravdess"])  # sha256, and RAVDESS's md5
def test_tampered_fixture_fails_its_checksum_and_nothing_is_extracted(name, built, tmp_path, monkeypatch):
    need(built, name)
    folder = tmp_path / "served"
    folder.mkdir()
    index = json.loads((built[0] / MINIATURE_INDEX).read_text())
    index["datasets"] = {name: index["datasets"][name]}
    (folder / MINIATURE_INDEX).write_text(json.dumps(index))
    archive = folder / index["datasets"][name]["archive"]
    data = bytearray((built[0] / archive.name).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed after the checksum was recorded; same size
    archive.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with miniature.MiniatureServer(folder) as srv:
        monkeypatch.setenv(FIXTURE_MIRROR_ENV, srv.url)
        with pytest.raises(DatasetUnavailable) as caught:
            fetch(name, cache_root=cache, progress=False)
    message = str(caught.value)
    kind = "md5" if name == "ravdess" else "sha256"
    assert "checksum mismatch" in message and f"expected {kind}" in message, message
    assert srv.url + archive.name in message  # names the URL that served the bad file
    fixture_dir = cache / "miniature" / index["build"]
    assert not (fixture_dir / name).exists(), "nothing may be extracted from a file that failed its checksum"
    assert not list(fixture_dir.glob(f".{name}.*")), "no temporary extraction left behind"
    assert not [p for p in (fixture_dir / "downloads").iterdir() if not p.name.endswith(".lock")], \
        "the bad download must be deleted"


def test_fixture_mirror_only_accepts_a_loopback_server(monkeypatch, tmp_path):
    monkeypatch.delenv(FIXTURE_MIRROR_ENV, raising=False)
    assert fixture_mirror() is None
    for value in ("https://127.0.0.1:8000/", "http://example.com:8000/", "http://127.0.0.1/", "/tmp/x"):
        monkeypatch.setenv(FIXTURE_MIRROR_ENV, value)
        with pytest.raises(ValueError, match=FIXTURE_MIRROR_ENV):
            fetch("fsdd", cache_root=tmp_path, progress=False)
    monkeypatch.setenv(FIXTURE_MIRROR_ENV, "http://127.0.0.1:9")  # discard port: nothing listens
    assert fixture_mirror() == "http://127.0.0.1:9/"
    # a test run that asked for the fixtures fails loudly instead of falling back to offline data
    with pytest.raises(FixtureMirrorError, match="cannot be read"):
        load_dataset("fsdd", "test", profile="laptop", cache_root=tmp_path, build_missing=False)


def test_server_serves_only_the_index_and_its_archives(server, built):
    need(built, "maestro_midi")
    for path in ("/../miniature.json", "/etc/passwd", "/nonexistent.zip"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url.rstrip("/") + path, timeout=5)
        assert err.value.code == 404
    name = built[1]["datasets"]["maestro_midi"]["archive"]
    request = urllib.request.Request(server.url + name, headers={"Range": "bytes=10-"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 206
        assert response.read() == (built[0] / name).read_bytes()[10:]


def test_builds_are_byte_identical(built, tmp_path):
    need(built, "maestro_midi")
    again = miniature.build_miniature("maestro_midi", tmp_path, build_missing=False)
    assert again["sha256"] == built[1]["datasets"]["maestro_midi"]["sha256"]
    # and the index is reused (not rebuilt) while code and offline sets are unchanged
    before = (built[0] / MINIATURE_INDEX).stat().st_mtime_ns
    names = sorted(built[1]["datasets"])
    assert miniature.build_all(built[0], names, build_missing=False)["build"] == built[1]["build"]
    assert (built[0] / MINIATURE_INDEX).stat().st_mtime_ns == before


def test_esc50_metadata_matches_the_published_schema(built, mirror):
    need(built, "esc50")
    root = fetch("esc50", cache_root=mirror, progress=False)
    with open(root / "meta" / "esc50.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    for row in rows:
        fold, src, take, target = Path(row["filename"]).stem.split("-")
        assert (fold, src, take, target) == (row["fold"], row["src_file"], row["take"], row["target"])
        assert row["category"] == ESC50_FIRST_CATEGORIES[int(row["target"])]
        assert (root / "audio" / row["filename"]).is_file()
    assert {int(r["fold"]) for r in rows} == {1, 2, 3, 4, 5}
    by_fold = {f: {r["target"] for r in rows if int(r["fold"]) == f} for f in range(1, 6)}
    assert all(by_fold[f] == by_fold[5] for f in by_fold), "every fold holds every class"


def test_speech_commands_lists_keep_speakers_apart(built, mirror):
    need(built, "speech_commands")
    root = fetch("speech_commands", cache_root=mirror, progress=False)
    val = (root / "validation_list.txt").read_text().split()
    test = (root / "testing_list.txt").read_text().split()
    speakers = lambda rels: {Path(r).name.split("_nohash_")[0] for r in rels}  # noqa: E731
    assert not speakers(val) & speakers(test), "Speech Commands assigns whole speakers to a list"
    clips = [p for p in root.glob("*/*.wav") if not p.parent.name.startswith("_")]
    train = {f"{p.parent.name}/{p.name}" for p in clips} - set(val) - set(test)
    assert train and not speakers(train) & (speakers(val) | speakers(test))


def test_ravdess_file_names_carry_the_published_fields(built, mirror):
    need(built, "ravdess")
    root = fetch("ravdess", cache_root=mirror, progress=False)
    for path in root.rglob("*.wav"):
        fields = path.stem.split("-")
        assert len(fields) == 7 and fields[:2] == ["03", "01"] and path.parent.name == f"Actor_{fields[6]}"
        assert 1 <= int(fields[2]) <= 8 and fields[3] in ("01", "02")


def test_maestro_and_ljspeech_metadata_match_their_schemas(built, mirror):
    need(built, "maestro_midi", "ljspeech")
    maestro = fetch("maestro_midi", cache_root=mirror, progress=False)
    table = json.loads((maestro / "maestro-v3.0.0.json").read_text())
    with open(maestro / "maestro-v3.0.0.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["canonical_composer", "canonical_title", "split", "year", "midi_filename",
                             "audio_filename", "duration"]
    assert sorted(table) == sorted(rows[0]) and len(table["midi_filename"]) == len(rows)
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert all(r["midi_filename"].startswith(f"{r['year']}/") for r in rows)
    lj = fetch("ljspeech", cache_root=mirror, progress=False)
    lines = (lj / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert lines and all(len(line.split("|")) == 3 for line in lines)
    assert all((lj / "wavs" / f"{line.split('|')[0]}.wav").is_file() for line in lines)
