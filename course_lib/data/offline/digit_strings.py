"""``digit_strings``: spoken digit sequences ("three one four") for speech recognition (CTC).

Each string joins 3-6 digit words of ONE voice with random pauses and light white noise. Train/val
use the synthetic voices of ``spoken_digits`` (same voice split: val voices are unseen); test uses
the real asterisk speaker's digits only.

Notebook: 13_speech_recognition_ctc
"""

from __future__ import annotations

import numpy as np

from course_lib.data.offline.common import BuildContext, SetWriter
from course_lib.data.offline.spoken_digits import (
    DEB_PACKAGES,
    DIGITS,
    SOURCES,
    SR,
    TOOLS,
    VAL_GROUPS,
    real_digits,
    render_voices,
    shape_word,
    synthetic_voices,
)

NAME = "digit_strings"
__all__ = ["NAME", "DEB_PACKAGES", "TOOLS", "build", "join_words"]
STRINGS_PER_VOICE = 3
TEST_STRINGS = 40


def join_words(words: list[np.ndarray], rng: np.random.Generator, snr_db: float | None = None
               ) -> np.ndarray:
    """Concatenate word clips ``[samples]`` with 50-350 ms pauses, 100-300 ms margins and
    white noise at ``snr_db`` (random 25-40 dB when None)."""
    gap = lambda lo, hi: np.zeros(int(rng.uniform(lo, hi) * SR), dtype=np.float32)  # noqa: E731
    parts = [gap(0.1, 0.3)]
    for i, w in enumerate(words):
        parts += [w] + ([gap(0.05, 0.35)] if i < len(words) - 1 else [])
    parts.append(gap(0.1, 0.3))
    x = np.concatenate(parts)
    snr = float(rng.uniform(25, 40)) if snr_db is None else snr_db
    speech_power = float(np.mean(np.concatenate(words) ** 2))
    noise = rng.standard_normal(len(x)).astype(np.float32) * np.sqrt(speech_power / 10 ** (snr / 10))
    return np.clip(x + noise, -1, 1).astype(np.float32)


def _strings(rng: np.random.Generator, n: int) -> list[list[int]]:
    return [list(rng.integers(0, 10, size=int(rng.integers(3, 7)))) for _ in range(n)]


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    writer = SetWriter(ctx, SR)
    rng = ctx.rng(NAME)
    words: dict[str, dict[str, np.ndarray]] = {}
    voices = {}
    for v, w, x, sr in render_voices(ctx, synthetic_voices(ctx), DIGITS, NAME):
        words.setdefault(v.id, {})[w] = shape_word(x, sr, rng, length_s=None)
        voices[v.id] = v
    for vid, clips in words.items():
        v = voices[vid]
        split = "val" if v.group in VAL_GROUPS else "train"
        for k, seq in enumerate(_strings(rng, STRINGS_PER_VOICE)):
            text = " ".join(DIGITS[d] for d in seq)
            x = join_words([clips[DIGITS[d]] for d in seq], rng)
            writer.add(x, f"{split}/{vid}_{k}.wav", None, split, v.group,
                       f"synthetic: {v.engine} voice {v.voice}", transcript=text, speaker=vid,
                       synthetic=True)
    real = {w: shape_word(x, sr, rng, length_s=None, narrow=False) for w, (x, sr, _) in real_digits(ctx).items()}
    for k, seq in enumerate(_strings(rng, ctx.n(TEST_STRINGS, 3))):
        text = " ".join(DIGITS[d] for d in seq)
        writer.add(join_words([real[DIGITS[d]] for d in seq], rng), f"test/asterisk_{k:03d}.wav", None,
                   "test", "real:asterisk-en-allison",
                   "real words (asterisk-core-sounds-en-wav digits/), joined with synthetic pauses and noise",
                   transcript=text, speaker="asterisk-en-allison", synthetic=False)
    return writer.finish(
        name=NAME,
        description="Digit strings of 3-6 words at 16 kHz with transcripts, for CTC/ASR. Train/val: "
                    "synthetic voices (band-limited to 4 kHz); test: the real asterisk speaker's "
                    "recorded digits, joined with random pauses and light noise.",
        synthetic="train/val synthetic speech; test words are real recordings (the joins are synthetic)",
        classes=DIGITS, sources=SOURCES, task="asr")
