"""Miniature copies of the real datasets, in their published layouts, served without a network.

The real datasets are gigabytes behind mirrors that tests cannot reach, and the ``ci`` profile
never touches them, so the code between a download and a notebook (checksums, extraction, the
``index_*`` functions, ``load_dataset`` in the ``laptop`` and ``gpu`` profiles, and every
notebook cell that reads a real dataset's classes, sizes or sample rates) would otherwise reach
students untested. For every entry of ``course_lib.data.registry.DATASETS`` a builder here writes
a small archive with the name, archive type, folder structure, metadata files, file names, audio
formats and sample rates the publisher ships (see each ``_build_*`` function), filled with audio
the offline builders already made (``<cache>/offline/<set>/``). A test fails when a registry
entry has no builder.

What a miniature is NOT: the real data. Its class names are the dataset's own names (the first
ones in the dataset's order), given to the offline stand-in's classes in order, so a kick drum
may be filed under ESC-50's "dog". Clips are as long as the offline clips (GTZAN's are 5 s, not
30 s). Nothing measured on a miniature says anything about the real dataset.

``build_all`` writes the archives and ``miniature.json`` (format ``download.MINIATURE_FORMAT``):
each archive's name, size and checksum (the same kind the registry publishes: SHA-256, or MD5
for RAVDESS). ``MiniatureServer`` serves the folder on 127.0.0.1, and with
``COURSE_FIXTURE_MIRROR=<its URL>`` ``download.fetch`` takes every dataset, its size and its
checksum from there instead of the registry (see ``registry.fixture_mirror``).

Command line::

    python -m course_lib.data miniature                  build the archives (reused while up to date)
    python -m course_lib.data miniature --serve          build, then serve until idle for 10 minutes
    python -m course_lib.data miniature --run CMD ...    build, serve, run CMD with COURSE_FIXTURE_MIRROR set

Notebook: none (test infrastructure; ``make test-laptop``). See docs/DEVELOPING.md.
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from course_lib.audio import load_audio
from course_lib.data.download import MINIATURE_FORMAT, MINIATURE_INDEX, file_digest
from course_lib.data.registry import DATASETS, FIXTURE_MIRROR_ENV, DatasetInfo

__all__ = [
    "BUILDERS",
    "ESC50_CATEGORIES",
    "MiniatureServer",
    "build_all",
    "build_miniature",
    "miniature_mirror",
    "main",
]

# ESC-50's 50 categories in the order of its ``target`` column (meta/esc50.csv).
ESC50_CATEGORIES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm",
    "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing",
    "brushing_teeth", "snoring", "drinking_sipping",
    "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening",
    "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking",
    "helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells", "airplane",
    "fireworks", "hand_saw",
)
_ESC10 = {"dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "sneezing",
          "clock_tick", "helicopter", "chainsaw"}
# Names of FSDD's speakers (letters only, as its file names need).
_FSDD_SPEAKERS = ("jackson", "theo")
# Archive members get this modification time, so the same inputs give byte-identical archives.
_MTIME = 1_546_300_800  # 2019-01-01T00:00:00Z
_NOTICE = ("This is a MINIATURE TEST FIXTURE written by course_lib.data.miniature in the published "
           "layout of {title}. Its audio comes from the course's offline set(s) {sets}; it is not "
           "the real dataset. Real dataset: {homepage} ({license}).\n")


class MiniatureError(RuntimeError):
    """A miniature cannot be built (an offline set it reads is missing and cannot be built)."""


# --------------------------------------------------------------------------- archives


class _Archive:
    """Write a .tar.gz / .tar.bz2 / .zip deterministically (fixed times, owners and order).

    Parent folders get their own entries, as in the published archives.
    """

    def __init__(self, path: Path, archive_name: str):
        self.path = path
        self.kind = ("zip" if archive_name.endswith(".zip") else "tar.bz2" if archive_name.endswith(".tar.bz2")
                     else "tar.gz" if archive_name.endswith((".tar.gz", ".tgz")) else None)
        if self.kind is None:
            raise ValueError(f"{archive_name}: no miniature writer for this archive type (zip, tar.gz, tar.bz2)")
        self._dirs: set[str] = set()
        self._raw = open(path, "wb")
        if self.kind == "zip":
            self._zip = zipfile.ZipFile(self._raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        else:
            self._stream = (gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
                            if self.kind == "tar.gz" else bz2.BZ2File(self._raw, "wb", compresslevel=9))
            self._tar = tarfile.open(fileobj=self._stream, mode="w", format=tarfile.PAX_FORMAT)

    def _tarinfo(self, name: str, size: int, is_dir: bool) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mtime, info.uid, info.gid, info.uname, info.gname = _MTIME, 0, 0, "", ""
        info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
        info.mode = 0o755 if is_dir else 0o644
        info.size = 0 if is_dir else size
        return info

    def _add_dirs(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder in ("", ".") or folder in self._dirs:
                continue
            self._dirs.add(folder)
            if self.kind == "zip":
                info = zipfile.ZipInfo(folder + "/", date_time=(2019, 1, 1, 0, 0, 0))
                info.external_attr = (0o40755 << 16) | 0x10
                self._zip.writestr(info, b"")
            else:
                self._tar.addfile(self._tarinfo(folder, 0, True))

    def add(self, rel: str, data: bytes) -> None:
        """Add one file at ``rel`` (POSIX path inside the archive)."""
        self._add_dirs(rel)
        if self.kind == "zip":
            info = zipfile.ZipInfo(rel, date_time=(2019, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            self._zip.writestr(info, data)
        else:
            self._tar.addfile(self._tarinfo(rel, len(data), False), io.BytesIO(data))

    def close(self) -> None:
        if self.kind == "zip":
            self._zip.close()
        else:
            self._tar.close()
            self._stream.close()
        self._raw.close()


def _encode(x: np.ndarray, sample_rate: int, fmt: str = "WAV") -> bytes:
    """16-bit PCM bytes of mono ``x`` in ``fmt`` (WAV, AU or FLAC), the publishers' formats."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0), int(sample_rate), format=fmt,
             subtype="PCM_16")
    return buf.getvalue()


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Pad with zeros (digital silence, as the publishers pad) or crop to ``n`` samples."""
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


# --------------------------------------------------------------------------- offline sources


class _Offline:
    """Read clips of the built offline sets under ``cache_root``."""

    def __init__(self, cache_root: Path):
        self.cache_root = cache_root
        self._manifests: dict[str, dict] = {}

    def manifest(self, name: str) -> dict:
        if name not in self._manifests:
            from course_lib.data.offline.common import offline_dir, read_manifest

            try:
                self._manifests[name] = read_manifest(offline_dir(name, self.cache_root))
            except FileNotFoundError:
                raise MiniatureError(
                    f"the offline set {name!r} is not built in {self.cache_root}; build it with\n"
                    f"  python -m course_lib.data prepare --only {name}") from None
        return self._manifests[name]

    def path(self, name: str, rel: str) -> Path:
        return self.cache_root / "offline" / name / rel

    def items(self, name: str, split: str | None = None, label: str | None = None) -> list[dict]:
        """Manifest items (sorted by path, so every build picks the same clips)."""
        found = [it for it in self.manifest(name)["items"]
                 if (split is None or it["split"] == split) and (label is None or it["label"] == label)]
        return sorted(found, key=lambda it: it["path"])

    def audio(self, name: str, item: dict, sample_rate: int) -> np.ndarray:
        x, _ = load_audio(self.path(name, item["path"]), sr=sample_rate, mono=True)
        return np.asarray(x, dtype=np.float32).reshape(-1)


def _notice(info: DatasetInfo, sets: list[str]) -> bytes:
    return _NOTICE.format(title=info.title, sets=", ".join(sets), homepage=info.homepage,
                          license=info.license).encode("utf-8")


def _by_speaker(items: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(str(it.get("speaker") or it["group"]), []).append(it)
    return groups


# --------------------------------------------------------------------------- one builder per dataset
# Each writes the dataset's published layout into ``ar`` and returns {split: clips}.


def _build_speech_commands(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """speech_commands_v0.02.tar.gz, flat: ``<word>/<speaker hash>_nohash_<n>.wav`` (16 kHz, 1 s),
    ``validation_list.txt``, ``testing_list.txt``, ``_background_noise_/`` with its README.

    Words: the spoken_digits classes (zero..nine are Speech Commands words). Train: 24 synthetic
    voices per word; validation: the offline set's unseen validation voices; test: its real speaker.
    """
    from course_lib.data.real import SPEECH_COMMANDS_WORDS

    sets = ["spoken_digits"]
    words = src.manifest("spoken_digits")["classes"]
    unknown = [w for w in words if w not in SPEECH_COMMANDS_WORDS]
    if unknown:
        raise MiniatureError(f"spoken_digits classes {unknown} are not Speech Commands words")
    n = 16_000
    lists: dict[str, list[str]] = {"val": [], "test": []}
    counts = {"train": 0, "val": 0, "test": 0}
    limits = {"train": 24, "val": 6, "test": 6}
    for split in ("train", "val", "test"):
        for word in words:
            for it in src.items("spoken_digits", split, word)[: limits[split]]:
                speaker = _short_hash(str(it.get("speaker") or it["path"]))
                rel = f"{word}/{speaker}_nohash_0.wav"
                ar.add(rel, _encode(_fit(src.audio("spoken_digits", it, n), n), n))
                counts[split] += 1
                if split != "train":
                    lists[split].append(rel)
    ar.add("validation_list.txt", "".join(f"{r}\n" for r in sorted(lists["val"])).encode())
    ar.add("testing_list.txt", "".join(f"{r}\n" for r in sorted(lists["test"])).encode())
    rng = np.random.default_rng(0)
    white = rng.standard_normal(2 * n).astype(np.float32)
    # pink noise: white noise shaped by 1/sqrt(f) in the frequency domain
    spectrum = np.fft.rfft(rng.standard_normal(2 * n))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0
    pink = np.fft.irfft(spectrum, 2 * n).astype(np.float32)
    for name, x in (("white_noise.wav", white), ("pink_noise.wav", pink)):
        ar.add(f"_background_noise_/{name}", _encode(0.3 * x / np.abs(x).max(), n))
    ar.add("_background_noise_/README.md", b"Longer clips of background noise (miniature: 2 s each).\n")
    ar.add("README.md", _notice(info, sets))
    ar.add("LICENSE", b"Creative Commons BY 4.0 (the real dataset's licence).\n")
    return counts


def _build_fsdd(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """free-spoken-digit-dataset-1.0.9.tar.gz: ``free-spoken-digit-dataset-1.0.9/recordings/
    <digit>_<speaker>_<index>.wav`` at 8 kHz. Each speaker is a group of 14 synthetic voices (one
    per recording index 0-13, so the README split of indices 0-4 test, 5-9 validation, 10+ train
    finds all three)."""
    prefix = info.root
    digits = src.manifest("spoken_digits")["classes"]
    n_takes = 14
    by_voice = _by_speaker(src.items("spoken_digits", "train") + src.items("spoken_digits", "val"))
    complete = [v for v in sorted(by_voice) if {it["label"] for it in by_voice[v]} >= set(digits)]
    needed = n_takes * len(_FSDD_SPEAKERS)
    if len(complete) < needed:
        raise MiniatureError(f"spoken_digits has {len(complete)} voices with every digit; FSDD needs {needed}")
    counts = {"train": 0, "val": 0, "test": 0}
    for s, speaker in enumerate(_FSDD_SPEAKERS):
        for take in range(n_takes):
            clips = {it["label"]: it for it in by_voice[complete[s * n_takes + take]]}
            for digit_index, digit in enumerate(digits):
                x = src.audio("spoken_digits", clips[digit], 8000)
                ar.add(f"{prefix}/recordings/{digit_index}_{speaker}_{take}.wav", _encode(x, 8000))
                counts["test" if take < 5 else "val" if take < 10 else "train"] += 1
    ar.add(f"{prefix}/README.md", _notice(info, ["spoken_digits"]))
    ar.add(f"{prefix}/metadata.py", b"metadata = {\n" + b"".join(
        f'    "{s}": {{"gender": "male", "accent": "synthetic", "language": "english"}},\n'.encode()
        for s in _FSDD_SPEAKERS) + b"}\n")
    return counts


def _build_esc50(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """ESC-50-master.zip: ``ESC-50-master/audio/<fold>-<source id>-<take>-<target>.wav`` (44.1 kHz,
    5 s, silence-padded as ESC-50 pads short clips) and ``meta/esc50.csv`` with the published
    columns. The sound_events classes become ESC-50's first categories (targets 0..k-1), 8 clips
    per class in each of the 5 folds. Each offline clip is its own source recording, so the folds
    are drawn from all of the set's clips (every kit may appear in every fold): a miniature must
    show learning within a tiny training budget."""
    prefix = info.root
    classes = src.manifest("sound_events")["classes"]
    if len(classes) > len(ESC50_CATEGORIES):
        raise MiniatureError(f"sound_events has {len(classes)} classes; ESC-50 has {len(ESC50_CATEGORIES)}")
    sr, n = 44_100, 5 * 44_100
    per_fold, n_folds = 8, 5
    split_of_fold = {1: "train", 2: "train", 3: "train", 4: "val", 5: "test"}
    rows = []
    counts = {"train": 0, "val": 0, "test": 0}
    for target, label in enumerate(classes):
        category = ESC50_CATEGORIES[target]
        pool = sorted(src.items("sound_events", label=label), key=lambda it: _short_hash(it["path"]))
        for k, it in enumerate(pool[: per_fold * n_folds]):
            fold = k % n_folds + 1   # round robin: every fold gets every class
            source_id = int(_short_hash(it["path"], 6), 16) % 900_000 + 100_000
            filename = f"{fold}-{source_id}-A-{target}.wav"
            ar.add(f"{prefix}/audio/{filename}", _encode(_fit(src.audio("sound_events", it, sr), n), sr))
            rows.append((filename, fold, target, category, category in _ESC10, source_id, "A"))
            counts[split_of_fold[fold]] += 1
    rows.sort(key=lambda r: r[0])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    writer.writerows(rows)
    ar.add(f"{prefix}/meta/esc50.csv", text.getvalue().encode())
    ar.add(f"{prefix}/README.md", _notice(info, ["sound_events"]))
    ar.add(f"{prefix}/LICENSE", b"Creative Commons Attribution-NonCommercial license (the real dataset's).\n")
    return counts


def _build_gtzan(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """genres.tar.gz: ``genres/<genre>/<genre>.000NN.au`` (Sun .au, 16-bit, 22,050 Hz), with track
    names from the fault-filtered split lists (``real._gtzan_lists``): 3 train, 1 validation and
    1 test track per genre. The music_styles classes become the first genres."""
    from course_lib.data.real import GTZAN_GENRES, _gtzan_lists

    classes = src.manifest("music_styles")["classes"]
    lists = _gtzan_lists()
    sr = 22_050
    counts = {"train": 0, "val": 0, "test": 0}
    for genre, label in zip(GTZAN_GENRES, classes):
        for split, list_name, k in (("train", "train", 3), ("val", "val", 1), ("test", "test", 1)):
            tracks = [t for t in lists[list_name] if t.split(".")[0] == genre][:k]
            for track, it in zip(tracks, src.items("music_styles", split, label)):
                ar.add(f"{info.root}/{genre}/{track}.au", _encode(src.audio("music_styles", it, sr), sr, "AU"))
                counts[split] += 1
    ar.add(f"{info.root}/README.txt", _notice(info, ["music_styles"]))
    return counts


def _build_ravdess(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """Audio_Speech_Actors_01-24.zip, flat: ``Actor_NN/03-01-EE-II-SS-RR-NN.wav`` (48 kHz, 16-bit).
    Offline prosody speakers become actors 01-04 (train), 19-20 (validation) and 21-24 (test); its
    classes keep their RAVDESS emotion codes (neutral 01, happy 03, sad 04, angry 05)."""
    from course_lib.data.real import RAVDESS_EMOTIONS

    classes = src.manifest("prosody")["classes"]
    actors = {"train": [1, 2, 3, 4], "val": [19, 20], "test": [21, 22, 23, 24]}
    sr = 48_000
    counts = {"train": 0, "val": 0, "test": 0}
    for split, actor_ids in actors.items():
        speakers = _by_speaker(src.items("prosody", split))
        names = sorted(speakers)
        if len(names) < len(actor_ids):
            raise MiniatureError(f"prosody {split} has {len(names)} speakers; RAVDESS needs {len(actor_ids)}")
        for actor, speaker in zip(actor_ids, names):
            for label in classes:
                emotion = RAVDESS_EMOTIONS.index(label) + 1
                clips = [it for it in speakers[speaker] if it["label"] == label][: 2 if split == "train" else 1]
                for statement, it in enumerate(clips, start=1):
                    name = f"03-01-{emotion:02d}-01-{statement:02d}-01-{actor:02d}.wav"
                    ar.add(f"Actor_{actor:02d}/{name}", _encode(src.audio("prosody", it, sr), sr))
                    counts[split] += 1
    return counts


def _librispeech(subset: str, group: str, speaker: int, chapter: int) -> Callable:
    def build(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
        """<subset>.tar.gz: ``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``
        (16 kHz FLAC) with ``<speaker>-<chapter>.trans.txt`` (upper case), and the top-level
        BOOKS/CHAPTERS/LICENSE/README/SPEAKERS.TXT. Audio: real read sentences of librivox_sentences."""
        items = [it for it in src.items("librivox_sentences") if it["group"] == group]
        if not items:
            raise MiniatureError(f"librivox_sentences has no clip of group {group!r}")
        folder = f"LibriSpeech/{subset}/{speaker}/{chapter}"
        lines = []
        for utt, it in enumerate(items):
            utt_id = f"{speaker}-{chapter}-{utt:04d}"
            ar.add(f"{folder}/{utt_id}.flac", _encode(src.audio("librivox_sentences", it, 16_000), 16_000, "FLAC"))
            text = "".join(c for c in it["transcript"].upper() if c.isalpha() or c in " '")
            lines.append(f"{utt_id} {' '.join(text.split())}\n")
        ar.add(f"{folder}/{speaker}-{chapter}.trans.txt", "".join(lines).encode())
        ar.add("LibriSpeech/README.TXT", _notice(info, ["librivox_sentences"]))
        ar.add("LibriSpeech/LICENSE.TXT", b"CC BY 4.0 (the real corpus's licence)\n")
        ar.add("LibriSpeech/SPEAKERS.TXT",
               f";ID  |SEX| SUBSET           |MINUTES| NAME\n{speaker:<5}| F | {subset:<17}| 0.50 | miniature\n".encode())
        ar.add("LibriSpeech/CHAPTERS.TXT",
               f";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE\n"
               f"{chapter:<7}|{speaker:<6}| 0.50  | {subset:<17}| 0    | 0     | miniature\n".encode())
        ar.add("LibriSpeech/BOOKS.TXT", b";ID    |BOOK TITLE\n0      |miniature\n")
        return {"val" if subset.startswith("dev") else "test": len(items)}

    return build


def _build_librispeech_train(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """train-clean-100.tar.gz in LibriSpeech's layout (one folder per speaker, one chapter each), with
    the spoken digit strings' training clips as audio (synthetic voices, their transcripts in upper
    case): the miniature exercises the loader and a training run, not what LibriSpeech teaches."""
    items = src.items("digit_strings", "train")[::3]
    speakers = {v: 1000 + i for i, v in enumerate(sorted({it["speaker"] for it in items}))}
    by_speaker: dict[str, list[dict]] = {}
    for it in items:
        by_speaker.setdefault(it["speaker"], []).append(it)
    for voice, its in by_speaker.items():
        speaker, chapter = speakers[voice], 1
        folder = f"LibriSpeech/train-clean-100/{speaker}/{chapter}"
        lines = []
        for utt, it in enumerate(its):
            utt_id = f"{speaker}-{chapter}-{utt:04d}"
            ar.add(f"{folder}/{utt_id}.flac", _encode(src.audio("digit_strings", it, 16_000), 16_000, "FLAC"))
            lines.append(f"{utt_id} {it['transcript'].upper()}\n")
        ar.add(f"{folder}/{speaker}-{chapter}.trans.txt", "".join(lines).encode())
    ar.add("LibriSpeech/README.TXT", _notice(info, ["digit_strings"]))
    ar.add("LibriSpeech/LICENSE.TXT", b"CC BY 4.0 (the real corpus's licence)\n")
    rows = "".join(f"{sid:<5}| F | train-clean-100  | 0.50 | miniature\n" for sid in speakers.values())
    ar.add("LibriSpeech/SPEAKERS.TXT", (";ID  |SEX| SUBSET           |MINUTES| NAME\n" + rows).encode())
    rows = "".join(f"1      |{sid:<6}| 0.50  | train-clean-100  | 0    | 0     | miniature\n"
                   for sid in speakers.values())
    ar.add("LibriSpeech/CHAPTERS.TXT",
           (";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE\n" + rows).encode())
    ar.add("LibriSpeech/BOOKS.TXT", b";ID    |BOOK TITLE\n0      |miniature\n")
    return {"train": len(items)}


def _build_ljspeech(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """LJSpeech-1.1.tar.bz2: ``LJSpeech-1.1/wavs/LJ0CC-NNNN.wav`` (22,050 Hz, 16-bit) and
    ``metadata.csv`` (``id|text|normalized text``), README. Chapters LJ001 (test), LJ002
    (validation), LJ003 (train), two clips each at least; audio: librivox_sentences."""
    items = src.items("librivox_sentences")
    sr = 22_050
    chapters = ["LJ001", "LJ001", "LJ002", "LJ002"] + ["LJ003"] * max(0, len(items) - 4)
    lines, numbers = [], {}
    counts = {"train": 0, "val": 0, "test": 0}
    for it, chapter in zip(items, chapters):
        numbers[chapter] = numbers.get(chapter, 0) + 1
        clip_id = f"{chapter}-{numbers[chapter]:04d}"
        ar.add(f"{info.root}/wavs/{clip_id}.wav", _encode(src.audio("librivox_sentences", it, sr), sr))
        text = it["transcript"]
        lines.append(f"{clip_id}|{text[:1].upper() + text[1:]}.|{text[:1].upper() + text[1:]}.\n")
        counts[{"LJ001": "test", "LJ002": "val"}.get(chapter, "train")] += 1
    ar.add(f"{info.root}/metadata.csv", "".join(lines).encode("utf-8"))
    ar.add(f"{info.root}/README", _notice(info, ["librivox_sentences"]))
    return counts


def _build_maestro_midi(ar: _Archive, src: _Offline, info: DatasetInfo) -> dict[str, int]:
    """maestro-v3.0.0-midi.zip: ``maestro-v3.0.0/<year>/<name>.midi``, ``maestro-v3.0.0.csv`` and
    ``maestro-v3.0.0.json`` (column-oriented) with the published columns. MIDI: the chorales
    set's Bach chorales (4 train, 2 validation, 2 test)."""
    import pretty_midi

    files = src.manifest("chorales").get("files", [])
    split_name = {"train": "train", "val": "validation", "test": "test"}
    limits = {"train": 4, "val": 2, "test": 2}
    rows = []
    counts = {"train": 0, "val": 0, "test": 0}
    for split in ("train", "val", "test"):
        chosen = sorted((f for f in files if f["split"] == split), key=lambda f: f["path"])[: limits[split]]
        for k, f in enumerate(chosen):
            data = src.path("chorales", f["path"]).read_bytes()
            year = 2004 + 2 * (len(rows) % 5)
            stem = f"MIDI-Unprocessed_{f['piece'].replace('.', '-')}_miniature"
            duration = pretty_midi.PrettyMIDI(io.BytesIO(data)).get_end_time()
            ar.add(f"{info.root}/{year}/{stem}.midi", data)
            rows.append({"canonical_composer": "Johann Sebastian Bach",
                         "canonical_title": f"Chorale {f['piece']}", "split": split_name[split], "year": year,
                         "midi_filename": f"{year}/{stem}.midi", "audio_filename": f"{year}/{stem}.wav",
                         "duration": round(duration, 6)})
            counts[split] += 1
    columns = list(rows[0])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    ar.add(f"{info.root}/maestro-v3.0.0.csv", text.getvalue().encode("utf-8"))
    as_json = {c: {str(i): row[c] for i, row in enumerate(rows)} for c in columns}
    ar.add(f"{info.root}/maestro-v3.0.0.json", json.dumps(as_json).encode("utf-8"))
    ar.add(f"{info.root}/LICENSE", _notice(info, ["chorales"]))
    return counts


# name -> (builder, offline sets it reads). A test keeps the keys equal to registry.DATASETS.
BUILDERS: dict[str, tuple[Callable[[_Archive, _Offline, DatasetInfo], dict[str, int]], tuple[str, ...]]] = {
    "speech_commands": (_build_speech_commands, ("spoken_digits",)),
    "fsdd": (_build_fsdd, ("spoken_digits",)),
    "esc50": (_build_esc50, ("sound_events",)),
    "gtzan": (_build_gtzan, ("music_styles",)),
    "ravdess": (_build_ravdess, ("prosody",)),
    "librispeech_train_clean_100": (_build_librispeech_train, ("digit_strings",)),
    "librispeech_dev_clean": (_librispeech("dev-clean", "real:librivox", 84, 121123), ("librivox_sentences",)),
    "librispeech_test_clean": (_librispeech("test-clean", "real:cards", 1089, 134686), ("librivox_sentences",)),
    "ljspeech": (_build_ljspeech, ("librivox_sentences",)),
    "maestro_midi": (_build_maestro_midi, ("chorales",)),
}


# --------------------------------------------------------------------------- build




def _ensure_offline(src: _Offline, sets: set[str], build_missing: bool) -> None:
    missing = []
    for name in sorted(sets):
        try:
            src.manifest(name)
        except MiniatureError:
            missing.append(name)
    if missing and build_missing:
        from course_lib.data import offline

        print(f"miniature: building the offline set(s) it reads first: {', '.join(missing)}", flush=True)
        try:
            offline.prepare(only=missing, cache_root=src.cache_root, progress=False)
        except offline.OfflineBuildError as exc:
            raise MiniatureError(f"cannot build the offline set(s) {missing}: {exc}") from exc
        src._manifests.clear()
    for name in sorted(sets):
        src.manifest(name)   # raises with the prepare command when still missing


def build_miniature(name: str, out_dir: str | os.PathLike, cache_root: str | os.PathLike | None = None,
                    build_missing: bool = True) -> dict[str, Any]:
    """Write the miniature archive of one registry dataset into ``out_dir``.

    Parameters
    ----------
    name : str
        A key of ``registry.DATASETS`` (and of ``BUILDERS``).
    out_dir : path-like
        Folder for the archive (created); the file gets the registry's archive name.
    cache_root : path-like, optional
        Cache holding the offline sets (default: the runtime's data folder).
    build_missing : bool
        Build an offline set it reads when it is missing (needs the system tools).

    Returns
    -------
    dict
        ``archive`` (file name), ``size`` (bytes), ``sha256`` or ``md5`` (the kind the registry
        publishes for this dataset), ``counts`` ({split: clips}) and ``offline_sets``.

    Raises
    ------
    MiniatureError
        An offline set it reads is missing and cannot be built.
    """
    from course_lib.runtime import data_root

    if name not in BUILDERS:
        raise KeyError(f"no miniature builder for {name!r}; add one to course_lib.data.miniature.BUILDERS")
    info = DATASETS[name]
    builder, sets = BUILDERS[name]
    src = _Offline(Path(cache_root) if cache_root is not None else data_root())
    _ensure_offline(src, set(sets), build_missing)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / info.archive
    partial = path.with_name(path.name + ".part")
    archive = _Archive(partial, info.archive)
    try:
        counts = builder(archive, src, info)
    finally:
        archive.close()
    os.replace(partial, path)
    entry: dict[str, Any] = {"archive": info.archive, "size": path.stat().st_size, "counts": counts,
                             "offline_sets": list(sets)}
    # the same kind of checksum the registry publishes, so the same verification path runs
    if info.sha256 is None and info.md5 is not None:
        entry["md5"] = file_digest(path, "md5")
    else:
        entry["sha256"] = file_digest(path, "sha256")
    return entry


def _inputs_digest(src: _Offline, names: list[str]) -> str:
    """What a build depends on: this module's code and the manifests of the offline sets it reads."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for set_name in sorted({s for n in names for s in BUILDERS[n][1]}):
        h.update(set_name.encode())
        h.update(json.dumps(src.manifest(set_name), sort_keys=True).encode())
    return h.hexdigest()


def build_all(out_dir: str | os.PathLike, names: list[str] | None = None,
              cache_root: str | os.PathLike | None = None, build_missing: bool = True,
              reuse: bool = True) -> dict[str, Any]:
    """Build the miniature archives (default: every registry dataset) and ``miniature.json``.

    Parameters
    ----------
    out_dir : path-like
        Folder for the archives and the index.
    names : list of str, optional
        Registry names; default all of ``BUILDERS``.
    cache_root : path-like, optional
        Cache holding the offline sets.
    build_missing : bool
        Build missing offline sets first.
    reuse : bool
        Keep the archives already in ``out_dir`` when the index says they were built from the
        same code and offline sets (and their files are intact).

    Returns
    -------
    dict
        The index: ``format``, ``build`` (an id of these exact archives), ``inputs`` and
        ``datasets`` ({name: entry as from :func:`build_miniature`}).
    """
    from course_lib.runtime import data_root

    names = sorted(BUILDERS) if names is None else list(names)
    out = Path(out_dir)
    src = _Offline(Path(cache_root) if cache_root is not None else data_root())
    _ensure_offline(src, {s for n in names for s in BUILDERS[n][1]}, build_missing)
    inputs = _inputs_digest(src, names)
    index_path = out / MINIATURE_INDEX
    if reuse and index_path.is_file():
        try:
            old = json.loads(index_path.read_text())
        except ValueError:
            old = {}
        if (old.get("inputs") == inputs and sorted(old.get("datasets", {})) == names
                and all((out / e["archive"]).is_file() and (out / e["archive"]).stat().st_size == e["size"]
                        for e in old["datasets"].values())):
            return old
    datasets = {}
    for name in names:
        t0 = time.perf_counter()
        datasets[name] = build_miniature(name, out, src.cache_root, build_missing=False)
        e = datasets[name]
        print(f"miniature {name}: {e['archive']} {e['size'] / 1e6:.1f} MB {e['counts']} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    checksums = "".join(f"{n}:{e.get('sha256') or e.get('md5')}" for n, e in sorted(datasets.items()))
    index = {"format": MINIATURE_FORMAT, "build": hashlib.sha256(checksums.encode()).hexdigest()[:12],
             "inputs": inputs, "datasets": datasets}
    index_path.write_text(json.dumps(index, indent=1))
    return index


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    server: MiniatureServer

    def log_message(self, *args: object) -> None:  # the caller's output stays readable
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.server
        srv.last_request = time.monotonic()
        name = self.path.lstrip("/").split("?", 1)[0]
        srv.requests.append(name)
        # only the files of the index are served: no path from the request reaches the disk
        path = srv.files.get(name)
        if path is None or not path.is_file():
            self.send_error(404, "Not Found")
            return
        data = path.read_bytes()
        start = 0
        range_header = self.headers.get("Range", "")
        if range_header.startswith("bytes=") and range_header[6:].split("-")[0].isdigit():
            start = int(range_header[6:].split("-")[0])
        if start >= len(data) and start:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Content-Type", "application/json" if name.endswith(".json") else "application/octet-stream")
        self.end_headers()
        self.wfile.write(data[start:])


class MiniatureServer(ThreadingHTTPServer):
    """Serve a folder of miniature archives on 127.0.0.1 (an ephemeral port) from a daemon thread.

    Only ``miniature.json`` and the archives it lists are served. The thread dies with the
    process; with ``idle_timeout`` the server also stops by itself after that many seconds
    without a request.

    Parameters
    ----------
    folder : path-like
        Folder written by :func:`build_all`.
    idle_timeout : float, optional
        Seconds without a request after which the server shuts down.

    Examples
    --------
    >>> with MiniatureServer(folder) as server:          # doctest: +SKIP
    ...     os.environ["COURSE_FIXTURE_MIRROR"] = server.url
    """

    daemon_threads = True

    def __init__(self, folder: str | os.PathLike, idle_timeout: float | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folder = Path(folder)
        index = json.loads((self.folder / MINIATURE_INDEX).read_text())
        self.files = {MINIATURE_INDEX: self.folder / MINIATURE_INDEX}
        self.files.update({e["archive"]: self.folder / e["archive"] for e in index["datasets"].values()})
        self.requests: list[str] = []
        self.last_request = time.monotonic()
        self.idle_timeout = idle_timeout
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="miniature-server", daemon=True)
        self._thread.start()
        if idle_timeout is not None:
            threading.Thread(target=self._watch_idle, name="miniature-idle", daemon=True).start()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321/``."""
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def _watch_idle(self) -> None:
        while self._thread.is_alive():
            time.sleep(1.0)
            if time.monotonic() - self.last_request > self.idle_timeout:
                self.shutdown()
                return

    def wait(self) -> None:
        """Block until the server stops (idle timeout or :meth:`stop`)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
        self.server_close()

    def __enter__(self) -> MiniatureServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def default_dir(cache_root: str | os.PathLike | None = None) -> Path:
    """``<cache>/miniature/archives``: where the command line builds the archives."""
    from course_lib.runtime import data_root

    return (Path(cache_root) if cache_root is not None else data_root()) / "miniature" / "archives"


def _prune_extractions(cache_root: Path, keep: str) -> None:
    """Delete extractions of earlier fixture builds (``<cache>/miniature/<build>/``)."""
    folder = cache_root / "miniature"
    for child in folder.iterdir() if folder.is_dir() else []:
        if child.is_dir() and child.name not in ("archives", keep):
            shutil.rmtree(child, ignore_errors=True)


@contextlib.contextmanager
def miniature_mirror(out_dir: str | os.PathLike | None = None, cache_root: str | os.PathLike | None = None,
                     names: list[str] | None = None) -> Iterator[MiniatureServer]:
    """Build the miniatures, serve them and set ``COURSE_FIXTURE_MIRROR`` for the duration.

    Child processes started inside the block (Jupyter kernels, subprocesses) inherit the
    variable. On exit the variable is restored and the server stopped.

    Yields
    ------
    MiniatureServer
    """
    from course_lib.runtime import data_root

    root = Path(cache_root) if cache_root is not None else data_root()
    out = Path(out_dir) if out_dir is not None else default_dir(root)
    index = build_all(out, names, root)
    _prune_extractions(root, index["build"])
    previous = os.environ.get(FIXTURE_MIRROR_ENV)
    with MiniatureServer(out) as server:
        os.environ[FIXTURE_MIRROR_ENV] = server.url
        try:
            yield server
        finally:
            if previous is None:
                os.environ.pop(FIXTURE_MIRROR_ENV, None)
            else:
                os.environ[FIXTURE_MIRROR_ENV] = previous


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``miniature`` subcommand's options (used by ``python -m course_lib.data``)."""
    parser.add_argument("--out", help="folder for the archives (default <cache>/miniature/archives)")
    parser.add_argument("--only", action="append", choices=sorted(BUILDERS), help="build only this dataset")
    parser.add_argument("--serve", action="store_true",
                        help=f"serve them on 127.0.0.1 and print the {FIXTURE_MIRROR_ENV} line to use")
    parser.add_argument("--idle-timeout", type=float, default=600.0,
                        help="with --serve: stop after this many seconds without a request (default 600)")
    parser.add_argument("--run", nargs=argparse.REMAINDER, metavar="CMD",
                        help=f"serve them while CMD runs with {FIXTURE_MIRROR_ENV} set; exit with its status")


def _run_child(command: list[str]) -> int:
    """Run ``command`` and return its status; a SIGTERM or Ctrl-C to this process stops it too."""
    import signal

    child = subprocess.Popen(command)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """Carry out the ``miniature`` subcommand; returns the exit status."""
    from course_lib.runtime import data_root

    root = data_root()
    out = Path(args.out) if args.out else default_dir(root)
    try:
        if args.run:
            with miniature_mirror(out, root, args.only) as server:
                print(f"miniature datasets served at {server.url} ({FIXTURE_MIRROR_ENV} set) for: "
                      f"{' '.join(args.run)}", flush=True)
                return _run_child(args.run)
        index = build_all(out, args.only, root)
        _prune_extractions(root, index["build"])
    except MiniatureError as exc:
        print(f"miniature: {exc}", file=sys.stderr)
        return 1
    print(f"miniature archives in {out} (build {index['build']})")
    if args.serve:
        server = MiniatureServer(out, idle_timeout=args.idle_timeout)
        print(f"serving on {server.url} until {args.idle_timeout:g} s pass without a request (Ctrl-C stops). "
              f"In another shell:\n  export {FIXTURE_MIRROR_ENV}={server.url}", flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.data.miniature`` (same as ``python -m course_lib.data miniature``)."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.data miniature", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
