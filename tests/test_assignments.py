"""The student-copy generator: no solution code leaks, the round trip is exact, bad markers fail."""

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib import assignments
from course_lib.assignments import AssignmentError

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"


def _notebook(*cells):
    nb = new_notebook(cells=[new_code_cell(assignments.setup_cell_source()),
                             new_markdown_cell(assignments.colab_badge("x.ipynb", student=False) + "\n# T"),
                             *cells])
    return nb


EXERCISE = new_code_cell(
    "# EXERCISE 02.1: Build the DFT matrix.\n"
    "def dft_matrix(n):\n"
    "    ### BEGIN SOLUTION\n"
    "    secret = 42\n"
    "    return secret\n"
    "    ### END SOLUTION\n"
    "\n"
    "check.exercise(\"02.1\", dft_matrix)")


def test_student_copy_has_a_stub_and_no_solution_code():
    student = assignments.make_student_copy(_notebook(EXERCISE), "x.ipynb")
    source = student.cells[2].source
    assert "secret" not in source and "BEGIN SOLUTION" not in source
    assert '    raise NotImplementedError("Exercise 02.1: Build the DFT matrix.")' in source
    assert "# EXERCISE 02.1: Build the DFT matrix." in source  # the task text is kept
    assert 'check.exercise("02.1", dft_matrix)' in source
    assert "/notebooks/x.ipynb" in student.cells[1].source


def test_markdown_answers_are_blanked():
    cell = new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause of leakage.\n### END SOLUTION")
    student = assignments.make_student_copy(_notebook(cell), "x.ipynb")
    assert "leakage" not in student.cells[2].source
    assert assignments.MARKDOWN_STUB in student.cells[2].source


def test_round_trip_gives_back_the_solution():
    solution = _notebook(EXERCISE, new_markdown_cell("### BEGIN SOLUTION\nanswer\n### END SOLUTION"))
    student = assignments.make_student_copy(solution, "x.ipynb")
    blocks = assignments.extract_solutions(solution)
    merged = assignments.insert_solutions(student, blocks, "x.ipynb")
    assert nbformat.writes(merged) == nbformat.writes(solution)


def test_round_trip_on_every_real_solution_notebook():
    paths = sorted(SOLUTIONS.glob("*.ipynb"))
    assert paths, "no solution notebooks found"
    for path in paths:
        solution = nbformat.read(path, as_version=4)
        student = assignments.make_student_copy(solution, path.name)
        text = nbformat.writes(student)
        assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text, path.name
        merged = assignments.insert_solutions(student, assignments.extract_solutions(solution), path.name)
        assert nbformat.writes(merged) == nbformat.writes(solution), path.name


@pytest.mark.parametrize("source, message", [
    ("# EXERCISE 01.1: x\n### BEGIN SOLUTION\nx = 1\n", "unterminated"),
    ("# EXERCISE 01.1: x\nx = 1\n### END SOLUTION", "without a matching"),
    ("# EXERCISE 01.1: x\n### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "task line"),
])
def test_bad_markers_name_notebook_and_cell(source, message):
    with pytest.raises(AssignmentError, match=message) as err:
        assignments.make_student_copy(_notebook(new_code_cell(source)), "bad.ipynb")
    assert "bad.ipynb, cell 2" in str(err.value)


def test_build_writes_nothing_when_one_notebook_is_malformed(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(_notebook(EXERCISE), solutions / "01_good.ipynb")
    nbformat.write(_notebook(new_code_cell("# EXERCISE 02.1: x\n### BEGIN SOLUTION\n")), solutions / "02_bad.ipynb")
    with pytest.raises(AssignmentError, match="02_bad.ipynb, cell 2"):
        assignments.build(solutions, notebooks)
    assert not notebooks.exists() or not list(notebooks.iterdir())


def test_check_detects_stale_missing_orphan_and_outputs(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nb = _notebook(EXERCISE)
    nbformat.write(nb, solutions / "01_a.ipynb")
    assert any("missing" in p for p in assignments.stale_notebooks(solutions, notebooks))
    assignments.build(solutions, notebooks)
    assert assignments.stale_notebooks(solutions, notebooks) == []
    nb.cells[2].source = nb.cells[2].source.replace("Build", "Make")
    nbformat.write(nb, solutions / "01_a.ipynb")
    assert any("differs" in p for p in assignments.stale_notebooks(solutions, notebooks))
    assignments.build(solutions, notebooks)
    (notebooks / "99_orphan.ipynb").write_text("{}")
    assert any("no solution" in p for p in assignments.stale_notebooks(solutions, notebooks))
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nbformat.write(nb, solutions / "01_a.ipynb")
    assert any("stored outputs" in p for p in assignments.stale_notebooks(solutions, notebooks))


def test_committed_student_copies_are_up_to_date():
    assert assignments.stale_notebooks() == []


def test_cli_check_exit_code(tmp_path, monkeypatch):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    nbformat.write(_notebook(EXERCISE), solutions / "01_a.ipynb")
    monkeypatch.setattr(assignments, "repo_paths", lambda: (solutions, notebooks))
    assert assignments.main(["check"]) == 1
    assert assignments.main(["build"]) == 0
    assert assignments.main(["check"]) == 0
    nbformat.write(_notebook(new_code_cell("# EXERCISE 02.1: x\n### BEGIN SOLUTION\n")), solutions / "02_b.ipynb")
    assert assignments.main(["build"]) == 2
