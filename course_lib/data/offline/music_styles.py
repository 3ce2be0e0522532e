"""``music_styles``: real scores of four musical styles rendered to audio (offline stand-in for GTZAN).

Scores come from music21's corpus (Bach chorales, Palestrina masses, Essen German folk songs,
O'Neill's Irish tunes), are written to MIDI and rendered with fluidsynth and a General MIDI sound
font. Every piece gets a random instrument from one shared list, so the instrument does not give
the style away; pieces are cut into 5 s excerpts and split by piece.

Notebook: 15_music_classification
"""

from __future__ import annotations

import multiprocessing
import re
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from course_lib.data.offline.common import (
    SOUND_FONT_PACKAGE,
    BuildContext,
    OfflineBuildError,
    SetWriter,
    apt_command,
    fluidsynth,
    split_groups,
    trim_silence,
)

NAME = "music_styles"
DEB_PACKAGES: list[str] = []
TOOLS = ["fluidsynth"]
SR = 22050
EXCERPT_S = 5.0
MAX_RENDER_S = 21.0
SOUND_FONTS = ["/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
               "/usr/share/sounds/sf2/default-GM.sf2"]
# General MIDI programs (0-based) shared by all styles.
INSTRUMENTS = {"piano": 0, "organ": 19, "guitar": 24, "strings": 48, "choir": 52, "clarinet": 71,
               "flute": 73}
STYLES = {
    "bach_chorale": ("bach", lambda p: p.name.startswith("bwv") and p.suffix == ".mxl"),
    "palestrina": ("palestrina", lambda p: p.suffix == ".krn"),
    "essen_folk": ("essenFolksong", lambda p: p.name in ("altdeu10.abc", "ballad10.abc")),
    "irish_oneill": ("oneills1850", lambda p: p.name in ("0001-0050.abc", "0051-0100.abc")),
}
PIECES_PER_STYLE = 16
SOURCES = [
    dict(package="music21 (PyPI)", license="BSD-3-Clause; corpus scores public domain",
         provenance="real scores: Bach chorales, Palestrina, Essen folk songs, O'Neill's Music of Ireland"),
    dict(package="fluidsynth + timgm6mb-soundfont / fluid-soundfont-gm", license="LGPL-2.1 / GPL-2 / MIT",
         provenance="synthetic rendering with sampled General MIDI instruments"),
]


def sound_font() -> Path:
    """The first General MIDI sound font installed."""
    for sf2 in SOUND_FONTS:
        if Path(sf2).exists():
            return Path(sf2)
    raise OfflineBuildError(f"no General MIDI sound font found (looked for {', '.join(SOUND_FONTS)}) — "
                            f"install {SOUND_FONT_PACKAGE}: {apt_command([SOUND_FONT_PACKAGE])}")


def corpus_files(folder: str, keep) -> list[Path]:
    """Files of a music21 corpus folder, sorted."""
    import music21

    base = Path(music21.__file__).parent / "corpus" / folder
    return sorted(p for p in base.rglob("*") if p.is_file() and keep(p))


def candidates(style: str, rng: np.random.Generator) -> list[tuple[str, Path, int | None]]:
    """``(piece id, file, tune number or None)`` of a style, in a seeded random order.

    ABC files hold many tunes (an opus): each tune is a candidate, parsed alone by number.
    """
    folder, keep = STYLES[style]
    out: list[tuple[str, Path, int | None]] = []
    for f in corpus_files(folder, keep):
        if f.suffix == ".abc":
            numbers = re.findall(r"^X:\s*(\d+)", f.read_text(encoding="latin-1"), flags=re.M)
            out += [(f"{f.stem}#{n}", f, int(n)) for n in numbers]
        else:
            out.append((f.stem, f, None))
    return [out[i] for i in rng.permutation(len(out))]


def piece_to_midi(path: Path, number: int | None, midi_out: Path) -> None:
    """Parse one score (tune ``number`` of an ABC opus) and write it as MIDI."""
    from music21 import converter

    score = converter.parse(path, number=number) if number is not None else converter.parse(path)
    score_to_midi(score, midi_out)


def render_piece(path: Path, number: int | None, program: int | None, max_s: float | None) -> np.ndarray:
    """Score file -> MIDI -> fluidsynth audio ``[samples]`` at 22.05 kHz (runs in worker processes)."""
    with tempfile.TemporaryDirectory() as d:
        mid = Path(d) / "piece.mid"
        piece_to_midi(path, number, mid)
        return render(mid, program, max_s)


def _try_render(args: tuple) -> np.ndarray | str:
    """``render_piece`` that returns the error text instead of raising (some scores fail)."""
    try:
        return render_piece(*args)
    except Exception as exc:  # music21 fails on some tunes: the caller skips and reports them
        return f"{type(exc).__name__}: {str(exc)[:160]}"


def pool(ctx: BuildContext) -> ProcessPoolExecutor:
    """Two worker processes. Forked on Linux: spawn would re-run a caller's unguarded script."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context(method))


def render(midi_path: Path, program: int | None, max_s: float | None = MAX_RENDER_S) -> np.ndarray:
    """Render a MIDI file with fluidsynth at 22.05 kHz, all tracks set to ``program``. ``[samples]``."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midi_path))
    for inst in pm.instruments:
        if program is not None:
            inst.program, inst.is_drum = program, False
        if max_s:
            inst.notes = [nt for nt in inst.notes if nt.start < max_s]
            for nt in inst.notes:
                nt.end = min(nt.end, max_s + 1.0)
            inst.control_changes = [c for c in inst.control_changes if c.time < max_s]
            inst.pitch_bends = [b for b in inst.pitch_bends if b.time < max_s]
    if max_s:  # any later event would make fluidsynth render silence up to it
        pm.time_signature_changes = [e for e in pm.time_signature_changes if e.time < max_s]
        pm.key_signature_changes = [e for e in pm.key_signature_changes if e.time < max_s]
        pm.lyrics = [e for e in pm.lyrics if e.time < max_s]
        pm.text_events = [e for e in pm.text_events if e.time < max_s]
    with tempfile.TemporaryDirectory() as d:
        mid = Path(d) / "in.mid"
        pm.write(str(mid))
        x, _ = fluidsynth(mid, sound_font(), SR)  # raises OfflineBuildError naming tool and package
    return x


def score_to_midi(score, path: Path) -> None:
    """Write a music21 score as MIDI (music21's warnings about odd scores are silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score.write("midi", fp=str(path))


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    rng = ctx.rng(NAME)
    writer = SetWriter(ctx, SR)
    n_ex = int(EXCERPT_S * SR)
    n_pieces = ctx.n(PIECES_PER_STYLE, 3)
    jobs = []  # (style, piece id, instrument, render args)
    for style in STYLES:
        for pid, path, number in candidates(style, rng)[: n_pieces + max(2, n_pieces // 4)]:
            inst = str(rng.choice(list(INSTRUMENTS)))  # spare candidates: some tunes fail
            jobs.append((style, pid, inst, (path, number, INSTRUMENTS[inst], MAX_RENDER_S)))
    pieces = []  # (style, group, audio, instrument)
    got = dict.fromkeys(STYLES, 0)
    with pool(ctx) as ex:
        results = ex.map(_try_render, [j[3] for j in jobs])
        for (style, pid, inst, _), res in tqdm(zip(jobs, results), total=len(jobs), desc=NAME,
                                               disable=not ctx.progress, leave=False):
            if isinstance(res, str):
                ctx.warn(f"{style} {pid}: cannot convert/render ({res})")
                continue
            x = trim_silence(res, SR, top_db=50)
            if got[style] >= n_pieces or len(x) < n_ex:
                continue
            pieces.append((style, f"{style}:{pid}", x, inst))
            got[style] += 1
    assign = {}
    for style in STYLES:  # split per style so each split holds every style
        assign.update(split_groups([g for s, g, _, _ in pieces if s == style],
                                   {"train": 0.6, "val": 0.2, "test": 0.2}, rng))
    for style, group, x, inst in pieces:
        safe = group.split(":", 1)[1].replace("#", "_").replace("/", "_")
        for k in range(min(4, len(x) // n_ex)):
            seg = x[k * n_ex:(k + 1) * n_ex]
            if np.max(np.abs(seg)) < 1e-3:
                continue
            writer.add(seg / max(1.0, float(np.max(np.abs(seg)))), f"{assign[group]}/{style}/{safe}_{k}.wav",
                       style, assign[group], group, f"score: music21 corpus {group}; rendered with GM {inst}",
                       instrument=inst, piece=group)
    return writer.finish(
        name=NAME,
        description="5 s excerpts (22.05 kHz) of real scores in four styles rendered with General "
                    "MIDI instruments (a random instrument per piece); split by piece.",
        synthetic="real scores, synthetic performance (sound-font rendering)",
        classes=list(STYLES), sources=SOURCES)
