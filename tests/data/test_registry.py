"""The dataset registry and the index functions, on tiny fake copies of each dataset's layout."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf

from course_lib.data import real
from course_lib.data.registry import DATASETS, OFFLINE_SETS, DatasetInfo, get_info

REQUIRED = {
    "speech_commands", "fsdd", "esc50", "gtzan", "ravdess", "librispeech_dev_clean",
    "maestro_midi", "ljspeech",
}
FALLBACKS = {
    "speech_commands": "spoken_digits", "fsdd": "spoken_digits", "esc50": "sound_events",
    "gtzan": "music_styles", "ravdess": "prosody", "librispeech_dev_clean": "digit_strings",
    "librispeech_test_clean": "digit_strings", "maestro_midi": "chorales",
}


def _silence(path: Path, sr: int = 8000, seconds: float = 0.05) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(sr * seconds), dtype=np.float32), sr)


def _splits(fn, root, **kw):
    return {s: fn(root, s, **kw) for s in ("train", "val", "test")}


def _assert_disjoint(by_split, key):
    """No file and no value of meta[key] appears in two splits."""
    paths = [r.path for recs, _ in by_split.values() for r in recs]
    assert len(paths) == len(set(paths))
    groups = {s: {r.meta[key] for r in recs} for s, (recs, _) in by_split.items()}
    assert not groups["train"] & groups["val"]
    assert not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]


# --------------------------------------------------------------------------- registry


def test_registry_has_required_entries_with_sane_fields():
    assert REQUIRED <= set(DATASETS)
    for name, info in DATASETS.items():
        assert info.name == name
        assert info.offline_fallback in OFFLINE_SETS
        if name in FALLBACKS:
            assert info.offline_fallback == FALLBACKS[name]
        for url in info.mirrors:
            parsed = urlparse(url)
            assert parsed.scheme in ("http", "https") and parsed.netloc, url
        assert len(set(info.mirrors)) == len(info.mirrors)
        assert info.size is None or info.size > 0
        assert info.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", info.sha256)
        assert info.md5 is None or re.fullmatch(r"[0-9a-f]{32}", info.md5)
        assert info.index in real.INDEX_FUNCTIONS
        assert "/" not in info.archive and info.archive
        assert info.license and info.citation and info.splits and info.layout
        assert info.sr is None or info.sr >= 8000


def test_known_checksums_are_pinned():
    # Values from torchaudio's and tensorflow-datasets' records; a silent edit would break downloads.
    assert DATASETS["speech_commands"].sha256.startswith("af14739ee7dc")
    assert DATASETS["librispeech_dev_clean"].sha256.startswith("76f87d090650")
    assert DATASETS["ljspeech"].sha256.startswith("be1a30453f28")
    assert DATASETS["gtzan"].sha256.startswith("24347e0223d2")
    assert DATASETS["ravdess"].md5 == "bc696df654c87fed845eb13823edef8a"


def test_bad_entries_are_rejected_at_construction():
    base = DATASETS["fsdd"]
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    with pytest.raises(ValueError, match="sha256"):
        DatasetInfo(**{**fields, "sha256": "abc"})
    with pytest.raises(ValueError, match="offline_fallback"):
        DatasetInfo(**{**fields, "offline_fallback": "nope"})
    with pytest.raises(KeyError, match="Known datasets"):
        get_info("no_such_dataset")


# --------------------------------------------------------------------------- index functions


def test_index_speech_commands(tmp_path):
    speakers = {"train": ["aaaa1111", "bbbb2222"], "val": ["cccc3333"], "test": ["dddd4444"]}
    lists = {"val": [], "test": []}
    for split, spk in speakers.items():
        for s in spk:
            for word in ("yes", "no", "marvin"):
                rel = f"{word}/{s}_nohash_0.wav"
                _silence(tmp_path / rel, 16000)
                if split != "train":
                    lists[split].append(rel)
    _silence(tmp_path / "_background_noise_" / "white_noise.wav", 16000)
    (tmp_path / "validation_list.txt").write_text("\n".join(lists["val"]) + "\n")
    (tmp_path / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")

    by_split = _splits(real.index_speech_commands, tmp_path)
    classes = by_split["train"][1]
    assert len(classes) == 35 and classes == sorted(classes)
    assert [len(r) for r, _ in by_split.values()] == [6, 3, 3]
    _assert_disjoint(by_split, "speaker")
    for recs, _ in by_split.values():
        for r in recs:
            assert classes[r.label] == r.path.parent.name
            assert r.path.exists() and "_background_noise_" not in str(r.path)


def test_index_fsdd(tmp_path):
    for digit in (0, 7):
        for speaker in ("jackson", "theo"):
            for idx in (0, 4, 5, 9, 10, 49):
                _silence(tmp_path / "recordings" / f"{digit}_{speaker}_{idx}.wav")
    by_split = _splits(real.index_fsdd, tmp_path)
    assert by_split["test"][1] == [str(d) for d in range(10)]
    assert {r.meta["index"] for r in by_split["test"][0]} == {0, 4}
    assert {r.meta["index"] for r in by_split["val"][0]} == {5, 9}
    assert {r.meta["index"] for r in by_split["train"][0]} == {10, 49}
    for recs, _ in by_split.values():
        assert len(recs) == 8
        assert all(r.label == int(r.path.name[0]) for r in recs)
    paths = [r.path for recs, _ in by_split.values() for r in recs]
    assert len(paths) == len(set(paths))


def test_index_esc50(tmp_path):
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    categories = {0: "dog", 1: "rooster", 2: "rain"}
    for fold in range(1, 6):
        for target, cat in categories.items():
            fname = f"{fold}-{100 + target}-A-{target}.wav"
            _silence(tmp_path / "audio" / fname, 44100)
            rows.append(f"{fname},{fold},{target},{cat},{'True' if target == 0 else 'False'},{100 + target}{fold},A")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")

    by_split = _splits(real.index_esc50, tmp_path)
    assert by_split["train"][1] == ["dog", "rooster", "rain"]
    assert {r.meta["fold"] for r in by_split["test"][0]} == {5}
    assert {r.meta["fold"] for r in by_split["val"][0]} == {4}
    assert {r.meta["fold"] for r in by_split["train"][0]} == {1, 2, 3}
    _assert_disjoint(by_split, "fold")
    for recs, classes in by_split.values():
        assert all(classes[r.label] == categories[r.label] and r.path.exists() for r in recs)

    other = _splits(real.index_esc50, tmp_path, test_fold=1, val_fold=2)
    assert {r.meta["fold"] for r in other["test"][0]} == {1}
    train_only, _ = real.index_esc50(tmp_path, "train", val_fold=None)
    assert {r.meta["fold"] for r in train_only} == {1, 2, 3, 4}
    with pytest.raises(ValueError, match="val"):
        real.index_esc50(tmp_path, "val", val_fold=None)


def test_index_gtzan_uses_fault_filtered_split(tmp_path):
    from torchaudio.datasets import gtzan

    chosen = {"train": gtzan.filtered_train[:3], "val": gtzan.filtered_valid[:2], "test": gtzan.filtered_test[:2]}
    for tracks in chosen.values():
        for track in tracks:
            _silence(tmp_path / track.split(".")[0] / f"{track}.wav", 22050)
    # A clip the fault-filtered split leaves out (a known repetition) is never indexed.
    excluded = sorted({f"{g}.{i:05d}" for g in real.GTZAN_GENRES for i in range(100)}
                      - set(gtzan.filtered_train) - set(gtzan.filtered_valid) - set(gtzan.filtered_test))[0]
    _silence(tmp_path / excluded.split(".")[0] / f"{excluded}.au", 22050)

    by_split = _splits(real.index_gtzan, tmp_path)
    for split, (recs, classes) in by_split.items():
        assert sorted(r.meta["track"] for r in recs) == sorted(chosen[split])
        assert classes == list(real.GTZAN_GENRES)
        assert all(classes[r.label] == r.meta["track"].split(".")[0] for r in recs)
    _assert_disjoint(by_split, "track")
    assert excluded not in {r.meta["track"] for recs, _ in by_split.values() for r in recs}


def test_index_ravdess_splits_by_actor(tmp_path):
    for actor in (1, 2, 18, 19, 20, 21, 24):
        for emotion in (1, 5, 8):
            name = f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            _silence(tmp_path / f"Actor_{actor:02d}" / name, 48000)
        # Song (channel 02) and video (modality 01) files are not speech audio: skipped.
        _silence(tmp_path / f"Actor_{actor:02d}" / f"03-02-03-01-01-01-{actor:02d}.wav", 48000)
        _silence(tmp_path / f"Actor_{actor:02d}" / f"01-01-03-01-01-01-{actor:02d}.wav", 48000)

    by_split = _splits(real.index_ravdess, tmp_path)
    assert by_split["train"][1][0] == "neutral" and by_split["train"][1][7] == "surprised"
    assert {r.meta["speaker"] for r in by_split["train"][0]} == {1, 2, 18}
    assert {r.meta["speaker"] for r in by_split["val"][0]} == {19, 20}
    assert {r.meta["speaker"] for r in by_split["test"][0]} == {21, 24}
    _assert_disjoint(by_split, "speaker")
    for recs, _ in by_split.values():
        assert {r.label for r in recs} == {0, 4, 7}  # emotion code - 1, from field 3
        assert all(int(r.path.stem.split("-")[2]) - 1 == r.label for r in recs)


def test_index_librispeech(tmp_path):
    for subset, speakers in (("dev-clean", ("84", "174")), ("test-clean", ("1089",))):
        for spk in speakers:
            chapter = tmp_path / "LibriSpeech" / subset / spk / "121123"
            lines = []
            for utt in range(2):
                utt_id = f"{spk}-121123-{utt:04d}"
                _silence(chapter / f"{utt_id}.flac", 16000)
                lines.append(f"{utt_id} HELLO WORLD NUMBER {utt}")
            (chapter / f"{spk}-121123.trans.txt").write_text("\n".join(lines) + "\n")

    root = tmp_path / "LibriSpeech"
    dev, classes = real.index_librispeech(root, "val")
    test, _ = real.index_librispeech(root, "test")
    assert classes == []
    assert len(dev) == 4 and len(test) == 2
    assert all(r.label == -1 and r.path.exists() for r in dev + test)
    assert dev[0].meta["transcript"] == "HELLO WORLD NUMBER 0"
    assert not {r.meta["speaker"] for r in dev} & {r.meta["speaker"] for r in test}
    # index_dataset picks the subset each registry entry downloads.
    assert len(real.index_dataset("librispeech_test_clean", root, "val")[0]) == 2
    with pytest.raises(FileNotFoundError, match="train-clean-100"):
        real.index_librispeech(root, "train")


def test_index_ljspeech(tmp_path):
    lines = []
    for chapter in ("LJ001", "LJ002", "LJ003", "LJ050"):
        for n in (1, 2):
            clip = f"{chapter}-{n:04d}"
            _silence(tmp_path / "wavs" / f"{clip}.wav", 22050)
            lines.append(f"{clip}|Text {n}, \"quoted\"|Text {n}, quoted normalised")
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    by_split = _splits(real.index_ljspeech, tmp_path)
    assert {r.meta["chapter"] for r in by_split["test"][0]} == {"LJ001"}
    assert {r.meta["chapter"] for r in by_split["val"][0]} == {"LJ002"}
    assert {r.meta["chapter"] for r in by_split["train"][0]} == {"LJ003", "LJ050"}
    _assert_disjoint(by_split, "chapter")
    assert by_split["test"][0][0].meta["transcript"] == "Text 1, quoted normalised"


def test_index_maestro(tmp_path):
    header = "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration"
    rows = [header]
    for i, split in enumerate(["train", "train", "validation", "test"]):  # the csv spells it out
        midi = f"2018/piece_{i}.midi"
        (tmp_path / "2018").mkdir(exist_ok=True)
        (tmp_path / midi).write_bytes(b"MThd")
        rows.append(f'Composer {i},"Title, No. {i}",{split},2018,{midi},2018/piece_{i}.wav,{10.5 + i}')
    (tmp_path / "maestro-v3.0.0.csv").write_text("\n".join(rows) + "\n")
    by_split = _splits(real.index_maestro, tmp_path)
    assert [len(r) for r, _ in by_split.values()] == [2, 1, 1]
    _assert_disjoint(by_split, "title")
    rec = by_split["test"][0][0]
    assert rec.label == -1 and rec.path.exists() and rec.meta["title"] == "Title, No. 3"
    assert rec.meta["duration"] == pytest.approx(13.5)


def test_index_errors_name_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="validation_list.txt"):
        real.index_speech_commands(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="esc50.csv"):
        real.index_esc50(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be one of"):
        real.index_ravdess(tmp_path, "dev")


def test_registry_names_every_offline_set_the_builders_make():
    from course_lib.data import offline, registry

    assert set(registry.OFFLINE_SETS) == set(offline.OFFLINE_SETS)


def test_gtzan_leaves_out_a_jazz_00054_that_does_not_decode(tmp_path, capsys):
    """Some shared copies of GTZAN hold jazz.00054 broken: indexing drops it with one line,
    instead of a run that stops mid-epoch when the clip is first decoded."""
    import numpy as np
    import soundfile as sf

    from course_lib.data.real import _gtzan_lists, index_gtzan

    train = _gtzan_lists()["train"]
    assert "jazz.00054" in train
    other = next(t for t in train if t.startswith("jazz.") and t != "jazz.00054")
    (tmp_path / "jazz").mkdir()
    sf.write(tmp_path / "jazz" / f"{other}.wav", np.zeros(2205, dtype=np.float32), 22050)
    (tmp_path / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    records, _ = index_gtzan(tmp_path, "train")
    assert [r.meta["track"] for r in records] == [other]
    assert "jazz.00054.wav left out" in capsys.readouterr().out
    sf.write(tmp_path / "jazz" / "jazz.00054.wav", np.zeros(2205, dtype=np.float32), 22050)   # a good copy
    records, _ = index_gtzan(tmp_path, "train")
    assert sorted(r.meta["track"] for r in records) == sorted([other, "jazz.00054"])
