"""Offline builders: each set built in a tiny mode into a temporary folder, then its manifest
checked (files and sha256, counts, speaker/kit/piece groups never in two splits, the real test
speaker never in training). A full cache, when present, gets the same checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from course_lib.data import offline
from course_lib.data.offline import sound_events, spoken_digits, spoken_words
from course_lib.data.offline.common import BuildContext, OfflineBuildError, verify_manifest
from course_lib.runtime import data_root

SCALE = 0.05


def _need_tools(name: str) -> None:
    missing = offline.missing_system_packages([name])
    if missing:
        pytest.skip(f"{name} needs missing tool(s): {', '.join(missing)}")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build each set once at a tiny scale; debs come from (and go to) the shared cache."""
    out_root = tmp_path_factory.mktemp("offline")
    cache: dict[str, dict] = {}

    def get(name: str) -> tuple[dict, Path]:
        _need_tools(name)
        if name not in cache:
            out = out_root / name
            out.mkdir()
            ctx = BuildContext(out, data_root(), scale=SCALE, seed=0, progress=False)
            cache[name] = offline.OFFLINE_SETS[name].build(ctx)
        return cache[name], out_root / name

    return get


def check_manifest(man: dict, set_dir: Path) -> None:
    """What every set must satisfy."""
    for key in ("name", "description", "synthetic", "sample_rate", "classes", "sources", "items"):
        assert key in man, key
    assert man["items"], "no clips"
    assert verify_manifest(set_dir) == []  # every file present, sha256 equal
    splits_of = defaultdict(set)
    for it in man["items"]:
        splits_of[it["group"]].add(it["split"])
        assert it["split"] in ("train", "val", "test")
        assert it["duration"] > 0 and len(it["sha256"]) == 64 and it["provenance"]
    leaking = {g: s for g, s in splits_of.items() if len(s) > 1}
    assert not leaking, f"groups in two splits: {leaking}"
    counted = Counter((it["split"], it["label"] or "-") for it in man["items"])
    assert counted == Counter({(s, c): k for s, cs in man["counts"].items() for c, k in cs.items()})
    if man["task"] == "classification":
        assert {it["label"] for it in man["items"]} <= set(man["classes"])
    for src in man["sources"]:
        assert src["package"] and src["license"] and src["provenance"]


@pytest.mark.parametrize("name,words", [("spoken_digits", spoken_digits.DIGITS),
                                        ("spoken_words", spoken_words.WORDS)])
def test_spoken_word_sets(built, name, words):
    man, d = built(name)
    check_manifest(man, d)
    assert man["classes"] == words and man["sample_rate"] == 16000
    test = [it for it in man["items"] if it["split"] == "test"]
    train = [it for it in man["items"] if it["split"] != "test"]
    assert sorted(it["label"] for it in test) == sorted(words)
    assert all(not it["synthetic"] and it["provenance"].startswith("real") for it in test)
    assert {it["speaker"] for it in test} == {"asterisk-en-allison"}
    assert "asterisk-en-allison" not in {it["speaker"] for it in train}
    assert all(it["synthetic"] for it in train)
    assert {it["split"] for it in train} == {"train", "val"}
    assert {it["duration"] for it in man["items"]} == {1.0}
    _check_bandlimited(d / train[0]["path"])


def _check_bandlimited(path: Path) -> None:
    import numpy as np

    from course_lib.audio import load_audio

    x, sr = load_audio(path)
    spec = np.abs(np.fft.rfft(x[0])) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1 / sr)
    assert spec[f > 4200].sum() < 1e-3 * spec.sum(), "training audio must be band-limited to 4 kHz"


def test_digit_strings(built):
    man, d = built("digit_strings")
    check_manifest(man, d)
    assert man["task"] == "asr"
    for it in man["items"]:
        words = it["transcript"].split()
        assert 3 <= len(words) <= 6 and set(words) <= set(spoken_digits.DIGITS)
    test = [it for it in man["items"] if it["split"] == "test"]
    assert test and {it["speaker"] for it in test} == {"asterisk-en-allison"}
    assert all(not it["synthetic"] for it in test)
    assert all(it["synthetic"] for it in man["items"] if it["split"] != "test")


def test_librivox_sentences(built):
    man, d = built("librivox_sentences")
    check_manifest(man, d)
    assert len(man["items"]) == 10 and {it["split"] for it in man["items"]} == {"test"}
    assert any(it["transcript"] == "he was not an ill disposed young man" for it in man["items"])


def test_sound_events(built):
    man, d = built("sound_events")
    check_manifest(man, d)
    assert len(man["classes"]) >= 6
    for split in ("train", "val", "test"):
        assert set(man["counts"][split]) == set(man["classes"]), split
    assert all(it["duration"] == 1.0 for it in man["items"])


def test_sound_event_labels():
    assert sound_events.label_of("Snare Rimshot (Pearl)") == "snare"
    assert sound_events.label_of("Pearl Side Stick") == "rim_stick"
    assert sound_events.label_of("Sabian Hat Closed") == "hihat"
    assert sound_events.label_of("Tom Low (Tama Superstar 16\")") == "tom"
    assert sound_events.label_of("Djembe1 Slap") == "hand_drum"
    assert sound_events.label_of("c3 - bass drum 1") == "kick"
    assert sound_events.label_of("Whistle") is None


def test_music_styles(built):
    man, d = built("music_styles")
    check_manifest(man, d)
    assert man["sample_rate"] == 22050 and len(man["classes"]) == 4
    assert set(man["counts"]["train"]) == set(man["classes"])
    assert all(it["duration"] == 5.0 for it in man["items"])


def test_chorales_aligned_renders(built):
    man, d = built("chorales")
    check_manifest(man, d)
    assert man["files"] and all((d / f["path"]).suffix == ".mid" for f in man["files"])
    by_piece = defaultdict(list)
    for it in man["items"]:
        by_piece[it["piece"]].append(it)
    for piece, its in by_piece.items():
        assert {it["label"] for it in its} == set(man["classes"])
        assert len({it["duration"] for it in its}) == 1, f"{piece}: renders not aligned"


def test_prosody_is_labelled_synthetic(built):
    man, d = built("prosody")
    check_manifest(man, d)
    assert "SYNTHETIC" in man["description"] and "not" in man["synthetic"].lower()
    assert all(it["synthetic"] for it in man["items"])
    assert {it["split"] for it in man["items"]} == {"train", "val", "test"}


def test_prepare_is_idempotent(tmp_path, capsys):
    _need_tools("librivox_sentences")
    shared = data_root() / "debs"
    if shared.is_dir():
        (tmp_path / "debs").symlink_to(shared)
    offline.prepare("librivox_sentences", cache_root=tmp_path, progress=False)
    t0 = time.time()
    again = offline.prepare("librivox_sentences", cache_root=tmp_path, progress=False)
    assert time.time() - t0 < 5 and "up to date" in capsys.readouterr().out
    assert len(again["librivox_sentences"]["items"]) == 10
    # a damaged file makes the set rebuild
    victim = tmp_path / "offline" / "librivox_sentences" / again["librivox_sentences"]["items"][0]["path"]
    victim.write_bytes(b"damaged")
    offline.prepare("librivox_sentences", cache_root=tmp_path, progress=False)
    assert verify_manifest(tmp_path / "offline" / "librivox_sentences") == []


def test_two_processes_preparing_one_set_build_it_once(tmp_path):
    """Two notebooks (or two test workers) asking for the same missing set at once: the second
    must wait and use the first's build, not delete the first's half-written folder (which left
    a set whose clips were missing)."""
    _need_tools("librivox_sentences")
    shared = data_root() / "debs"
    if shared.is_dir():
        (tmp_path / "debs").symlink_to(shared)
    # A build slowed by two seconds, so the two surely overlap.
    code = ("import sys, time; from course_lib.data import offline\n"
            "mod = offline.OFFLINE_SETS['librivox_sentences']; build = mod.build\n"
            "mod.build = lambda ctx: (time.sleep(2), build(ctx))[1]\n"
            "offline.prepare('librivox_sentences', cache_root=sys.argv[1], progress=False)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    joined = "".join(outputs)
    assert joined.count("building into") == 1, joined
    assert "built meanwhile by another process" in joined or "up to date" in joined, joined
    assert verify_manifest(tmp_path / "offline" / "librivox_sentences") == []
    assert not (tmp_path / "offline" / "librivox_sentences.building").exists()


def test_parallel_prepare_builds_sets_sharing_debian_packages(tmp_path):
    """jobs=2: two sets that unpack Debian packages into the same cache, each in its own process."""
    names = ["librivox_sentences", "sound_events"]
    for name in names:
        _need_tools(name)
    shared = data_root() / "debs"
    if shared.is_dir():
        (tmp_path / "debs").symlink_to(shared)
    built = offline.prepare(names, cache_root=tmp_path, progress=False, jobs=2)
    assert list(built) == names
    for name in names:
        assert verify_manifest(tmp_path / "offline" / name) == []


def test_prepare_names_missing_packages(monkeypatch, tmp_path):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda t: None if t == "flite" else real_which(t))
    with pytest.raises(OfflineBuildError) as err:
        offline.prepare("spoken_digits", cache_root=tmp_path)
    assert "flite" in str(err.value) and "apt-get install -y flite" in str(err.value)
    with pytest.raises(ValueError, match="unknown offline set"):
        offline.prepare("nope", cache_root=tmp_path)


def test_system_packages_command(capsys):
    from course_lib.data.__main__ import main

    code = main(["system-packages"])  # checks every tool by use; 1 when one fails
    pkgs = capsys.readouterr().out.split()
    assert code == (1 if offline.missing_system_packages() else 0)
    assert {"espeak-ng", "flite", "festival", "fluidsynth", "timgm6mb-soundfont"} <= set(pkgs)
    assert main(["system-packages", "--missing"]) == 0
    assert capsys.readouterr().out.split() == sorted(set(offline.missing_system_packages().values()))


@pytest.mark.parametrize("name", list(offline.OFFLINE_SETS))
def test_full_cache_if_built(name):
    d = offline.offline_dir(name)
    if not (d / "manifest.json").exists():
        pytest.skip(f"full offline set {name} not built (python -m course_lib.data prepare)")
    man = json.loads((d / "manifest.json").read_text())
    check_manifest(man, d)
    if name == "sound_events":
        assert sum(1 for c in man["classes"] if sum(man["counts"][s].get(c, 0) for s in man["counts"]) >= 30) >= 6


def test_list_command(capsys):
    pytest.importorskip("course_lib.data.download")
    from course_lib.data.__main__ import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Offline sets" in out and all(name in out for name in offline.OFFLINE_SETS)


def test_long_word_is_sped_up_not_cut():
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(int(1.4 * 16000)) / 16000
    word = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # 1.4 s "word"
    clip = spoken_digits.shape_word(word, 16000, rng, narrow=False)
    assert clip.shape == (16000,)
    loud = np.nonzero(np.abs(clip) > 0.05)[0]
    # all of it fits: sped up by ~1.4x, the tone fills nearly the whole second
    assert loud[-1] - loud[0] > 0.95 * 16000
