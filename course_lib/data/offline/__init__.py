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
    file_lock,
    offline_dir,
    read_manifest,
    verify_manifest,
)
from course_lib.data.offline.system_tools import (
    FETCH_TOOLS,
    SOUND_FONT,
    SYSTEM_TOOLS,
    ProbeResult,
    failed_packages,
    format_report,
    package_of,
    probe_tools,
    voices_needed,
)

__all__ = [
    "OFFLINE_SETS",
    "SYSTEM_PACKAGES",
    "SYSTEM_TOOLS",
    "FETCH_TOOLS",
    "ProbeResult",
    "OfflineBuildError",
    "offline_dir",
    "read_manifest",
    "verify_manifest",
    "system_packages",
    "check_system_tools",
    "missing_system_packages",
    "failed_packages",
    "format_report",
    "install_hint",
    "install_system_packages",
    "prepare",
]

OFFLINE_SETS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (spoken_digits, spoken_words, digit_strings, librivox_sentences, sound_events, music_styles, chorales, prosody)
}


def _sets(names: list[str] | None) -> dict[str, ModuleType]:
    return dict(OFFLINE_SETS) if names is None else {n: OFFLINE_SETS[n] for n in names}


def system_packages(names: list[str] | None = None) -> dict[str, str]:
    """``{what: Debian package}`` for everything the chosen sets (default all) run: each tool, and
    each voice or sound font whose package is not the tool's own (festival's voice is only a
    Recommends, so ``--no-install-recommends`` leaves festival mute).

    Notebook: 00_welcome
    """
    out: dict[str, str] = {}
    for tool, voices in voices_needed(_sets(names)).items():
        out[tool] = SYSTEM_TOOLS[tool].package
        for v in voices:
            pkg = package_of(tool, v)
            if pkg != out[tool] and pkg not in out.values():
                out[SOUND_FONT if v == SOUND_FONT else f"{tool} voices" if tool == "espeak-ng"
                    else f"{tool} voice {v}"] = pkg
    return out


# Every Debian package the builders run, as ``{what: package}``; `make install` installs them.
# The audio packages are fetched with `apt-get download` into the cache instead, never installed.
SYSTEM_PACKAGES: dict[str, str] = system_packages()


def check_system_tools(names: list[str] | None = None) -> list[ProbeResult]:
    """Use every tool the chosen sets (default all) need, with each of their voices, and read the
    audio back (see :mod:`course_lib.data.offline.system_tools`). About a second; nothing cached.

    Notebook: 00_welcome
    """
    sets = _sets(names)
    return probe_tools(voices_needed(sets),
                       fetch_tools=any(getattr(m, "DEB_PACKAGES", None) for m in sets.values()))


def missing_system_packages(names: list[str] | None = None) -> dict[str, str]:
    """``{what: Debian package}`` for every tool or voice the chosen sets (default all) need that
    does not work here, checked by use (a festival without its voice counts as missing).

    Notebook: 00_welcome
    """
    return failed_packages(check_system_tools(names))


def install_system_packages(names: list[str] | None = None) -> bool:
    """Install the packages of the failed checks with apt (as root on Debian/Ubuntu), check again,
    and print one OK/FAIL line per tool.

    Elsewhere print the command to run. Returns True when every check passes afterwards.
    Used by ``make`` (``system-packages --install``) and by the notebooks' setup cell on Colab.

    Notebook: 00_welcome
    """
    import subprocess

    results = check_system_tools(names)
    missing = failed_packages(results)
    if not missing:
        print("system tools, checked by use:\n" + format_report(results), flush=True)
        return True
    pkgs = sorted(set(pkg for what, pkg in missing.items() if what not in FETCH_TOOLS))
    if pkgs and getattr(os, "geteuid", lambda: 1)() == 0 and shutil.which("apt-get"):
        print(f"system tools failing their check: {', '.join(missing)}\n"
              f"installing: apt-get install -y --no-install-recommends {' '.join(pkgs)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = (subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0
              and subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
                                 env=env, stdout=subprocess.DEVNULL).returncode == 0)
        if not ok:
            print(f"apt-get could not install: {' '.join(pkgs)}", flush=True)
        results = check_system_tools(names)
        print("system tools, checked again after installing:\n" + format_report(results), flush=True)
        return all(r.ok for r in results)
    print("system tools, checked by use:\n" + format_report(results), flush=True)
    print(install_hint(missing))
    print("(macOS: brew install espeak-ng flite fluid-synth.) Without them the notebooks use the real "
          "datasets, which they download when they can.", flush=True)
    return False


def install_hint(missing: dict[str, str]) -> str:
    """The lines that tell which tools fail their check, their Debian packages, and the command."""
    pkgs = sorted(set(missing.values()))
    sudo = "" if getattr(os, "geteuid", lambda: 1)() == 0 else "sudo "
    return (f"missing or not working: {', '.join(missing)} (Debian packages: {' '.join(pkgs)})\n"
            f"install them with:\n  {sudo}apt-get update && {sudo}apt-get install -y {' '.join(pkgs)}")


def prepare(only: list[str] | str | None = None, force: bool = False,
            cache_root: str | os.PathLike | None = None, scale: float = 1.0, seed: int = 0,
            progress: bool = True, jobs: int = 1) -> dict[str, dict]:
    """Build the offline sets (all, or ``only``) into ``<cache>/offline/<set>/``.

    A set whose manifest exists and verifies (every file present, sha256 equal) is skipped unless
    ``force``. The tools and voices of the sets to build are checked by use (a word per voice,
    a note through the sound font) before anything is built.

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
    jobs : int
        Sets built at once, each in its own process (``python -m course_lib.data prepare`` uses
        every core). The builders mostly wait on single-threaded synthesizers, so this divides
        the wall time of a fresh build by about the number of cores.

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
    if cache_root is None:
        from course_lib.runtime import data_root

        cache_root = data_root()
    root = Path(cache_root)
    out = {}
    for name in names:
        man = None if force else _up_to_date(offline_dir(name, root), scale, seed)
        if man is not None:
            out[name] = man
    to_build = [n for n in names if n not in out]
    if to_build:
        # Use every tool and voice the builds need before building anything, so a missing voice is
        # one message with its install command, not a traceback minutes into a build.
        missing = missing_system_packages(to_build)
        if missing:
            raise OfflineBuildError(install_hint(missing))
    for name in names:
        if name in out:
            print(f"{name}: up to date ({len(out[name]['items'])} clips), skipped", flush=True)
    # Longest builds first, so that parallel workers finish together.
    to_build.sort(key=lambda n: -_LAST_BUILD_SECONDS.get(n, 0.0))
    if jobs > 1 and len(to_build) > 1:
        import concurrent.futures

        with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(to_build))) as pool:
            futures = {n: pool.submit(_prepare_set, n, root, force, scale, seed, False) for n in to_build}
            for name, future in futures.items():
                out[name] = future.result()
    else:
        for name in to_build:
            out[name] = _prepare_set(name, root, force, scale, seed, progress)
    return {name: out[name] for name in names}


# Seconds each set took on the development machine (its manifest's build_seconds): the build order.
_LAST_BUILD_SECONDS = {"spoken_words": 52, "spoken_digits": 44, "digit_strings": 37, "chorales": 22,
                       "music_styles": 18, "prosody": 9, "sound_events": 2, "librivox_sentences": 0}


def _prepare_set(name: str, root: Path, force: bool, scale: float, seed: int, progress: bool) -> dict:
    """Build one set under its lock (or take the one another process built meanwhile)."""
    set_dir = offline_dir(name, root)
    t0 = time.time()
    with file_lock(set_dir.with_name(set_dir.name + ".lock"),
                   f"{name}: another process is building it; waiting for it to finish") as waited:
        # Two notebooks (or test workers) may ask for the same missing set at once: the second
        # waits here, then uses what the first built instead of deleting it mid-build.
        man = None if (force and not waited) else _up_to_date(set_dir, scale, seed)
        if man is not None:
            print(f"{name}: built meanwhile by another process ({len(man['items'])} clips)", flush=True)
            return man
        print(f"{name}: building into {set_dir} ...", flush=True)
        man = _build_and_swap(name, set_dir, root, scale, seed, progress)
    counts = {s: sum(c.values()) for s, c in man["counts"].items()}
    print(f"{name}: {len(man['items'])} clips {counts} in {time.time() - t0:.1f} s", flush=True)
    return man


def _up_to_date(set_dir: Path, scale: float, seed: int) -> dict | None:
    """The manifest of a set that verifies and was built with this scale and seed, else None."""
    if verify_manifest(set_dir):
        return None
    man = read_manifest(set_dir)
    return man if man.get("scale") == scale and man.get("seed") == seed else None


def _build_and_swap(name: str, set_dir: Path, root: Path, scale: float, seed: int, progress: bool) -> dict:
    """Build beside the set and swap it in at the end: an interrupted build, or a notebook reading
    while prepare runs, never sees a half-written set."""
    building = set_dir.with_name(set_dir.name + ".building")
    if building.exists():  # left by an interrupted build: the lock says nobody is writing it
        shutil.rmtree(building)
    building.mkdir(parents=True)
    man = OFFLINE_SETS[name].build(BuildContext(building, root, scale=scale, seed=seed, progress=progress))
    if set_dir.exists():
        retired = set_dir.with_name(set_dir.name + ".old")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(set_dir, retired)
        os.replace(building, set_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(building, set_dir)
    return man
