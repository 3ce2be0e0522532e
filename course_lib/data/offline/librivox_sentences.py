"""``librivox_sentences``: the real read-speech utterances that ship with pocketsphinx's test data.

Ten 16 kHz recordings with transcripts (five LibriVox sentences from *Sense and Sensibility* and
five "cards" utterances), all in the test split: a tiny, real word-error-rate check for ASR.

Notebook: 13_speech_recognition_ctc
"""

from __future__ import annotations

import re
from pathlib import Path

from course_lib.audio import load_audio
from course_lib.data.offline.common import BuildContext, SetWriter, ensure_debs

NAME = "librivox_sentences"
DEB_PACKAGES = ["pocketsphinx-testdata"]
TOOLS: list[str] = []
SR = 16000
DATA = "usr/share/pocketsphinx/test/data"
__all__ = ["NAME", "DEB_PACKAGES", "TOOLS", "build", "read_transcripts"]


def read_transcripts(path: Path) -> dict[str, str]:
    """Parse a Sphinx ``transcription`` file: ``<s> words </s> (utterance_id)`` per line."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if m:
            out[m.group(2)] = " ".join(m.group(1).split())
    return out


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    root = ensure_debs(DEB_PACKAGES, ctx.cache_root) / DATA
    writer = SetWriter(ctx, SR)
    for sub, trans in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for utt, text in sorted(read_transcripts(root / sub / trans).items()):
            path = root / sub / f"{utt}.wav"
            if not path.exists():
                ctx.warn(f"{path}: listed in {trans} but missing; skipped")
                continue
            x, _ = load_audio(path, sr=SR)
            writer.add(x[0], f"test/{sub}_{utt}.wav", None, "test", f"real:{sub}",
                       f"real: pocketsphinx-testdata {sub}/{utt}.wav", transcript=text,
                       speaker=sub, synthetic=False)
    return writer.finish(
        name=NAME,
        description="Real read English sentences with transcripts (pocketsphinx test data: LibriVox "
                    "and 'cards'), 16 kHz, test split only.",
        synthetic="real recordings",
        classes=[], sources=[dict(package="pocketsphinx-testdata", license="BSD-2-Clause (CMU); LibriVox audio is public domain",
                                  provenance="real read speech")],
        task="asr")
