"""Conventions every solution notebook follows (nbval executes them; this checks their shape)."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from course_lib import assignments

ROOT = Path(__file__).resolve().parent.parent
SOLUTION_PATHS = sorted((ROOT / "solutions").glob("*.ipynb"))
CHECK_CALL = re.compile(r"check\.exercise\(\s*[\"'](\d{2}\.\d+)[\"']")
FIGURE = re.compile(r"plt\.(show|subplots|figure)|plot_(waveform|spectrogram)|show_clip|\.plot\(")
PLAYER = re.compile(r"listen\(|Audio\(|show_clip\(")


def test_there_are_solution_notebooks():
    assert SOLUTION_PATHS
    assert SOLUTION_PATHS[0].name == "00_welcome.ipynb"


@pytest.fixture(params=SOLUTION_PATHS, ids=lambda p: p.name)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_file_name_is_numbered(notebook):
    path, _ = notebook
    assert re.fullmatch(r"\d{2}_[a-z0-9_]+\.ipynb", path.name)


def test_first_cell_is_the_shared_setup_cell(notebook):
    path, nb = notebook
    assert nb.cells[0].cell_type == "code"
    assert nb.cells[0].source == assignments.setup_cell_source(), \
        f"{path.name}: run `make notebooks` (assignments fix-setup) to regenerate the setup cell"


def test_title_cell_has_badge_and_objectives(notebook):
    path, nb = notebook
    title = nb.cells[1]
    assert title.cell_type == "markdown"
    assert assignments.colab_badge(path.name, student=False) in title.source
    assert re.search(r"^# ", title.source, flags=re.M), "a level-1 title"
    assert "## Objectives" in title.source


def test_ends_with_summary_and_further_exercises(notebook):
    _, nb = notebook
    tail = "\n".join(c.source for c in nb.cells[-2:] if c.cell_type == "markdown")
    assert "## Summary" in tail
    assert "## Further exercises" in tail


def test_exercises_have_markers_and_checks(notebook):
    path, nb = notebook
    exercise_ids = []
    for cell in nb.cells:
        if cell.cell_type == "code" and assignments.BEGIN in cell.source:
            match = assignments.EXERCISE_LINE.search(cell.source.split(assignments.BEGIN)[0].splitlines()[0]) \
                or next((assignments.EXERCISE_LINE.match(line) for line in cell.source.splitlines()
                         if assignments.EXERCISE_LINE.match(line)), None)
            assert match, f"{path.name}: an exercise cell without its task line"
            checked = CHECK_CALL.findall(cell.source)
            assert match.group(1) in checked, f"{path.name}: exercise {match.group(1)} is never checked"
            assert match.group(1).startswith(path.name[:2]), f"{path.name}: exercise id {match.group(1)}"
            exercise_ids.append(match.group(1))
    assert len(exercise_ids) >= 2, f"{path.name} has {len(exercise_ids)} exercise(s); at least 2"
    assert len(set(exercise_ids)) == len(exercise_ids)


def test_outputs_are_stripped_and_kernel_is_the_course_kernel(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: run `make strip`"
    assert nb.metadata["kernelspec"]["name"] == assignments.KERNEL_NAME


def test_audio_figures_have_a_player_nearby(notebook):
    """A cell that draws a figure of audio has a player in it or in one of the next two code cells."""
    path, nb = notebook
    code = ["\n".join(line for line in c.source.splitlines()
                       if not line.lstrip().startswith(("import ", "from ", "#")))
            for c in nb.cells if c.cell_type == "code"]
    for i, source in enumerate(code):
        if FIGURE.search(source) and re.search(r"waveform|spectrogram|stft|mel|audio|clip", source, re.I):
            window = "\n".join(code[i:i + 3])
            assert PLAYER.search(window), f"{path.name}: figure without a player nearby:\n{source[:300]}"


def test_no_profile_plumbing_in_notebooks(notebook):
    path, nb = notebook
    for cell in nb.cells[1:]:
        if cell.cell_type == "code":
            assert "COURSE_PROFILE" not in cell.source, f"{path.name}: read budgets from rt.budget"
            assert not re.search(r"rt\.profile\s*==", cell.source), f"{path.name}: no `if ci:` plumbing"


def test_no_example_output_text(notebook):
    path, nb = notebook
    for cell in nb.cells:
        assert not re.search(r"example output|expected output:", cell.source, re.I), path.name
