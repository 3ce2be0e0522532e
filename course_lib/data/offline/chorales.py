"""``chorales``: Bach chorales as MIDI scores plus aligned renders of each score by several instruments.

The MIDI files serve symbolic music generation; the renders of one score with different General
MIDI instruments are sample-aligned pairs (instrument recognition, timbre transfer). Split by chorale.

Notebook: 16_music_generation (and 17_audio_style_transfer)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from course_lib.data.offline.common import BuildContext, SetWriter, split_groups
from course_lib.data.offline.music_styles import SOURCES, SR, TOOLS, corpus_files, piece_to_midi, pool, render

NAME = "chorales"
DEB_PACKAGES: list[str] = []
__all__ = ["NAME", "DEB_PACKAGES", "TOOLS", "build", "RENDER_INSTRUMENTS"]
N_CHORALES = 24
RENDER_INSTRUMENTS = {"piano": 0, "organ": 19, "strings": 48}
RENDER_S = 10.0


def _render_chorale(args: tuple[Path, Path]) -> dict[str, np.ndarray] | str:
    """Worker: MIDI of one chorale plus its render by each instrument, or the error text."""
    path, midi_out = args
    try:
        piece_to_midi(path, None, midi_out)
        return {k: render(midi_out, p, RENDER_S) for k, p in RENDER_INSTRUMENTS.items()}
    except Exception as exc:  # a chorale music21 cannot convert is skipped, and said so
        return f"{type(exc).__name__}: {str(exc)[:160]}"


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    rng = ctx.rng(NAME)
    writer = SetWriter(ctx, SR)
    files = corpus_files("bach", lambda p: p.name.startswith("bwv") and p.suffix == ".mxl")
    n = ctx.n(N_CHORALES, 3)
    chosen = [files[i] for i in rng.permutation(len(files))[: n + 3]]
    (ctx.out_dir / "midi").mkdir(parents=True, exist_ok=True)
    jobs = [(f, ctx.out_dir / "midi" / f"{f.stem}.mid") for f in chosen]
    done = []
    with pool(ctx) as ex:
        for (f, mid), res in tqdm(zip(jobs, ex.map(_render_chorale, jobs)), total=len(jobs), desc=NAME,
                                  disable=not ctx.progress, leave=False):
            if isinstance(res, str):
                ctx.warn(f"{f.name}: cannot convert/render ({res})")
                mid.unlink(missing_ok=True)
            elif len(done) < n:
                done.append((f.stem, res))
            else:
                mid.unlink(missing_ok=True)  # a spare that was not needed
    assign = split_groups([s for s, _ in done], {"train": 0.7, "val": 0.15, "test": 0.15}, rng)
    for stem, renders in done:
        writer.add_file(f"midi/{stem}.mid", piece=stem, split=assign[stem])
        n = min(len(x) for x in renders.values())  # same score, same length: aligned sample for sample
        for inst, x in renders.items():
            writer.add(x[:n], f"{assign[stem]}/{inst}/{stem}.wav", inst, assign[stem], stem,
                       f"score: music21 corpus bach/{stem}; rendered with GM {inst}",
                       piece=stem, midi=f"midi/{stem}.mid")
    return writer.finish(
        name=NAME,
        description="Bach chorales: MIDI scores (midi/) and the first 10 s of each rendered by piano, "
                    "organ and strings at 22.05 kHz, aligned sample for sample; split by chorale.",
        synthetic="real scores, synthetic performance (sound-font rendering)",
        classes=list(RENDER_INSTRUMENTS), sources=SOURCES)
