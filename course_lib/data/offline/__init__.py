"""Offline data sets: built here from Debian audio packages, speech synthesis and music21 scores.

``python -m course_lib.data prepare`` builds every set into ``<cache>/offline/<set>/`` with a
``manifest.json`` (sources, licences, provenance, every clip's split, group and sha256).

Notebook: 00_welcome
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import ModuleType

from course_lib.data.offline import (
    chorales,
    digit_strings,
    librivox_sentences,
    music_styles,
    prosody,
    sound_events,
    spoken_digits,
    spoken_words,
)
from course_lib.data.offline.common import (
    BuildContext,
    OfflineBuildError,
    default_cache_root,
    offline_dir,
    read_manifest,
    verify_manifest,
)

__all__ = [
    "OFFLINE_SETS",
    "SYSTEM_PACKAGES",
    "FETCH_TOOLS",
    "OfflineBuildError",
    "default_cache_root",
    "offline_dir",
    "read_manifest",
    "verify_manifest",
    "missing_system_packages",
    "install_hint",
    "install_system_packages",
    "prepare",
]

OFFLINE_SETS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (spoken_digits, spoken_words, digit_strings, librivox_sentences, sound_events, music_styles, chorales, prosody)
}

# Debian packages the builders run (tool -> package); `make install` installs them. The audio
# packages are fetched with `apt-get download` into the cache instead, never installed.
SOUND_FONT = "General MIDI sound font"
SYSTEM_PACKAGES: dict[str, str] = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "text2wave": "festival",
    "fluidsynth": "fluidsynth",
    SOUND_FONT: "timgm6mb-soundfont",
}
# Needed to fetch the Debian audio packages; part of every Debian/Ubuntu system.
FETCH_TOOLS: dict[str, str] = {"apt-get": "apt", "dpkg": "dpkg"}


def _tool_present(tool: str) -> bool:
    if tool == SOUND_FONT:
        return any(Path(p).exists() for p in music_styles.SOUND_FONTS)
    return shutil.which(tool) is not None


def missing_system_packages(names: list[str] | None = None) -> dict[str, str]:
    """``{tool: debian package}`` for every tool the chosen sets (default all) need but this
    machine lacks.

    Notebook: 00_welcome
    """
    needed = dict(FETCH_TOOLS)
    for n in OFFLINE_SETS if names is None else names:
        for tool in OFFLINE_SETS[n].TOOLS:
            needed[tool] = SYSTEM_PACKAGES[tool]
            if tool == "fluidsynth":
                needed[SOUND_FONT] = SYSTEM_PACKAGES[SOUND_FONT]
    return {t: pkg for t, pkg in sorted(needed.items()) if not _tool_present(t)}


def install_system_packages() -> bool:
    """Install the missing Debian packages with apt when running as root on Debian/Ubuntu.

    Elsewhere print the command to run. Returns True when nothing is missing afterwards.
    Used by ``make`` (``system-packages --install``) and by the notebooks' setup cell on Colab.

    Notebook: 00_welcome
    """
    import subprocess

    missing = missing_system_packages()
    if not missing:
        return True
    pkgs = sorted(set(missing.values()))
    if getattr(os, "geteuid", lambda: 1)() == 0 and shutil.which("apt-get"):
        print(f"installing system packages for the offline data sets: {' '.join(pkgs)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = (subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0
              and subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
                                 env=env, stdout=subprocess.DEVNULL).returncode == 0)
        if ok and not missing_system_packages():
            return True
        print(f"apt-get could not install: {' '.join(pkgs)}", flush=True)
        return False
    print(install_hint(missing))
    print("(macOS: brew install espeak-ng flite fluid-synth.) Without them the notebooks use the real "
          "datasets, which they download when they can.", flush=True)
    return False


def install_hint(missing: dict[str, str]) -> str:
    """The lines that tell which Debian packages are missing and how to install them."""
    pkgs = sorted(set(missing.values()))
    return (f"missing system tools: {', '.join(missing)} (Debian packages: {' '.join(pkgs)})\n"
            f"install them with:\n  sudo apt-get update && sudo apt-get install -y {' '.join(pkgs)}")


def prepare(only: list[str] | str | None = None, force: bool = False,
            cache_root: str | os.PathLike | None = None, scale: float = 1.0, seed: int = 0,
            progress: bool = True) -> dict[str, dict]:
    """Build the offline sets (all, or ``only``) into ``<cache>/offline/<set>/``.

    A set whose manifest exists and verifies (every file present, sha256 equal) is skipped unless
    ``force``. Tools are checked before anything is built.

    Parameters
    ----------
    only : str or list of str, optional
        Set names (see ``OFFLINE_SETS``); default all.
    force : bool
        Rebuild even when the set verifies.
    cache_root : path-like, optional
        Default: the runtime's ``data_dir`` (``$COURSE_DATA`` or ``<repo>/data/cache``).
    scale : float
        Fraction of the full size (tests use a tiny scale, e.g. 0.05).
    seed : int
        Seed of every random choice (voices, splits, pauses).
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        ``{set name: manifest}``.

    Notebook: 00_welcome
    """
    names = list(OFFLINE_SETS) if only is None else ([only] if isinstance(only, str) else list(only))
    unknown = [n for n in names if n not in OFFLINE_SETS]
    if unknown:
        raise ValueError(f"unknown offline set(s) {unknown}; choose from {sorted(OFFLINE_SETS)}")
    missing = missing_system_packages(names)
    if missing:
        raise OfflineBuildError(install_hint(missing))
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    out = {}
    for name in names:
        set_dir = offline_dir(name, root)
        if not force and not verify_manifest(set_dir):
            man = read_manifest(set_dir)
            if man.get("scale") == scale and man.get("seed") == seed:
                print(f"{name}: up to date ({len(man['items'])} clips), skipped", flush=True)
                out[name] = man
                continue
        t0 = time.time()
        print(f"{name}: building into {set_dir} ...", flush=True)
        # Build beside the set and swap it in at the end: an interrupted build, or a notebook
        # reading while prepare runs, never sees a half-written set.
        building = set_dir.with_name(set_dir.name + ".building")
        if building.exists():
            shutil.rmtree(building)
        building.mkdir(parents=True)
        ctx = BuildContext(building, root, scale=scale, seed=seed, progress=progress)
        out[name] = OFFLINE_SETS[name].build(ctx)
        if set_dir.exists():
            retired = set_dir.with_name(set_dir.name + ".old")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(set_dir, retired)
            os.replace(building, set_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(building, set_dir)
        counts = {s: sum(c.values()) for s, c in out[name]["counts"].items()}
        print(f"{name}: {len(out[name]['items'])} clips {counts} in {time.time() - t0:.1f} s", flush=True)
    return out
