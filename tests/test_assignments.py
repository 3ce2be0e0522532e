"""The student-copy generator: no solution code leaks, the round trip is exact, bad markers fail."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib import _meta, assignments, runtime
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


def test_hidden_tests_are_dropped_from_student_copies_and_given_to_the_grader():
    cell = new_code_cell(EXERCISE.source + "\n### BEGIN HIDDEN TESTS\nassert dft_matrix(3) == 42, 'secret check'\n"
                         "### END HIDDEN TESTS\n")
    solution = _notebook(cell)
    student = assignments.make_student_copy(solution, "x.ipynb")
    assert "secret check" not in nbformat.writes(student) and "HIDDEN" not in nbformat.writes(student)
    assert student.cells[2].source.endswith('check.exercise("02.1", dft_matrix)')
    assert assignments.hidden_tests(solution) == {"02.1": ["assert dft_matrix(3) == 42, 'secret check'"]}
    with pytest.raises(AssignmentError, match="unterminated ### BEGIN HIDDEN TESTS"):
        assignments.make_student_copy(_notebook(new_code_cell("# EXERCISE 01.1: x\n### BEGIN HIDDEN TESTS")))
    with pytest.raises(AssignmentError, match="task line"):
        assignments.hidden_tests(_notebook(new_code_cell("### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS")))


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


# --------------------------------------------------------------------------- the Colab setup cell

def _run_setup_cell(monkeypatch, *, installed: bool, on_colab: bool = True) -> dict:
    """Execute the generated setup cell as Colab would, with ``course_lib`` found or not."""
    import importlib.util
    import types

    monkeypatch.setattr(runtime, "_RUNTIME", runtime._RUNTIME)  # the cell's setup() is undone after
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "course_lib" and not installed
                        else real_find_spec(name, *a))
    namespace: dict = {}
    exec(compile(assignments.setup_cell_source(), "setup-cell", "exec"), namespace)
    return namespace


def _fake_python(tmp_path: Path, exit_code: int, stderr: str) -> tuple[Path, Path]:
    """An executable standing in for ``sys.executable``: records its argv, prints, exits."""
    argv_file = tmp_path / "argv.json"
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\n"
                      "import json, sys\n"
                      f"json.dump(sys.argv[1:], open({str(argv_file)!r}, 'w'))\n"
                      f"sys.stderr.write({stderr!r})\n"
                      f"sys.exit({exit_code})\n")
    script.chmod(0o755)
    return script, argv_file


def test_setup_cell_fails_with_what_it_tried_and_what_to_do(monkeypatch, capsys):
    """The real pip, with git refused its https transport (as with no network): a short SystemExit."""
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")  # git clone of the https URL fails at once
    with pytest.raises(SystemExit) as stop:
        _run_setup_cell(monkeypatch, installed=False)
    message = str(stop.value)
    assert f"course-lib @ git+{_meta.REPOSITORY_URL}@{_meta.RELEASE}" in message
    for advice in ("internet", "course_lib/_meta.py", "Google Drive", "rerun this cell"):
        assert advice in message
    assert "transport 'https' not allowed" in capsys.readouterr().out  # pip's own words are shown


def test_setup_cell_stops_before_importing_the_library(monkeypatch, tmp_path, capsys):
    fake, argv_file = _fake_python(tmp_path, 1, "ERROR: Could not resolve host: github.com\n")
    monkeypatch.setattr("sys.executable", str(fake))
    with pytest.raises(SystemExit) as stop:
        _run_setup_cell(monkeypatch, installed=False)
    assert json.loads(argv_file.read_text()) == [
        "-m", "pip", "install", "-q", f"course-lib @ git+{_meta.REPOSITORY_URL}@{_meta.RELEASE}"]
    assert "Could not resolve host: github.com" in capsys.readouterr().out
    assert "CalledProcessError" not in str(stop.value) and len(str(stop.value).splitlines()) == 4


def test_setup_cell_installs_then_sets_up(monkeypatch, tmp_path):
    fake, argv_file = _fake_python(tmp_path, 0, "")
    monkeypatch.setattr("sys.executable", str(fake))
    namespace = _run_setup_cell(monkeypatch, installed=False)
    assert argv_file.exists()
    assert namespace["rt"].seed == 0 and hasattr(namespace["check"], "exercise")


@pytest.mark.parametrize("installed, on_colab", [(True, True), (False, False)])
def test_setup_cell_runs_pip_only_on_colab_without_the_library(monkeypatch, tmp_path, installed, on_colab):
    fake, argv_file = _fake_python(tmp_path, 1, "must not run")
    monkeypatch.setattr("sys.executable", str(fake))
    namespace = _run_setup_cell(monkeypatch, installed=installed, on_colab=on_colab)
    assert not argv_file.exists()
    assert "rt" in namespace
