"""``spoken_words``: twelve keywords (NATO phonetic alphabet words) for keyword spotting.

Built exactly like ``spoken_digits``: synthetic voices for train/val (band-limited to 4 kHz,
val voices unseen), and the real asterisk English speaker's recordings of the same words as the
test split, never in training.

Notebook: 12_keyword_spotting
"""

from __future__ import annotations

from course_lib.data.offline.common import BuildContext
from course_lib.data.offline.spoken_digits import DEB_PACKAGES, TOOLS, build_words

NAME = "spoken_words"
__all__ = ["NAME", "DEB_PACKAGES", "TOOLS", "WORDS", "build"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "kilo", "lima",
         "oscar", "tango"]


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    return build_words(
        ctx, NAME, WORDS, {w: f"phonetic/{w[0]}_p.wav" for w in WORDS},
        "Twelve keywords (alpha, bravo, ... tango), 1 s clips at 16 kHz. Train/val: synthetic "
        "voices (espeak-ng, flite, festival), band-limited to 4 kHz; val voices unseen in training. "
        "Test: one REAL English speaker (asterisk phonetic-alphabet prompts, 8 kHz), never in training.")
