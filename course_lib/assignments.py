"""Solutions → student notebooks, the shared setup cell, and the checks that keep them in step.

The solution notebooks in ``solutions/`` are the single source of truth. An exercise is a code
cell holding a task line and a marked solution::

    # EXERCISE 02.1: Build the n x n DFT matrix W with W[k, m] = exp(-2j*pi*k*m/n).
    def dft_matrix(n):
        ### BEGIN SOLUTION
        k = np.arange(n)
        return np.exp(-2j * np.pi * np.outer(k, k) / n)
        ### END SOLUTION

    check.exercise("02.1", dft_matrix)

The student copy keeps everything but the marked lines, which become (same indentation)
``raise NotImplementedError("Exercise 02.1: Build the n x n DFT matrix ...")``. In a markdown cell
the marked lines become ``*Your answer here.*``.

An exercise cell may also carry tests that students never see and the grader runs
(``course_lib.grade``)::

    check.exercise("02.1", dft_matrix)
    ### BEGIN HIDDEN TESTS
    assert np.allclose(dft_matrix(8) @ dft_matrix(8).conj().T, 8 * np.eye(8)), "W W^H = n I"
    ### END HIDDEN TESTS

The student copy drops these lines, markers included; the solution notebook runs them (so CI
tests them against the reference solution); :func:`hidden_tests` hands them to the grader.

Command line (``python -m course_lib.assignments …``):

``build``      write every student copy into ``notebooks/`` (all or nothing)
``check``      exit 1 if ``notebooks/`` is stale or a solution has stored outputs
``fix-setup``  rewrite each solution's setup cell, badge and kernel, and strip outputs
``strip``      strip outputs from the solutions only

Notebook: 00_welcome
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_lib._meta import RELEASE, REPOSITORY_URL

__all__ = [
    "AssignmentError",
    "BEGIN",
    "END",
    "HIDDEN_BEGIN",
    "HIDDEN_END",
    "KERNEL_NAME",
    "build",
    "colab_badge",
    "extract_solutions",
    "hidden_tests",
    "insert_solutions",
    "make_student_copy",
    "setup_cell_source",
    "stale_notebooks",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
EXERCISE_LINE = re.compile(r"^\s*#\s*EXERCISE\s+(\d{2}\.\d+)\s*:\s*(.+?)\s*$")
STUB = re.compile(r'^(\s*)raise NotImplementedError\("Exercise (\d{2}\.\d+): .*"\)\s*$')
MARKDOWN_STUB = "*Your answer here.*"
KERNEL_NAME = "audio-nn-course"
KERNEL_DISPLAY = "Python 3 (audio-nn-course)"
NBFORMAT_MINOR = 5


class AssignmentError(ValueError):
    """A solution notebook that cannot be turned into a student copy; names notebook and cell."""


def repo_paths() -> tuple[Path, Path]:
    """``(solutions/, notebooks/)`` of this checkout."""
    root = Path(__file__).resolve().parent.parent
    return root / "solutions", root / "notebooks"


# --------------------------------------------------------------------------- the shared cells

def setup_cell_source() -> str:
    """The first cell of every notebook, generated from the one repository URL in ``_meta``.

    On Colab it pip-installs the tagged release unless ``course_lib`` is already importable (a
    rerun, or a copy installed by hand from Drive). When pip fails (no internet, a wrong URL or
    tag) the cell prints pip's last lines and stops the notebook with a ``SystemExit`` that says
    what was tried and what to do, instead of a ``CalledProcessError`` traceback.
    """
    return (
        "# Shared setup: on Colab, install the course library (a tagged release) and what Colab lacks\n"
        "# (never torch: Colab's own build is kept); everywhere, pick profile, device and seed.\n"
        "import importlib.util, subprocess, sys\n"
        "if \"google.colab\" in sys.modules and importlib.util.find_spec(\"course_lib\") is None:\n"
        f"    source = \"course-lib @ git+{REPOSITORY_URL}@{RELEASE}\"\n"
        "    pip = subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", source],\n"
        "                         capture_output=True, text=True)\n"
        "    if pip.returncode != 0:\n"
        "        print((pip.stdout + pip.stderr)[-2000:])\n"
        "        raise SystemExit(f'pip install \"{source}\" failed (its output is above). To fix:\\n'\n"
        "                         \"- check that this runtime has internet;\\n\"\n"
        "                         \"- check that the repository and the tag exist (set in course_lib/_meta.py);\\n\"\n"
        "                         \"- or copy the repository to Google Drive, run !pip install <its folder>, \"\n"
        "                         \"and rerun this cell.\")\n"
        "from course_lib import checks as check\n"
        "from course_lib.runtime import setup\n"
        "rt = setup(seed=0)"
    )


def colab_badge(notebook_name: str, *, student: bool = True) -> str:
    """Markdown for the "Open in Colab" badge of ``notebook_name`` (student copy by default)."""
    folder = "notebooks" if student else "solutions"
    slug = REPOSITORY_URL.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{slug}/blob/{RELEASE}/{folder}/{notebook_name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def _kernelspec() -> dict:
    return {"display_name": KERNEL_DISPLAY, "language": "python", "name": KERNEL_NAME}


# --------------------------------------------------------------------------- student copies

@dataclass
class _Block:
    start: int  # index of the BEGIN line
    end: int    # index of the END line


def _find_blocks(lines: list[str], where: str, begin: str = BEGIN, end: str = END,
                 kind: str = "solution") -> list[_Block]:
    blocks, start = [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == begin:
            if start is not None:
                raise AssignmentError(f"{where}: line {i + 1}: {begin} inside another {kind} block "
                                      f"(opened at line {start + 1}); close it with {end} first")
            start = i
        elif stripped == end:
            if start is None:
                raise AssignmentError(f"{where}: line {i + 1}: {end} without a matching {begin}")
            blocks.append(_Block(start, i))
            start = None
    if start is not None:
        raise AssignmentError(f"{where}: line {start + 1}: unterminated {begin} (add {end})")
    return blocks


def _find_hidden_blocks(cell: nbformat.NotebookNode, lines: list[str], where: str) -> list[_Block]:
    blocks = _find_blocks(lines, where, HIDDEN_BEGIN, HIDDEN_END, "hidden-test")
    if blocks and cell.cell_type != "code":
        raise AssignmentError(f"{where}: {HIDDEN_BEGIN} belongs in an exercise's code cell, "
                              f"not in a {cell.cell_type} cell")
    if blocks:
        _exercise_of(lines, where)  # hidden tests test the exercise named by the cell's task line
    return blocks


def _exercise_of(lines: list[str], where: str) -> tuple[str, str]:
    for line in lines:
        match = EXERCISE_LINE.match(line)
        if match:
            return match.group(1), match.group(2)
    raise AssignmentError(f"{where}: a solution block needs a task line before it, e.g. "
                          f"'# EXERCISE 02.1: Build the DFT matrix.'")


def _strip_outputs(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)


def make_student_copy(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student copy of a solution notebook (a new object; ``nb`` is untouched).

    Raises
    ------
    AssignmentError
        On an unterminated or unbalanced marker, or a code block without its task line;
        the message names the notebook and the cell.
    """
    student = copy.deepcopy(nb)
    _strip_outputs(student)
    for index, cell in enumerate(student.cells):
        lines = cell.source.split("\n")
        where = f"{name}, cell {index}"
        hidden = _find_hidden_blocks(cell, lines, where)
        for block in reversed(hidden):  # students never see the hidden tests, markers included
            del lines[block.start:block.end + 1]
        if hidden:
            while lines and not lines[-1].strip():
                lines.pop()
            cell.source = "\n".join(lines)
        blocks = _find_blocks(lines, where)
        if not blocks:
            continue
        if cell.cell_type == "code":
            exercise_id, task = _exercise_of(lines, where)
            stub_text = f"Exercise {exercise_id}: {task}".replace("\\", "\\\\").replace('"', '\\"')
        for block in reversed(blocks):
            indent = re.match(r"\s*", lines[block.start]).group(0)
            if cell.cell_type == "code":
                replacement = [f'{indent}raise NotImplementedError("{stub_text}")']
            else:
                replacement = [f"{indent}{MARKDOWN_STUB}"]
            lines[block.start:block.end + 1] = replacement
        cell.source = "\n".join(lines)
    badge_cell = next((c for c in student.cells if c.cell_type == "markdown"), None)
    if badge_cell is not None:
        badge_cell.source = BADGE_RE.sub(colab_badge(name, student=True), badge_cell.source)
    student.metadata.setdefault("course", {})
    student.metadata["course"] = {"student_copy": True, "source": f"solutions/{name}"}
    return student


def extract_solutions(nb: nbformat.NotebookNode, name: str = "notebook") -> dict[int, list[list[str]]]:
    """The marked blocks of each cell (markers included), keyed by cell index."""
    found: dict[int, list[list[str]]] = {}
    for index, cell in enumerate(nb.cells):
        lines = cell.source.split("\n")
        blocks = _find_blocks(lines, f"{name}, cell {index}")
        if blocks:
            found[index] = [lines[b.start:b.end + 1] for b in blocks]
    return found


def hidden_tests(nb: nbformat.NotebookNode, name: str = "notebook") -> dict[str, list[str]]:
    """The hidden-test blocks of each exercise (markers excluded, dedented), keyed by exercise id.

    Raises
    ------
    AssignmentError
        On unbalanced markers, or a hidden block outside an exercise's code cell.
    """
    import textwrap

    found: dict[str, list[str]] = {}
    for index, cell in enumerate(nb.cells):
        lines = cell.source.split("\n")
        where = f"{name}, cell {index}"
        blocks = _find_hidden_blocks(cell, lines, where)
        if blocks:
            exercise_id, _ = _exercise_of(lines, where)
            found.setdefault(exercise_id, []).extend(
                textwrap.dedent("\n".join(lines[b.start + 1:b.end])) for b in blocks)
    return found


def insert_solutions(student: nbformat.NotebookNode, solutions: dict[int, list[list[str]]],
                     name: str = "notebook") -> nbformat.NotebookNode:
    """Put solution blocks back into a student copy (the inverse of :func:`make_student_copy`)."""
    merged = copy.deepcopy(student)
    badge_cell = next((c for c in merged.cells if c.cell_type == "markdown"), None)
    if badge_cell is not None:
        badge_cell.source = BADGE_RE.sub(colab_badge(name, student=False), badge_cell.source)
    for index, blocks in solutions.items():
        cell = merged.cells[index]
        lines = cell.source.split("\n")
        stubs = [i for i, line in enumerate(lines)
                 if STUB.match(line) or line.strip() == MARKDOWN_STUB]
        if len(stubs) != len(blocks):
            raise AssignmentError(f"cell {index}: {len(stubs)} stubs but {len(blocks)} solution blocks")
        for i, block in zip(reversed(stubs), reversed(blocks)):
            lines[i:i + 1] = block
        cell.source = "\n".join(lines)
    merged.metadata.pop("course", None)
    return merged


# --------------------------------------------------------------------------- files

def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False,
                                     encoding="utf-8") as tmp:
        tmp.write(text)
    Path(tmp.name).replace(path)


def _student_texts(solutions_dir: Path) -> dict[str, str]:
    texts = {}
    for path in sorted(solutions_dir.glob("*.ipynb")):
        texts[path.name] = _dumps(make_student_copy(_read(path), path.name))
    return texts


def build(solutions_dir: Path | None = None, notebooks_dir: Path | None = None) -> list[Path]:
    """Write every student copy; if any solution is malformed, write nothing and raise."""
    default_solutions, default_notebooks = repo_paths()
    solutions_dir = solutions_dir or default_solutions
    notebooks_dir = notebooks_dir or default_notebooks
    texts = _student_texts(solutions_dir)  # all generated before anything is written
    written = []
    for name, text in texts.items():
        target = notebooks_dir / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            _write_atomic(target, text)
        written.append(target)
    for orphan in set(notebooks_dir.glob("*.ipynb")) - set(written):
        orphan.unlink()  # a student copy whose solution was removed or renamed
    return written


def stale_notebooks(solutions_dir: Path | None = None,
                    notebooks_dir: Path | None = None) -> list[str]:
    """Reasons ``notebooks/`` does not match what ``build`` would write (empty when clean)."""
    default_solutions, default_notebooks = repo_paths()
    solutions_dir = solutions_dir or default_solutions
    notebooks_dir = notebooks_dir or default_notebooks
    problems = []
    texts = _student_texts(solutions_dir)
    for name, text in texts.items():
        target = notebooks_dir / name
        if not target.exists():
            problems.append(f"notebooks/{name} is missing")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"notebooks/{name} differs from its solution")
    for orphan in sorted(notebooks_dir.glob("*.ipynb")):
        if orphan.name not in texts:
            problems.append(f"notebooks/{orphan.name} has no solution in solutions/")
    for path in sorted(solutions_dir.glob("*.ipynb")):
        nb = _read(path)
        if any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells):
            problems.append(f"solutions/{path.name} has stored outputs (run: make strip)")
    return problems


def fix_setup(path: Path) -> bool:
    """Make ``path`` follow the conventions that can be fixed mechanically; True if it changed."""
    nb = _read(path)
    before = _dumps(nb)
    setup = setup_cell_source()
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "code" and "setup(" in first.source:
        first.source = setup
    else:
        nb.cells.insert(0, nbformat.v4.new_code_cell(setup))
    nb.cells[0].metadata["tags"] = ["setup"]
    title = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if title is not None:
        badge = colab_badge(path.name, student=False)
        if BADGE_RE.search(title.source):
            title.source = BADGE_RE.sub(badge, title.source)
        else:
            title.source = badge + "\n\n" + title.source
    nb.metadata["kernelspec"] = _kernelspec()
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat_minor = max(nb.get("nbformat_minor", NBFORMAT_MINOR), NBFORMAT_MINOR)
    _strip_outputs(nb)
    after = _dumps(nb)
    if after != before:
        _write_atomic(path, after)
        return True
    return False


def strip(path: Path) -> bool:
    """Strip outputs of one notebook in place; True if it changed."""
    nb = _read(path)
    before = _dumps(nb)
    _strip_outputs(nb)
    after = _dumps(nb)
    if after != before:
        _write_atomic(path, after)
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.assignments",
                                     description="Student copies from the solution notebooks.")
    parser.add_argument("command", choices=["build", "check", "fix-setup", "strip"])
    args = parser.parse_args(argv)
    solutions_dir, notebooks_dir = repo_paths()
    try:
        if args.command == "build":
            written = build(solutions_dir, notebooks_dir)
            print(f"wrote {len(written)} student notebook(s) into {notebooks_dir}")
        elif args.command == "check":
            problems = stale_notebooks(solutions_dir, notebooks_dir)
            for problem in problems:
                print(f"stale: {problem}")
            if problems:
                print("Run `make notebooks` (python -m course_lib.assignments build) and commit.")
                return 1
            print("notebooks/ is up to date with solutions/")
        else:
            action = fix_setup if args.command == "fix-setup" else strip
            changed = [p.name for p in sorted(solutions_dir.glob("*.ipynb")) if action(p)]
            print(f"{args.command}: changed {len(changed)} notebook(s) {' '.join(changed)}")
    except AssignmentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
