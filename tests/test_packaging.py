"""The pins live in requirements.lock; pyproject, environment.yml and the notebooks agree with it."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from course_lib import _meta

ROOT = Path(__file__).resolve().parent.parent


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_lock_entry_is_an_exact_pin():
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", line), line


def test_pyproject_ranges_admit_the_pins():
    pins = _lock()
    project = _pyproject()["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    for text in requirements:
        req = Requirement(text)
        name = _norm(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(Version(pins[name])), f"{text} excludes the pin {pins[name]}"


def test_the_packages_the_user_named_are_pinned():
    pins = _lock()
    for name in ["jupyterlab", "torch", "torchaudio", "librosa", "nbval", "ipywidgets",
                 "matplotlib", "torch-geometric", "soundfile"]:
        assert name in pins


def test_environment_yml_pip_section_equals_the_lock():
    text = (ROOT / "environment.yml").read_text()
    pip_lines = re.findall(r"^ {6}- (.+)$", text, flags=re.M)
    pinned = {_norm(line.split("==")[0]): line.split("==")[1] for line in pip_lines if "==" in line}
    assert pinned == _lock()
    assert "-e ." in pip_lines


def test_repository_url_is_stated_once():
    assert _pyproject()["project"]["urls"]["Repository"] == _meta.REPOSITORY_URL
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "course_lib._meta.__version__"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
