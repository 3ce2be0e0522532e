"""``sound_events``: real drum and percussion recordings, an offline stand-in for ESC-50.

Clips come from the Hydrogen drum kits (labels from each kit's ``drumkit.xml`` instrument names)
plus the Sonic Pi and LMMS drum samples (labels from file names). Splits are by kit/source, so no
kit is heard in two splits; classes with too few clips are left out and reported.

Notebook: 06_cnn_audio_classification
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from course_lib.audio import AudioError, load_audio
from course_lib.data.offline.common import (
    BuildContext,
    SetWriter,
    ensure_debs,
    peak_normalize,
    split_groups,
    trim_silence,
)

NAME = "sound_events"
DEB_PACKAGES = ["hydrogen-drumkits", "sonic-pi-samples", "lmms-common"]
TOOLS: list[str] = []
SR = 16000
CLIP_S = 1.0
MIN_CLIPS = 30  # a class needs this many clips (at full scale) to be kept

# First matching rule wins: order matters ("snare rimshot" is a snare, "side stick" is rim/stick).
RULES = [
    ("conga|bongo|djembe|cajon|tabla|head (hit|mute)", "hand_drum"), ("rimshot", "snare"),
    ("rim", "rim_stick"), ("stick", "rim_stick"), ("clap", "clap"),
    ("cowbell", "cowbell"), ("kick", "kick"), ("bass ?drum", "kick"), (r"\bbd", "kick"),
    ("hat", "hihat"), (r"\bhh", "hihat"), ("snare", "snare"), (r"\bsn\b", "snare"),
    ("tom", "tom"), ("crash", "cymbal"), ("ride", "cymbal"), ("splash", "cymbal"),
    ("china", "cymbal"), ("cymbal", "cymbal"),
]
# Sonic Pi names hi-hats "drum_cymbal_closed/open/pedal"; fix those before the generic rules.
SONIC_PI_FIX = {"drum_cymbal_closed": "hihat", "drum_cymbal_open": "hihat", "drum_cymbal_pedal": "hihat",
                "drum_bass_hard": "kick", "drum_bass_soft": "kick", "drum_heavy_kick": "kick"}

SOURCES = [
    dict(package="hydrogen-drumkits", license="GPL-2+/CC-BY-SA/CC0 (per kit, see its drumkit.xml)",
         provenance="real drum recordings, 14 kits"),
    dict(package="sonic-pi-samples", license="CC0 (mostly; see /usr/share/doc/sonic-pi-samples)",
         provenance="real drum samples"),
    dict(package="lmms-common", license="GPL-2+", provenance="real and synthesized drum samples"),
]


def label_of(name: str) -> str | None:
    """Map an instrument or file name to a class, or None when no rule matches."""
    n = name.lower().replace("_", " ").replace("-", " ")
    for pattern, label in RULES:
        if re.search(pattern, n):
            return label
    return None


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def hydrogen_clips(root: Path) -> list[tuple[Path, str, str]]:
    """``(file, label, group)`` for every labelled layer file of every Hydrogen kit."""
    out = []
    for xml in sorted((root / "usr/share/hydrogen/data/drumkits").glob("*/drumkit.xml")):
        kit = xml.parent.name
        for ins in ET.parse(xml).getroot().iter():
            if _strip_ns(ins.tag) != "instrument":
                continue
            name = next((c.text or "" for c in ins if _strip_ns(c.tag) == "name"), "")
            label = label_of(name)
            if label is None:
                continue
            for el in ins.iter():
                if _strip_ns(el.tag) == "filename" and el.text:
                    out.append((xml.parent / el.text, label, f"hydrogen:{kit}"))
    return out


def sample_clips(root: Path) -> list[tuple[Path, str, str]]:
    """``(file, label, group)`` for the Sonic Pi and LMMS drum samples (one group per package)."""
    out = []
    for f in sorted((root / "usr/share/sonic-pi/samples").glob("*.flac")):
        if f.stem.startswith(("drum_", "bd_", "sn_", "elec_", "tabla_")):
            name = f.stem.split("_", 1)[1] if f.stem.startswith("elec_") else f.stem  # elec_ says nothing
            label = SONIC_PI_FIX.get(f.stem) or label_of(name)
            if label:
                out.append((f, label, "sonic-pi"))
    for f in sorted((root / "usr/share/lmms/samples/drums").glob("*.ogg")):
        label = label_of(re.sub(r"\d+$", "", f.stem))
        if label:
            out.append((f, label, "lmms"))
    return out


def shape_hit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trim leading silence, keep the first second (onset near the start), fade out, pad."""
    x = trim_silence(x, SR, top_db=60)
    n = int(CLIP_S * SR)
    x = x[:n].copy()
    fade = min(len(x), int(0.05 * SR))
    if len(x) == n and fade:
        x[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    start = int(rng.integers(0, int(0.05 * SR)))  # small random onset offset
    out = np.zeros(n, dtype=np.float32)
    seg = x[: n - start]
    out[start:start + len(seg)] = seg
    return peak_normalize(out, float(rng.uniform(0.5, 0.9)))


def build(ctx: BuildContext) -> dict:
    """Build the set into ``ctx.out_dir``; returns the manifest."""
    root = ensure_debs(DEB_PACKAGES, ctx.cache_root)
    rng = ctx.rng(NAME)
    clips = hydrogen_clips(root) + sample_clips(root)
    counts = Counter(label for _, label, _ in clips)
    classes = sorted(c for c, k in counts.items() if k >= MIN_CLIPS)
    dropped = {c: k for c, k in counts.items() if c not in classes}
    if dropped:
        ctx.warn(f"classes with fewer than {MIN_CLIPS} clips left out: {dropped}")
    clips = [c for c in clips if c[1] in classes]

    # Among seeded random kit splits, keep the one whose smallest (val/test, class) cell is largest,
    # so every class can be evaluated on unheard kits.
    groups = sorted({g for _, _, g in clips})
    per_group = defaultdict(Counter)
    for _, label, g in clips:
        per_group[g][label] += 1
    best, best_score = None, -1
    for _ in range(300):
        cand = split_groups(groups, {"train": 0.6, "val": 0.2, "test": 0.2}, rng)
        cells = {s: sum((per_group[g] for g in groups if cand[g] == s), Counter()) for s in ("train", "val", "test")}
        score = min(cells[s][c] for s in ("val", "test") for c in classes)
        if min(cells["train"][c] for c in classes) > 0 and score > best_score:
            best, best_score = cand, score
    assign = best
    if best_score <= 0:
        ctx.warn("no kit split puts every class in val and test")

    if ctx.scale < 1.0:
        keep = []
        for s in ("train", "val", "test"):
            for c in classes:
                pool = [k for k in clips if k[1] == c and assign[k[2]] == s]
                idx = rng.permutation(len(pool))[: ctx.n(len(pool), 1)]
                keep += [pool[i] for i in sorted(idx)]
        clips = keep

    writer = SetWriter(ctx, SR)
    seen: set[str] = set()
    for path, label, group in tqdm(clips, desc=NAME, disable=not ctx.progress, leave=False):
        try:
            x, _ = load_audio(path, sr=SR)
        except AudioError as exc:
            ctx.warn(f"skipped: {exc}")
            continue
        rel_src = path.relative_to(root)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{group}_{path.stem}")
        rel = f"{assign[group]}/{label}/{stem}.wav"
        if rel in seen:  # one file used by two instruments of a kit: keep the first
            continue
        seen.add(rel)
        writer.add(shape_hit(x[0], rng), rel, label, assign[group], group, f"real: {rel_src}",
                   source=group)
    return writer.finish(
        name=NAME,
        description="Drum and percussion hits (1 s, 16 kHz) from real sample kits; labels from kit "
                    "instrument names and file names; split by kit so test kits are unheard.",
        synthetic="real recordings (some electronic kits are synthesized instruments)",
        classes=classes, sources=SOURCES)
