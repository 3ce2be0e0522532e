"""``spoken_digits``: the words zero..nine, synthetic speakers for train/val, one real speaker for test.

Train/val voices come from espeak-ng (English accents x voice variants, random pitch and rate),
flite and festival, each band-limited to the telephone band (8 kHz sampling) because the real test
speaker (asterisk's English prompts) has no energy above 4 kHz. Test is that real speaker only,
never seen in training.

Notebook: 12_keyword_spotting (and 05_from_filters_to_cnns)
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from course_lib.audio import load_audio, resample
from course_lib.data.offline.common import (
    BuildContext,
    SetWriter,
    bandlimit,
    ensure_debs,
    espeak,
    festival,
    flite,
    peak_normalize,
    place_in,
    speed_change,
    trim_silence,
)

NAME = "spoken_digits"
DEB_PACKAGES = ["asterisk-core-sounds-en-wav"]
TOOLS = ["espeak-ng", "flite", "text2wave"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SR = 16000
ASTERISK_EN = "usr/share/asterisk/sounds/en_US_f_Allison"

ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
                   "croak", "klatt", "klatt2", "klatt3", "klatt4", "steph", "linda"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]  # awb_time only says times: left out
FESTIVAL_VOICES = ["kal_diphone"]
# Held out for validation: whole voices, so val speakers are unseen in training.
VAL_GROUPS = {"espeak:m3", "espeak:f2", "espeak:klatt3", "flite:rms"}

SOURCES = [
    dict(package="espeak-ng", license="GPL-3.0-or-later", provenance="synthetic speech (formant synthesis)"),
    dict(package="flite", license="BSD-like (CMU)", provenance="synthetic speech (CMU voices kal, awb, rms, slt)"),
    dict(package="festival", license="BSD-like", provenance="synthetic speech (kal diphone voice)"),
    dict(package="asterisk-core-sounds-en-wav", license="CC-BY-SA-3.0 (Digium)",
         provenance="real recordings of one English speaker (Allison Smith), 8 kHz telephone prompts"),
]


_PLAIN_CACHE: dict[tuple[str, str, str], tuple[np.ndarray, int]] = {}


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine, a voice and its pitch/rate settings."""

    engine: str
    voice: str
    group: str  # speaker identity splits are grouped by (renditions of one voice share it)
    pitch: int = 50
    speed: int = 170
    factor: float = 1.0  # tape-speed change for engines without pitch/rate controls
    index: int = 0  # rendition number: keeps ids unique when random settings repeat

    @property
    def id(self) -> str:
        return (f"{self.engine}-{self.voice}-{self.index}-p{self.pitch}-s{self.speed}"
                f"-x{self.factor:.2f}").replace("+", "_")

    def say(self, text: str) -> tuple[np.ndarray, int]:
        if self.engine == "espeak":
            x, sr = espeak(text, self.voice, pitch=self.pitch, speed=self.speed)
        else:
            # flite/festival have no pitch/rate knobs here: synthesize once, vary by tape speed
            key = (self.engine, self.voice, text)
            if key not in _PLAIN_CACHE:
                _PLAIN_CACHE[key] = (flite if self.engine == "flite" else festival)(text, self.voice)
            x, sr = _PLAIN_CACHE[key]
        if self.factor != 1.0:
            x = speed_change(x, self.factor)
        return x, sr


def synthetic_voices(ctx: BuildContext, full_renditions: int = 8) -> list[Voice]:
    """The synthetic speakers at the context's scale (deterministic for a seed)."""
    rng = ctx.rng("voices")
    voices = []
    for variant in ESPEAK_VARIANTS:
        for accent in ESPEAK_ACCENTS:
            voices.append(Voice("espeak", f"{accent}+{variant}", f"espeak:{variant}",
                                pitch=int(rng.integers(20, 81)), speed=int(rng.integers(130, 201))))
    for v in FLITE_VOICES:
        for i in range(full_renditions):
            voices.append(Voice("flite", v, "flite:" + v.replace("16", ""),
                                factor=round(float(rng.uniform(0.88, 1.12)), 2), index=i))
    for v in FESTIVAL_VOICES:
        for i in range(full_renditions):
            voices.append(Voice("festival", v, "festival:" + v,
                                factor=round(float(rng.uniform(0.88, 1.12)), 2), index=i))
    if ctx.scale < 1.0:
        # a few training voices and one validation voice, one rendition each
        by_group: dict[str, list[Voice]] = {}
        for v in voices:
            by_group.setdefault(v.group, []).append(v)
        train_groups = sorted(g for g in by_group if g not in VAL_GROUPS)
        keep_groups = set(rng.choice(train_groups, size=ctx.n(len(train_groups), 2), replace=False))
        keep_groups.add(sorted(VAL_GROUPS)[0])
        voices = [vs[0] for g, vs in sorted(by_group.items()) if g in keep_groups]
    return voices


def shape_word(x: np.ndarray, sr: int, rng: np.random.Generator, length_s: float | None = 1.0,
               narrow: bool = True) -> np.ndarray:
    """Trim, resample to 16 kHz, band-limit, random gain, and place in a 1 s clip.

    A word longer than the clip is sped up to fit rather than cut (a cut word changes its label).
    """
    x = resample(trim_silence(x, sr), sr, SR)
    if length_s and len(x) > length_s * SR:
        x = speed_change(x, 1.01 * len(x) / (length_s * SR))
    if narrow:
        x = bandlimit(x, SR)
    x = peak_normalize(x, float(rng.uniform(0.3, 0.9)))
    return place_in(x, int(length_s * SR), rng) if length_s else x


def render_voices(ctx: BuildContext, voices: list[Voice], words: list[str], desc: str
                  ) -> Iterator[tuple[Voice, str, np.ndarray, int]]:
    """Yield ``(voice, word, audio, sr)`` for every voice x word; subprocesses run two at a time."""
    jobs = [(v, w) for v in voices for w in words]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda j: j[0].say(j[1]), jobs)
        for (v, w), (x, sr) in tqdm(zip(jobs, results), total=len(jobs), desc=desc,
                                    disable=not ctx.progress, leave=False):
            yield v, w, x, sr


def real_words(ctx: BuildContext, files: dict[str, str]) -> dict[str, tuple[np.ndarray, int, Path]]:
    """The real speaker's words: ``word -> (audio [samples] at its rate, rate, file)``.

    ``files`` maps each word to its path below the asterisk English sound folder.
    """
    root = ensure_debs(DEB_PACKAGES, ctx.cache_root)
    out = {}
    for w, rel in files.items():
        path = root / ASTERISK_EN / rel
        x, sr = load_audio(path)
        out[w] = (x[0], sr, path)
    return out


def real_digits(ctx: BuildContext) -> dict[str, tuple[np.ndarray, int, Path]]:
    """The real speaker's digits: ``word -> (audio [samples] at its rate, rate, file)``."""
    return real_words(ctx, {w: f"digits/{i}.wav" for i, w in enumerate(DIGITS)})


def build_words(ctx: BuildContext, name: str, words: list[str], real_files: dict[str, str],
                description: str, spoken: dict[str, str] | None = None) -> dict:
    """Isolated-word set: synthetic voices (train/val), the real asterisk speaker (test).

    ``spoken`` gives the text to synthesize where it differs from the label (e.g. "x-ray").
    """
    writer = SetWriter(ctx, SR)
    rng = ctx.rng(name)
    voices = synthetic_voices(ctx)
    texts = [(spoken or {}).get(w, w) for w in words]
    label_of = dict(zip(texts, words))
    for v, t, x, sr in render_voices(ctx, voices, texts, name):
        w = label_of[t]
        split = "val" if v.group in VAL_GROUPS else "train"
        writer.add(shape_word(x, sr, rng), f"{split}/{w}/{v.id}.wav", w, split, v.group,
                   f"synthetic: {v.engine} voice {v.voice} pitch {v.pitch} rate {v.speed} speed x{v.factor}",
                   speaker=v.id, synthetic=True)
    for w, (x, sr, path) in real_words(ctx, real_files).items():
        writer.add(shape_word(x, sr, rng, narrow=False), f"test/{w}/asterisk_en_allison.wav", w, "test",
                   "real:asterisk-en-allison",
                   f"real: asterisk-core-sounds-en-wav {path.relative_to(ctx.cache_root / 'debs' / 'root')}",
                   speaker="asterisk-en-allison", synthetic=False)
    return writer.finish(
        name=name, description=description,
        synthetic="train and val are synthetic speech; test is a real recording",
        classes=list(words), sources=SOURCES)


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    return build_words(
        ctx, NAME, DIGITS, {w: f"digits/{i}.wav" for i, w in enumerate(DIGITS)},
        "Spoken digits zero..nine, 1 s clips at 16 kHz. Train/val: synthetic voices "
        "(espeak-ng, flite, festival), band-limited to 4 kHz; val voices are unseen in "
        "training. Test: one REAL English speaker (asterisk prompts, 8 kHz telephone "
        "audio), never in training; it has 10 clips, so report counts.")
