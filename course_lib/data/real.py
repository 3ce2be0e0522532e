"""Index extracted real datasets into labelled records, one split at a time.

Each ``index_*`` function reads the folder ``course_lib.data.download.fetch`` returns and gives
``(records, classes)``: a list of ``Record(path, label, meta)`` sorted by path and the class
names that ``label`` indexes (``label == -1`` and ``classes == []`` for transcription and
symbolic-music data). Splits are ``"train"``, ``"val"`` and ``"test"``, and always follow
the dataset's official split or, where there is none, a grouping (speaker, actor, chapter) that
keeps one voice or one source out of two splits; ``registry.DATASETS[name].splits`` says which.

Notebook: 00_welcome (the data layer) and each task notebook: 06_cnn_audio_classification,
12_keyword_spotting, 13_speech_recognition_ctc, 14_speech_emotion, 15_music_classification,
16_music_generation, 18_speech_generation_vocoder.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from pathlib import Path

from course_lib.data.records import SPLITS, Record
from course_lib.data.registry import DatasetInfo, get_info

__all__ = [
    "SPLITS",
    "SPEECH_COMMANDS_WORDS",
    "GTZAN_GENRES",
    "RAVDESS_EMOTIONS",
    "index_speech_commands",
    "index_fsdd",
    "index_esc50",
    "index_gtzan",
    "index_ravdess",
    "index_librispeech",
    "index_ljspeech",
    "index_maestro",
    "INDEX_FUNCTIONS",
    "index_dataset",
]

_FILE_SPLITS = {"train": "train", "val": "validation", "test": "test"}  # maestro-v3.0.0.csv spells it out

# The 35 words of Speech Commands v0.02, sorted: labels stay the same whatever subset is on disk.
SPEECH_COMMANDS_WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one",
    "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow",
    "yes", "zero",
)
GTZAN_GENRES = (
    "blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock",
)
# RAVDESS file-name field 3: 01 neutral ... 08 surprised; label = code - 1.
RAVDESS_EMOTIONS = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
)
_RAVDESS_ACTORS = {"train": range(1, 19), "val": range(19, 21), "test": range(21, 25)}
_LIBRISPEECH_SUBSETS = {"train": "train-clean-100", "val": "dev-clean", "test": "test-clean"}


def _check_split(split: str, allowed: tuple[str, ...] = SPLITS) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    return split


def _need(path: Path, what: str, dataset: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{dataset}: {what} not found at {path}. Pass the folder that "
            f"course_lib.data.download.fetch({dataset!r}) returns."
        )
    return path


def _sorted(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: str(r.path))


def index_speech_commands(root: str | os.PathLike[str], split: str) -> tuple[list[Record], list[str]]:
    """Index Speech Commands v0.02 with its official validation/testing lists.

    Parameters
    ----------
    root : path-like
        Folder holding the word folders, ``validation_list.txt`` and ``testing_list.txt``.
    split : {"train", "val", "test"}
        ``validation``/``test`` are the files in the lists; ``train`` is every other clip of the
        35 words. ``_background_noise_`` is never a class.

    Returns
    -------
    records : list of Record
        ``meta``: ``speaker`` (hash before ``_nohash_``), ``utterance`` (int), ``word``.
    classes : list of str
        The 35 words, sorted.

    Notes
    -----
    Notebook: 12_keyword_spotting.
    """
    root = Path(root)
    _check_split(split)
    lists = {}
    for key, fname in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
        text = _need(root / fname, fname, "speech_commands").read_text()
        lists[key] = {line.strip() for line in text.splitlines() if line.strip()}
    held_out = lists["val"] | lists["test"]
    label_of = {w: i for i, w in enumerate(SPEECH_COMMANDS_WORDS)}

    if split == "train":
        rels = []
        for word in SPEECH_COMMANDS_WORDS:
            folder = root / word
            if folder.is_dir():
                names = (f"{word}/{p.name}" for p in folder.glob("*.wav"))
                rels += [rel for rel in names if rel not in held_out]
    else:
        rels = sorted(lists[split])

    records = []
    for rel in rels:
        word, fname = rel.split("/", 1)
        if word not in label_of:
            raise ValueError(
                f"speech_commands: {rel!r} in the split lists is not one of the 35 v0.02 words; "
                "is this Speech Commands v0.02?"
            )
        speaker, _, utt = Path(fname).stem.partition("_nohash_")
        records.append(
            Record(root / rel, label_of[word],
                   {"speaker": speaker, "utterance": int(utt) if utt.isdigit() else utt, "word": word})
        )
    return _sorted(records), list(SPEECH_COMMANDS_WORDS)


_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def index_fsdd(root: str | os.PathLike[str], split: str) -> tuple[list[Record], list[str]]:
    """Index the Free Spoken Digit Dataset with its README split by recording index.

    Parameters
    ----------
    root : path-like
        The repository folder holding ``recordings/`` (or ``recordings/`` itself).
    split : {"train", "val", "test"}
        Official test: index 0-4 of each speaker and digit. The course validates on 5-9 and
        trains on 10-49. Speakers are shared by all splits.

    Returns
    -------
    records : list of Record
        ``meta``: ``speaker``, ``index`` (int).
    classes : list of str
        ``"0"`` ... ``"9"``.

    Notes
    -----
    Notebook: 12_keyword_spotting (spoken digits), 06_cnn_audio_classification.
    """
    root = Path(root)
    _check_split(split)
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    records = []
    for path in _need(folder, "recordings/", "fsdd").glob("*.wav"):
        match = _FSDD_NAME.match(path.name)
        if match is None:
            continue
        digit, speaker, idx = int(match[1]), match[2], int(match[3])
        which = "test" if idx < 5 else ("val" if idx < 10 else "train")
        if which == split:
            records.append(Record(path, digit, {"speaker": speaker, "index": idx}))
    return _sorted(records), [str(d) for d in range(10)]


def index_esc50(
    root: str | os.PathLike[str], split: str, test_fold: int = 5, val_fold: int | None = 4
) -> tuple[list[Record], list[str]]:
    """Index ESC-50 by its official folds (``meta/esc50.csv``).

    Parameters
    ----------
    root : path-like
        ``ESC-50-master`` folder holding ``audio/`` and ``meta/esc50.csv``.
    split : {"train", "val", "test"}
    test_fold : int
        Fold held out for testing (1-5; 5 by convention).
    val_fold : int or None
        Fold held out for validation; ``None`` trains on the four other folds and has no
        validation split.

    Returns
    -------
    records : list of Record
        ``meta``: ``fold``, ``src_file`` (the source recording), ``take``, ``esc10`` (bool).
    classes : list of str
        The 50 category names ordered by the CSV's ``target``.

    Notes
    -----
    Notebook: 06_cnn_audio_classification.
    """
    root = Path(root)
    _check_split(split)
    if test_fold not in range(1, 6) or (val_fold is not None and val_fold not in range(1, 6)):
        raise ValueError(f"ESC-50 folds are 1-5; got test_fold={test_fold}, val_fold={val_fold}")
    if val_fold == test_fold:
        raise ValueError(f"val_fold and test_fold must differ (both {test_fold})")
    if split == "val" and val_fold is None:
        raise ValueError("val_fold=None leaves ESC-50 without a validation split; pass val_fold=1..5")
    csv_path = _need(root / "meta" / "esc50.csv", "meta/esc50.csv", "esc50")
    names: dict[int, str] = {}
    records = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            fold, target = int(row["fold"]), int(row["target"])
            names[target] = row["category"]
            which = "test" if fold == test_fold else ("val" if fold == val_fold else "train")
            if which == split:
                meta = {
                    "fold": fold,
                    "src_file": row.get("src_file", ""),
                    "take": row.get("take", ""),
                    "esc10": str(row.get("esc10", "")).lower() == "true",
                }
                records.append(Record(root / "audio" / row["filename"], target, meta))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{csv_path}: targets are not 0..{len(names) - 1}; is this the ESC-50 CSV?")
    return _sorted(records), [names[i] for i in range(len(names))]


def _gtzan_lists() -> dict[str, list[str]]:
    try:
        from torchaudio.datasets import gtzan
    except ImportError as err:  # pragma: no cover - torchaudio is a course dependency
        raise ImportError(
            "index_gtzan reads the fault-filtered split lists shipped with torchaudio; "
            "install torchaudio (see requirements.lock)."
        ) from err
    return {"train": gtzan.filtered_train, "val": gtzan.filtered_valid, "test": gtzan.filtered_test}


def index_gtzan(root: str | os.PathLike[str], split: str) -> tuple[list[Record], list[str]]:
    """Index GTZAN with the fault-filtered split (Kereliuk, Sturm & Larsen 2015).

    443 / 197 / 290 clips; repeated, distorted and mislabelled clips are left out and no
    artist appears in two splits. The lists are the ones torchaudio ships.

    Parameters
    ----------
    root : path-like
        The ``genres`` folder with one subfolder per genre (``.au`` or ``.wav`` files).
    split : {"train", "val", "test"}

    Returns
    -------
    records : list of Record
        ``meta``: ``track`` (e.g. ``"blues.00029"``).
    classes : list of str
        The 10 genres, sorted.

    Notes
    -----
    Notebook: 15_music_classification.
    """
    root = Path(root)
    _check_split(split)
    _need(root, "genres/", "gtzan")
    label_of = {g: i for i, g in enumerate(GTZAN_GENRES)}
    records = []
    for track in _gtzan_lists()[split]:
        genre = track.split(".")[0]
        for ext in (".wav", ".au"):
            path = root / genre / f"{track}{ext}"
            if path.exists():
                if track in GTZAN_KNOWN_CORRUPT and not _decodes(path):
                    print(f"gtzan: {path.name} left out: it does not decode (a known fault of widely shared "
                          f"copies of GTZAN); the {split} split has one clip fewer", flush=True)
                    break
                records.append(Record(path, label_of[genre], {"track": track}))
                break
    return _sorted(records), list(GTZAN_GENRES)


# Clips of the fault-filtered lists that some shared copies of GTZAN hold broken (jazz.00054 is
# unreadable in the widely used Kaggle re-encoding): decoded in full at indexing time, dropped if broken.
GTZAN_KNOWN_CORRUPT = ("jazz.00054",)


def _decodes(path: Path) -> bool:
    import soundfile as sf

    try:
        samples, _ = sf.read(str(path), dtype="float32")
    except Exception:  # soundfile raises several types for broken files
        return False
    return samples.size > 0


def index_ravdess(root: str | os.PathLike[str], split: str) -> tuple[list[Record], list[str]]:
    """Index the RAVDESS audio-only speech files, split by actor.

    File names are ``MM-VC-EE-II-SS-RR-AA.wav``; field 3 is the emotion, field 7 the actor.
    Only audio-only (``03``) speech (``01``) files are used. Actors 1-18 train, 19-20
    validation, 21-24 test.

    Parameters
    ----------
    root : path-like
        Folder holding ``Actor_01`` ... ``Actor_24``.
    split : {"train", "val", "test"}

    Returns
    -------
    records : list of Record
        ``meta``: ``speaker`` (actor number), ``gender`` (odd actors male), ``intensity``,
        ``statement``, ``repetition``.
    classes : list of str
        The 8 emotions in code order (neutral ... surprised).

    Notes
    -----
    Notebook: 14_speech_emotion.
    """
    root = Path(root)
    _check_split(split)
    actors = _RAVDESS_ACTORS[split]
    records = []
    for path in _need(root, "Actor_* folders", "ravdess").rglob("*.wav"):
        fields = path.stem.split("-")
        if len(fields) != 7 or not all(f.isdigit() for f in fields):
            continue
        modality, channel, emotion, intensity, statement, repetition, actor = map(int, fields)
        if modality != 3 or channel != 1 or actor not in actors or not 1 <= emotion <= 8:
            continue
        meta = {
            "speaker": actor,
            "gender": "male" if actor % 2 else "female",
            "intensity": "strong" if intensity == 2 else "normal",
            "statement": statement,
            "repetition": repetition,
        }
        records.append(Record(path, emotion - 1, meta))
    return _sorted(records), list(RAVDESS_EMOTIONS)


def index_librispeech(root: str | os.PathLike[str], split: str) -> tuple[list[Record], list[str]]:
    """Index a LibriSpeech subset with its transcripts (label -1).

    Parameters
    ----------
    root : path-like
        The ``LibriSpeech`` folder (holding ``dev-clean/`` etc.) or a subset folder itself.
    split : str
        ``"val"`` (dev-clean), ``"test"`` (test-clean), ``"train"`` (train-clean-100),
        or a subset folder name such as ``"dev-other"``.

    Returns
    -------
    records : list of Record
        Label ``-1``; ``meta``: ``transcript`` (upper-case words), ``speaker``, ``chapter``,
        ``utterance_id``.
    classes : list of str
        Empty: transcription has no classes.

    Notes
    -----
    Notebook: 13_speech_recognition_ctc.
    """
    root = Path(root)
    subset = _LIBRISPEECH_SUBSETS.get(split, split)
    folder = root / subset if (root / subset).is_dir() else root
    if folder.name != subset:
        raise FileNotFoundError(
            f"librispeech: subset {subset!r} (split {split!r}) not found under {root}. The "
            f"registry entry 'librispeech_{subset.replace('-', '_')}' downloads it."
        )
    records = []
    for trans in folder.rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            utt_id, _, text = line.strip().partition(" ")
            if not utt_id:
                continue
            speaker, chapter, _ = utt_id.split("-")
            meta = {"transcript": text, "speaker": speaker, "chapter": chapter, "utterance_id": utt_id}
            records.append(Record(trans.parent / f"{utt_id}.flac", -1, meta))
    return _sorted(records), []


_LJ_SPLIT = {"LJ001": "test", "LJ002": "val"}


def index_ljspeech(root: str | os.PathLike[str], split: str) -> tuple[list[Record], list[str]]:
    """Index LJ Speech 1.1, split by source chapter (LJ001 test, LJ002 validation, rest train).

    Parameters
    ----------
    root : path-like
        ``LJSpeech-1.1`` folder holding ``metadata.csv`` and ``wavs/``.
    split : {"train", "val", "test"}

    Returns
    -------
    records : list of Record
        Label ``-1``; ``meta``: ``transcript`` (normalised text), ``chapter``.
    classes : list of str
        Empty.

    Notes
    -----
    Notebook: 18_speech_generation_vocoder.
    """
    root = Path(root)
    _check_split(split)
    metadata = _need(root / "metadata.csv", "metadata.csv", "ljspeech")
    records = []
    # metadata.csv is "id|text|normalized text" with unescaped quotes: split by hand, not csv.
    for line in metadata.read_text(encoding="utf-8").splitlines():
        fields = line.split("|")
        if len(fields) < 2:
            continue
        clip_id = fields[0]
        chapter = clip_id.split("-")[0]
        if _LJ_SPLIT.get(chapter, "train") != split:
            continue
        text = fields[2] if len(fields) > 2 and fields[2] else fields[1]
        records.append(Record(root / "wavs" / f"{clip_id}.wav", -1, {"transcript": text, "chapter": chapter}))
    return _sorted(records), []


def index_maestro(root: str | os.PathLike[str], split: str) -> tuple[list[Record], list[str]]:
    """Index MAESTRO v3.0.0 MIDI files with the official split column.

    Parameters
    ----------
    root : path-like
        ``maestro-v3.0.0`` folder holding ``maestro-v3.0.0.csv`` and the year folders.
    split : {"train", "val", "test"}

    Returns
    -------
    records : list of Record
        Paths to ``.midi`` files, label ``-1``; ``meta``: ``composer``, ``title``, ``year``,
        ``duration`` (seconds).
    classes : list of str
        Empty.

    Notes
    -----
    Notebook: 16_music_generation.
    """
    root = Path(root)
    _check_split(split)
    csv_path = _need(root / "maestro-v3.0.0.csv", "maestro-v3.0.0.csv", "maestro_midi")
    records = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] != _FILE_SPLITS[split]:
                continue
            meta = {
                "composer": row["canonical_composer"],
                "title": row["canonical_title"],
                "year": int(row["year"]),
                "duration": float(row["duration"]),
            }
            records.append(Record(root / row["midi_filename"], -1, meta))
    return _sorted(records), []


INDEX_FUNCTIONS: dict[str, Callable[[str | os.PathLike[str], str], tuple[list[Record], list[str]]]] = {
    fn.__name__: fn
    for fn in (
        index_speech_commands, index_fsdd, index_esc50, index_gtzan, index_ravdess,
        index_librispeech, index_ljspeech, index_maestro,
    )
}


def index_dataset(
    name_or_info: str | DatasetInfo, root: str | os.PathLike[str], split: str
) -> tuple[list[Record], list[str]]:
    """Index a registry dataset's split with the function its entry names.

    For the LibriSpeech entries the subset the entry downloads is used whatever ``split``
    says, since each holds a single official subset.

    Parameters
    ----------
    name_or_info : str or DatasetInfo
        Registry name or entry.
    root : path-like
        Folder returned by ``fetch``.
    split : str
        ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    records : list of Record
    classes : list of str

    Notes
    -----
    Notebook: 00_welcome.
    """
    info = get_info(name_or_info)
    fn = INDEX_FUNCTIONS[info.index]
    if fn is index_librispeech:
        return fn(root, info.marker)
    return fn(root, split)
