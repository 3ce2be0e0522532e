"""The check engine: passes the reference, gives specific hints, never a bare traceback."""

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib import checks as check
from course_lib.checks.nb00 import reference_peak_dbfs, reference_sine


def test_reference_solutions_pass():
    assert check.exercise("00.1", reference_sine, quiet=True)
    assert check.exercise("00.2", reference_peak_dbfs, quiet=True)


def test_wrong_values_name_the_input_and_both_values():
    # a phase offset is no classic mistake with its own hint: the generic comparison reports it
    result = check.exercise("00.1", lambda f, d, sr: np.sin(2 * np.pi * f * np.arange(round(d * sr)) / sr + 0.3),
                            quiet=True, strict=False)
    assert not result
    assert "frequency_hz=440.0" in result.message
    assert "expected" in result.message


def test_wrong_length_gets_a_length_hint():
    result = check.exercise("00.1", lambda f, d, sr: np.zeros(int(d * sr) + 1), quiet=True, strict=False)
    assert "samples, expected" in result.message


def test_wrong_shape_and_transposition_hints():
    case = check.Case("n=3")
    with pytest.raises(check.CaseFailed, match="transposed"):
        check.compare_arrays(case, np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(check.CaseFailed, match="should be complex"):
        check.compare_arrays(case, np.zeros(3), np.zeros(3, dtype=complex))
    with pytest.raises(check.CaseFailed, match="forget to `return`"):
        check.compare_arrays(case, None, np.zeros(3))


def test_student_exception_becomes_a_hint():
    def broken(f, d, sr):
        return np.arange(3)[10]

    result = check.exercise("00.1", broken, quiet=True, strict=False)
    assert "IndexError" in result.message and "line" in result.message


def test_stub_says_not_implemented():
    def stub(f, d, sr):
        raise NotImplementedError("Exercise 00.1: write it")

    result = check.exercise("00.1", stub, quiet=True, strict=False)
    assert "not implemented yet" in result.message


def test_wrong_type_of_argument_is_a_hint_not_a_crash():
    result = check.exercise("00.1", "sine", quiet=True, strict=False)
    assert not result and "pass your function itself" in result.message
    result = check.exercise("00.1", lambda f, d, sr: "a string", quiet=True, strict=False)
    assert not result


def test_unknown_exercise_lists_known_ones():
    result = check.exercise("99.9", reference_sine, quiet=True, strict=False)
    assert not result and "00.1" in result.message


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv(check.STRICT_ENV, "1")
    with pytest.raises(check.ExerciseFailed):
        check.exercise("00.1", lambda f, d, sr: None, quiet=True)
    assert check.exercise("00.1", reference_sine, quiet=True)


def test_every_registered_check_passes_its_own_reference_when_it_has_one():
    # every notebook's checks module must import cleanly and register ids of the form NN.k
    ids = check.registered_exercises()
    assert "00.1" in ids
    for exercise_id in ids:
        assert len(exercise_id.split(".")[0]) == 2


# ------------------------------------------------------------------ the notebooks' own solutions
# The exercise cells of solutions/*.ipynb, run as written (the cells up to `check.exercise`), must
# pass their checks. This catches a check and a notebook drifting apart without running nbval.
ROOT = Path(__file__).resolve().parent.parent
EXERCISE = re.compile(r"# EXERCISE (\d{2}\.\d+):")
# `check.exercise("NN.k", fn)`, alone or kept (`result = check.exercise(...)`) to act on the result
CHECK_CALL = re.compile(r"^(?:\w+\s*=\s*)?check\.exercise\(\s*[\"'](\d{2}\.\d+)[\"']\s*,\s*(\w+)\s*\)", re.M)


def _exercise_cells() -> list:
    params = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = [c.source for c in nb.cells if c.cell_type == "code" and EXERCISE.search(c.source)]
        for i, source in enumerate(cells):
            params.append(pytest.param(cells[: i + 1], id=f"{EXERCISE.search(source).group(1)}"))
    return params


@pytest.mark.parametrize("cells", _exercise_cells())
def test_notebook_solution_passes_its_check(cells):
    import torch
    import torch.nn.functional as F
    from torch import nn

    import math
    import time

    import librosa

    from course_lib import dsp

    # What the notebooks' import cells bring into scope before their exercises.
    namespace = {"np": np, "torch": torch, "nn": nn, "F": F, "dsp": dsp, "check": check,
                 "librosa": librosa, "time": time, "math": math}
    for source in cells:  # earlier exercises of the notebook first: later ones may use them
        call = CHECK_CALL.search(source)
        assert call, f"no `check.exercise(id, function)` line in:\n{source}"
        exec(compile(source[: call.start()], "<exercise cell>", "exec"), namespace)  # noqa: S102
    exercise_id, function_name = call.groups()
    result = check.exercise(exercise_id, namespace[function_name], quiet=True, strict=False)
    assert result, result.message
    assert result.n_cases >= 3


# ------------------------------------------------------------------ what compare_arrays recognises
@pytest.mark.parametrize("got,phrase", [
    (np.arange(1.0, 9.0) / 8, "1/n times the expected one"),
    (np.arange(1.0, 9.0) * 3, "3 times the expected one: a missing or extra scale factor"),
    (-np.arange(1.0, 9.0), "sign flipped"),
    (np.r_[0.0, np.arange(1.0, 8.0)], "1 sample(s) late"),
    (np.r_[np.arange(2.0, 9.0), 0.0], "1 sample(s) early"),
])
def test_compare_arrays_names_the_form_of_a_wrong_array(got, phrase):
    with pytest.raises(check.CaseFailed, match=re.escape(phrase)):
        check.compare_arrays(check.Case("x"), got, np.arange(1.0, 9.0), factors={"1/n": 1 / 8})


def test_compare_arrays_recognises_the_complex_conjugate():
    expected = np.exp(2j * np.pi * np.arange(5) / 7)
    with pytest.raises(check.CaseFailed, match="complex conjugate"):
        check.compare_arrays(check.Case("x"), np.conj(expected), expected)


def test_matches_never_raises_and_compares_shapes():
    assert check.matches([1.0, 2.0], np.array([1.0, 2.0]))
    assert not check.matches(None, np.zeros(2))
    assert not check.matches("ab", np.zeros(2))
    assert not check.matches([[1.0], [2.0, 3.0]], np.zeros(2))
    assert not check.matches(np.zeros(3), np.zeros(2))
    assert not check.matches(np.array([np.nan]), np.array([np.nan]))


def test_reject_known_mistakes_never_blames_a_right_answer():
    case = check.Case("x")
    # the "mistake" gives the right answer on this input: no hint
    check.reject_known_mistakes(case, np.ones(3), np.ones(3), {"should not fire": np.ones(3)})
    # a mistake that cannot be computed on this input is skipped
    check.reject_known_mistakes(case, np.zeros(3), np.ones(3), {"broken": lambda: 1 / 0})
    with pytest.raises(check.CaseFailed, match="named mistake"):
        check.reject_known_mistakes(case, np.zeros(3), np.ones(3), {"named mistake": np.zeros(3)})
