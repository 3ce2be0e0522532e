"""``requirements.lock``: read it, check an installed environment against it, derive environment.yml.

The lock is the full transitive set of exact versions the course is tested with. ``make lock`` writes
it with ``uv pip compile pyproject.toml --extra dev --universal``: one file for every platform, where a
line that only some platforms need carries a marker (the nvidia-* wheels:
``; sys_platform == 'linux'``), and ``make install`` installs exactly it (``uv pip sync``).
pyproject.toml keeps compatible ranges, so that on Colab installing course-lib keeps Colab's own torch.

Command line (``python -m course_lib.lockfile …``):

``check``            exit 1 when this environment differs from the lock (missing, other versions,
                     or installed but not locked), naming each difference and the fix
``environment-yml``  rewrite the pip section of environment.yml from the lock (``make lock`` does)

Notebook: none (the course's installation; ``make install``, ``make lock`` and the tests use it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = [
    "NOT_LOCKED_TOOLING",
    "LockError",
    "LockedPackage",
    "applicable_pins",
    "environment_mismatches",
    "installed_versions",
    "lock_path",
    "normalize",
    "read_lock",
    "render_environment_yml",
]

# Installed but not in the lock, on purpose: the course's own package (installed editable from the
# checkout) and the installers ``python -m venv`` seeds (pip; setuptools and wheel on older Pythons).
# None of them is imported by the course; uv, which installs the lock, is itself locked.
NOT_LOCKED_TOOLING = frozenset({"course-lib", "pip", "setuptools", "wheel"})

_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(?:;\s*(?P<marker>.+))?$")
_PIP_SECTION = re.compile(r"(?P<head>^  - pip:\n)(?P<body>(?:^ {6}- .*\n?)*)", flags=re.M)


class LockError(ValueError):
    """requirements.lock or environment.yml is not in the shape ``make lock`` writes; names the line."""


@dataclass(frozen=True)
class LockedPackage:
    """One line of the lock: ``name==version`` and, where only some platforms need it, a marker."""

    name: str
    version: str
    marker: str | None = None

    @property
    def requirement(self) -> str:
        """The line as pip and uv read it."""
        return f"{self.name}=={self.version}" + (f" ; {self.marker}" if self.marker else "")

    def applies(self, environment: Mapping[str, str] | None = None) -> bool:
        """True when the marker holds here (or in ``environment``, PEP 508 marker variables)."""
        from packaging.markers import Marker  # imported here: `make lock` runs before the install

        return self.marker is None or Marker(self.marker).evaluate(dict(environment or {}))


def normalize(name: str) -> str:
    """PEP 503 name: ``Pretty_MIDI`` and ``pretty.midi`` both become ``pretty-midi``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path() -> Path:
    """``requirements.lock`` at the root of this checkout."""
    return Path(__file__).resolve().parent.parent / "requirements.lock"


def read_lock(path: Path | None = None) -> list[LockedPackage]:
    """Every ``name==version [; marker]`` line of the lock, in file order.

    Comments (``# via ...``) and blank lines are skipped; any other line is an error naming it, since
    an unpinned or URL line would let the environment float.
    """
    path = path or lock_path()
    if not path.is_file():
        raise LockError(f"{path} not found: it is part of the course's checkout (regenerate: make lock)")
    packages = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            raise LockError(f"{path.name}, line {number}: {raw.strip()!r} is not an exact pin "
                            "`name==version [; marker]` (regenerate the file: make lock)")
        packages.append(LockedPackage(normalize(match["name"]), match["version"], match["marker"]))
    return packages


def applicable_pins(packages: Iterable[LockedPackage],
                    environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{normalized name: version}`` of the lines whose markers hold here (or in ``environment``)."""
    pins: dict[str, str] = {}
    for package in packages:
        if not package.applies(environment):
            continue
        if package.name in pins and pins[package.name] != package.version:
            raise LockError(f"requirements.lock pins {package.name} twice for this platform "
                            f"({pins[package.name]} and {package.version}); regenerate it: make lock")
        pins[package.name] = package.version
    return pins


def installed_versions() -> dict[str, list[str]]:
    """``{normalized name: [versions]}`` of the distributions this interpreter sees (two versions
    of one name means a broken install)."""
    found: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalize(name), []).append(dist.version)
    return found


def _matches(installed: str, locked: str) -> bool:
    """pip's ``==`` semantics: ``2.14.1+cu128`` (a local build of the same release) matches ``2.14.1``."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return SpecifierSet(f"=={locked}").contains(Version(installed), prereleases=True)
    except InvalidVersion:
        return installed == locked


def environment_mismatches(pins: Mapping[str, str], installed: Mapping[str, list[str]],
                           allowed_extra: Iterable[str] = NOT_LOCKED_TOOLING) -> list[str]:
    """Each way ``installed`` differs from ``pins``, as one line that ends with the fix.

    Parameters
    ----------
    pins : mapping
        From :func:`applicable_pins`.
    installed : mapping
        From :func:`installed_versions`.
    allowed_extra : iterable of str
        Names that may be installed without a pin (:data:`NOT_LOCKED_TOOLING`).

    Returns
    -------
    list of str
        Empty when every locked package is installed at its version and nothing else is.
    """
    fix = "run `make install` (it installs exactly requirements.lock)"
    problems = []
    for name, version in sorted(pins.items()):
        versions = installed.get(name, [])
        if not versions:
            problems.append(f"{name}=={version} is locked but not installed: {fix}")
        elif len(versions) > 1:
            problems.append(f"{name} is installed {len(versions)} times ({', '.join(versions)}): {fix}")
        elif not _matches(versions[0], version):
            problems.append(f"{name} {versions[0]} is installed but the lock says {version}: {fix}")
    allowed = {normalize(n) for n in allowed_extra}
    for name in sorted(set(installed) - set(pins) - allowed):
        problems.append(f"{name} {', '.join(installed[name])} is installed but not locked: add it to "
                        "pyproject.toml and run `make lock` if the course needs it, else `make install` "
                        "removes it")
    return problems


def render_environment_yml(text: str, packages: Iterable[LockedPackage]) -> str:
    """environment.yml with its ``  - pip:`` section replaced by the lock's lines, then ``-e .``.

    Markers are kept: conda hands the section to pip as a requirements file, and pip skips a line
    whose marker does not hold (no nvidia-* wheels on macOS).
    """
    match = _PIP_SECTION.search(text)
    if match is None:
        raise LockError("environment.yml has no `  - pip:` section with `      - ...` lines under it: "
                        "restore it from git, then run make lock")
    body = "".join(f"      - {p.requirement}\n" for p in packages) + "      - -e .\n"
    return text[:match.start("body")] + body + text[match.end("body"):]


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m course_lib.lockfile check | environment-yml``."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.lockfile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="exit 1 when this environment differs from requirements.lock")
    sub.add_parser("environment-yml", help="rewrite environment.yml's pip section from the lock")
    args = parser.parse_args(argv)
    packages = read_lock()
    if args.command == "check":
        problems = environment_mismatches(applicable_pins(packages), installed_versions())
        for line in problems:
            print(line)
        print(f"{sys.prefix}: " + (f"{len(problems)} difference(s) from requirements.lock" if problems
                                   else "matches requirements.lock"))
        return 1 if problems else 0
    yml = lock_path().parent / "environment.yml"
    new = render_environment_yml(yml.read_text(), packages)
    if new != yml.read_text():
        yml.write_text(new)
        print(f"{yml.name}: pip section rewritten from requirements.lock ({len(packages)} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
