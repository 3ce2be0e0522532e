"""Every student copy runs top to bottom with its exercises unsolved.

A student who skips an exercise (or an instructor who runs a blank copy) must see hints, not a
notebook that stops: after each exercise the notebooks use the course_lib version of what the
exercise builds. Each check must report "not implemented yet" for its stub.

The copies run in the profile of the environment (``ci`` when unset). ``make test`` runs them in
its ``laptop`` phase, against the miniature real-dataset layouts: the profile a student without a
GPU gets, and one pass over the notebooks instead of two (the ``ci`` phase runs the solutions).
"""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib import assignments

ROOT = Path(__file__).resolve().parent.parent
STUDENT_COPIES = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", STUDENT_COPIES, ids=lambda p: p.name)
def test_student_copy_runs_with_exercises_unsolved(path, monkeypatch):
    monkeypatch.delenv("COURSE_STRICT_CHECKS", raising=False)  # students get hints, not errors
    if not os.environ.get("COURSE_PROFILE"):
        monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name=assignments.KERNEL_NAME,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                      if o.output_type == "stream")
    exercise_ids = set(re.findall(r"# EXERCISE (\d{2}\.\d+):", "".join(c.source for c in nb.cells)))
    for exercise_id in exercise_ids:
        assert re.search(rf"Exercise {re.escape(exercise_id)} \([^)]*\): not implemented yet", printed), \
            f"{path.name}: the check of exercise {exercise_id} did not report the unsolved stub"
