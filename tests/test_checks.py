"""The check engine: passes the reference, gives specific hints, never a bare traceback."""

import numpy as np
import pytest

from course_lib import checks as check
from course_lib.checks.nb00 import reference_peak_dbfs, reference_sine


def test_reference_solutions_pass():
    assert check.exercise("00.1", reference_sine, quiet=True)
    assert check.exercise("00.2", reference_peak_dbfs, quiet=True)


def test_wrong_values_name_the_input_and_both_values():
    result = check.exercise("00.1", lambda f, d, sr: np.cos(2 * np.pi * f * np.arange(round(d * sr)) / sr),
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
