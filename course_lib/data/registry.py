"""The real public datasets the course can use: where they live, how to check them, how they split.

Each entry says where the archive can be downloaded (several mirrors, the first is the primary),
its exact size and checksum, what a successful extraction looks like, which official split the
course uses and which offline set stands in for it when it cannot be had (CI, no network).
``course_lib.data.download.fetch`` turns an entry into a folder on disk and
``course_lib.data.real`` turns that folder into labelled records.

Checksums come from public records: torchaudio's dataset modules and tensorflow-datasets'
``url_checksums`` files (Speech Commands, LibriSpeech, LJSpeech, GTZAN, FSDD), the publisher's
own MD5 on Zenodo (RAVDESS) and published SHA-256 records of the archives (MAESTRO, ESC-50).
None was invented: where no checksum is known the field is ``None`` and the downloader refuses
the file unless asked to accept an unverified one.

Notebook: 00_welcome (the data layer), and every task notebook that trains on a real dataset.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass

__all__ = ["DatasetInfo", "DATASETS", "OFFLINE_SETS", "FIXTURE_MIRROR_ENV", "fixture_mirror", "get_info"]

# For the course's own tests only: the base URL of a local server that serves miniature copies of
# the archives (``python -m course_lib.data miniature``). When set, ``download.fetch`` takes every
# archive, its size and its checksum from that server instead of the entries below.
FIXTURE_MIRROR_ENV = "COURSE_FIXTURE_MIRROR"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# The offline sets built by ``python -m course_lib.data prepare`` (course_lib.data.offline;
# a test keeps the two lists equal without making the registry import the builders).
OFFLINE_SETS = (
    "spoken_digits",
    "spoken_words",
    "sound_events",
    "music_styles",
    "prosody",
    "digit_strings",
    "librivox_sentences",
    "chorales",
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class DatasetInfo:
    """One real dataset: provenance, integrity, layout and splits.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"speech_commands"``; also the folder under the cache root.
    title : str
        Human-readable name with version.
    task : str
        What the course uses it for, e.g. ``"keyword spotting"``.
    license : str
        Licence of the data (read it before redistributing anything derived from it).
    citation : str
        Short reference to cite.
    homepage : str
        Where the dataset is described.
    mirrors : tuple of str
        Download URLs of the same archive, tried in order; the first is the primary.
    archive : str
        File name the archive is stored under in ``<cache>/downloads/``.
    size : int or None
        Archive size in bytes.
    sha256 : str or None
        Hex SHA-256 of the archive; ``None`` where no published value was found.
    md5 : str or None
        Hex MD5 published by the distributor, used only where no SHA-256 is known.
    root : str
        Path of the dataset root inside the extraction folder (``"."`` for flat archives).
    marker : str
        Path under ``root`` whose presence shows the extraction yielded the expected layout.
    layout : str
        What the extracted folder contains.
    splits : str
        Which split the course uses and why.
    offline_fallback : str
        Name of the offline set that stands in for this dataset (one of ``OFFLINE_SETS``).
    sr : int or None
        Native sample rate in Hz (``None`` for symbolic data such as MIDI).
    index : str
        Name of the function in ``course_lib.data.real`` that indexes the extracted dataset.
    """

    name: str
    title: str
    task: str
    license: str
    citation: str
    homepage: str
    mirrors: tuple[str, ...]
    archive: str
    size: int | None
    sha256: str | None
    md5: str | None
    root: str
    marker: str
    layout: str
    splits: str
    offline_fallback: str
    sr: int | None
    index: str
    # Profiles that download it when it is missing. A set too large for a laptop's disk and time
    # (train-clean-100: 6.3 GB) says ("gpu",); elsewhere it is used only if already downloaded.
    fetched_in: tuple[str, ...] = ("laptop", "gpu")

    def __post_init__(self) -> None:
        # A typo in a checksum would make every download fail as "corrupt": catch it at import.
        if self.sha256 is not None and not _SHA256.match(self.sha256):
            raise ValueError(f"DatasetInfo {self.name!r}: sha256 must be 64 lowercase hex digits")
        if self.md5 is not None and not _MD5.match(self.md5):
            raise ValueError(f"DatasetInfo {self.name!r}: md5 must be 32 lowercase hex digits")
        if not self.mirrors:
            raise ValueError(f"DatasetInfo {self.name!r}: give at least one mirror URL")
        if self.offline_fallback not in OFFLINE_SETS:
            raise ValueError(
                f"DatasetInfo {self.name!r}: offline_fallback {self.offline_fallback!r} is not one "
                f"of {OFFLINE_SETS}"
            )

    @property
    def verified(self) -> bool:
        """Whether a downloaded archive can be checked against a published checksum."""
        return self.sha256 is not None or self.md5 is not None


def _librispeech(subset: str, role: str, size: int, sha256: str, splits: str,
                 fetched_in: tuple[str, ...] = ("laptop", "gpu")) -> DatasetInfo:
    """One LibriSpeech subset: the corpus's facts are shared, the archive's are its own."""
    archive = f"{subset}.tar.gz"
    return DatasetInfo(
        name=f"librispeech_{subset.replace('-', '_')}",
        title=f"LibriSpeech {subset}",
        task=f"speech recognition ({role})",
        license="CC BY 4.0",
        citation=(
            "Panayotov, V., Chen, G., Povey, D., Khudanpur, S. (2015). LibriSpeech: an ASR "
            "corpus based on public domain audio books. Proc. ICASSP, 5206-5210."
        ),
        homepage="https://www.openslr.org/12",
        mirrors=tuple(f"https://{host}/resources/12/{archive}" for host in
                      ("www.openslr.org", "us.openslr.org", "openslr.elda.org", "openslr.magicdatatech.com")),
        archive=archive,
        size=size,
        sha256=sha256,
        md5=None,
        root="LibriSpeech",
        marker=subset,
        layout=f"LibriSpeech/{subset}/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac and <speaker>-<chapter>.trans.txt",
        splits=splits,
        offline_fallback="digit_strings",
        sr=16_000,
        index="index_librispeech",
        fetched_in=fetched_in,
    )


_ENTRIES = (
    DatasetInfo(
        name="speech_commands",
        title="Speech Commands v0.02",
        task="keyword spotting",
        license="CC BY 4.0",
        citation=(
            "Warden, P. (2018). Speech Commands: A Dataset for Limited-Vocabulary Speech "
            "Recognition. arXiv:1804.03209."
        ),
        homepage="https://arxiv.org/abs/1804.03209",
        mirrors=(
            "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
            "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        ),
        archive="speech_commands_v0.02.tar.gz",
        size=2_428_923_189,
        sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
        md5=None,
        root=".",
        marker="testing_list.txt",
        layout=(
            "flat: one folder per word (35 words, 105,829 one-second 16 kHz wav files named "
            "<speaker hash>_nohash_<n>.wav), _background_noise_/, validation_list.txt, "
            "testing_list.txt"
        ),
        splits=(
            "official: validation_list.txt and testing_list.txt (assigned by a hash of the "
            "speaker id, so no speaker crosses splits); train is every other word clip. "
            "_background_noise_ is excluded from the 35 classes."
        ),
        offline_fallback="spoken_digits",
        sr=16_000,
        index="index_speech_commands",
    ),
    DatasetInfo(
        name="fsdd",
        title="Free Spoken Digit Dataset v1.0.9",
        task="spoken digit recognition",
        license="CC BY-SA 4.0",
        citation=(
            "Jackson, Z. et al. (2018). Free Spoken Digit Dataset v1.0.9. "
            "Zenodo, doi:10.5281/zenodo.1342401."
        ),
        homepage="https://github.com/Jakobovski/free-spoken-digit-dataset",
        mirrors=(
            "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/v1.0.9.tar.gz",
            "https://codeload.github.com/Jakobovski/free-spoken-digit-dataset/tar.gz/refs/tags/v1.0.9",
        ),
        archive="free-spoken-digit-dataset-1.0.9.tar.gz",
        size=11_975_353,
        sha256="8bc44cde129d505cbbb6b365c09f80c663f2aa77578afc634e6141a2f87100c0",
        md5=None,
        root="free-spoken-digit-dataset-1.0.9",
        marker="recordings",
        layout="recordings/<digit>_<speaker>_<index>.wav, 8 kHz mono, index 0-49 per speaker and digit",
        splits=(
            "official (README): recordings 0-4 of each speaker and digit are the test set; "
            "the course keeps 5-9 as validation and trains on 10-49. The same speakers appear "
            "in every split, so this measures within-speaker generalisation."
        ),
        offline_fallback="spoken_digits",
        sr=8_000,
        index="index_fsdd",
    ),
    DatasetInfo(
        name="esc50",
        title="ESC-50 (environmental sound classification, 50 classes)",
        task="environmental sound classification",
        license="CC BY-NC 3.0",
        citation=(
            "Piczak, K. J. (2015). ESC: Dataset for Environmental Sound Classification. "
            "Proc. ACM Multimedia, 1015-1018."
        ),
        homepage="https://github.com/karolpiczak/ESC-50",
        mirrors=(
            "https://github.com/karolpiczak/ESC-50/archive/master.zip",
            "https://codeload.github.com/karolpiczak/ESC-50/zip/refs/heads/master",
        ),
        archive="ESC-50-master.zip",
        # GitHub builds this archive from the master branch; the size and SHA-256 are those
        # recorded for it in 2026. Should the branch ever change, the checksum fails loudly.
        size=645_695_005,
        sha256="805afc618aff80eff0641d51311647871fead5807da68bb18e43a27db47a79ce",
        md5=None,
        root="ESC-50-master",
        marker="meta/esc50.csv",
        layout="audio/<fold>-<freesound id>-<take>-<target>.wav (2,000 five-second 44.1 kHz clips), meta/esc50.csv",
        splits=(
            "official 5 folds (clips cut from one source recording share a fold); by convention "
            "fold 5 is the test set, the course validates on fold 4 and trains on folds 1-3."
        ),
        offline_fallback="sound_events",
        sr=44_100,
        index="index_esc50",
    ),
    DatasetInfo(
        name="gtzan",
        title="GTZAN Genre Collection",
        task="music genre classification",
        license="no explicit licence; distributed for research (the clips' copyright was never cleared)",
        citation=(
            "Tzanetakis, G., Cook, P. (2002). Musical genre classification of audio signals. "
            "IEEE Trans. Speech and Audio Processing 10(5), 293-302."
        ),
        homepage="http://marsyas.info/downloads/datasets.html",
        mirrors=(
            # The original host has been down for years; the Hugging Face copy of the same
            # tarball comes first, the original stays in case it returns.
            "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz",
            "http://opihi.cs.uvic.ca/sound/genres.tar.gz",
        ),
        archive="genres.tar.gz",
        size=1_225_571_541,
        sha256="24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6",
        md5=None,
        root="genres",
        marker="blues",
        layout="genres/<genre>/<genre>.000NN.(au|wav): 10 genres x 100 thirty-second clips, 22,050 Hz mono",
        splits=(
            "fault-filtered split of Kereliuk, Sturm & Larsen (2015), as shipped in torchaudio: "
            "443 train / 197 validation / 290 test clips, with repeated and mislabelled clips "
            "removed and no artist in two splits. The random 10-fold protocol overestimates "
            "accuracy because of artist and recording repetitions (Sturm 2013). jazz.00054, on the train "
            "list, does not decode in some shared copies: it is decoded when indexed and left out, "
            "with a printed line, if broken."
        ),
        offline_fallback="music_styles",
        sr=22_050,
        index="index_gtzan",
    ),
    DatasetInfo(
        name="ravdess",
        title="RAVDESS, audio-only speech (Audio_Speech_Actors_01-24)",
        task="speech emotion recognition",
        license="CC BY-NC-SA 4.0",
        citation=(
            "Livingstone, S. R., Russo, F. A. (2018). The Ryerson Audio-Visual Database of "
            "Emotional Speech and Song (RAVDESS). PLoS ONE 13(5): e0196391."
        ),
        homepage="https://zenodo.org/records/1188976",
        mirrors=(
            "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
            "https://zenodo.org/api/records/1188976/files/Audio_Speech_Actors_01-24.zip/content",
        ),
        archive="Audio_Speech_Actors_01-24.zip",
        size=208_468_073,
        sha256=None,
        # Zenodo publishes MD5 only; no SHA-256 of this archive was found on record.
        md5="bc696df654c87fed845eb13823edef8a",
        root=".",
        marker="Actor_24",
        layout=(
            "flat: Actor_01 ... Actor_24, each 60 wav files 03-01-EE-II-SS-RR-AA.wav "
            "(modality, channel, emotion, intensity, statement, repetition, actor), 48 kHz"
        ),
        splits=(
            "no official split; the course splits by actor so no voice crosses splits: actors "
            "1-18 train, 19-20 validation, 21-24 test (each held-out group has both genders)."
        ),
        offline_fallback="prosody",
        sr=48_000,
        index="index_ravdess",
    ),
    _librispeech("train-clean-100", "training", size=6_387_309_499,  # as Kaldi's recipe lists it
                 sha256="d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",  # as torchaudio does
                 splits="official: train-clean-100 is the 'train' split (251 speakers, 100.6 h), disjoint from "
                        "dev and test speakers.",
                 fetched_in=("gpu",)),  # 6.3 GB: a laptop uses it only once downloaded
    _librispeech("dev-clean", "evaluation", size=337_926_286,
                 sha256="76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
                 splits="official: dev-clean is the 'validation' split (40 speakers, 5.4 h), disjoint from "
                        "train and test speakers."),
    _librispeech("test-clean", "evaluation", size=346_663_984,
                 sha256="39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
                 splits="official: test-clean is the 'test' split (40 speakers, 5.4 h), disjoint from train "
                        "and dev speakers."),
    DatasetInfo(
        name="maestro_midi",
        title="MAESTRO v3.0.0, MIDI only",
        task="symbolic music modelling (piano performances)",
        license="CC BY-NC-SA 4.0",
        citation=(
            "Hawthorne, C. et al. (2019). Enabling Factorized Piano Music Modeling and "
            "Generation with the MAESTRO Dataset. Proc. ICLR."
        ),
        homepage="https://magenta.tensorflow.org/datasets/maestro",
        mirrors=(
            "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip",
        ),
        archive="maestro-v3.0.0-midi.zip",
        size=58_416_533,
        sha256="70470ee253295c8d2c71e6d9d4a815189e35c89624b76d22fce5a019d5dde12c",
        md5=None,
        root="maestro-v3.0.0",
        marker="maestro-v3.0.0.csv",
        layout="maestro-v3.0.0/<year>/<name>.midi (1,276 performances) and maestro-v3.0.0.csv / .json",
        splits=(
            "official: the 'split' column of maestro-v3.0.0.csv (train / validation / test); "
            "no composition appears in two splits."
        ),
        offline_fallback="chorales",
        sr=None,
        index="index_maestro",
    ),
    DatasetInfo(
        name="ljspeech",
        title="LJ Speech 1.1",
        task="speech synthesis / neural vocoder",
        license="public domain",
        citation="Ito, K., Johnson, L. (2017). The LJ Speech Dataset. https://keithito.com/LJ-Speech-Dataset/",
        homepage="https://keithito.com/LJ-Speech-Dataset/",
        mirrors=("https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2",),
        archive="LJSpeech-1.1.tar.bz2",
        size=2_748_572_632,
        sha256="be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5",
        md5=None,
        root="LJSpeech-1.1",
        marker="metadata.csv",
        layout="LJSpeech-1.1/wavs/LJ0CC-NNNN.wav (13,100 clips, one speaker, 22,050 Hz), metadata.csv (id|text|normalized text)",
        splits=(
            "no official split; the course splits by source chapter so no passage crosses "
            "splits: LJ001 test, LJ002 validation, LJ003-LJ050 train."
        ),
        offline_fallback="spoken_digits",
        sr=22_050,
        index="index_ljspeech",
    ),
)

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in _ENTRIES}


def get_info(name_or_info: str | DatasetInfo) -> DatasetInfo:
    """Return the registry entry for a dataset name (or the entry itself).

    Parameters
    ----------
    name_or_info : str or DatasetInfo
        A key of ``DATASETS`` or an entry.

    Returns
    -------
    DatasetInfo

    Notes
    -----
    Notebook: 00_welcome.
    """
    if isinstance(name_or_info, DatasetInfo):
        return name_or_info
    try:
        return DATASETS[name_or_info]
    except KeyError:
        raise KeyError(
            f"Unknown dataset {name_or_info!r}. Known datasets: {', '.join(sorted(DATASETS))} "
            "(python -m course_lib.data list shows them with their status)."
        ) from None


def fixture_mirror() -> str | None:
    """The miniature-fixture mirror named by ``COURSE_FIXTURE_MIRROR``, or None when it is unset.

    The variable exists for the course's tests (``make test-laptop``): it makes
    ``course_lib.data.download.fetch`` download small archives in each dataset's published
    layout from a local server instead of the real datasets. To make it impossible to point at
    by accident, only an ``http://`` URL on this machine's loopback interface is accepted.

    Returns
    -------
    str or None
        The base URL, ending in ``/``.

    Raises
    ------
    ValueError
        The variable is set to anything but ``http://127.0.0.1:<port>/`` (or localhost / [::1]).

    Notes
    -----
    Notebook: none (test infrastructure); see docs/DEVELOPING.md, "Miniature datasets".
    """
    value = os.environ.get(FIXTURE_MIRROR_ENV, "").strip()
    if not value:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme != "http" or parsed.hostname not in _LOOPBACK_HOSTS or parsed.port is None:
        raise ValueError(
            f"{FIXTURE_MIRROR_ENV}={value!r}: this variable is only for the course's tests and must be "
            "the http://127.0.0.1:<port>/ address of a miniature-fixture server (python -m "
            f"course_lib.data miniature --serve). Unset it to use the real datasets: unset {FIXTURE_MIRROR_ENV}"
        )
    return value if value.endswith("/") else value + "/"
