"""Python 3.12 and the Colab install path: course-lib installs beside a preinstalled torch and keeps it.

Colab runs Python 3.12 with its own torch and torchaudio, and every notebook's first cell runs
``pip install "course-lib @ git+<repository>@<tag>"``, which resolves pyproject.toml's ranges (not the
lock). ``make test-py312`` (part of ``make test``) checks that path here:

1. ``.venv-py312``: a Python 3.12 virtual environment holding torch and torchaudio at the lock's
   versions, installed first as Colab has them. Built once, and again when requirements.lock or
   pyproject.toml change (their hash is kept in the venv).
2. On a (re)build: ``pip install <this checkout>``, the setup cell's command with the checkout in
   place of the git tag, then a failure if pip installed anything named torch, torchaudio,
   triton, nvidia-* or cuda-* (its ``--report``), or if their versions changed.
3. Every run: course-lib is reinstalled from the checkout (``--no-deps``; the ranges were resolved
   in step 2) and the unit tests (:func:`unit_tests`) run there against the installed copy, not the
   checkout's source (``python -P``, ``--import-mode=importlib``).

``python tools/check_colab_install.py [--python PATH] [--skip-without-python]``; PYTHON312 also names
the interpreter. Without a Python 3.12 it fails, or with ``--skip-without-python`` (as ``make test``
passes) prints SKIPPED and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-py312"
STAMP = VENV / ".colab-like-installed"
# Colab's preinstalled stack that installing course-lib must leave alone.
KEPT = re.compile(r"^(torch|torchaudio|triton|nvidia-.*|cuda-.*)$")
# The unit tests in tests/ (not tests/data/, which needs the offline sets and system tools), except
# those about the checkout rather than the installed library, or that need the dev extra Colab lacks.
NOT_ON_THE_COLAB_PATH = {
    "test_notebooks.py",        # the solution notebooks' conventions (files of the checkout)
    "test_student_copies.py",   # executes notebooks with nbclient (dev extra)
    "test_devicecheck.py",      # runs notebooks with nbval (dev extra)
    "test_doctor.py",           # compares the checkout's requirements.lock
    "test_grade.py",            # grades the checkout's solutions/ with nbclient kernels (dev extra)
    "test_book.py",             # tools/book.py renders the checkout with Sphinx (dev extra)
}


def unit_tests() -> list[str]:
    """``tests/test_*.py`` minus :data:`NOT_ON_THE_COLAB_PATH`, relative to the checkout."""
    return [f"tests/{p.name}" for p in sorted((ROOT / "tests").glob("test_*.py"))
            if p.name not in NOT_ON_THE_COLAB_PATH]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_pins(*names: str) -> list[str]:
    """``name==version`` lines of requirements.lock for ``names`` (markers dropped: Linux here)."""
    lines = []
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if match and _norm(match[1]) in names:
            lines.append(f"{match[1]}=={match[2]}")
    missing = set(names) - {_norm(line.split("==")[0]) for line in lines}
    if missing:
        raise SystemExit(f"requirements.lock pins no {', '.join(sorted(missing))}: run make lock")
    return lines


def find_python312(explicit: str | None) -> str | None:
    """A working Python 3.12: ``explicit``/PYTHON312, else python3.12 on PATH, else pyenv's newest."""
    candidates = [explicit or os.environ.get("PYTHON312") or "", shutil.which("python3.12") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob("3.12*/bin/python3.12"), reverse=True)]
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                                 capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return candidate
    return None


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    command = [str(c) for c in command]
    out = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if out.returncode != 0:
        raise SystemExit(f"test-py312: `{' '.join(command)}` failed ({out.returncode}):\n"
                         f"{(out.stdout + out.stderr)[-4000:]}")
    return out


def _versions(python: Path) -> dict[str, str]:
    code = ("import json, importlib.metadata as m\n"
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    return {_norm(k): v for k, v in json.loads(_run(python, "-c", code).stdout).items()}


def stack_changes(installed: dict[str, str], before: dict[str, str], after: dict[str, str]) -> str | None:
    """What pip did to the preinstalled torch stack, or None when it kept it.

    Parameters
    ----------
    installed : dict
        ``{name: version}`` pip installed (its ``--report``).
    before, after : dict
        ``{name: version}`` of the :data:`KEPT` packages before and after the install.
    """
    touched = sorted(name for name in installed if KEPT.match(_norm(name)))
    if not touched and after == before:
        return None
    replaced = ", ".join(f"{n}=={installed[n]}" for n in touched) or "nothing of it"
    return (f"pip installed {replaced}; before {before}, after {after}. A range in pyproject.toml "
            "excludes Colab's torch, or a new dependency pins it: widen the range.")


def build(python312: str) -> None:
    """Steps 1 and 2: a Colab-like venv with torch first, then course-lib as the setup cell installs it."""
    if VENV.exists():
        shutil.rmtree(VENV)
    t0 = time.perf_counter()
    _run(python312, "-m", "venv", VENV)
    py = VENV / "bin" / "python"
    # torch first, as on Colab. uv (from the course's .venv, when there) only because it is faster;
    # what is under test is the next step's pip.
    torch_pins = _lock_pins("torch", "torchaudio")
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        _run(uv, "pip", "install", "--quiet", "--python", py, *torch_pins)
    else:
        _run(py, "-m", "pip", "install", "--quiet", *torch_pins)
    before = {k: v for k, v in _versions(py).items() if KEPT.match(k)}
    t1 = time.perf_counter()
    report = VENV / "pip-install-report.json"
    _run(py, "-m", "pip", "install", "--quiet", "--report", report, ROOT)
    installed = {_norm(item["metadata"]["name"]): item["metadata"]["version"]
                 for item in json.loads(report.read_text())["install"]}
    after = {k: v for k, v in _versions(py).items() if KEPT.match(k)}
    changed = stack_changes(installed, before, after)
    if changed:
        raise SystemExit(f"test-py312: installing course-lib the Colab way changed the preinstalled stack: "
                         f"{changed}")
    _run(py, "-m", "pip", "install", "--quiet", *_lock_pins("pytest", "pytest-xdist", "execnet"))
    STAMP.write_text(_fingerprint() + "\n")
    kept = ", ".join(f"{k} {before[k]}" for k in ("torch", "torchaudio"))
    print(f"test-py312: built {VENV.name} ({_run(py, '--version').stdout.strip()}): torch and torchaudio "
          f"first {t1 - t0:.0f} s, then course-lib the Colab way {time.perf_counter() - t1:.0f} s; "
          f"pip installed {len(installed)} packages and kept {kept}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", help="a Python 3.12 interpreter (default: PYTHON312, PATH, pyenv)")
    parser.add_argument("--skip-without-python", action="store_true",
                        help="print SKIPPED and exit 0 when no Python 3.12 is found")
    args = parser.parse_args(argv)
    python312 = find_python312(args.python)
    if python312 is None:
        message = ("no Python 3.12 found (PYTHON312, python3.12 on PATH, ~/.pyenv/versions/3.12*): "
                   "install one (e.g. `pyenv install 3.12`) or name it: make test-py312 PYTHON312=/path")
        if args.skip_without_python:
            print(f"test-py312: SKIPPED: {message}")
            return 0
        print(f"test-py312: {message}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    fresh = not STAMP.is_file() or STAMP.read_text().strip() != _fingerprint()
    py = VENV / "bin" / "python"
    if fresh:
        build(python312)
    else:  # the checkout's current code, same dependencies (resolved when the venv was built)
        _run(py, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", ROOT)
    where = _run(py, "-P", "-c", "import course_lib; print(course_lib.__file__)", cwd=ROOT).stdout.strip()
    if not where.startswith(str(VENV)):
        raise SystemExit(f"test-py312: course_lib imports from {where}, not from {VENV}")
    print(f"test-py312: course-lib {'installed' if fresh else 'reinstalled'} in "
          f"{time.perf_counter() - start:.0f} s; unit tests on Python 3.12 against {where}", flush=True)
    # The installed copy's own data home is the user cache; the tests read the offline sets that
    # `make test` prepared in this checkout instead of building a second copy (or racing to).
    env = {**os.environ, "COURSE_PROFILE": "ci", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0",
           "COURSE_DATA": os.environ.get("COURSE_DATA") or str(ROOT / "data" / "cache")}
    tests = subprocess.run([str(py), "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "auto",
                            "--import-mode=importlib", *unit_tests()], cwd=ROOT, env=env)
    print(f"test-py312: {'passed' if tests.returncode == 0 else 'FAILED'} in "
          f"{time.perf_counter() - start:.0f} s in all")
    return tests.returncode


if __name__ == "__main__":
    raise SystemExit(main())
