"""requirements.lock is complete and is what the environment holds; pyproject, environment.yml and
the notebooks agree with it."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from course_lib import _meta, lockfile

ROOT = Path(__file__).resolve().parent.parent
LOCK = lockfile.read_lock(ROOT / "requirements.lock")
# Installed by `make install` from the lock (the stamp is written after `uv pip sync`): only there
# must the environment equal the lock; a conda env or the Python 3.12 Colab-like venv is not locked.
LOCKED_ENV = (Path(sys.prefix) / ".course-installed").is_file()
LINUX_X86 = {"sys_platform": "linux", "platform_machine": "x86_64", "os_name": "posix",
             "platform_system": "Linux"}
MACOS_ARM = {"sys_platform": "darwin", "platform_machine": "arm64", "os_name": "posix",
             "platform_system": "Darwin"}
WINDOWS = {"sys_platform": "win32", "platform_machine": "AMD64", "os_name": "nt",
           "platform_system": "Windows"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _direct_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    return [Requirement(t) for t in project["dependencies"] + project["optional-dependencies"]["dev"]]


def test_the_lock_is_transitive_and_every_line_is_an_exact_pin():
    # read_lock raises on any line that is not `name==version [; marker]`
    names = {p.name for p in LOCK}
    assert len(names) > 4 * len(_direct_requirements()), "only the direct packages are pinned"
    for transitive in ("numba", "llvmlite", "jinja2", "networkx", "sympy", "pooch", "tornado"):
        assert transitive in names, f"{transitive} floats: run make lock"


def test_pyproject_ranges_admit_the_pins():
    for req in _direct_requirements():
        locked = [p for p in LOCK if p.name == lockfile.normalize(req.name)]
        assert locked, f"{req.name} is in pyproject.toml but not in requirements.lock: run make lock"
        for p in locked:
            assert req.specifier.contains(Version(p.version)), f"{req} excludes the lock's {p.version}"


def test_the_packages_the_user_named_are_pinned_on_every_platform():
    for env in (LINUX_X86, MACOS_ARM, WINDOWS):
        pins = lockfile.applicable_pins(LOCK, {"python_full_version": "3.12.1", "python_version": "3.12",
                                               **env})
        for name in ["jupyterlab", "torch", "torchaudio", "librosa", "nbval", "ipywidgets",
                     "matplotlib", "torch-geometric", "soundfile", "numba", "uv"]:
            assert name in pins, (name, env["sys_platform"])


def test_cuda_wheels_are_only_locked_for_linux():
    """A universal lock: macOS and Windows students must not be handed Linux-only CUDA wheels."""
    cuda_only = [p for p in LOCK if p.name.startswith(("nvidia-", "cuda-")) or p.name == "triton"]
    assert cuda_only, "torch's CUDA wheels are missing from the lock"
    for p in cuda_only:
        assert p.marker and "sys_platform == 'linux'" in p.marker, p.requirement
    for env in (MACOS_ARM, WINDOWS):
        pins = lockfile.applicable_pins(LOCK, env)
        assert not any(n.startswith("nvidia-") or n == "triton" for n in pins), env["sys_platform"]


def test_environment_yml_pip_section_is_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert lockfile.render_environment_yml(text, LOCK) == text, \
        "environment.yml's pip section differs from requirements.lock: run make lock"
    assert "      - -e .\n" in text


def test_the_lock_command_in_the_makefile_matches_the_lock_header():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip compile" in makefile and "--universal" in makefile and "--extra dev" in makefile
    assert "#    make lock" in (ROOT / "requirements.lock").read_text()


@pytest.mark.skipif(not LOCKED_ENV, reason=f"{sys.prefix} was not installed by `make install`")
def test_installed_environment_is_the_lock():
    problems = lockfile.environment_mismatches(lockfile.applicable_pins(LOCK),
                                               lockfile.installed_versions())
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(not LOCKED_ENV, reason=f"{sys.prefix} was not installed by `make install`")
def test_pip_check_finds_no_broken_requirement():
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("uv", path=str(Path(sys.executable).parent)) is None,
                    reason="uv is not installed here (make install installs it)")
def test_make_lock_would_change_nothing(tmp_path):
    """The lock is what `make lock` writes from today's pyproject.toml (it keeps locked versions)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    for name in ("pyproject.toml", "requirements.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "course_lib", tmp_path / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([uv, "pip", "compile", "--quiet", "pyproject.toml", "--extra", "dev",
                          "--universal", "--custom-compile-command", "make lock",
                          "-o", "requirements.lock"],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "UV_NO_PROGRESS": "1"})
    if out.returncode != 0 and any(s in out.stderr for s in ("Failed to fetch", "dns error",
                                                             "error sending request")):
        pytest.skip(f"no network to the package index: {out.stderr.strip()[:200]}")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "requirements.lock").read_text() == (ROOT / "requirements.lock").read_text(), \
        "pyproject.toml changed since the lock was written: run make lock"


def test_requires_python_is_what_is_tested():
    """3.11: `make test`; 3.12: `make test-py312` (the Colab path). Nothing older is claimed."""
    assert _pyproject()["project"]["requires-python"] == ">=3.11"
    assert sys.version_info >= (3, 11)
    assert "sys.version_info < (3, 11)" in (ROOT / "Makefile").read_text()


def test_repository_url_is_stated_once():
    assert _pyproject()["project"]["urls"]["Repository"] == _meta.REPOSITORY_URL
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "course_lib._meta.__version__"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
