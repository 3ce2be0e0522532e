"""``prosody``: a SYNTHETIC stand-in for speech emotion recognition, NOT real emotional speech.

The classes neutral/happy/sad/angry are made by manipulating prosody (pitch level and range,
rate, energy, spectral tilt, clipping) of espeak-ng sentences and of real isolated words spoken by
the native speakers of ktuberling (one speaker per language). A model that learns this task learns
those manipulations, nothing about real emotion: the course teaches real results on RAVDESS/CREMA-D.
Splits are speaker-independent (whole voices/languages per split).

Notebook: 14_speech_emotion
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from course_lib.audio import AudioError, load_audio, resample
from course_lib.data.offline.common import (
    BuildContext,
    SetWriter,
    ensure_debs,
    espeak,
    peak_normalize,
    speed_change,
    split_groups,
    trim_silence,
)

NAME = "prosody"
DEB_PACKAGES = ["ktuberling-data"]
TOOLS = ["espeak-ng"]
SR = 16000
CLASSES = ["neutral", "happy", "sad", "angry"]
SENTENCES = [
    "The meeting starts at nine tomorrow.", "I found the keys under the table.",
    "We are going to the station now.", "She painted the door green.",
    "The train was late again today.", "Please bring the letter to my office.",
    "He said the window was open.", "They moved into a new house.",
]
ESPEAK_VOICES = ["en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f4", "en-gb-scotland+m5", "en-029+f1",
                 "en-gb-x-rp+m7", "en-us-nyc+f5", "en-gb-x-gbclan+m2", "en-gb-x-gbcwmd+f3"]
KTUBERLING_LANGS = ["en", "de", "fr", "es", "it", "nl", "sv", "pt", "da", "fi", "ca", "gl"]
WORDS_PER_SPEAKER = 12
# SSML prosody for espeak-ng: pitch level, pitch range, rate, volume per class
SSML = {"neutral": ("+0%", "+0%", "+0%", "+0%"), "happy": ("+35%", "+80%", "+15%", "+20%"),
        "sad": ("-25%", "-60%", "-25%", "-40%"), "angry": ("+10%", "+40%", "+20%", "+60%")}
SOURCES = [
    dict(package="espeak-ng", license="GPL-3.0-or-later", provenance="synthetic speech, prosody set by SSML"),
    dict(package="ktuberling-data", license="GPL-2+ (KDE)",
         provenance="real isolated words by native speakers, prosody manipulated by signal processing"),
]


def _lowpass(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(x, np.ones(k, dtype=np.float32) / k, mode="same").astype(np.float32)


def manipulate(x: np.ndarray, emotion: str, rng: np.random.Generator) -> np.ndarray:
    """Signal-level prosody change of real speech ``[samples]`` at 16 kHz (tape speed moves pitch
    and rate together; a slow pitch glide adds contour)."""
    if emotion == "neutral":
        return peak_normalize(x, 0.5)
    factor = {"happy": 1.15, "sad": 0.87, "angry": 1.06}[emotion] * float(rng.uniform(0.97, 1.03))
    y = speed_change(x, factor)
    if emotion == "happy":  # rising contour: speed up a little more towards the end
        half = len(y) // 2
        y = np.concatenate([y[:half], speed_change(y[half:], 1.06)])
        return peak_normalize(y, 0.7)
    if emotion == "sad":
        return peak_normalize(_lowpass(y, 5), 0.25)
    return peak_normalize(np.tanh(3.0 * peak_normalize(y, 1.0)), 0.95)  # angry: loud, compressed


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    rng = ctx.rng(NAME)
    writer = SetWriter(ctx, SR)
    root = ensure_debs(DEB_PACKAGES, ctx.cache_root)
    voices = ESPEAK_VOICES[: ctx.n(len(ESPEAK_VOICES), 3)]
    langs = [lg for lg in KTUBERLING_LANGS if (root / "usr/share/ktuberling/sounds" / lg).is_dir()]
    langs = langs[: ctx.n(len(langs), 3)]
    groups = [f"espeak:{v}" for v in voices] + [f"ktuberling:{lg}" for lg in langs]
    assign = split_groups(groups, {"train": 0.6, "val": 0.2, "test": 0.2}, rng)
    sentences = SENTENCES[: ctx.n(len(SENTENCES), 2)]
    jobs = [(v, s, e) for v in voices for s in sentences for e in CLASSES]
    for v, sent, emo in tqdm(jobs, desc=f"{NAME} espeak", disable=not ctx.progress, leave=False):
        p, r, rate, vol = SSML[emo]
        ssml = f'<speak><prosody pitch="{p}" range="{r}" rate="{rate}" volume="{vol}">{sent}</prosody></speak>'
        x, sr = espeak(ssml, v, ssml=True)
        x = peak_normalize(resample(trim_silence(x, sr), sr, SR), 0.9 if emo != "sad" else 0.4)
        g = f"espeak:{v}"
        writer.add(x, f"{assign[g]}/{emo}/espeak_{v.replace('+', '_')}_{sentences.index(sent)}.wav", emo,
                   assign[g], g, f"synthetic: espeak-ng {v}, SSML prosody {SSML[emo]}", speaker=v,
                   text=sent, synthetic=True)
    for lg in tqdm(langs, desc=f"{NAME} ktuberling", disable=not ctx.progress, leave=False):
        files = sorted(p for p in (root / "usr/share/ktuberling/sounds" / lg).rglob("*")
                       if p.suffix in (".ogg", ".wav", ".flac"))
        g = f"ktuberling:{lg}"
        for i in rng.permutation(len(files))[: ctx.n(WORDS_PER_SPEAKER, 2)]:
            try:
                x, _ = load_audio(files[i], sr=SR)
            except AudioError as exc:
                ctx.warn(f"skipped: {exc}")
                continue
            x = trim_silence(x[0], SR)
            for emo in CLASSES:
                writer.add(manipulate(x, emo, rng), f"{assign[g]}/{emo}/ktuberling_{lg}_{files[i].stem}.wav",
                           emo, assign[g], g,
                           f"real word ktuberling-data sounds/{lg}/{files[i].name}, prosody manipulated ({emo})",
                           speaker=g, synthetic=True)
    return writer.finish(
        name=NAME,
        description="SYNTHETIC prosody classes (neutral/happy/sad/angry), NOT real emotional speech: "
                    "espeak-ng sentences with SSML pitch/range/rate/volume settings and real ktuberling "
                    "words with pitch/rate/energy/filter manipulations; 16 kHz; speaker-independent splits.",
        synthetic="synthetic labels: every class is a prosody manipulation, not an acted or real emotion",
        classes=CLASSES, sources=SOURCES)
