"""The system tools the offline builders run, each verified by use rather than by presence.

A tool on PATH can still be useless: festival installed without its Recommends has no voice, and
``text2wave`` then prints "No default voice found", exits 0 and writes nothing. So each tool is
checked the way the builders use it: every voice they synthesize with says one word, fluidsynth
renders one note with the General MIDI sound font, and the audio read back must be non-empty and
not silent. Nothing is cached: every check runs the tools again, so an install shows at once.

``python -m course_lib.data system-packages`` prints the report; ``--install`` installs the
packages of the failed checks with apt and checks again. ``prepare()`` and the course doctor
(``python -m course_lib doctor``) run the same probes.

Notebook: 00_welcome
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from course_lib.data.offline.common import (
    SOUND_FONT_PACKAGE,
    TOOL_PACKAGES,
    OfflineBuildError,
    apt_command,
    espeak,
    festival,
    flite,
    fluidsynth,
    voice_package,
)

__all__ = [
    "SOUND_FONT",
    "SYSTEM_TOOLS",
    "FETCH_TOOLS",
    "SystemTool",
    "ProbeResult",
    "voices_needed",
    "package_of",
    "probe_tools",
    "failed_packages",
    "format_report",
    "fix_command",
]

SOUND_FONT = "General MIDI sound font"
PROBE_WORD = "seven"
# The loudest sample a probe must reach: anything quieter is a tool that "succeeded" with silence.
MIN_PEAK = 1e-3
# A probe may take this long (festival's first start reads its lexicon: about half a second).
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SystemTool:
    """One command the builders run.

    Attributes
    ----------
    tool : str
        The command looked up on PATH.
    package : str
        The Debian package that provides the command.
    voice_packages : str
        Where its voices come from (for the report; ``voice_package`` gives each voice's package).
    default_voice : str
        The voice probed when a set names none.
    purpose : str
        What the builders use it for.
    """

    tool: str
    package: str
    voice_packages: str
    default_voice: str
    purpose: str


SYSTEM_TOOLS: dict[str, SystemTool] = {t.tool: t for t in (
    SystemTool("espeak-ng", TOOL_PACKAGES["espeak-ng"], "espeak-ng-data (languages and variants)",
               "en-us", "synthetic speakers (formant synthesis), SSML prosody"),
    SystemTool("flite", TOOL_PACKAGES["flite"], "built into flite (kal, kal16, awb, rms, slt)",
               "slt", "synthetic speakers (CMU voices)"),
    SystemTool("text2wave", TOOL_PACKAGES["text2wave"], "festvox-* (kal_diphone: festvox-kallpc16k)",
               "kal_diphone", "a synthetic speaker (festival diphone voice)"),
    SystemTool("fluidsynth", TOOL_PACKAGES["fluidsynth"], f"{SOUND_FONT_PACKAGE} (General MIDI sound font)",
               SOUND_FONT, "renders MIDI scores with General MIDI instruments"),
)}
# Needed to fetch the Debian audio packages into the cache; part of every Debian/Ubuntu system.
FETCH_TOOLS: dict[str, str] = {"apt-get": "apt", "dpkg": "dpkg"}


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of using one tool with one voice (or the tool alone when ``voice`` is None).

    Attributes
    ----------
    tool, voice : str
        What was run; for fluidsynth the voice is the sound font.
    package : str
        The Debian package that provides what failed (or was checked).
    ok : bool
        Non-empty, non-silent audio came back.
    detail : str
        What came back (``"0.41 s of audio at 22050 Hz"``) or the error, with what the tool printed.
    seconds : float
        Wall-clock time of the probe.
    """

    tool: str
    voice: str | None
    package: str
    ok: bool
    detail: str
    seconds: float = 0.0

    @property
    def label(self) -> str:
        """``"text2wave voice kal_diphone"``, ``"flite"``, ``"General MIDI sound font"``."""
        if self.voice is None:
            return self.tool
        if self.voice == SOUND_FONT:
            return SOUND_FONT
        kind = "sound font" if self.tool == "fluidsynth" else "voice"
        return f"{self.tool} {kind} {self.voice}"


# --------------------------------------------------------------------------- what the sets use
def _word_set_voices() -> dict[str, list[str]]:
    from course_lib.data.offline import spoken_digits as sd

    return {"espeak-ng": [f"{a}+{v}" for v in sd.ESPEAK_VARIANTS for a in sd.ESPEAK_ACCENTS],
            "flite": list(sd.FLITE_VOICES), "text2wave": list(sd.FESTIVAL_VOICES)}


def _prosody_voices() -> dict[str, list[str]]:
    from course_lib.data.offline import prosody

    return {"espeak-ng": list(prosody.ESPEAK_VOICES)}


# The voices each set synthesizes with, read from the builders' own lists. A set missing here
# gets its tools probed with their default voice; tests check this table against every TOOLS.
BUILDER_VOICES: dict[str, Callable[[], dict[str, list[str]]]] = {
    "spoken_digits": _word_set_voices,
    "spoken_words": _word_set_voices,
    "digit_strings": _word_set_voices,
    "prosody": _prosody_voices,
    "music_styles": lambda: {"fluidsynth": [SOUND_FONT]},
    "chorales": lambda: {"fluidsynth": [SOUND_FONT]},
}


def voices_needed(sets: dict[str, ModuleType]) -> dict[str, list[str]]:
    """``{tool: voices}`` that the builder modules ``sets`` (name -> module) run, in a stable order.

    Notebook: 00_welcome
    """
    needed: dict[str, list[str]] = {}
    for name, module in sets.items():
        listed = BUILDER_VOICES[name]() if name in BUILDER_VOICES else {}
        for tool in module.TOOLS:
            voices = listed.get(tool) or [SYSTEM_TOOLS[tool].default_voice]
            have = needed.setdefault(tool, [])
            have.extend(v for v in voices if v not in have)
    return needed


# --------------------------------------------------------------------------- probes
def _audio_detail(x: np.ndarray, sr: int) -> str:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak < MIN_PEAK:
        raise OfflineBuildError(f"audio came back silent (peak {peak:.1e})")
    return f"{len(x) / sr:.2f} s of audio at {sr} Hz"


def _listed(cmd: list[str]) -> str:
    """What a tool lists about its voices ('' when it cannot say)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout + proc.stderr


def _espeak_variants() -> set[str]:
    """espeak-ng's installed variants (``!v/<name>`` in its ``--voices=variant`` listing).

    Needed because espeak-ng falls back to the plain voice, silently, for an unknown variant.
    """
    out = _listed(["espeak-ng", "--voices=variant"])
    return {tok.split("/", 1)[1].lower() for tok in out.split() if tok.startswith("!v/")}


def _flite_voices() -> set[str]:
    """flite's built-in voices (``flite -lv``); flite falls back silently to kal for others."""
    out = _listed(["flite", "-lv"])
    return set(out.split(":", 1)[1].split()) if ":" in out else set()


def _one_note_midi(path: Path) -> None:
    """Write a half-second middle C on a piano (General MIDI program 0) as a type-0 MIDI file."""
    track = bytes([0x00, 0xC0, 0x00,            # program change: acoustic grand piano
                   0x00, 0x90, 60, 100,         # note on, middle C
                   0x83, 0x60, 0x80, 60, 64,    # 480 ticks later (0.5 s at 120 bpm): note off
                   0x00, 0xFF, 0x2F, 0x00])     # end of track
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") \
        + (480).to_bytes(2, "big")
    path.write_bytes(header + b"MTrk" + len(track).to_bytes(4, "big") + track)


def package_of(tool: str, voice: str | None) -> str:
    """The Debian package that provides ``voice`` of ``tool`` (the tool's own when None)."""
    return SOUND_FONT_PACKAGE if voice == SOUND_FONT else voice_package(tool, voice)


def _probe_unit(tool: str, voice: str, listing: set[str] | None) -> ProbeResult:
    """Use ``tool`` with ``voice`` once; never raises."""
    t0 = time.perf_counter()
    package = package_of(tool, voice)
    try:
        if tool == "espeak-ng":
            variant = voice.split("+", 1)[1] if "+" in voice else None
            if variant and listing is not None and variant.lower() not in listing:
                raise OfflineBuildError(
                    f"espeak-ng does not list variant {variant!r} (it would silently use the plain "
                    f"voice) — install espeak-ng-data: {apt_command(['espeak-ng-data'])}")
            detail = _audio_detail(*espeak(PROBE_WORD, voice))
        elif tool == "flite":
            if listing is not None and voice not in listing:
                raise OfflineBuildError(
                    f"flite does not list voice {voice!r} (it would silently use kal); its voices: "
                    f"{' '.join(sorted(listing)) or 'none'} — reinstall flite: {apt_command(['flite'])}")
            detail = _audio_detail(*flite(PROBE_WORD, voice))
        elif tool == "text2wave":
            detail = _audio_detail(*festival(PROBE_WORD, voice))
        elif tool == "fluidsynth":
            from course_lib.data.offline.music_styles import sound_font

            try:
                font = sound_font()
            except OfflineBuildError as exc:  # no font file at all: its package is what is missing
                return ProbeResult(tool, SOUND_FONT, SOUND_FONT_PACKAGE, False, str(exc),
                                   time.perf_counter() - t0)
            voice = str(font)
            with tempfile.TemporaryDirectory() as d:
                midi = Path(d) / "note.mid"
                _one_note_midi(midi)
                detail = _audio_detail(*fluidsynth(midi, font, 22050))
                detail += " (one note)"
        else:
            raise OfflineBuildError(f"no probe is defined for {tool!r}")
        return ProbeResult(tool, voice, package, True, detail, time.perf_counter() - t0)
    except OfflineBuildError as exc:
        return ProbeResult(tool, voice, package, False, str(exc), time.perf_counter() - t0)
    except Exception as exc:  # a probe reports; it never takes the caller down
        return ProbeResult(tool, voice, package, False, f"{type(exc).__name__}: {exc}",
                           time.perf_counter() - t0)


def _probe_units(tool: str, voices: list[str]) -> list[str]:
    """The voices to actually run: for espeak-ng one call per language and one per variant
    (a voice ``lang+variant`` combines two independent files), else every voice."""
    if tool != "espeak-ng":
        return voices
    languages = list(dict.fromkeys(v.split("+", 1)[0] for v in voices))
    variants = list(dict.fromkeys(v.split("+", 1)[1] for v in voices if "+" in v))
    return languages + [f"{languages[0]}+{var}" for var in variants]


def probe_tools(needed: dict[str, list[str]] | None = None, *, fetch_tools: bool = True,
                workers: int = 4) -> list[ProbeResult]:
    """Run every tool in ``needed`` (``{tool: voices}``, default: what all sets use) the way the
    builders do, and read the audio back.

    Parameters
    ----------
    needed : dict, optional
        ``{tool: voices}`` (see :func:`voices_needed`).
    fetch_tools : bool
        Also check ``apt-get`` and ``dpkg`` (they fetch and unpack the Debian audio packages).
    workers : int
        Probes run in parallel threads (each is a short subprocess).

    Returns
    -------
    list of ProbeResult
        One per tool and voice, in the order of ``needed``; failures name the package to install.

    Notebook: 00_welcome
    """
    if needed is None:
        from course_lib.data.offline import OFFLINE_SETS

        needed = voices_needed(OFFLINE_SETS)
    results: list[ProbeResult] = []
    jobs: list[tuple[str, str, set[str] | None]] = []
    for tool, voices in needed.items():
        if shutil.which(tool) is None:
            results.append(ProbeResult(tool, None, SYSTEM_TOOLS[tool].package, False,
                                       "not found on PATH"))
            # its voices need their own packages too (festival's voice is not a dependency)
            extra: dict[str, list[str]] = {}
            for v in voices:
                pkg = package_of(tool, v)
                if pkg != SYSTEM_TOOLS[tool].package:
                    extra.setdefault(pkg, []).append(v)
            for pkg, vs in extra.items():
                shown = vs[0] if len(vs) == 1 else f"{vs[0]} and {len(vs) - 1} more"
                results.append(ProbeResult(tool, shown, pkg, False, f"not tried: {tool} is missing"))
            continue
        listing = _espeak_variants() if tool == "espeak-ng" else _flite_voices() if tool == "flite" else None
        jobs += [(tool, v, listing or None) for v in _probe_units(tool, voices)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results += list(pool.map(lambda j: _probe_unit(*j), jobs))
    if fetch_tools:
        for tool, pkg in FETCH_TOOLS.items():
            found = shutil.which(tool)
            results.append(ProbeResult(tool, None, pkg, found is not None,
                                       found or "not found on PATH (not a Debian/Ubuntu system?)"))
    order = {t: i for i, t in enumerate([*needed, *FETCH_TOOLS])}
    return sorted(results, key=lambda r: order.get(r.tool, len(order)))


def failed_packages(results: list[ProbeResult]) -> dict[str, str]:
    """``{label: Debian package}`` of every failed probe (the shape ``missing_system_packages``
    has always returned)."""
    return {r.label: r.package for r in results if not r.ok}


def fix_command(results: list[ProbeResult]) -> str | None:
    """The one command that installs what the failed probes need (None when all passed)."""
    pkgs = sorted({r.package for r in results if not r.ok})
    return apt_command(pkgs) if pkgs else None


def format_report(results: list[ProbeResult]) -> str:
    """One line per tool: OK with what came back, or FAIL with each failed voice and its fix.

    Notebook: 00_welcome
    """
    lines = []
    by_tool: dict[str, list[ProbeResult]] = {}
    for r in results:
        by_tool.setdefault(r.tool, []).append(r)
    width = max((len(t) for t in by_tool), default=0)
    for tool, rs in by_tool.items():
        failed = [r for r in rs if not r.ok]
        if not failed:
            voiced = [r for r in rs if r.voice is not None]
            if tool in FETCH_TOOLS:
                what = rs[0].detail
            elif tool == "fluidsynth":
                what = f"{voiced[0].detail} with {voiced[0].voice}"
            else:
                shown = ", ".join(r.voice for r in voiced[:6]) + (", ..." if len(voiced) > 6 else "")
                what = f"{len(voiced)} voice{'s' * (len(voiced) != 1)} said {PROBE_WORD!r} ({shown})"
            lines.append(f"  {tool:<{width}}  OK    {what}")
            continue
        lines.append(f"  {tool:<{width}}  FAIL  {len(failed)} of {len(rs)} check(s) failed "
                     f"(needs: {' '.join(sorted({r.package for r in failed}))})")
        for r in failed[:4]:
            said = r.detail if r.detail.startswith(r.tool) else f"{r.label}: {r.detail}"
            lines.append(f"  {'':<{width}}        {said}")
        if len(failed) > 4:
            lines.append(f"  {'':<{width}}        ... and {len(failed) - 4} more")
    return "\n".join(lines)
