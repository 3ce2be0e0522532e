"""Shared helpers of the offline builders: cache paths, Debian audio, speech synthesis, clip shaping,
and the set writer that records every clip in ``manifest.json``.

Notebook: 00_welcome
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from course_lib.audio import resample, save_audio
from course_lib.data.download import file_digest

__all__ = [
    "MANIFEST",
    "OfflineBuildError",
    "BuildContext",
    "SetWriter",
    "offline_dir",
    "read_manifest",
    "verify_manifest",
    "ensure_debs",
    "file_lock",
    "TOOL_PACKAGES",
    "FESTIVAL_VOICE_PACKAGES",
    "voice_package",
    "apt_command",
    "tool_output",
    "synthesis_error",
    "espeak",
    "flite",
    "festival",
    "fluidsynth",
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


def offline_dir(name: str, cache_root: str | os.PathLike | None = None) -> Path:
    """Folder of the offline set ``name``: ``<cache>/offline/<name>``."""
    if cache_root is None:
        from course_lib.runtime import data_root  # lazy: it imports torch, which builders never need

        cache_root = data_root()
    root = Path(cache_root)
    return root / "offline" / name




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
        elif check_hashes and file_digest(p) != it["sha256"]:
            problems.append(f"{p}: sha256 mismatch")
    for extra in man.get("files", []):
        p = set_dir / extra["path"]
        if not p.is_file() or (check_hashes and file_digest(p) != extra["sha256"]):
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


@contextlib.contextmanager
def file_lock(path: Path, waiting_message: str = "") -> Iterator[bool]:
    """Hold an OS file lock on ``path`` (created if missing); yields whether another process held it
    first (then ``waiting_message`` is printed while waiting).

    ``flock`` (``msvcrt.locking`` on Windows): a process that dies releases it, so a crashed build
    never blocks the next one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        waited = not _try_lock(handle)
        if waited:
            if waiting_message:
                print(waiting_message, flush=True)
            _lock(handle)
        try:
            yield waited
        finally:
            _unlock(handle)


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle) -> bool:
        handle.seek(0)  # the lock covers byte 0; "a+" opens at the end
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _lock(handle) -> None:
        while not _try_lock(handle):
            time.sleep(0.5)

    def _unlock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(handle) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_debs(packages: list[str], cache_root: Path) -> Path:
    """Fetch Debian packages with ``apt-get download`` and unpack them with ``dpkg -x``.

    Nothing is installed system-wide: files land in ``<cache>/debs/root`` (returned). A package
    already unpacked (marker file) is not fetched again.
    """
    debs = cache_root / "debs"
    root = debs / "root"
    root.mkdir(parents=True, exist_ok=True)
    # Sets built side by side share these packages: one process fetches and unpacks at a time.
    with file_lock(debs / ".lock", "debs: another build is unpacking packages; waiting"):
        _fetch_and_unpack(packages, debs, root)
    return root


def _fetch_and_unpack(packages: list[str], debs: Path, root: Path) -> None:
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


# --------------------------------------------------------------------------- synthesis
# The Debian package behind each tool the builders run, and behind each voice they use. The errors
# below name them (a missing voice is one apt-get away), and ``system_tools`` probes them by use.
TOOL_PACKAGES: dict[str, str] = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "text2wave": "festival",
    "fluidsynth": "fluidsynth",
}
# festival installed with --no-install-recommends has NO voice: each voice is its own package.
FESTIVAL_VOICE_PACKAGES: dict[str, str] = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "us_slt_arctic_hts": "festvox-us-slt-hts",
}
SOUND_FONT_PACKAGE = "timgm6mb-soundfont"
# Seconds one synthesizer call may take before it counts as hung (a word takes well under one).
SYNTH_TIMEOUT_S = 120.0


def voice_package(tool: str, voice: str | None = None) -> str:
    """The Debian package that provides ``voice`` of ``tool`` (or the tool itself when ``voice``
    is None): espeak-ng's languages and variants come with ``espeak-ng-data``, flite's voices are
    built into ``flite``, each festival voice is a ``festvox-*`` package, fluidsynth's "voice" is
    the General MIDI sound font."""
    if voice is None:
        return TOOL_PACKAGES[tool]
    if tool == "espeak-ng":
        return "espeak-ng-data"
    if tool == "text2wave":
        return FESTIVAL_VOICE_PACKAGES.get(voice, "festvox-kallpc16k")
    if tool == "fluidsynth":
        return SOUND_FONT_PACKAGE
    return TOOL_PACKAGES[tool]


def apt_command(packages: list[str] | tuple[str, ...] | set[str]) -> str:
    """The one command that installs ``packages`` here (``sudo`` unless this runs as root)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return f"{'' if root else 'sudo '}apt-get install -y {' '.join(sorted(set(packages)))}"


def tool_output(stdout: bytes | str | None, stderr: bytes | str | None, limit: int = 400) -> str:
    """What a tool printed, shortened to the lines that say what went wrong.

    Decoration (``-=-=-`` rules, blank lines) and repeats are dropped; lines that read like an
    error come first; the result is at most ``limit`` characters.
    """
    text = "\n".join(t.decode("utf-8", "replace") if isinstance(t, bytes) else t
                     for t in (stderr, stdout) if t)
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip(" \t-=*\"")
        if line and any(c.isalpha() for c in line) and line not in lines:
            lines.append(line)
    if not lines:
        return "(it printed nothing)"
    keywords = ("error", "not found", "no default", "could not", "cannot", "can't", "failed",
                "unbound", "does not exist", "no such", "not a soundfont", "missing")
    telling = [ln for ln in lines if any(k in ln.lower() for k in keywords)]
    picked = telling or lines[-3:]
    out = " / ".join(picked)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def synthesis_error(tool: str, voice: str | None, problem: str, printed: str = "") -> OfflineBuildError:
    """The error for a tool that produced no usable audio: names the tool, the voice, what the tool
    printed and the Debian packages to install (with the command)."""
    packages = [TOOL_PACKAGES[tool]] + ([voice_package(tool, voice)] if voice is not None else [])
    packages = list(dict.fromkeys(packages))
    kind = "sound font" if tool == "fluidsynth" else "voice"
    what = f"{tool} {problem}" + (f" for {kind} {voice}" if voice is not None else "")
    said = f": {printed!r}" if printed else ""
    return OfflineBuildError(f"{what}{said} — install {' '.join(packages)}: {apt_command(packages)}")


def _run_tool(tool: str, voice: str | None, args: list[str], *, input: bytes | None = None,
              timeout: float = SYNTH_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``tool`` with ``args``; every way it can fail becomes an :class:`OfflineBuildError`."""
    exe = shutil.which(tool)
    if exe is None:
        raise synthesis_error(tool, voice, "is not installed (not found on PATH)")
    try:
        proc = subprocess.run([exe, *args], input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise synthesis_error(tool, voice, f"did not finish in {timeout:.0f} s",
                              tool_output(exc.stdout, exc.stderr)) from None
    except OSError as exc:  # not executable, wrong architecture, ...
        raise synthesis_error(tool, voice, f"could not be started ({exc})") from None
    if proc.returncode != 0:
        raise synthesis_error(tool, voice, f"failed with exit code {proc.returncode}",
                              tool_output(proc.stdout, proc.stderr))
    return proc


def _read_audio(data: bytes, tool: str, voice: str | None, proc: subprocess.CompletedProcess,
                printed_stdout: bool = True) -> tuple[np.ndarray, int]:
    """Decode a tool's wav bytes to mono float32 ``[samples]``; empty, undecodable or silent
    output raises, naming the tool, the voice and what it printed."""
    import io

    printed = tool_output(proc.stdout if printed_stdout else None, proc.stderr)
    if not data:
        raise synthesis_error(tool, voice, "wrote no audio", printed)
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's error types vary between versions
        raise synthesis_error(tool, voice, f"wrote {len(data)} bytes that are not audio ({exc})",
                              printed) from None
    if len(x) == 0 or not np.any(x):
        raise synthesis_error(tool, voice, "wrote only silence", printed)
    return x.mean(axis=1), int(sr)


def espeak(text: str, voice: str = "en-us", pitch: int = 50, speed: int = 170,
           amplitude: int = 100, ssml: bool = False) -> tuple[np.ndarray, int]:
    """Synthesize with espeak-ng. Returns mono float32 ``[samples]`` and its rate (22050 Hz).

    Raises
    ------
    OfflineBuildError
        espeak-ng is missing, fails, or writes no audio (names the voice and the package).
    """
    args = ["-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude),
            "--stdout"] + (["-m"] if ssml else []) + [text]
    proc = _run_tool("espeak-ng", voice, args)
    return _read_audio(proc.stdout, "espeak-ng", voice, proc, printed_stdout=False)


def flite(text: str, voice: str = "slt") -> tuple[np.ndarray, int]:
    """Synthesize with flite (voices kal, kal16, awb, rms, slt). Returns ``[samples]``, rate.

    Raises
    ------
    OfflineBuildError
        flite is missing, fails, or writes no audio (names the voice and the package).
    """
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "f.wav"
        proc = _run_tool("flite", voice, ["-voice", voice, "-t", text, "-o", str(out)])
        return _read_audio(out.read_bytes() if out.is_file() else b"", "flite", voice, proc)


def festival(text: str, voice: str = "kal_diphone") -> tuple[np.ndarray, int]:
    """Synthesize with festival's text2wave. Returns ``[samples]``, rate.

    Raises
    ------
    OfflineBuildError
        text2wave is missing or writes no audio; without the voice's package (festival installed
        without its Recommends has no voice at all) it exits 0 and writes nothing, and the error
        names the ``festvox-*`` package to install.
    """
    # text2wave seeks in its output, so it needs a real file (a pipe gives an empty wav)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "t.wav"
        proc = _run_tool("text2wave", voice, ["-eval", f"(voice_{voice})", "-o", str(out)],
                         input=text.encode())
        return _read_audio(out.read_bytes() if out.is_file() else b"", "text2wave", voice, proc)


def fluidsynth(midi_path: str | os.PathLike, sound_font: str | os.PathLike, sr: int,
               gain: float = 0.6) -> tuple[np.ndarray, int]:
    """Render a MIDI file with fluidsynth and a General MIDI sound font.

    Returns
    -------
    x : np.ndarray
        Mono float32 ``[samples]`` (the stereo render averaged).
    sr : int
        ``sr`` in Hz.

    Raises
    ------
    OfflineBuildError
        fluidsynth is missing, fails or renders nothing (names the sound font and the packages).
    """
    font = Path(sound_font)
    if not font.is_file():
        raise synthesis_error("fluidsynth", str(font), "has no sound font file")
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "out.wav"
        proc = _run_tool("fluidsynth", str(font), ["-ni", "-g", str(gain), "-r", str(sr),
                                                   "-F", str(wav), str(font), str(midi_path)])
        return _read_audio(wav.read_bytes() if wav.is_file() else b"", "fluidsynth", str(font), proc)


# --------------------------------------------------------------------------- clip shaping
def trim_silence(x: np.ndarray, sr: int, top_db: float = 40.0, frame_s: float = 0.01) -> np.ndarray:
    """Cut leading/trailing frames whose RMS is ``top_db`` below the loudest frame. ``[samples]``.

    ``librosa.effects.trim`` with ``frame_s``-long frames, half of one apart.
    """
    import librosa  # lazy: only the speech builders trim

    n = max(2, int(frame_s * sr))
    if len(x) < 2 * n:
        return x
    return librosa.effects.trim(np.asarray(x), top_db=top_db, frame_length=n, hop_length=n // 2)[0]


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
    """Play ``factor`` times faster (pitch rises with it), as a tape would. ``[samples]``.

    :func:`course_lib.features.speed_perturb` (the training augmentation) on one NumPy clip, so
    the voices of the offline sets and the augmented training batches change speed the same way.
    """
    import torch  # lazy: most builders never change speed

    from course_lib.features import speed_perturb

    y = speed_perturb(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), float(factor), keep_length=False)
    return y[0].numpy()


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

    def __init__(self, ctx: BuildContext, sr: int):
        self.ctx = ctx
        self.sr = sr
        self.items: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self._t0 = time.time()

    def add(self, x: np.ndarray, rel: str, label: str | None, split: str, group: str,
            provenance: str, **extra: Any) -> None:
        """Save ``x`` (``[samples]`` at ``sr``) to ``rel`` and record it."""
        x = np.asarray(x, dtype=np.float32)
        if x.size == 0 or not np.all(np.isfinite(x)) or not np.any(x):
            raise OfflineBuildError(f"{rel}: refusing to write an empty, silent or non-finite clip")
        path = save_audio(self.ctx.out_dir / rel, x, self.sr)
        self.items.append(dict(path=rel, label=label, split=split, group=group,
                               duration=round(len(x) / self.sr, 4),
                               sha256=file_digest(path), provenance=provenance, **extra))

    def add_file(self, rel: str, **extra: Any) -> None:
        """Record a non-clip file already written under the set folder (e.g. a MIDI score)."""
        self.files.append(dict(path=rel, sha256=file_digest(self.ctx.out_dir / rel), **extra))

    def finish(self, *, name: str, description: str, synthetic: str, classes: list[str],
               sources: list[dict[str, str]], task: str = "classification") -> dict[str, Any]:
        """Write ``manifest.json`` atomically (last, so its presence means the set is complete)."""
        counts: dict[str, dict[str, int]] = {}
        for it in self.items:
            counts.setdefault(it["split"], Counter())[it["label"] or "-"] += 1
        man = dict(name=name, description=description, synthetic=synthetic, task=task,
                   sample_rate=self.sr, classes=classes, sources=sources,
                   scale=self.ctx.scale, seed=self.ctx.seed,
                   build_seconds=round(time.time() - self._t0, 1),
                   counts={s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
                   warnings=self.ctx.log, files=self.files, items=self.items)
        tmp = self.ctx.out_dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(man, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.ctx.out_dir / MANIFEST)
        return man
