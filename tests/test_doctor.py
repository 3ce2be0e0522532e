"""The course doctor: runs as `python -m course_lib doctor`, prints every section, and gives each
problem the command that fixes it (a broken system tool, a damaged offline set, a package that
differs from the lock). Broken tools are fake scripts first on PATH, so the tests behave the same
with or without the real tools."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import doctor

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("Python and packages", "Device and precision", "System tools", "Data cache", "Colab and Drive")


def _run_doctor(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLAB_RELEASE_TAG", "COURSE_PROFILE")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "course_lib", "doctor"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _mute_text2wave(folder: Path) -> None:
    path = folder / "text2wave"
    path.write_text("#!/bin/sh\ncat >/dev/null\necho 'No default voice found' >&2\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_doctor_prints_every_section(tmp_path):
    proc = _run_doctor({"COURSE_DATA": str(tmp_path / "cache")})
    out = proc.stdout
    assert proc.returncode in (0, 1), proc.stderr
    for title in SECTIONS:
        assert title in out, f"section {title!r} missing:\n{out}"
    assert f"Python {sys.version.split()[0]}" in out
    assert "torch " in out and "precision " in out
    assert str(tmp_path / "cache") in out and "GB free" in out
    assert ("No problems found" in out) == (proc.returncode == 0)


def test_doctor_names_the_fix_for_a_broken_tool(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    _mute_text2wave(fake)
    proc = _run_doctor({"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
                        "COURSE_DATA": str(tmp_path / "cache")})
    assert proc.returncode == 1
    out = proc.stdout
    line = next(ln for ln in out.splitlines() if "text2wave" in ln)
    assert "PROBLEM" in line and "kal_diphone" in line and "No default voice found" in line
    assert "fix:" in out and "apt-get install -y" in out and "festvox-kallpc16k" in out


def test_a_package_that_differs_from_the_lock_is_a_problem(tmp_path, monkeypatch):
    import numpy

    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# written by hand for this test\nnumpy=={numpy.__version__}\n    # via course-lib\n"
                    "soundfile==0.0.1\nno-such-package-xyz==1.0\npywin32==306 ; sys_platform == 'nope'\n")
    monkeypatch.setattr(doctor, "LOCK", lock)
    findings = doctor.check_packages(on_colab=False)
    problems = [f for f in findings if f.status == doctor.PROBLEM]
    assert len(problems) == 1 and problems[0].fix == doctor.REINSTALL
    assert "soundfile" in problems[0].text
    assert "no-such-package-xyz" in problems[0].text and "pywin32" not in problems[0].text
    assert any(f.status == doctor.OK and f.text.startswith(f"numpy {numpy.__version__}") for f in findings)


def test_the_repository_lock_is_compared_package_by_package():
    findings = doctor.check_packages(on_colab=False)
    assert any(f.text.startswith("torch ") and "(lock " in f.text for f in findings)
    assert any("requirements.lock" in f.text for f in findings)


def test_on_colab_packages_are_judged_by_the_ranges_course_lib_declares():
    findings = doctor.check_packages(on_colab=True)
    assert any(f.text.startswith("torch ") and "course accepts >=" in f.text for f in findings)


def test_a_damaged_offline_set_is_a_problem_with_its_rebuild_command(tmp_path, monkeypatch):
    set_dir = tmp_path / "offline" / "spoken_digits"
    set_dir.mkdir(parents=True)
    (set_dir / "manifest.json").write_text(json.dumps(
        {"items": [{"path": "train/zero/a.wav", "sha256": "0" * 64}], "files": []}))
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    findings = doctor.check_data()
    damaged = [f for f in findings if f.status == doctor.PROBLEM and "spoken_digits" in f.text]
    assert damaged and damaged[0].fix == "python -m course_lib.data prepare --only spoken_digits --force"
    assert any(f.status == doctor.NOTE and "not built" in f.text and "spoken_words" in f.text
               for f in findings)


def test_colab_without_drive_says_how_to_mount(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    monkeypatch.setattr(doctor.Path, "is_dir", lambda self: False)
    findings = doctor.check_colab()
    assert any("drive.mount" in f.text for f in findings)


def test_a_bad_profile_is_a_problem_with_its_fix(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    findings = doctor.check_device()
    assert findings[0].status == doctor.PROBLEM and "COURSE_PROFILE=laptop" in findings[0].fix
