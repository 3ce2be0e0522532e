"""Per-notebook timing for the nbval run: each solution notebook has a CI-profile time budget.

nbval turns every cell into a test item; here their durations are summed per notebook, printed
as a table with the total at the end of the run, and a notebook that takes more than twice its
budget fails the run (the factor absorbs noise on shared 2-core machines; the budget itself is
what authors aim for). ``make test`` runs notebooks side by side (pytest-xdist, one per core), so
its table includes the slowdown of sharing the machine; ``make test-notebooks PARALLEL=`` times
each notebook alone, which is what the budget means.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

# When set (``make test``, ``make book``), every solution notebook that ran to the end without a
# failing cell is written there with its outputs: the rendered course (tools/book.py) is built from
# the very run that tested it, instead of executing every notebook a second time.
EXECUTED_ENV = "COURSE_EXECUTED_NOTEBOOKS"
_executed: dict[str, dict] = {}

NOTEBOOK_BUDGET_S = float(os.environ.get("COURSE_NOTEBOOK_BUDGET_S", "60"))
HARD_LIMIT_FACTOR = 2.0

_durations: dict[str, float] = defaultdict(float)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist with ``--dist loadscope`` (``make test``): a notebook's cells share one
    kernel and must run in order on one worker, so a notebook is one unit of work; every other test
    is a unit of its own, so the slow ones (student copies, one per notebook) spread over workers.
    (``--dist loadgroup`` with marks would say the same, but it stopped grouping under pytest 9.2:
    pytest-dev/pytest-xdist#1386.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(".ipynb") else nodeid

    return NotebookScopeScheduling(config, log)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _durations[path] += report.duration
    elif path.endswith("test_student_copies.py") and "[" in report.nodeid:
        # one test per student copy: test_...[NN_name.ipynb]
        _durations["notebooks/" + report.nodeid.rsplit("[", 1)[1].rstrip("]")] += report.duration


def _merged_streams(outputs: list) -> list:
    """nbval keeps one output per kernel message; a notebook file keeps one per stream run."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Recording notebooks: their kernels (started in the first cell's setup) draw figures inline,
    as in Jupyter, so the outputs hold the figures; the test process itself keeps Agg."""
    if not (os.environ.get(EXECUTED_ENV) and str(item.fspath).endswith(".ipynb")):
        yield
        return
    previous = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = previous


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    target = os.environ.get(EXECUTED_ENV)
    cell = getattr(item, "cell", None)
    if not target or call.when != "call" or cell is None or not str(item.fspath).endswith(".ipynb"):
        return
    import nbformat

    notebook = item.parent.nb                 # nbval's in-memory copy, never the file in git
    state = _executed.setdefault(item.parent.nodeid, {
        "left": sum(c.cell_type == "code" for c in notebook.cells), "failed": False})
    cell.outputs = [nbformat.from_dict(o) for o in _merged_streams(getattr(item, "test_outputs", None) or [])]
    cell.execution_count = item.cell_num + 1
    for out in cell.outputs:
        if out.get("output_type") == "execute_result":
            out["execution_count"] = cell.execution_count
    state["left"] -= 1
    state["failed"] |= outcome.get_result().failed
    if state["left"] == 0 and not state["failed"]:
        path = Path(target) / Path(str(item.fspath)).name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(path))


def _over_limit() -> list[str]:
    return [p for p, s in _durations.items() if s > NOTEBOOK_BUDGET_S * HARD_LIMIT_FACTOR]


def pytest_terminal_summary(terminalreporter):
    if not _durations:
        return
    tr = terminalreporter
    tr.section(f"notebook times ({os.environ.get('COURSE_PROFILE', 'default')} profile)")
    for path, seconds in sorted(_durations.items()):
        flag = ""
        if seconds > NOTEBOOK_BUDGET_S * HARD_LIMIT_FACTOR:
            flag = f"  FAILED: over {HARD_LIMIT_FACTOR:g} x the {NOTEBOOK_BUDGET_S:g} s budget"
        elif seconds > NOTEBOOK_BUDGET_S:
            flag = f"  over the {NOTEBOOK_BUDGET_S:g} s budget"
        copy = " (student copy)" if path.startswith("notebooks/") else ""
        tr.write_line(f"{seconds:7.1f} s  {Path(path).name}{copy}{flag}")
    tr.write_line(f"{sum(_durations.values()):7.1f} s  total for {len(_durations)} notebook(s)")


def pytest_sessionfinish(session, exitstatus):
    if _over_limit() and exitstatus == 0:
        session.exitstatus = 1
