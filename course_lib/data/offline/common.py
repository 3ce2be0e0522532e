"""Shared helpers of the offline builders: cache paths, Debian audio, speech synthesis, clip shaping,
and the set writer that records every clip in ``manifest.json``.

Notebook: 00_welcome
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from course_lib.audio import resample, save_audio

__all__ = [
    "MANIFEST",
    "OfflineBuildError",
    "BuildContext",
    "SetWriter",
    "default_cache_root",
    "offline_dir",
    "sha256_file",
    "read_manifest",
    "verify_manifest",
    "ensure_debs",
    "espeak",
    "flite",
    "festival",
    "trim_silence",
    "place_in",
    "bandlimit",
    "peak_normalize",
    "speed_change",
    "split_groups",
]

MANIFEST = "manifest.json"


class OfflineBuildError(RuntimeError):
    """An offline set cannot be built (a tool or package is missing, or a source is broken)."""


def default_cache_root() -> Path:
    """The data cache: the runtime's ``data_dir`` (``$COURSE_DATA``, Google Drive on Colab, else
    ``<repo>/data/cache``).

    Notebook: 00_welcome
    """
    from course_lib.runtime import data_root  # lazy: it imports torch, which builders never need

    return data_root()


def offline_dir(name: str, cache_root: str | os.PathLike | None = None) -> Path:
    """Folder of the offline set ``name``: ``<cache>/offline/<name>``."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    return root / "offline" / name


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(set_dir: str | os.PathLike) -> dict[str, Any]:
    """Load ``<set_dir>/manifest.json``; raises FileNotFoundError when the set is not built."""
    path = Path(set_dir) / MANIFEST
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def verify_manifest(set_dir: str | os.PathLike, check_hashes: bool = True) -> list[str]:
    """Problems with a built set: missing manifest, missing files, sha256 mismatches.

    Returns
    -------
    list of str
        Empty when the set is complete and intact.
    """
    set_dir = Path(set_dir)
    try:
        man = read_manifest(set_dir)
    except FileNotFoundError:
        return [f"{set_dir / MANIFEST}: missing"]
    except (json.JSONDecodeError, OSError) as exc:
        return [f"{set_dir / MANIFEST}: unreadable ({exc})"]
    problems = []
    for it in man.get("items", []):
        p = set_dir / it["path"]
        if not p.is_file():
            problems.append(f"{p}: missing")
        elif check_hashes and sha256_file(p) != it["sha256"]:
            problems.append(f"{p}: sha256 mismatch")
    for extra in man.get("files", []):
        p = set_dir / extra["path"]
        if not p.is_file() or (check_hashes and sha256_file(p) != extra["sha256"]):
            problems.append(f"{p}: missing or changed")
    return problems


# --------------------------------------------------------------------------- Debian audio
_LISTS_REFRESHED = False


def _refresh_package_lists() -> bool:
    """Run ``apt-get update`` once per process when root; True if it ran and succeeded."""
    global _LISTS_REFRESHED
    if _LISTS_REFRESHED or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    _LISTS_REFRESHED = True
    print("apt-get download failed; refreshing the package lists once (apt-get update) ...", flush=True)
    return subprocess.run(["apt-get", "update", "-qq"], capture_output=True).returncode == 0


def ensure_debs(packages: list[str], cache_root: Path) -> Path:
    """Fetch Debian packages with ``apt-get download`` and unpack them with ``dpkg -x``.

    Nothing is installed system-wide: files land in ``<cache>/debs/root`` (returned). A package
    already unpacked (marker file) is not fetched again.
    """
    debs = cache_root / "debs"
    root = debs / "root"
    root.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        marker = debs / f".unpacked-{pkg}"
        if marker.exists():
            continue
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if not found:
            if shutil.which("apt-get") is None:
                raise OfflineBuildError(f"apt-get is not available to fetch Debian package {pkg!r}")
            proc = subprocess.run(
                ["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True
            )
            if proc.returncode != 0 and _refresh_package_lists():
                # a fresh machine often has no package lists yet: refresh once, then retry
                proc = subprocess.run(
                    ["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True
                )
            found = sorted(debs.glob(f"{pkg}_*.deb"))
            if proc.returncode != 0 or not found:
                raise OfflineBuildError(
                    f"'apt-get download {pkg}' failed: {proc.stderr.strip()[-400:]}\n"
                    "Run 'apt-get update' once (as root) and retry."
                )
        proc = subprocess.run(["dpkg", "-x", str(found[-1]), str(root)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise OfflineBuildError(f"'dpkg -x {found[-1]}' failed: {proc.stderr.strip()[-400:]}")
        marker.write_text(found[-1].name + "\n")
    return root


# --------------------------------------------------------------------------- synthesis
def _read_wav_bytes(data: bytes, what: str) -> tuple[np.ndarray, int]:
    import io

    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True) if data else (np.zeros((0, 1)), 0)
    if len(x) == 0 or not np.any(x):
        raise OfflineBuildError(f"{what} produced no audio")
    return x.mean(axis=1), int(sr)


def espeak(text: str, voice: str = "en-us", pitch: int = 50, speed: int = 170,
           amplitude: int = 100, ssml: bool = False) -> tuple[np.ndarray, int]:
    """Synthesize with espeak-ng. Returns mono float32 ``[samples]`` and its rate (22050 Hz)."""
    cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude),
           "--stdout"] + (["-m"] if ssml else []) + [text]
    proc = subprocess.run(cmd, capture_output=True, check=True)
    return _read_wav_bytes(proc.stdout, f"espeak-ng -v {voice}")


def flite(text: str, voice: str = "slt") -> tuple[np.ndarray, int]:
    """Synthesize with flite (voices kal, kal16, awb, rms, slt). Returns ``[samples]``, rate."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "f.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)],
                       capture_output=True, check=True)
        return _read_wav_bytes(out.read_bytes(), f"flite -voice {voice}")


def festival(text: str, voice: str = "kal_diphone") -> tuple[np.ndarray, int]:
    """Synthesize with festival's text2wave. Returns ``[samples]``, rate."""
    # text2wave seeks in its output, so it needs a real file (a pipe gives an empty wav)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "t.wav"
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", str(out)],
                       input=text.encode(), capture_output=True, check=True)
        return _read_wav_bytes(out.read_bytes(), f"text2wave voice {voice}")


# --------------------------------------------------------------------------- clip shaping
def trim_silence(x: np.ndarray, sr: int, top_db: float = 40.0, frame_s: float = 0.01) -> np.ndarray:
    """Cut leading/trailing frames whose RMS is ``top_db`` below the loudest frame. ``[samples]``."""
    n = max(1, int(frame_s * sr))
    frames = len(x) // n
    if frames < 2:
        return x
    rms = np.sqrt(np.mean(x[: frames * n].reshape(frames, n) ** 2, axis=1) + 1e-12)
    keep = np.nonzero(20 * np.log10(rms / rms.max()) > -top_db)[0]
    return x[keep[0] * n: (keep[-1] + 1) * n]


def place_in(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Put ``x`` at a random offset in a zero signal of ``length`` samples (cropping the tail
    of ``x`` if it is longer)."""
    out = np.zeros(length, dtype=np.float32)
    x = x[:length]
    start = int(rng.integers(0, length - len(x) + 1))
    out[start:start + len(x)] = x
    return out


def bandlimit(x: np.ndarray, sr: int, narrow_sr: int = 8000) -> np.ndarray:
    """Down- then up-sample so nothing is left above ``narrow_sr / 2`` (telephone band)."""
    return resample(resample(x, sr, narrow_sr), narrow_sr, sr)[: len(x)]


def peak_normalize(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale so ``max |x| == peak``; silence stays silence."""
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x * (peak / m)).astype(np.float32) if m > 0 else x.astype(np.float32)


def speed_change(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch rises with it), as a tape would. ``[samples]``."""
    base = 1000
    return resample(x, int(round(base * factor)), base)


# --------------------------------------------------------------------------- splits
def split_groups(groups: list[str], fractions: dict[str, float], rng: np.random.Generator
                 ) -> dict[str, str]:
    """Assign whole groups (speakers, kits, pieces) to splits so no group spans two splits.

    Every split in ``fractions`` gets at least one group when there are enough groups.
    """
    order = sorted(set(groups))
    rng.shuffle(order)
    names = list(fractions)
    counts = {s: max(1, int(round(fractions[s] * len(order)))) for s in names[1:]}
    out, i = {}, 0
    for s in names[1:]:
        for g in order[i:i + counts[s]]:
            out[g] = s
        i += counts[s]
    for g in order[i:]:
        out[g] = names[0]
    return out


# --------------------------------------------------------------------------- writer
@dataclass
class BuildContext:
    """What a builder needs: where to write, the cache, the size, the seed."""

    out_dir: Path
    cache_root: Path
    scale: float = 1.0
    seed: int = 0
    progress: bool = True
    log: list[str] = field(default_factory=list)

    def rng(self, salt: str = "") -> np.random.Generator:
        return np.random.default_rng([self.seed, int(hashlib.md5(salt.encode()).hexdigest()[:8], 16)])

    def n(self, full: int, minimum: int = 1) -> int:
        """``full`` scaled by ``scale``, at least ``minimum``."""
        return max(minimum, int(round(full * self.scale)))

    def warn(self, msg: str) -> None:
        self.log.append(msg)
        print(f"  warning: {msg}", flush=True)


class SetWriter:
    """Writes clips of one set as 16-bit wav and records them for ``manifest.json``."""

    def __init__(self, ctx: BuildContext, sample_rate: int):
        self.ctx = ctx
        self.sample_rate = sample_rate
        self.items: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self._t0 = time.time()

    def add(self, x: np.ndarray, rel: str, label: str | None, split: str, group: str,
            provenance: str, **extra: Any) -> None:
        """Save ``x`` (``[samples]`` at ``sample_rate``) to ``rel`` and record it."""
        x = np.asarray(x, dtype=np.float32)
        if x.size == 0 or not np.all(np.isfinite(x)) or not np.any(x):
            raise OfflineBuildError(f"{rel}: refusing to write an empty, silent or non-finite clip")
        path = save_audio(self.ctx.out_dir / rel, x, self.sample_rate)
        self.items.append(dict(path=rel, label=label, split=split, group=group,
                               duration=round(len(x) / self.sample_rate, 4),
                               sha256=sha256_file(path), provenance=provenance, **extra))

    def add_file(self, rel: str, **extra: Any) -> None:
        """Record a non-clip file already written under the set folder (e.g. a MIDI score)."""
        self.files.append(dict(path=rel, sha256=sha256_file(self.ctx.out_dir / rel), **extra))

    def finish(self, *, name: str, description: str, synthetic: str, classes: list[str],
               sources: list[dict[str, str]], task: str = "classification") -> dict[str, Any]:
        """Write ``manifest.json`` atomically (last, so its presence means the set is complete)."""
        counts: dict[str, dict[str, int]] = {}
        for it in self.items:
            counts.setdefault(it["split"], Counter())[it["label"] or "-"] += 1
        man = dict(name=name, description=description, synthetic=synthetic, task=task,
                   sample_rate=self.sample_rate, classes=classes, sources=sources,
                   scale=self.ctx.scale, seed=self.ctx.seed,
                   build_seconds=round(time.time() - self._t0, 1),
                   counts={s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
                   warnings=self.ctx.log, files=self.files, items=self.items)
        tmp = self.ctx.out_dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(man, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.ctx.out_dir / MANIFEST)
        return man
