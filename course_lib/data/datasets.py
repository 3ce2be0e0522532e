"""Datasets the notebooks train on: one interface over real datasets and offline sets.

``load_dataset(name, split)`` gives an ``AudioDataset`` whose items are
``(waveform float32 tensor [1, samples], label int, meta dict)``. ``collate_pad`` batches clips of
different lengths; ``pack_split`` decodes a split once into one memory-mapped array.

Notebook: 00_welcome
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import librosa.util
import numpy as np
import torch
from torch.utils.data import Dataset

from course_lib.audio import AudioError, load_audio
from course_lib.data.offline.common import offline_dir, read_manifest
from course_lib.data.records import SPLITS, Record

__all__ = [
    "SPLITS",
    "AudioDataset",
    "PackedSplit",
    "OfflineSetMissing",
    "load_dataset",
    "offline_records",
    "collate_pad",
    "decode_split",
    "pack_split",
    "dataset_summary",
]



class OfflineSetMissing(FileNotFoundError):
    """An offline set has not been built yet (run ``python -m course_lib.data prepare``)."""


class AudioDataset(Dataset):
    """Clips from a list of records, decoded on access.

    Parameters
    ----------
    records : list of Record
        Files, integer labels (``-1`` when the task has no class) and metadata.
    classes : list of str
        Class names; ``label`` indexes this list.
    source : str
        ``"offline:<set>"`` or ``"real:<name>"``.
    sr : int
        Clips are resampled to this rate in Hz.
    duration : float, optional
        Pad with zeros / crop to this many seconds; None keeps each clip's length.
    check : bool
        Try to open every file's header now: an unreadable one is warned about (naming the file)
        and dropped at once instead of failing mid-epoch.

    Notes
    -----
    An unreadable clip is excluded at construction (``check=True``) and counted in
    :meth:`skipped_report`; it is never replaced by another clip or by silence. A clip that
    breaks after that raises ``AudioError`` naming it. Notebook: 00_welcome
    """

    def __init__(self, records: list[Record], classes: list[str], source: str, sr: int = 16000,
                 duration: float | None = None, check: bool = True):
        self.classes = list(classes)
        self.source = source
        self.sr = int(sr)
        self.duration = duration
        self.note = ""  # what this data is, for notebooks to print (set by load_dataset)
        self.records: list[Record] = []
        self.skipped: list[Path] = []  # files dropped at index time (each was warned about)
        for r in records:
            if not check or self._readable(r.path):
                self.records.append(r)
            else:
                self.skipped.append(Path(r.path))
        if self.skipped:  # the one-line count; each file was named in its own warning above
            warnings.warn(self.skipped_report(), RuntimeWarning, stacklevel=2)

    def skipped_report(self) -> str:
        """One line: how many clips were excluded as unreadable (never replaced by others)."""
        total = len(self.records) + len(self.skipped)
        return (f"{self.source}: {len(self.skipped)} of {total} clips excluded as unreadable, "
                f"{len(self.records)} kept")

    @staticmethod
    def _readable(path: Path) -> bool:
        import soundfile as sf

        try:
            info = sf.info(str(path))
            if info.frames == 0:
                raise AudioError(f"{path}: audio file holds no samples (empty)")
        except Exception as exc:  # sf raises several types for broken headers
            warnings.warn(f"skipping unreadable audio file {path}: {exc}", RuntimeWarning, stacklevel=3)
            return False
        return True

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> torch.Tensor:
        """Decode clip ``index`` as float32 ``[1, samples]`` at ``sr`` (AudioError if bad)."""
        x, _ = load_audio(self.records[index].path, sr=self.sr, mono=True)
        if self.duration is not None:
            x = librosa.util.fix_length(x, size=int(round(self.duration * self.sr)), axis=-1)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, dict[str, Any]]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} clips")
        # Never substitute another clip: a test split would count that clip twice. Unreadable
        # files are excluded when the dataset is built (check=True); one that breaks after that
        # stops the run with its name, because the split it belongs to is no longer the one indexed.
        r = self.records[index]
        try:
            x = self.load(index)
        except AudioError as exc:
            raise AudioError(
                f"clip {index} of {self.source} ({r.path}) no longer decodes: {exc}. It was readable "
                "when the dataset was built; delete the file (or rebuild the cache with "
                "`python -m course_lib.data prepare --force`) and load the dataset again, so the "
                "split excludes it instead of counting another clip in its place") from exc
        return x, int(r.label), dict(r.meta, path=str(r.path), index=index)

    @property
    def labels(self) -> list[int]:
        """Label of every record (no decoding)."""
        return [int(r.label) for r in self.records]

    def __repr__(self) -> str:
        return (f"AudioDataset(source={self.source!r}, clips={len(self)}, classes={len(self.classes)}, "
                f"sr={self.sr}, duration={self.duration})")


def offline_records(name: str, split: str, cache_root: str | os.PathLike | None = None
                    ) -> tuple[list[Record], list[str]]:
    """Records and classes of one split of a built offline set.

    Raises
    ------
    OfflineSetMissing
        The set has not been built: the message says to run ``python -m course_lib.data prepare``.

    Notebook: 00_welcome
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    set_dir = offline_dir(name, cache_root)
    try:
        man = read_manifest(set_dir)
    except FileNotFoundError:
        raise OfflineSetMissing(
            f"offline set {name!r} is not built (no {set_dir / 'manifest.json'}); build it with\n"
            f"  python -m course_lib.data prepare --only {name}"
        ) from None
    # ASR sets list their vocabulary as classes; their clips have no class (label -1)
    classify = man.get("task", "classification") == "classification"
    classes = list(man["classes"])
    records = []
    for it in man["items"]:
        if it["split"] != split:
            continue
        meta = {k: v for k, v in it.items() if k not in ("path", "split", "sha256", "label")}
        meta.update(split=split, label_name=it["label"])
        records.append(Record(set_dir / it["path"], classes.index(it["label"]) if classify else -1, meta))
    return records, classes


def _budget_subset(records: list[Record], profile: str | None) -> list[Record]:
    """The profile's share of a real training split (``budget.data_fraction``), per class.

    Drawn with a fixed seed so every run of a profile trains on the same clips.
    """
    from course_lib.runtime import profile_budget

    fraction = profile_budget(_profile(profile)).data_fraction
    if fraction >= 1.0:
        return records
    rng = np.random.default_rng(0)
    by_label: dict[int, list[Record]] = {}
    for r in records:
        by_label.setdefault(int(r.label), []).append(r)
    kept = []
    for label in sorted(by_label):
        group = by_label[label]
        n = max(1, int(round(fraction * len(group))))
        kept.extend(group[i] for i in sorted(rng.choice(len(group), size=n, replace=False)))
    print(f"using {len(kept)} of {len(records)} training clips ({fraction:.0%}, the profile's data_fraction)",
          flush=True)
    return kept


def _profile(profile: str | None) -> str:
    if profile is not None:
        return profile
    from course_lib.runtime import get_runtime

    return get_runtime().profile


def load_dataset(name: str, split: str, sr: int = 16000, profile: str | None = None,
                 duration: float | None = None, cache_root: str | os.PathLike | None = None,
                 build_missing: bool = True) -> AudioDataset:
    """One split of a real dataset (with its offline fallback) or of an offline set.

    Parameters
    ----------
    name : str
        A registry name (``course_lib.data.registry.DATASETS``, e.g. ``"speech_commands"``) or an
        offline set name (``"spoken_digits"``...).
    split : {"train", "val", "test"}
        The course's split names (``course_lib.data.SPLITS``).
    sr : int
        Clips are resampled to this rate in Hz.
    profile : {"ci", "laptop", "gpu"}, optional
        Default: the runtime's. ``"ci"`` uses the offline fallback without trying the real data.
    duration : float, optional
        Pad/crop every clip to this many seconds.
    cache_root : path-like, optional
        Default: the runtime's ``data_dir`` (``$COURSE_DATA`` or ``<repo>/data/cache``).
    build_missing : bool
        Build an offline set that is needed but not built yet (first use on a fresh machine or on
        Colab), when the system tools are there; otherwise :class:`OfflineSetMissing` says how.

    Returns
    -------
    AudioDataset
        ``.source`` says what was loaded: ``"real:<name>"`` or ``"offline:<set>"``. When the real
        data cannot be had, ONE line says so and names the offline set used instead.

    Notebook: 00_welcome
    """
    from course_lib.data import offline as _offline
    from course_lib.data.registry import DATASETS
    from course_lib.runtime import data_root  # lazy: the runtime imports torch late

    if split not in SPLITS:
        hint = " (the validation split is called 'val')" if split == "validation" else ""
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}{hint}")
    root = Path(cache_root) if cache_root is not None else data_root()
    stands_in_for = None
    if name in DATASETS:
        info = DATASETS[name]
        fallback = info.offline_fallback
        stands_in_for = info.title
        chosen = _profile(profile)
        if chosen != "ci":
            from course_lib.data import download, real

            try:
                if (chosen not in info.fetched_in and not download.is_present(info, root)
                        and download.fixture_mirror() is None):
                    raise download.DatasetUnavailable(
                        f"downloaded in the {'/'.join(info.fetched_in)} profile only (a large archive); "
                        f"`python -m course_lib.data download {name}` fetches it for any profile")
                folder = download.fetch(info, cache_root=root, progress=True, timeout=10)
                records, classes = real.index_dataset(info, folder, split)
                if split == "train":
                    records = _budget_subset(records, profile)
                dataset = AudioDataset(records, classes, f"real:{name}", sr, duration)
                dataset.note = f"{info.title} ({info.license}); splits: {info.splits}"
                if download.fixture_mirror() is not None:
                    dataset.note += (" THIS RUN READS A MINIATURE TEST FIXTURE in the dataset's layout "
                                     f"({download.FIXTURE_MIRROR_ENV}), not the real data.")
                return dataset
            except download.DatasetUnavailable as exc:
                attempts = getattr(exc, "attempts", None)
                if attempts:  # the last mirror's error says why, e.g. "cannot connect (...)"
                    reason = f"{len(attempts)} mirror(s) tried, last: {attempts[-1][1]}"
                else:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                print(f"{name}: real dataset unavailable ({reason}); using offline set '{fallback}'", flush=True)
        name = fallback
    elif name not in _offline.OFFLINE_SETS:
        raise ValueError(f"unknown dataset {name!r}: choose a real dataset {sorted(DATASETS)} "
                         f"or an offline set {sorted(_offline.OFFLINE_SETS)}")
    try:
        records, classes = offline_records(name, split, root)
    except OfflineSetMissing as missing:
        if not build_missing:
            raise
        _build_on_first_use(name, root, missing)
        records, classes = offline_records(name, split, root)
    dataset = AudioDataset(records, classes, f"offline:{name}", sr, duration)
    dataset.note = _offline_note(name, root, stands_in_for)
    return dataset


def _offline_note(name: str, root: Path, stands_in_for: str | None) -> str:
    from course_lib.data.offline.common import offline_dir, read_manifest

    manifest = read_manifest(offline_dir(name, root))
    note = f"offline set '{name}' ({manifest.get('synthetic', '')}): {manifest.get('description', '')}"
    if stands_in_for:
        note += (f" In this run it stands in for {stands_in_for}; results on it say nothing about "
                 f"that dataset.")
    return note


def _build_on_first_use(name: str, root: Path, missing: OfflineSetMissing) -> None:
    """Build one offline set the first time it is asked for, or explain what it needs."""
    from course_lib.data import offline as _offline

    from course_lib.runtime import in_colab

    tools = _offline.missing_system_packages([name])
    if tools and in_colab() and _offline.install_system_packages():
        tools = {}  # Colab runs as root with apt: install what the builder needs, once per session
    if tools:
        packages = " ".join(sorted(set(tools.values())))
        raise OfflineSetMissing(
            f"{missing}\nIt needs system packages this machine lacks: {packages}. Install them with\n"
            f"  python -m course_lib.data system-packages --install   (as root; on Colab: "
            f"!python -m course_lib.data system-packages --install)\n"
            f"or: sudo apt-get install {packages}") from None
    print(f"offline set '{name}' is not built yet: building it now (first use only)", flush=True)
    _offline.prepare(only=[name], cache_root=root, progress=True)


def decode_split(dataset: Dataset, max_clips: int | None = None, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a split once into memory: zero-padded waveforms and labels, in a seeded order.

    Parameters
    ----------
    dataset : Dataset
        Items ``(waveform [1, n], label, meta)`` (an :class:`AudioDataset`).
    max_clips : int, optional
        Keep at most this many clips (the profile's ``budget.max_clips``).
    seed : int
        Seed of the random order (so a capped split is a random, repeatable subset).

    Returns
    -------
    waveforms : torch.Tensor
        float32 ``[N, 1, max_samples]``.
    labels : torch.Tensor
        int64 ``[N]``.

    Notebook: 05_from_filters_to_cnns (epochs then never re-decode files)
    """
    order = np.random.default_rng(seed).permutation(len(dataset))[:max_clips]
    waveforms, _, labels, _ = collate_pad([dataset[int(i)] for i in order])
    return waveforms, labels


def collate_pad(batch: list[tuple[torch.Tensor, int, dict]]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[dict]]:
    """Zero-pad clips of different lengths into one batch (for ``DataLoader(collate_fn=...)``).

    Returns
    -------
    waveforms : torch.Tensor
        float32 ``[B, 1, max_samples]``.
    lengths : torch.Tensor
        int64 ``[B]``: each clip's true length in samples (mask the padding with it).
    labels : torch.Tensor
        int64 ``[B]``.
    metas : list of dict

    Notebook: 00_welcome
    """
    if not batch:
        raise ValueError("collate_pad got an empty batch")
    lengths = torch.tensor([w.shape[-1] for w, _, _ in batch], dtype=torch.int64)
    out = torch.zeros(len(batch), 1, int(lengths.max()), dtype=torch.float32)
    for i, (w, _, _) in enumerate(batch):
        out[i, 0, : w.shape[-1]] = w.reshape(-1)
    labels = torch.tensor([int(y) for _, y, _ in batch], dtype=torch.int64)
    return out, lengths, labels, [m for _, _, m in batch]


class PackedSplit(Dataset):
    """A split decoded once into one float32 array (memory-mapped), so epochs never re-decode.

    Items are ``(waveform [1, samples], label, meta)`` like ``AudioDataset``'s.

    Notebook: 00_welcome
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            info = json.loads((self.path / "index.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: not a packed split (no index.json); make it "
                                    "with course_lib.data.pack_split(dataset, path)") from None
        self.audio = np.load(self.path / "audio.npy", mmap_mode="r")
        self.offsets = np.asarray(info["offsets"], dtype=np.int64)
        self.label_list = [int(v) for v in info["labels"]]
        self.metas = info["metas"]
        self.classes = info["classes"]
        self.source = info["source"]
        self.sr = int(info["sample_rate"])  # the file format keeps its key

    def __len__(self) -> int:
        return len(self.label_list)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, dict[str, Any]]:
        a, b = self.offsets[index], self.offsets[index + 1]
        x = torch.from_numpy(np.array(self.audio[a:b], dtype=np.float32))[None, :]
        return x, self.label_list[index], dict(self.metas[index])

    @property
    def labels(self) -> list[int]:
        return list(self.label_list)


def pack_split(dataset: Dataset, path: str | os.PathLike) -> PackedSplit:
    """Decode every clip of ``dataset`` once into ``path/audio.npy`` + ``path/index.json``.

    Parameters
    ----------
    dataset : AudioDataset (or any Dataset of ``(waveform [1, n], label, meta)``)
    path : path-like
        Folder to write (created).

    Returns
    -------
    PackedSplit
        Memory-mapped view of what was written.

    Notebook: 00_welcome
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    clips, labels, metas = [], [], []
    for i in range(len(dataset)):
        x, y, meta = dataset[i]
        clips.append(np.asarray(x, dtype=np.float32).reshape(-1))
        labels.append(int(y))
        metas.append({k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, type(None)))})
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64)
    audio = np.concatenate(clips) if clips else np.zeros(0, np.float32)
    tmp = path / "audio.tmp.npy"
    np.save(tmp, audio)
    os.replace(tmp, path / "audio.npy")
    info = dict(offsets=offsets.tolist(), labels=labels, metas=metas,
                classes=list(getattr(dataset, "classes", [])), source=getattr(dataset, "source", "unknown"),
                sample_rate=int(getattr(dataset, "sr", 0)))
    (path / "index.json").write_text(json.dumps(info), encoding="utf-8")
    return PackedSplit(path)


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    """Clips per class, without decoding audio (for notebooks to print).

    Returns
    -------
    dict
        ``source``, ``clips``, ``counts`` (``{class name: clips}``; ``"-"`` for label -1).

    Notebook: 00_welcome
    """
    labels = ds.labels if hasattr(ds, "labels") else [ds[i][1] for i in range(len(ds))]
    classes = list(getattr(ds, "classes", []))
    names = [classes[y] if 0 <= y < len(classes) else "-" for y in labels]
    counts = Counter(names)
    order = [c for c in classes if c in counts] + sorted(set(counts) - set(classes))
    return dict(source=getattr(ds, "source", "unknown"), clips=len(labels),
                counts={c: counts[c] for c in order})
