"""System tools checked by use: synthesizers that write nothing, write silence or are missing give
an error naming the tool, the voice, what the tool printed and the Debian package; the probe
report marks them failed; prepare() refuses up front.

The broken tools are small fake scripts put first on PATH, so these tests behave the same on a
machine with the real tools and on one without them."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib.data import offline
from course_lib.data.offline import common, system_tools
from course_lib.data.offline.common import OfflineBuildError

NO_VOICE = 'No default voice found in ("/usr/share/festival/voices/")'


def _script(folder: Path, name: str, body: str, python: bool = False) -> Path:
    """Write an executable ``name`` into ``folder`` (a shell script, or Python with ``python``)."""
    path = folder / name
    shebang = f"#!{sys.executable}\n" if python else "#!/bin/sh\n"
    path.write_text(shebang + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A folder put first on PATH for fake tools."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return folder


def mute_festival(folder: Path) -> None:
    """text2wave as installed without a voice: says why on stderr, exits 0, writes nothing."""
    _script(folder, "text2wave", f"cat >/dev/null\necho '{NO_VOICE}' >&2\nexit 0\n")


# A wav of one second of zeros on stdout (espeak-ng --stdout) or into the -o file (flite).
SILENT_WAV = """
import io, sys
import numpy as np, soundfile as sf
buf = io.BytesIO()
sf.write(buf, np.zeros(22050, dtype=np.float32), 22050, format="WAV")
args = sys.argv[1:]
if "-o" in args:
    open(args[args.index("-o") + 1], "wb").write(buf.getvalue())
else:
    sys.stdout.buffer.write(buf.getvalue())
"""


def test_festival_without_voice_names_tool_voice_message_and_package(fake_bin):
    mute_festival(fake_bin)
    with pytest.raises(OfflineBuildError) as err:  # never a bare FileNotFoundError
        common.festival("seven", "kal_diphone")
    msg = str(err.value)
    assert "text2wave" in msg and "kal_diphone" in msg
    assert "No default voice found" in msg
    assert "festvox-kallpc16k" in msg and "apt-get install -y" in msg


def test_flite_writing_an_empty_file_names_tool_voice_and_package(fake_bin):
    _script(fake_bin, "flite", 'while [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done\n'
                               "echo 'flite: out of voices' >&2\n")
    with pytest.raises(OfflineBuildError) as err:
        common.flite("seven", "awb")
    msg = str(err.value)
    assert "flite wrote no audio for voice awb" in msg and "out of voices" in msg
    assert "apt-get install -y flite" in msg


def test_espeak_printing_nothing_names_tool_voice_and_package(fake_bin):
    _script(fake_bin, "espeak-ng", "exit 0\n")
    with pytest.raises(OfflineBuildError) as err:
        common.espeak("seven", "en-gb+m3")
    msg = str(err.value)
    assert "espeak-ng wrote no audio for voice en-gb+m3" in msg and "espeak-ng-data" in msg


def test_a_failing_exit_code_is_reported_with_what_the_tool_printed(fake_bin):
    _script(fake_bin, "espeak-ng", "echo 'Error: The specified espeak-ng voice does not exist.' >&2\nexit 1\n")
    with pytest.raises(OfflineBuildError, match="exit code 1 for voice xx.*does not exist"):
        common.espeak("seven", "xx")


def test_silence_is_not_audio(fake_bin):
    _script(fake_bin, "espeak-ng", SILENT_WAV, python=True)
    with pytest.raises(OfflineBuildError, match="espeak-ng wrote only silence for voice en-us"):
        common.espeak("seven", "en-us")


def test_a_missing_tool_names_its_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH at all
    with pytest.raises(OfflineBuildError) as err:
        common.festival("seven")
    msg = str(err.value)
    assert "text2wave is not installed" in msg and "festival festvox-kallpc16k" in msg


def test_fluidsynth_rendering_nothing_names_tool_font_and_packages(fake_bin, tmp_path):
    _script(fake_bin, "fluidsynth", "echo 'fluidsynth: error: not a SoundFont' >&2\nexit 0\n")
    font = tmp_path / "broken.sf2"
    font.write_bytes(b"RIFF")
    with pytest.raises(OfflineBuildError) as err:
        common.fluidsynth(tmp_path / "x.mid", font, 22050)
    msg = str(err.value)
    assert "fluidsynth wrote no audio for sound font" in msg and "not a SoundFont" in msg
    assert "fluidsynth timgm6mb-soundfont" in msg
    with pytest.raises(OfflineBuildError, match="has no sound font file"):
        common.fluidsynth(tmp_path / "x.mid", tmp_path / "absent.sf2", 22050)


def test_tool_output_keeps_what_went_wrong():
    printed = ("-=-=-=-=-=- EST Error -=-=-=-=-=-\n\n{FND} Feature Token_Method not defined\n"
               "WARNING\nNo default voice found in (x)\nWARNING\n")
    out = common.tool_output(b"", printed)
    assert "No default voice found" in out and "EST Error" in out and "-=-" not in out
    assert common.tool_output(None, None) == "(it printed nothing)"
    assert len(common.tool_output("error " * 500, None)) <= 400


# --------------------------------------------------------------------------- probes
def test_probe_marks_a_mute_festival_failed_and_names_the_voice_package(fake_bin):
    mute_festival(fake_bin)
    results = system_tools.probe_tools({"text2wave": ["kal_diphone"]}, fetch_tools=False)
    assert [(r.label, r.ok, r.package) for r in results] == [
        ("text2wave voice kal_diphone", False, "festvox-kallpc16k")]
    assert "No default voice found" in results[0].detail
    assert system_tools.failed_packages(results) == {"text2wave voice kal_diphone": "festvox-kallpc16k"}
    report = system_tools.format_report(results)
    assert "text2wave" in report and "FAIL" in report and "festvox-kallpc16k" in report
    assert system_tools.fix_command(results).endswith("apt-get install -y festvox-kallpc16k")


def test_probe_of_a_missing_tool_asks_for_the_tool_and_its_voice(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    results = system_tools.probe_tools({"text2wave": ["kal_diphone"], "flite": ["slt"]},
                                       fetch_tools=False)
    assert system_tools.failed_packages(results) == {
        "text2wave": "festival", "text2wave voice kal_diphone": "festvox-kallpc16k", "flite": "flite"}
    assert "FAIL" in system_tools.format_report(results)


def test_probe_fails_empty_flite_and_espeak_output(fake_bin):
    _script(fake_bin, "flite", 'while [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done\n')
    _script(fake_bin, "espeak-ng", "exit 0\n")
    results = system_tools.probe_tools({"flite": ["slt"], "espeak-ng": ["en-us+m1"]}, fetch_tools=False)
    assert results and not any(r.ok for r in results)
    assert {r.package for r in results} == {"flite", "espeak-ng-data"}
    assert all("wrote no audio" in r.detail for r in results)


def test_probe_catches_an_espeak_variant_it_would_silently_replace(fake_bin):
    # audio for every voice, but the variant listing lacks m1: espeak-ng would use the plain voice
    _script(fake_bin, "espeak-ng", """
import io, sys
import numpy as np, soundfile as sf
if "--voices=variant" in sys.argv:
    print("Pty Language Age/Gender VoiceName File Other Languages")
    print(" 5  variant  --/M  Male2  !v/m2")
    sys.exit(0)
t = np.arange(4410) / 22050
buf = io.BytesIO()
sf.write(buf, (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 22050, format="WAV")
sys.stdout.buffer.write(buf.getvalue())
""", python=True)
    results = system_tools.probe_tools({"espeak-ng": ["en-us+m1", "en-us+m2"]}, fetch_tools=False)
    by_voice = {r.voice: r for r in results}
    assert by_voice["en-us"].ok and by_voice["en-us+m2"].ok
    assert not by_voice["en-us+m1"].ok and "variant 'm1'" in by_voice["en-us+m1"].detail


def test_every_builder_tool_is_in_the_registry_with_its_voices():
    needed = system_tools.voices_needed(offline.OFFLINE_SETS)
    for name, module in offline.OFFLINE_SETS.items():
        assert set(module.TOOLS) <= set(system_tools.SYSTEM_TOOLS), name
        if module.TOOLS:
            assert name in system_tools.BUILDER_VOICES, f"{name}: list the voices it synthesizes with"
            assert set(system_tools.BUILDER_VOICES[name]()) == set(module.TOOLS), name
    from course_lib.data.offline import prosody, spoken_digits

    assert set(prosody.ESPEAK_VOICES) <= set(needed["espeak-ng"])
    assert needed["text2wave"] == spoken_digits.FESTIVAL_VOICES
    assert needed["flite"] == spoken_digits.FLITE_VOICES
    packages = set(offline.SYSTEM_PACKAGES.values())
    assert {"espeak-ng", "flite", "festival", "festvox-kallpc16k", "fluidsynth",
            "timgm6mb-soundfont"} <= packages


def test_prepare_refuses_up_front_and_names_the_voice_package(fake_bin, tmp_path):
    mute_festival(fake_bin)
    with pytest.raises(OfflineBuildError) as err:
        offline.prepare("spoken_digits", cache_root=tmp_path / "cache", progress=False)
    msg = str(err.value)
    assert "text2wave voice kal_diphone" in msg and "apt-get install -y" in msg and "festvox-kallpc16k" in msg
    assert not (tmp_path / "cache" / "offline").exists()  # nothing was started


def test_install_without_root_prints_the_command(fake_bin, monkeypatch, capsys):
    mute_festival(fake_bin)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert offline.install_system_packages(["spoken_digits"]) is False
    out = capsys.readouterr().out
    assert "FAIL" in out and "sudo apt-get install -y" in out and "festvox-kallpc16k" in out


def test_system_packages_command_reports_a_broken_tool(fake_bin, capsys):
    from course_lib.data.__main__ import main

    mute_festival(fake_bin)
    assert main(["system-packages"]) == 1
    out = capsys.readouterr().out
    assert "text2wave" in out and "FAIL" in out and "festvox-kallpc16k" in out
    assert main(["system-packages", "--missing"]) == 0
    assert "festvox-kallpc16k" in capsys.readouterr().out.split()


# --------------------------------------------------------------------------- the real tools
@pytest.mark.parametrize("tool,voice", [("espeak-ng", "en-us+m1"), ("flite", "slt"),
                                        ("text2wave", "kal_diphone")])
def test_real_tool_says_a_word_when_installed(tool, voice):
    if not offline.shutil.which(tool):
        pytest.skip(f"{tool} not installed here")
    result = system_tools._probe_unit(tool, voice, None)
    if not result.ok and tool == "text2wave":
        pytest.skip(f"festival here lacks its voice: {result.detail}")
    assert result.ok, result.detail
    x, sr = {"espeak-ng": common.espeak, "flite": common.flite, "text2wave": common.festival}[tool](
        "seven", voice)
    assert x.dtype == np.float32 and 0.2 < len(x) / sr < 3.0 and np.max(np.abs(x)) > 0.01


def test_real_fluidsynth_renders_a_note_when_installed(tmp_path):
    if not offline.shutil.which("fluidsynth"):
        pytest.skip("fluidsynth not installed here")
    try:
        font = offline.music_styles.sound_font()
    except OfflineBuildError as exc:
        pytest.skip(str(exc))
    midi = tmp_path / "note.mid"
    system_tools._one_note_midi(midi)
    x, sr = common.fluidsynth(midi, font, 22050)
    assert sr == 22050 and x.ndim == 1
    # the note (middle C, 261.6 Hz) is where the energy is
    spec = np.abs(np.fft.rfft(x[: sr // 2]))
    freqs = np.fft.rfftfreq(sr // 2, 1 / sr)
    assert 200 < freqs[np.argmax(spec)] < 1100  # the fundamental or one of its first partials
