"""Grade a folder of submitted student notebooks with the course's own checks.

::

    python -m course_lib.grade SUBMISSIONS_DIR --out grades.csv        (or: make grade DIR=...)

Each submission runs in the ``ci`` profile in its own kernel and its own throwaway folder (a copy
of the notebook; working directory, ``HOME``, ``TMPDIR`` and checkpoints inside it; a minimal
environment), with a time limit for the student's cells, another for each check, a memory limit
and a write guard (:mod:`course_lib.grade.kernel`). The submission's stored outputs are ignored:
after its cells ran, the grader's own cells import the course's checks afresh from the course's
folder and call each exercise's check, and its hidden tests (``### BEGIN HIDDEN TESTS`` blocks of
the solution notebook, which students never see), on the student's function, found by the name the
solution notebook passes to ``check.exercise``. A submission that crashes, runs past its time,
runs out of memory or tampers with the checks is recorded as such, and the batch goes on.

Who and which notebook, from the path (docs/INSTRUCTORS.md):

- ``SUBMISSIONS_DIR/<student>/<NN_name>.ipynb`` (a folder per student), or
- ``SUBMISSIONS_DIR/<student>__<NN_name>.ipynb`` (two underscores), or
- any other ``.ipynb`` whose metadata holds ``{"course": {"student": "<student>"}}``.

The notebook is the solution in ``solutions/`` with the same ``NN_`` prefix (else the one named in
the copy's ``course.source`` metadata).

Writes ``grades.csv`` (one row per student x exercise: status, hint, runtime), next to it
``grades_students.csv`` (one row per submission: score, how the run ended, errors, tampering) and
``grades_report.md`` (per-student summary, and the class summary: which exercises most students
failed, with which hint), and prints the report.

Notebook: 00_welcome
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import collections
import csv
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib import assignments

__all__ = [
    "ExerciseSpec",
    "GradeReport",
    "Submission",
    "SubmissionResult",
    "exercise_specs",
    "find_submissions",
    "grade_folder",
    "grade_submission",
    "main",
    "render_report",
    "write_reports",
]

COURSE_ROOT = Path(__file__).resolve().parent.parent.parent
KERNEL_NAME = "course-grader"
NOTEBOOK_PREFIX = re.compile(r"^(\d{2})_")
CHECK_CALL = re.compile(r"""check\.exercise\(\s*["'](\d{2}\.\d+)["']\s*,\s*([A-Za-z_]\w*)""")
CHECK_REBOUND = re.compile(r"^\s*(check\s*(=|:=)|def\s+check\b|class\s+check\b|import\s.*\bas\s+check\b|"
                           r"from\s.*\bimport\s.*\bcheck\b)", re.MULTILINE)
# the kernel gets these of the grader's environment variables and nothing else (no tokens, no keys)
PASSED_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH")
# programs that libraries start to look at the machine (platform.processor, ctypes.util.find_library,
# matplotlib's font search); refused like any program, and not worth a line in the report
LIBRARY_PROBES = {"uname", "ldconfig", "gcc", "cc", "ld", "fc-list", "nvidia-smi", "lscpu"}
EXERCISE_FIELDS = ["student", "notebook", "exercise", "title", "status", "hint", "runtime_s",
                   "hidden_tests"]
SUBMISSION_FIELDS = ["student", "notebook", "file", "passed", "exercises", "run", "cell_errors",
                     "first_error", "tampering", "blocked_writes", "seconds"]


@dataclass
class ExerciseSpec:
    """One auto-checked exercise of a notebook, as the solution notebook defines it."""

    exercise_id: str
    title: str
    function_name: str
    hidden: list[str] = field(default_factory=list)


@dataclass
class Submission:
    """One submitted notebook: who, which notebook (a ``solutions/`` file name), or why unknown."""

    path: Path
    student: str
    notebook: str | None
    problem: str | None = None


@dataclass
class SubmissionResult:
    """What grading one submission found; ``exercises`` has one dict per exercise (EXERCISE_FIELDS)."""

    submission: Submission
    run: str
    exercises: list[dict] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)
    tampering: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self) -> dict:
        """The submission's row of ``grades_students.csv``."""
        return {
            "student": self.submission.student, "notebook": self.submission.notebook or "",
            "file": str(self.submission.path),
            "passed": sum(e["status"] == "passed" for e in self.exercises),
            "exercises": len(self.exercises), "run": self.run,
            "cell_errors": len(self.cell_errors),
            "first_error": self.cell_errors[0] if self.cell_errors else "",
            "tampering": "; ".join(self.tampering), "blocked_writes": "; ".join(self.blocked),
            "seconds": round(self.seconds, 1),
        }


@dataclass
class GradeReport:
    """Every submission's result, in the order graded, and each reference solution's run."""

    results: list[SubmissionResult]
    references: list[SubmissionResult] = field(default_factory=list)

    def exercise_rows(self) -> list[dict]:
        """One row per student x exercise (the rows of ``grades.csv``)."""
        return [row for result in self.results for row in result.exercises]


# --------------------------------------------------------------------------- what to grade

def exercise_specs(solution: Path) -> list[ExerciseSpec]:
    """The exercises of a solution notebook: id, title, checked function's name, hidden tests.

    Raises
    ------
    ValueError
        When an exercise cell has no ``check.exercise("NN.k", function)`` call (the grader would
        not know which function to check).
    """
    import importlib

    from course_lib import checks

    nb = nbformat.read(solution, as_version=4)
    hidden = assignments.hidden_tests(nb, solution.name)
    try:  # the titles come from this notebook's checks module alone
        importlib.import_module(f"course_lib.checks.nb{solution.name[:2]}")
    except ModuleNotFoundError:
        pass
    titles = {exercise_id: title for exercise_id, (title, _) in checks._REGISTRY.items()}
    specs = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        task = next((m for m in map(assignments.EXERCISE_LINE.match, cell.source.split("\n")) if m), None)
        if task is None:
            continue
        exercise_id = task.group(1)
        calls = {eid: name for eid, name in CHECK_CALL.findall(cell.source)}
        if exercise_id not in calls:
            raise ValueError(f"{solution.name}, cell {index}: exercise {exercise_id} has no "
                             f"check.exercise({exercise_id!r}, function) call in its cell")
        specs.append(ExerciseSpec(exercise_id, titles.get(exercise_id, ""), calls[exercise_id],
                                  hidden.get(exercise_id, [])))
    return specs


def _notebook_for(name: str, path: Path, solutions: dict[str, Path]) -> str | None:
    match = NOTEBOOK_PREFIX.match(name)
    if match and match.group(1) in solutions:
        return solutions[match.group(1)].name
    try:  # a renamed file: the student copy says which solution it came from
        source = nbformat.read(path, as_version=4).metadata.get("course", {}).get("source", "")
    except Exception:
        return None
    match = NOTEBOOK_PREFIX.match(Path(str(source)).name)
    return solutions[match.group(1)].name if match and match.group(1) in solutions else None


def find_submissions(folder: Path, solutions_dir: Path | None = None) -> list[Submission]:
    """Every ``.ipynb`` under ``folder``, with its student and notebook (or the problem finding them)."""
    solutions_dir = solutions_dir or COURSE_ROOT / "solutions"
    solutions = {p.name[:2]: p for p in sorted(solutions_dir.glob("*.ipynb")) if NOTEBOOK_PREFIX.match(p.name)}
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .ipynb_checkpoints and other hidden folders
        student, name = None, path.name
        if len(relative.parts) == 2:
            student = relative.parts[0]
        elif len(relative.parts) == 1 and "__" in path.stem:
            student, name = path.stem.split("__", 1)[0], path.name.split("__", 1)[1]
        if student is None:
            try:
                student = nbformat.read(path, as_version=4).metadata.get("course", {}).get("student")
            except Exception:
                student = None
        if not student:
            found.append(Submission(path, str(relative), None,
                                    "no student: use <student>/<notebook>.ipynb, "
                                    "<student>__<notebook>.ipynb or metadata course.student"))
            continue
        notebook = _notebook_for(name, path, solutions)
        problem = None if notebook else (f"{name}: no solution notebook in {solutions_dir} has its "
                                         "NN_ prefix (name the file like the student copy, e.g. "
                                         "01_sound_as_signal.ipynb)")
        found.append(Submission(path, str(student), notebook, problem))
    return found


# --------------------------------------------------------------------------- grading one submission

def _static_tampering(nb: nbformat.NotebookNode, specs: list[ExerciseSpec]) -> list[str]:
    """What the submission's source shows: check calls removed, ``check`` rebound, cells missing."""
    found = []
    code_cells = [c.source for c in nb.cells if c.cell_type == "code"]
    everything = "\n".join(code_cells)
    called = {eid for eid, _ in CHECK_CALL.findall(everything)}
    for spec in specs:
        if not re.search(rf"#\s*EXERCISE\s+{re.escape(spec.exercise_id)}\s*:", everything):
            found.append(f"the cell of exercise {spec.exercise_id} was removed")
        elif spec.exercise_id not in called:
            found.append(f"the check call of exercise {spec.exercise_id} was removed")
    for index, source in enumerate(code_cells[1:], 1):  # code cell 0 is the setup cell
        if CHECK_REBOUND.search(source):
            found.append(f"code cell {index} rebinds `check`")
    return found


def _kernel_spec_dir(base: Path) -> Path:
    """A kernel spec that starts :mod:`course_lib.grade.kernel` with this Python."""
    spec = base / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "course_lib.grade.kernel",
                 "-f", "{connection_file}", "--IPKernelApp.log_level=ERROR"],
        "display_name": "course grader", "language": "python"}))
    return base / "kernels"


def _kernel_env(work: Path, memory_bytes: int, guard: bool, numba_cache: Path) -> dict[str, str]:
    from course_lib import runtime

    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    home, tmp = work / "home", work / "tmp"
    home.mkdir(), tmp.mkdir()
    env.update(HOME=str(home), TMPDIR=str(tmp), COURSE_PROFILE="ci", MPLBACKEND="Agg",
               PYTHONHASHSEED="0", PYTHONNOUSERSITE="1", COURSE_DATA=str(runtime.data_root()),
               COURSE_CHECKPOINTS=str(work / "checkpoints"), NUMBA_CACHE_DIR=str(numba_cache),
               JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    from course_lib.grade import kernel

    if memory_bytes > 0:
        env[kernel.MEMORY_ENV] = str(memory_bytes)
    if guard:
        env[kernel.WRITABLE_ENV] = str(work)
    return env


def _result_of(cell: nbformat.NotebookNode, nonce: str) -> dict | None:
    """The JSON the grader's cell returned (its execute_result), or None."""
    for output in reversed(cell.get("outputs", [])):
        if output.get("output_type") == "execute_result":
            try:
                record = json.loads(ast.literal_eval(output["data"]["text/plain"]))
            except (ValueError, SyntaxError, KeyError, TypeError):
                return None
            return record if record.pop("nonce", None) == nonce else None
    return None


def _error_of(cell: nbformat.NotebookNode) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"[:300]
    return None


def _prepare_source(nonce: str, check_modules: list[str]) -> str:
    root = str(COURSE_ROOT)
    return (
        f"def _course_grader_{nonce}():\n"
        "    import os, sys\n"
        "    old = {n: m for n, m in list(sys.modules.items())\n"
        "           if n == 'course_lib' or n.startswith('course_lib.')}\n"
        "    for name in old:\n"
        "        del sys.modules[name]\n"
        "    here = os.path.realpath(os.getcwd())\n"
        "    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != here]\n"
        f"    sys.path.insert(0, {root!r})\n"
        "    import json\n"
        "    import course_lib.grade.kernel as grader\n"
        f"    record = json.loads(grader.prepare(globals(), {root!r}, old, {check_modules!r}))\n"
        f"    record['nonce'] = {nonce!r}\n"
        "    return json.dumps(record)\n"
        f"_course_grader_result = _course_grader_{nonce}(); del _course_grader_{nonce}\n"
        "_course_grader_result"
    )


def _exercise_source(nonce: str, spec: ExerciseSpec) -> str:
    return (
        "import json as _course_grader_json, course_lib.grade.kernel as _course_grader\n"
        f"_course_grader_result = _course_grader_json.loads(_course_grader.run_exercise(globals(), "
        f"{spec.exercise_id!r}, {spec.function_name!r}, {spec.hidden!r}))\n"
        f"_course_grader_result['nonce'] = {nonce!r}\n"
        "_course_grader_json.dumps(_course_grader_result)"
    )


def _benign(refused: str) -> bool:
    """A refusal that libraries cause and handle themselves: bytecode caches, platform probes."""
    if "__pycache__" in refused:
        return True  # Python writes .pyc files where it can and carries on where it cannot
    program = re.match(r"(subprocess\.Popen|os\.posix_spawn) \('([^']*)'", refused)
    return bool(program) and Path(program.group(2)).name in LIBRARY_PROBES


def _exercise_row(submission: Submission, spec: ExerciseSpec, status: str, hint: str = "",
                  runtime_s: float | str = "", hidden: str = "") -> dict:
    return {"student": submission.student, "notebook": submission.notebook or "",
            "exercise": spec.exercise_id, "title": spec.title, "status": status, "hint": hint,
            "runtime_s": runtime_s, "hidden_tests": hidden}


def grade_submission(submission: Submission, specs: list[ExerciseSpec], *, timeout_s: float = 240,
                     check_timeout_s: float = 60, memory_gib: float = 8.0, guard: bool = True,
                     workdir: Path | None = None, numba_cache: Path | None = None,
                     update_cache: bool = False) -> SubmissionResult:
    """Run one submission in its own kernel and folder and rerun every exercise's check.

    Parameters
    ----------
    submission : Submission
        The notebook and its student.
    specs : list of ExerciseSpec
        The notebook's exercises (:func:`exercise_specs` of its solution).
    timeout_s : float
        Seconds for all of the student's cells together; past it the kernel is interrupted and
        the exercises defined so far are still checked.
    check_timeout_s : float
        Seconds for each exercise's check and hidden tests.
    memory_gib : float
        Address-space limit of the kernel, GiB (0: none).
    guard : bool
        Refuse writes outside the throwaway folder and new programs (:mod:`course_lib.grade.kernel`).
    workdir : Path, optional
        Where to make the throwaway folder (default: the system's temporary folder).
    numba_cache : Path, optional
        Compiled numba functions (librosa's) copied into the throwaway folder before the run, so
        that each kernel does not compile them again (half a minute in notebook 01).
    update_cache : bool
        Copy the run's numba cache back into ``numba_cache`` afterwards: only for trusted
        notebooks (:func:`grade_folder` runs each reference solution so), never for a submission,
        which could otherwise plant compiled code for the next kernels to load.

    Returns
    -------
    SubmissionResult
        Never raises for anything the submission does.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    started = time.perf_counter()
    result = SubmissionResult(submission, run="completed")
    work = Path(tempfile.mkdtemp(prefix="course-grade-", dir=workdir))
    try:
        try:
            nb = nbformat.read(submission.path, as_version=4)
        except Exception as err:
            result.run = f"unreadable notebook: {type(err).__name__}: {str(err)[:200]}"
            result.exercises = [_exercise_row(submission, s, "not graded", result.run) for s in specs]
            return result
        result.tampering += _static_tampering(nb, specs)
        copy_path = work / submission.path.name
        shutil.copyfile(submission.path, copy_path)  # the submission's own folder: a copy
        student_cells = [nbformat.v4.new_code_cell(c.source) for c in nb.cells
                         if c.cell_type == "code" and c.source.strip()]
        nonce = secrets.token_hex(8)
        check_modules = sorted({f"course_lib.checks.nb{s.exercise_id[:2]}" for s in specs})
        prepare_cell = nbformat.v4.new_code_cell(_prepare_source(nonce, check_modules))
        exercise_cells = [nbformat.v4.new_code_cell(_exercise_source(nonce, s)) for s in specs]
        run_nb = nbformat.v4.new_notebook(cells=[*student_cells, prepare_cell, *exercise_cells])
        if numba_cache is not None and numba_cache.is_dir():
            shutil.copytree(numba_cache, work / "numba")
        env = _kernel_env(work, int(memory_gib * 2**30), guard, work / "numba")
        specs_dir = _kernel_spec_dir(work)
        km = AsyncKernelManager(kernel_name=KERNEL_NAME,
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs_dir)]))
        client = NotebookClient(run_nb, km=km, timeout=int(timeout_s), allow_errors=True,
                                interrupt_on_timeout=False, skip_cells_with_tag="\0",
                                shutdown_kernel="immediate", startup_timeout=120)
        graded: dict[str, dict] = {}
        stop, stopped_at = None, len(student_cells)
        with client.setup_kernel(env=env, cwd=str(work)):
            deadline = time.monotonic() + timeout_s

            def run_cell(index: int, seconds: float) -> str | None:
                """Run one cell; None when it finished, else why not ("timeout" or "dead")."""
                client.timeout = max(1, int(seconds))
                try:
                    client.execute_cell(run_nb.cells[index], index)
                except CellTimeoutError:
                    run_sync(km.interrupt_kernel)()
                    # nbclient's readers of the timed-out cell end at the event loop's next turns;
                    # until then they would swallow the next cell's messages: let them end, and
                    # talk to the kernel through fresh channels
                    run_sync(asyncio.sleep)(1.0)
                    client.kc.stop_channels()
                    client.start_new_kernel_client()
                    probe = nbformat.v4.new_code_cell("'alive'")
                    client.timeout = 15
                    try:  # an interrupted kernel answers at once; one that swallows it does not
                        client.execute_cell(probe, index)
                    except CellTimeoutError:
                        return "stuck"
                    except DeadKernelError:
                        return "dead"
                    return "timeout"
                except DeadKernelError:
                    return "dead"
                return None

            for index in range(len(student_cells)):
                stop = run_cell(index, deadline - time.monotonic())
                error = _error_of(run_nb.cells[index])
                if error:
                    result.cell_errors.append(f"code cell {index}: {error}")
                if stop:
                    stopped_at, where = index, f"code cell {index}"
                    result.run = {
                        "timeout": f"timeout: the cells ran past {timeout_s:g} s (interrupted in {where})",
                        "stuck": f"timeout: past {timeout_s:g} s in {where}, and the kernel ignored the interrupt",
                        "dead": f"kernel died in {where} (out of memory, or a crash)",
                    }[stop]
                    break
            if any("MemoryError" in e for e in result.cell_errors) and result.run == "completed":
                result.run = "completed, with a MemoryError (the kernel's memory limit)"
            if stop in (None, "timeout"):
                index = len(student_cells)
                why = run_cell(index, check_timeout_s)
                record = _result_of(run_nb.cells[index], nonce) if not why else None
                if record is None:
                    problem = why or _error_of(run_nb.cells[index]) or "no answer from the grader's cell"
                    result.run += f"; grading could not start: {problem}"
                else:
                    result.tampering += record["tampering"]
                    result.blocked += [b for b in record["blocked"] if not _benign(b)]
                    if record["problem"]:
                        result.run += f"; not graded: {record['problem']}"
                    else:
                        for offset, spec in enumerate(specs, index + 1):
                            why = run_cell(offset, check_timeout_s)
                            answer = _result_of(run_nb.cells[offset], nonce) if not why else None
                            if answer is not None:
                                graded[spec.exercise_id] = _exercise_row(
                                    submission, spec, answer["status"], answer["hint"],
                                    answer["runtime_s"],
                                    f"{answer['hidden_passed']}/{answer['hidden_total']}"
                                    if answer["hidden_total"] else "")
                            elif why:
                                graded[spec.exercise_id] = _exercise_row(
                                    submission, spec, "timeout" if why == "timeout" else "not graded",
                                    f"the check ran past {check_timeout_s:g} s" if why == "timeout"
                                    else f"the kernel {'died' if why == 'dead' else 'ignored the interrupt'} "
                                         f"during the check", round(check_timeout_s, 3))
                                if why != "timeout":
                                    break
                            else:
                                graded[spec.exercise_id] = _exercise_row(
                                    submission, spec, "error",
                                    _error_of(run_nb.cells[offset]) or "no answer from the check")
        for spec in specs:  # say why a function is missing: its cell failed, or never ran
            row = graded.get(spec.exercise_id)
            if row is None or row["status"] != "missing":
                continue
            cell = next((i for i, c in enumerate(student_cells)
                         if re.search(rf"#\s*EXERCISE\s+{re.escape(spec.exercise_id)}\s*:", c.source)), None)
            if cell is None:
                row["hint"] += " (its cell was removed)"
            elif stop and cell >= stopped_at:
                row["hint"] += f" (the run stopped before its cell: {result.run.split(':')[0]})"
            elif _error_of(run_nb.cells[cell]):
                row["hint"] += f" (its cell raised {_error_of(run_nb.cells[cell])})"
        reason = {"dead": "the kernel died before grading",
                  "stuck": "the kernel ignored the interrupt"}.get(stop or "", "not graded")
        result.exercises = [graded.get(s.exercise_id) or _exercise_row(submission, s, "not graded", reason)
                            for s in specs]
    except Exception as err:  # the grader's own failure on one submission: recorded, batch goes on
        result.run = f"grader error: {type(err).__name__}: {str(err)[:300]}"
        result.exercises = result.exercises or [_exercise_row(submission, s, "not graded", result.run)
                                                for s in specs]
    finally:
        result.seconds = time.perf_counter() - started
        if update_cache and numba_cache is not None and (work / "numba").is_dir():
            shutil.rmtree(numba_cache, ignore_errors=True)
            shutil.copytree(work / "numba", numba_cache)
        shutil.rmtree(work, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- a folder

def _grade_one(args: tuple) -> SubmissionResult:
    submission, specs, options = args
    if submission.problem:
        return SubmissionResult(submission, run=f"not graded: {submission.problem}")
    return grade_submission(submission, specs, **options)


def grade_folder(folder: Path, *, solutions_dir: Path | None = None, jobs: int = 1,
                 progress: bool = True, **options) -> GradeReport:
    """Grade every submission under ``folder``; ``options`` go to :func:`grade_submission`.

    ``jobs`` submissions run side by side (each in its own process and kernel).
    """
    solutions_dir = solutions_dir or COURSE_ROOT / "solutions"
    submissions = find_submissions(folder, solutions_dir)
    specs = {name: exercise_specs(solutions_dir / name)
             for name in sorted({s.notebook for s in submissions if s.notebook})}
    # Each notebook's solution first, graded like a submission: it must pass every check (else the
    # grading environment is broken, and the report says so), and it compiles librosa's numba
    # functions once into a cache that every submission's kernel gets a copy of.
    batch = Path(tempfile.mkdtemp(prefix="course-grade-batch-", dir=options.get("workdir")))
    references = []
    try:
        for name in specs:
            cache = batch / f"numba-{name[:2]}"
            reference = grade_submission(Submission(solutions_dir / name, "(reference solution)", name),
                                         specs[name], **options, numba_cache=cache, update_cache=True)
            references.append(reference)
            if progress:
                row = reference.row()
                print(f"reference {name}: {row['passed']}/{row['exercises']} passed, {row['run']} "
                      f"({row['seconds']} s)", flush=True)
        results = _grade_all(submissions, specs, batch, options, jobs, progress)
    finally:
        shutil.rmtree(batch, ignore_errors=True)
    return GradeReport(results, references)


def _grade_all(submissions: list[Submission], specs: dict[str, list[ExerciseSpec]], batch: Path,
               options: dict, jobs: int, progress: bool) -> list[SubmissionResult]:
    work = [(s, specs.get(s.notebook, []), {**options, "numba_cache": batch / f"numba-{(s.notebook or '')[:2]}"})
            for s in submissions]
    results: list[SubmissionResult] = []

    def done(result: SubmissionResult) -> None:
        results.append(result)
        if progress:
            row = result.row()
            print(f"[{len(results)}/{len(work)}] {row['student']} {row['notebook']}: "
                  f"{row['passed']}/{row['exercises']} passed, {row['run']} ({row['seconds']} s)",
                  flush=True)

    if jobs > 1 and len(work) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for result in pool.map(_grade_one, work):
                done(result)
    else:
        for item in work:
            done(_grade_one(item))
    return results


# --------------------------------------------------------------------------- reports

def _table(header: list[str], rows: list[list]) -> list[str]:
    clean = lambda value: str(value).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(clean(v) for v in row) + " |" for row in rows)]


def render_report(report: GradeReport) -> str:
    """The per-student summary and the class summary, as Markdown."""
    lines = ["## Reference solutions", ""]
    for reference in report.references:
        row = reference.row()
        verdict = ("every check passes: the grading environment works"
                   if row["passed"] == row["exercises"] and reference.run == "completed" else
                   "**NOT every check passes: the grading environment is broken, do not trust the "
                   "grades below**")
        lines.append(f"- {row['notebook']}: {row['passed']}/{row['exercises']} in {row['seconds']} s, "
                     f"{reference.run}; {verdict}")
    lines += ["", "## Per student", ""]
    by_student: dict[str, list[SubmissionResult]] = collections.defaultdict(list)
    for result in report.results:
        by_student[result.submission.student].append(result)
    rows = []
    for student, results in sorted(by_student.items()):
        passed = sum(r.row()["passed"] for r in results)
        total = sum(r.row()["exercises"] for r in results)
        notes = [f"{r.submission.notebook or r.submission.path.name}: {r.run}" for r in results
                 if r.run != "completed"]
        notes += [f"tampering: {t}" for r in results for t in r.tampering]
        notes += [f"{len(r.blocked)} write(s) refused" for r in results if r.blocked]
        notes += [f"{len(r.cell_errors)} cell error(s), first {r.cell_errors[0]}" for r in results
                  if r.cell_errors]
        rows.append([student, f"{passed}/{total}", "; ".join(notes)])
    lines += _table(["student", "exercises passed", "notes"], rows)
    lines += ["", "## Class summary", ""]
    per_exercise: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for row in report.exercise_rows():
        per_exercise[(row["exercise"], row["title"])].append(row)
    rows = []
    for (exercise_id, title), group in per_exercise.items():
        failed = [r for r in group if r["status"] != "passed"]
        hints = collections.Counter(r["hint"] or r["status"] for r in failed)
        common = "; ".join(f"{n}x: {hint[:200]}" for hint, n in hints.most_common(3))
        rows.append([exercise_id, title, len(group), len(group) - len(failed), len(failed), common])
    rows.sort(key=lambda r: (-r[4], r[0]))
    lines += _table(["exercise", "title", "submissions", "passed", "not passed",
                     "most common reasons (count: hint)"], rows)
    return "\n".join(lines) + "\n"


def write_reports(report: GradeReport, out: Path) -> list[Path]:
    """``out`` (student x exercise), ``<stem>_students.csv`` and ``<stem>_report.md``; returns their paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    students = out.with_name(f"{out.stem}_students.csv")
    markdown = out.with_name(f"{out.stem}_report.md")
    for path, fields, rows in ((out, EXERCISE_FIELDS, report.exercise_rows()),
                               (students, SUBMISSION_FIELDS, [r.row() for r in report.results])):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    markdown.write_text(render_report(report), encoding="utf-8")
    return [out, students, markdown]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grade",
                                     description="Grade a folder of submitted student notebooks.")
    parser.add_argument("submissions", type=Path, help="folder of submissions (see docs/INSTRUCTORS.md)")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV, one row per student x exercise")
    parser.add_argument("--solutions", type=Path, default=None, help="solution notebooks (default: the course's)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds for a submission's cells (default 240)")
    parser.add_argument("--check-timeout", type=float, default=60, help="seconds per exercise check (default 60)")
    parser.add_argument("--memory-gib", type=float, default=8.0,
                        help="address-space limit per kernel, GiB (default 8; 0: none)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded side by side (default 1)")
    parser.add_argument("--no-guard", action="store_true",
                        help="let submissions write anywhere and start programs (not recommended)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a folder of submissions", file=sys.stderr)
        return 2
    report = grade_folder(args.submissions, solutions_dir=args.solutions, jobs=args.jobs,
                          timeout_s=args.timeout, check_timeout_s=args.check_timeout,
                          memory_gib=args.memory_gib, guard=not args.no_guard)
    if not report.results:
        print(f"error: no .ipynb files under {args.submissions}", file=sys.stderr)
        return 2
    paths = write_reports(report, args.out)
    print(render_report(report))
    print("wrote " + ", ".join(map(str, paths)))
    return 0
