"""A demonstration class for the grader: generated submissions of notebook 01, each a known case.

``python -m course_lib.grade.demo FOLDER`` writes ``FOLDER/solutions/`` (notebook 01's solution
with one hidden test added to exercise 01.2) and ``FOLDER/submissions/``, made from the student
copy with the solution blocks filled in programmatically, then changed:

========  ======================================================================================
ada       everything right (a folder per student: ``ada/01_sound_as_signal.ipynb``)
ben       a classic wrong answer in 01.2: no clipping at full scale
cleo      a syntax error in the cell of 01.3
dev       an infinite loop after 01.2: the notebook's time limit interrupts it
eve       allocates 32 GiB: ``MemoryError`` under the kernel's memory limit
fay       right answers, then tries to delete the other submissions and a course file (absolute
          paths, ``os.system("rm -rf ...")``) and its home folder
gus       wrong answers, with ``check`` redefined to always print ✔ and the checks module patched
ivy       01.2 right on every input the check tries, but it overwrites its input array: only the
          hidden test catches it
========  ======================================================================================

``python -m course_lib.grade FOLDER/submissions --solutions FOLDER/solutions --out grades.csv``
then grades them; docs/INSTRUCTORS.md shows the report, and tests/test_grade.py asserts it.
``fast=True`` keeps only the cells the exercises need (tests: a few seconds per kernel, not tens).

Notebook: 01_sound_as_signal
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

from course_lib import assignments

__all__ = ["NOTEBOOK", "write_demo_class"]

NOTEBOOK = "01_sound_as_signal.ipynb"
HIDDEN_TEST = (
    "### BEGIN HIDDEN TESTS\n"
    "signal = np.linspace(-1.2, 1.2, 9)\n"
    "untouched = signal.copy()\n"
    "quantize(signal, 3)\n"
    "assert np.array_equal(signal, untouched), \"quantize changed its input array in place: \" \\\n"
    "    \"work on a copy (the caller's signal must stay as it was)\"\n"
    "### END HIDDEN TESTS"
)


def _replace(nb: nbformat.NotebookNode, exercise_id: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the code cell of ``exercise_id`` (which must contain it)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and f"# EXERCISE {exercise_id}:" in cell.source:
            assert old in cell.source, (exercise_id, old)
            cell.source = cell.source.replace(old, new)
            return
    raise KeyError(exercise_id)


def _insert_after(nb: nbformat.NotebookNode, exercise_id: str, source: str) -> None:
    index = next(i for i, c in enumerate(nb.cells) if f"# EXERCISE {exercise_id}:" in c.source)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))


def write_demo_class(folder: Path, *, fast: bool = False, solutions_dir: Path | None = None) -> Path:
    """Write ``folder/solutions/`` and ``folder/submissions/`` (see the module docstring).

    Parameters
    ----------
    folder : Path
        Created if missing; its ``solutions`` and ``submissions`` are overwritten.
    fast : bool
        Keep only the setup cell, the imports and the exercise cells (and markdown).
    solutions_dir : Path, optional
        Where notebook 01's solution comes from (default: the course's ``solutions/``).

    Returns
    -------
    Path
        ``folder/submissions``.
    """
    source_dir = solutions_dir or Path(assignments.__file__).resolve().parent.parent / "solutions"
    solution = nbformat.read(source_dir / NOTEBOOK, as_version=4)
    if fast:
        solution.cells = [c for i, c in enumerate(solution.cells)
                          if i == 0 or c.cell_type == "markdown" or "# EXERCISE" in c.source
                          or c.source.lstrip().startswith("import ")]
    for cell in solution.cells:
        if "# EXERCISE 01.2:" in cell.source:
            cell.source += "\n" + HIDDEN_TEST
    solutions, submissions = folder / "solutions", folder / "submissions"
    solutions.mkdir(parents=True, exist_ok=True)
    nbformat.write(solution, solutions / NOTEBOOK)

    student = assignments.make_student_copy(solution, NOTEBOOK)
    answers = assignments.extract_solutions(solution, NOTEBOOK)

    def solved() -> nbformat.NotebookNode:
        return assignments.insert_solutions(student, answers, NOTEBOOK)

    course_file = source_dir / NOTEBOOK
    cases: dict[str, nbformat.NotebookNode] = {}
    cases["ada"] = solved()
    ben = cases["ben"] = solved()
    _replace(ben, "01.2", "return np.clip((np.floor(x / delta) + 0.5) * delta, -top, top)",
             "return (np.floor(x / delta) + 0.5) * delta")
    cleo = cases["cleo"] = solved()
    _replace(cleo, "01.3", "gain = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))",
             "gain = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10))")
    dev = cases["dev"] = solved()
    _insert_after(dev, "01.2", "# waiting for something that never happens\nwhile True:\n    pass")
    eve = cases["eve"] = solved()
    _insert_after(eve, "01.1", "everything = np.ones(2**32)  # 32 GiB of float64\nprint(everything.sum())")
    fay = cases["fay"] = solved()
    others = submissions.resolve()
    _insert_after(fay, "01.3", (
        "import os, shutil\n"
        "from pathlib import Path\n"
        f"others = Path({str(others)!r})\n"
        "attempts = [\n"
        "    ('remove the other submissions', lambda: shutil.rmtree(others / 'ben__01_sound_as_signal.ipynb')),\n"
        "    ('remove another student folder', lambda: shutil.rmtree(others / 'ada')),\n"
        "    ('rm -rf through the shell', lambda: os.system(f'rm -rf {others}')),\n"
        "    ('overwrite a submission', lambda: open(others / 'cleo__01_sound_as_signal.ipynb', 'w').write('{}')),\n"
        "    ('clear its own home', lambda: shutil.rmtree(Path.home())),\n"
        "]\n"
        "if (others / 'ada').exists():  # the course's file only while the guard is seen to hold\n"
        f"    attempts.append(('remove a course file', lambda: os.remove({str(course_file)!r})))\n"
        "for what, attempt in attempts:\n"
        "    try:\n"
        "        attempt()\n"
        "        print(what, 'done')\n"
        "    except Exception as err:\n"
        "        print(what, 'failed:', type(err).__name__, err)"))
    gus = cases["gus"] = copy.deepcopy(student)
    gus.cells.insert(1, nbformat.v4.new_code_cell(
        "import types\n"
        "import course_lib.checks\n"
        "def always_right(exercise_id, candidate, **kwargs):\n"
        "    print(f'✔ Exercise {exercise_id}: all cases match')\n"
        "course_lib.checks.exercise = always_right\n"
        "check = types.SimpleNamespace(exercise=always_right)"))
    for cell in gus.cells:  # 01.1 answered wrong; 01.2 and 01.3 left as stubs
        if "# EXERCISE 01.1:" in cell.source:
            cell.source = "\n".join("    return 0.0" if "raise NotImplementedError" in line else line
                                    for line in cell.source.split("\n"))
    ivy = cases["ivy"] = solved()
    _replace(ivy, "01.2", "return np.clip((np.floor(x / delta) + 0.5) * delta, -top, top)",
             "np.clip(x, -1.0, 1.0 - 1e-12, out=x)  # modifies the caller's array\n"
             "    return np.clip((np.floor(x / delta) + 0.5) * delta, -top, top)")

    submissions.mkdir(parents=True, exist_ok=True)
    for name, nb in cases.items():
        path = (submissions / name / NOTEBOOK) if name == "ada" else submissions / f"{name}__{NOTEBOOK}"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    return submissions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grade.demo",
                                     description="Write a demonstration class of generated submissions.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--fast", action="store_true", help="only the cells the exercises need")
    args = parser.parse_args(argv)
    submissions = write_demo_class(args.folder, fast=args.fast)
    print(f"wrote {len(list(submissions.rglob('*.ipynb')))} submissions into {submissions} and the "
          f"solution with a hidden test into {args.folder / 'solutions'}; grade them with\n"
          f"python -m course_lib.grade {submissions} --solutions {args.folder / 'solutions'} "
          f"--out {args.folder / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
