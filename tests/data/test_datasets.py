"""course_lib.data.datasets: load_dataset over offline sets and the real-data fallback, collate,
packing and summaries, on a small hand-made offline set (no system tools needed)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.data import (
    AudioDataset,
    OfflineSetMissing,
    PackedSplit,
    Record,
    collate_pad,
    dataset_summary,
    load_dataset,
    pack_split,
)
from course_lib.audio import AudioError
from course_lib.data.offline.common import BuildContext, SetWriter, offline_dir

CLASSES = ["low", "high"]


@pytest.fixture()
def cache(tmp_path):
    """A tiny 'spoken_digits' offline set: tones of two pitches and different lengths."""
    out = offline_dir("spoken_digits", tmp_path)
    out.mkdir(parents=True)
    ctx = BuildContext(out, tmp_path, progress=False)
    w = SetWriter(ctx, 16000)
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        for i in range(n):
            label = CLASSES[i % 2]
            f = 300.0 if label == "low" else 3000.0
            length = int(rng.integers(4000, 12000))
            x = 0.5 * np.sin(2 * np.pi * f * np.arange(length) / 16000)
            w.add(x, f"{split}/{label}/{i}.wav", label, split, f"{split}-spk{i // 2}", "test tone")
    w.finish(name="spoken_digits", description="test", synthetic="synthetic tones", classes=CLASSES,
             sources=[])
    return tmp_path


def test_offline_set_items(cache):
    ds = load_dataset("spoken_digits", "train", sr=8000, cache_root=cache)
    assert isinstance(ds, AudioDataset)
    assert ds.source == "offline:spoken_digits" and ds.classes == CLASSES and ds.sr == 8000
    assert len(ds) == 6
    x, y, meta = ds[0]
    assert x.dtype == torch.float32 and x.ndim == 2 and x.shape[0] == 1
    assert y in (0, 1) and meta["label_name"] == CLASSES[y] and meta["split"] == "train"
    # the resampled 3 kHz tone must still peak at 3 kHz
    for i in range(len(ds)):
        x, y, _ = ds[i]
        spec = np.abs(np.fft.rfft(x[0].numpy()))
        peak = np.argmax(spec) * 8000 / x.shape[-1]
        assert abs(peak - (300.0 if y == 0 else 3000.0)) < 20


def test_fixed_duration_pads_and_crops(cache):
    ds = load_dataset("spoken_digits", "train", sr=16000, duration=0.5, cache_root=cache)
    assert {tuple(ds[i][0].shape) for i in range(len(ds))} == {(1, 8000)}


def test_bad_names_and_splits(cache, tmp_path_factory):
    with pytest.raises(ValueError, match="split"):
        load_dataset("spoken_digits", "training", cache_root=cache)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("no_such_set", "train", cache_root=cache)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(OfflineSetMissing, match="python -m course_lib.data prepare"):
        load_dataset("sound_events", "train", cache_root=empty, build_missing=False)


def test_a_missing_offline_set_is_built_on_first_use(cache, tmp_path_factory, monkeypatch, capsys):
    import shutil

    from course_lib.data import offline

    empty = tmp_path_factory.mktemp("fresh")
    calls = []

    def fake_prepare(only, cache_root, progress):  # stands in for the minutes-long real build
        calls.append((only, cache_root))
        shutil.copytree(offline_dir("spoken_digits", cache), offline_dir("spoken_digits", cache_root))

    monkeypatch.setattr(offline, "missing_system_packages", lambda names=None: {})
    monkeypatch.setattr(offline, "prepare", fake_prepare)
    ds = load_dataset("spoken_digits", "train", cache_root=empty)
    assert len(ds) == 6 and calls == [(["spoken_digits"], empty)]
    assert "first use" in capsys.readouterr().out


def test_a_missing_offline_set_without_tools_says_what_to_install(tmp_path, monkeypatch):
    from course_lib.data import offline

    monkeypatch.setattr(offline, "missing_system_packages", lambda names=None: {"espeak-ng": "espeak-ng"})
    with pytest.raises(OfflineSetMissing, match="system-packages --install") as err:
        load_dataset("spoken_digits", "train", cache_root=tmp_path)
    assert "espeak-ng" in str(err.value)


def _registry_name_with_fallback(fallback: str) -> str:
    registry = pytest.importorskip("course_lib.data.registry")
    names = [n for n, info in registry.DATASETS.items() if info.offline_fallback == fallback]
    if not names:
        pytest.skip(f"no registry entry falls back to {fallback}")
    return names[0]


def test_ci_profile_uses_offline_set_without_fetching(cache, monkeypatch, capsys):
    name = _registry_name_with_fallback("spoken_digits")
    download = pytest.importorskip("course_lib.data.download")

    def boom(*a, **k):
        raise AssertionError("the ci profile must not try to download")

    monkeypatch.setattr(download, "fetch", boom)
    ds = load_dataset(name, "val", profile="ci", cache_root=cache)
    assert ds.source == "offline:spoken_digits" and len(ds) == 2
    assert capsys.readouterr().out == ""


def test_unavailable_real_data_falls_back_with_one_line(cache, monkeypatch, capsys):
    name = _registry_name_with_fallback("spoken_digits")
    download = pytest.importorskip("course_lib.data.download")

    def unavailable(*a, **k):
        raise download.DatasetUnavailable("no network\nsecond line of detail", dataset=name)

    monkeypatch.setattr(download, "fetch", unavailable)
    ds = load_dataset(name, "test", profile="laptop", cache_root=cache)
    assert ds.source == "offline:spoken_digits"
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{name}: real dataset unavailable (no network); using offline set 'spoken_digits'"]

    def unreachable(*a, **k):
        raise download.DatasetUnavailable("long text\nTried:", dataset=name,
                                          attempts=[("http://a", "timed out"), ("http://b", "cannot connect")])

    monkeypatch.setattr(download, "fetch", unreachable)
    load_dataset(name, "test", profile="laptop", cache_root=cache)
    assert capsys.readouterr().out.strip().splitlines() == [
        f"{name}: real dataset unavailable (2 mirror(s) tried, last: cannot connect); "
        "using offline set 'spoken_digits'"]


def test_corrupt_file_skipped_with_warning_at_index_time(cache):
    ds = load_dataset("spoken_digits", "train", cache_root=cache)
    bad = ds.records[2].path
    bad.write_bytes(b"not audio at all")
    with pytest.warns(RuntimeWarning, match=str(bad.name)):
        ds2 = load_dataset("spoken_digits", "train", cache_root=cache)
    assert len(ds2) == 5 and ds2.skipped == [bad]
    assert all(r.path != bad for r in ds2.records)


def test_corrupt_file_at_load_time_is_never_substituted(cache):
    """A clip that breaks after indexing raises naming it; no other clip is counted in its place."""
    ds = load_dataset("spoken_digits", "train", cache_root=cache)
    bad = ds.records[1].path
    bad.write_bytes(b"RIFF....WAVE")  # broken after indexing
    with pytest.raises(AudioError, match=bad.name):
        ds[1]
    x, y, meta = ds[2]  # the others still load, each as itself
    assert meta["index"] == 2 and meta["path"] == str(ds.records[2].path)
    with pytest.warns(RuntimeWarning, match=r"1 of \d+ clips excluded as unreadable"):
        rebuilt = load_dataset("spoken_digits", "train", cache_root=cache)
    assert bad not in [r.path for r in rebuilt.records] and rebuilt.skipped == [bad]


def test_collate_pad(cache):
    ds = load_dataset("spoken_digits", "train", cache_root=cache)
    batch = [ds[i] for i in range(4)]
    w, lengths, labels, metas = collate_pad(batch)
    assert w.shape == (4, 1, int(lengths.max())) and w.dtype == torch.float32
    assert lengths.tolist() == [b[0].shape[-1] for b in batch]
    assert labels.tolist() == [b[1] for b in batch] and len(metas) == 4
    for i, (x, _, _) in enumerate(batch):
        assert torch.equal(w[i, :, : x.shape[-1]], x)
        assert float(w[i, :, x.shape[-1]:].abs().sum()) == 0.0
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate_pad)
    assert sum(b[0].shape[0] for b in loader) == len(ds)
    with pytest.raises(ValueError):
        collate_pad([])


def test_pack_split_roundtrip(cache, tmp_path):
    ds = load_dataset("spoken_digits", "train", cache_root=cache)
    packed = pack_split(ds, tmp_path / "packed")
    assert isinstance(packed, PackedSplit) and len(packed) == len(ds)
    assert isinstance(packed.audio, np.memmap)
    again = PackedSplit(tmp_path / "packed")
    for i in range(len(ds)):
        x, y, meta = ds[i]
        px, py, pmeta = again[i]
        assert torch.equal(x, px) and y == py and pmeta["path"] == meta["path"]
    assert again.classes == CLASSES and again.source == ds.source
    assert json.loads((tmp_path / "packed" / "index.json").read_text())["offsets"][-1] == sum(
        ds[i][0].shape[-1] for i in range(len(ds)))
    with pytest.raises(FileNotFoundError, match="pack_split"):
        PackedSplit(tmp_path / "nothing")


def test_dataset_summary(cache, tmp_path):
    ds = load_dataset("spoken_digits", "train", cache_root=cache)
    s = dataset_summary(ds)
    assert s == {"source": "offline:spoken_digits", "clips": 6, "counts": {"low": 3, "high": 3}}
    assert dataset_summary(pack_split(ds, tmp_path / "p"))["counts"] == {"low": 3, "high": 3}


def test_available_real_data_is_indexed_with_the_real_split_name(cache, monkeypatch, tmp_path):
    name = _registry_name_with_fallback("spoken_digits")
    download = pytest.importorskip("course_lib.data.download")
    real = pytest.importorskip("course_lib.data.real")
    clip = offline_dir("spoken_digits", cache) / "train" / "low" / "0.wav"
    calls = []

    def fake_index(info, folder, split):
        calls.append((info.name, folder, split))
        return [Record(clip, 0, {"speaker": "x"})], ["low", "high"]

    monkeypatch.setattr(download, "fetch", lambda info, **k: tmp_path)
    monkeypatch.setattr(real, "index_dataset", fake_index)
    ds = load_dataset(name, "val", profile="laptop", cache_root=cache)
    assert ds.source == f"real:{name}" and len(ds) == 1 and ds.classes == ["low", "high"]
    assert calls == [(name, tmp_path, "val")]  # one split vocabulary down to the indexers
    with pytest.raises(ValueError, match="the validation split is called 'val'"):
        load_dataset(name, "validation", profile="laptop", cache_root=cache)


def test_real_training_split_follows_the_profile_data_fraction(capsys):
    from course_lib.data.datasets import _budget_subset
    from course_lib.data.records import Record
    from course_lib.runtime import PROFILES

    records = [Record(Path(f"{i}.wav"), i % 4, {}) for i in range(400)]
    kept = _budget_subset(records, "laptop")
    assert len(kept) == round(PROFILES["laptop"].data_fraction * 400)
    assert {r.label for r in kept} == {0, 1, 2, 3}
    assert _budget_subset(records, "laptop") == kept  # same clips every run
    assert _budget_subset(records, "gpu") == records
    assert "data_fraction" in capsys.readouterr().out


def test_decode_split_and_the_note_on_what_the_data_is(cache):
    from course_lib.data import decode_split

    ds = load_dataset("spoken_digits", "train", cache_root=cache)
    assert "synthetic tones" in ds.note
    waves, labels = decode_split(ds, max_clips=4, seed=1)
    assert waves.shape[:2] == (4, 1) and labels.shape == (4,)
    again, _ = decode_split(ds, max_clips=4, seed=1)
    assert torch.equal(waves, again)
    full, _ = decode_split(ds)
    assert len(full) == len(ds)


def test_a_gpu_only_dataset_is_not_downloaded_in_the_laptop_profile(monkeypatch, tmp_path, capsys):
    """train-clean-100 is 6.3 GB: the laptop profile uses the offline set unless it is already there."""
    from course_lib.data import download
    from course_lib.data.datasets import load_dataset

    monkeypatch.delenv(download.FIXTURE_MIRROR_ENV, raising=False)
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("the laptop profile must not download it"))
    try:
        ds = load_dataset("librispeech_train_clean_100", "train", profile="laptop", cache_root=tmp_path,
                          build_missing=False)
    except Exception as exc:  # the offline set is not built in this empty cache: that is fine here
        assert "digit_strings" in str(exc)
    else:
        assert ds.source == "offline:digit_strings"
    out = capsys.readouterr().out
    assert "gpu profile only" in out and "python -m course_lib.data download librispeech_train_clean_100" in out
