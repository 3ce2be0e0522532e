"""The autograder: who and what is graded, the write guard and memory limit, and a whole class.

The class is :mod:`course_lib.grade.demo`'s, generated from notebook 01's student copy with the
solutions filled in programmatically and then broken one way per student (``fast=True``: only the
cells the exercises need, so each kernel takes seconds). Each student's row is checked against
what was done to that student's notebook, and the course's files and the other submissions are
hashed before and after to prove that the submission which tries to delete them did not.
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from course_lib import assignments, grade
from course_lib.grade import demo

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = demo.NOTEBOOK


def _write(path: Path, nb=None, **metadata) -> Path:
    nb = nb or new_notebook(cells=[new_code_cell("x = 1")])
    nb.metadata.update(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------- without a kernel

def test_students_and_notebooks_from_paths_and_metadata(tmp_path):
    _write(tmp_path / "ada" / NOTEBOOK)
    _write(tmp_path / f"ben__{NOTEBOOK}")
    _write(tmp_path / "export" / "cleo" / "renamed.ipynb")  # too deep: nobody
    _write(tmp_path / "upload_7.ipynb", course={"student": "dev", "source": f"solutions/{NOTEBOOK}"})
    _write(tmp_path / "anonymous.ipynb")
    _write(tmp_path / "eve__99_nothing.ipynb")
    _write(tmp_path / "ada" / ".ipynb_checkpoints" / f"{NOTEBOOK[:-6]}-checkpoint.ipynb")
    found = {s.path.relative_to(tmp_path).as_posix(): s for s in grade.find_submissions(tmp_path)}
    assert set(found) == {f"ada/{NOTEBOOK}", f"ben__{NOTEBOOK}", "export/cleo/renamed.ipynb",
                          "upload_7.ipynb", "anonymous.ipynb", "eve__99_nothing.ipynb"}
    assert (found[f"ada/{NOTEBOOK}"].student, found[f"ada/{NOTEBOOK}"].notebook) == ("ada", NOTEBOOK)
    assert (found[f"ben__{NOTEBOOK}"].student, found[f"ben__{NOTEBOOK}"].notebook) == ("ben", NOTEBOOK)
    assert (found["upload_7.ipynb"].student, found["upload_7.ipynb"].notebook) == ("dev", NOTEBOOK)
    for unknown in ("anonymous.ipynb", "export/cleo/renamed.ipynb"):
        assert "no student" in found[unknown].problem
    assert "no solution notebook" in found["eve__99_nothing.ipynb"].problem


def test_exercise_specs_name_the_checked_function_and_carry_hidden_tests(tmp_path):
    specs = grade.exercise_specs(ROOT / "solutions" / NOTEBOOK)
    assert [(s.exercise_id, s.function_name) for s in specs] == [
        ("01.1", "aliased_frequency"), ("01.2", "quantize"), ("01.3", "add_noise")]
    assert all(s.title and not s.hidden for s in specs)
    demo.write_demo_class(tmp_path, fast=True)
    hidden = {s.exercise_id: s.hidden for s in grade.exercise_specs(tmp_path / "solutions" / NOTEBOOK)}
    assert hidden["01.1"] == [] and "changed its input array in place" in hidden["01.2"][0]
    student = nbformat.read(tmp_path / "submissions" / "ada" / NOTEBOOK, as_version=4)
    assert "HIDDEN" not in nbformat.writes(student) and "in place" not in nbformat.writes(student)


def test_removed_check_calls_and_a_rebound_check_are_seen_in_the_source():
    nb = assignments.make_student_copy(nbformat.read(ROOT / "solutions" / NOTEBOOK, as_version=4), NOTEBOOK)
    specs = grade.exercise_specs(ROOT / "solutions" / NOTEBOOK)
    assert grade._static_tampering(nb, specs) == []
    for cell in nb.cells:
        cell.source = cell.source.replace('check.exercise("01.3", add_noise)', "pass")
    nb.cells = [c for c in nb.cells if "# EXERCISE 01.2:" not in c.source]
    nb.cells.append(new_code_cell("from types import SimpleNamespace as check"))
    found = grade._static_tampering(nb, specs)
    assert "the check call of exercise 01.3 was removed" in found
    assert "the cell of exercise 01.2 was removed" in found
    assert any("rebinds `check`" in f for f in found)


def _run_guarded(tmp_path: Path, code: str, memory_bytes: int = 0) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python behind the write guard (writable: ``tmp_path/work``)."""
    script = textwrap.dedent(f"""
        import os, shutil, sys
        from course_lib.grade import kernel
        if {memory_bytes}:
            kernel.limit_memory({memory_bytes})
        kernel.install_write_guard({str(tmp_path / 'work')!r})
        os.chdir({str(tmp_path / 'work')!r})
    """) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_write_guard_refuses_writes_deletions_and_programs_outside_the_folder(tmp_path):
    (tmp_path / "work").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    run = _run_guarded(tmp_path, f"""
        outside = {str(outside)!r}
        attempts = {{
            "open for writing": lambda: open(outside + "/keep.txt", "w"),
            "append": lambda: open(outside + "/keep.txt", "a"),
            "os.open": lambda: os.open(outside + "/new.txt", os.O_CREAT | os.O_WRONLY),
            "remove": lambda: os.remove(outside + "/keep.txt"),
            "rmtree": lambda: shutil.rmtree(outside),
            "rename": lambda: os.rename(outside + "/keep.txt", "stolen.txt"),
            "relative path": lambda: os.remove("../outside/keep.txt"),
            "symlink out": lambda: (os.symlink(outside + "/keep.txt", "link"), open("link", "w")),
            "shell": lambda: os.system("rm -rf " + outside),
            "subprocess": lambda: __import__("subprocess").run(["rm", "-rf", outside]),
        }}
        for name, attempt in attempts.items():
            try:
                attempt()
                print(name, "NOT REFUSED")
            except PermissionError as err:
                assert "refused by the course grader" in str(err), err
        open("mine.txt", "w").write("allowed")
        os.makedirs("sub/dir")
        os.replace("mine.txt", "sub/dir/mine.txt")
        shutil.rmtree("sub")
        print("inside: fine", len(sys._course_grader_blocked))
    """)
    assert run.returncode == 0, run.stderr
    assert "NOT REFUSED" not in run.stdout and "inside: fine 10" in run.stdout, run.stdout
    assert (outside / "keep.txt").read_text() == "precious" and not (outside / "new.txt").exists()


def test_memory_limit_turns_a_huge_allocation_into_a_memory_error(tmp_path):
    (tmp_path / "work").mkdir()
    run = _run_guarded(tmp_path, """
        import numpy as np
        try:
            np.ones(2**31)  # 16 GiB
        except MemoryError:
            print("MemoryError")
        print(np.ones(2**20).sum())
    """, memory_bytes=4 * 2**30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["MemoryError", "1048576.0"]


# --------------------------------------------------------------------------- a whole class

def _digests(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _rows(report, student):
    result = next(r for r in report.results if r.submission.student == student)
    return result, {row["exercise"]: row for row in result.exercises}


def test_a_generated_class_is_graded_as_each_submission_deserves(tmp_path):
    """One test, not several sharing a fixture: under pytest-xdist (``make test``) every test is
    its own unit of work, and a module fixture would grade the class once per worker."""
    submissions = demo.write_demo_class(tmp_path, fast=True)
    protected = [ROOT / "solutions" / NOTEBOOK, ROOT / "course_lib" / "checks" / "nb01.py",
                 ROOT / "course_lib" / "checks" / "__init__.py", *sorted(submissions.rglob("*.ipynb"))]
    before = _digests(protected)
    report = grade.grade_folder(submissions, solutions_dir=tmp_path / "solutions", jobs=2,
                                progress=False, timeout_s=60, check_timeout_s=30, memory_gib=6)
    paths = grade.write_reports(report, tmp_path / "grades.csv")

    # the course's files and the other submissions are intact (fay tried to delete them)
    assert _digests(protected) == before

    # the reference solution passes; every student has one row per exercise
    assert [r.row()["passed"] for r in report.references] == [3]
    assert sorted(r.submission.student for r in report.results) == \
        ["ada", "ben", "cleo", "dev", "eve", "fay", "gus", "ivy"]
    with paths[0].open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 * 3 and set(rows[0]) == set(grade.EXERCISE_FIELDS)
    assert all(float(r["runtime_s"]) >= 0 for r in rows if r["status"] == "passed")
    markdown = paths[2].read_text()
    assert "## Class summary" in markdown and "every check passes" in markdown

    ada, rows = _rows(report, "ada")
    assert ada.run == "completed" and {r["status"] for r in rows.values()} == {"passed"}
    assert not ada.tampering and not ada.blocked and not ada.cell_errors

    ben, rows = _rows(report, "ben")  # a wrong answer: the check's hint names the mistake
    assert rows["01.2"]["status"] == "failed" and "clip" in rows["01.2"]["hint"]
    assert rows["01.1"]["status"] == rows["01.3"]["status"] == "passed"

    cleo, rows = _rows(report, "cleo")  # a syntax error: that exercise is missing, and says why
    assert rows["01.3"]["status"] == "missing" and "SyntaxError" in rows["01.3"]["hint"]
    assert rows["01.2"]["status"] == "passed" and "SyntaxError" in cleo.cell_errors[0]

    dev, rows = _rows(report, "dev")  # an infinite loop: interrupted, what came before is graded
    assert dev.run.startswith("timeout") and "interrupted" in dev.run
    assert rows["01.1"]["status"] == rows["01.2"]["status"] == "passed"
    assert rows["01.3"]["status"] == "missing" and "stopped before its cell" in rows["01.3"]["hint"]

    eve, rows = _rows(report, "eve")  # 32 GiB asked for: a MemoryError under the kernel's limit
    assert "MemoryError" in eve.run and any("MemoryError" in e for e in eve.cell_errors)
    assert {r["status"] for r in rows.values()} == {"passed"}

    fay, rows = _rows(report, "fay")  # tried to delete files outside its folder: refused
    assert {r["status"] for r in rows.values()} == {"passed"}
    refused = " ".join(fay.blocked)
    assert "shutil.rmtree" in refused and "os.system" in refused and "solutions" in refused

    gus, rows = _rows(report, "gus")  # `check` redefined, the checks module patched
    assert rows["01.1"]["status"] == "failed"  # a wrong answer, whatever its own `check` printed
    assert rows["01.2"]["status"] == rows["01.3"]["status"] == "not attempted"
    tampering = " ".join(gus.tampering)
    assert "`check` was redefined" in tampering and "rebinds `check`" in tampering
    assert "course_lib.checks.exercise was replaced" in tampering

    ivy, rows = _rows(report, "ivy")  # passes the check; only the hidden test catches it
    assert rows["01.2"]["status"] == "failed" and rows["01.2"]["hidden_tests"] == "0/1"
    assert "changed its input array in place" in rows["01.2"]["hint"]


def test_command_line_refuses_a_missing_or_empty_folder(tmp_path, capsys):
    assert grade.main([str(tmp_path / "nowhere")]) == 2
    assert "is not a folder of submissions" in capsys.readouterr().err
    assert grade.main([str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 2
    assert "no .ipynb files" in capsys.readouterr().err
