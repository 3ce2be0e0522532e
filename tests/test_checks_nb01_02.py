"""Checks of notebooks 00-02 accept right answers computed independently of course_lib.

Each oracle below reaches the answer another way (a brute-force search, numpy/scipy's own
transforms), so a check whose reference drifted would reject it. The classic wrong answers and
their hints are in test_checks_mistakes.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from course_lib import checks as check


def aliased_frequency_by_search(f_hz, sr):
    """The distance from f to the nearest multiple of sr, by trying every multiple."""
    f = np.atleast_1d(np.abs(np.asarray(f_hz, dtype=float)))
    multiples = sr * np.arange(0, int(f.max() // sr) + 2)
    out = np.abs(f[:, None] - multiples[None, :]).min(axis=1)
    return float(out[0]) if np.ndim(f_hz) == 0 else out


def quantize_by_level_table(x, bits):
    """Pick, for each sample, the centre of its step from an explicit table of the 2**bits levels."""
    delta = 2.0 / 2**bits
    levels = -1 + delta / 2 + delta * np.arange(2**bits)
    index = np.clip(np.floor((np.asarray(x) + 1) / delta), 0, 2**bits - 1).astype(int)
    return levels[index]


def add_noise_by_rms(x, noise, snr_db):
    """Scale the noise so that rms(x) / rms(g * noise) = 10**(snr_db / 20)."""
    rms = lambda s: np.sqrt(np.mean(s**2))  # noqa: E731
    return x + noise * rms(x) / rms(noise) * 10 ** (-snr_db / 20)


def dft_matrix_from_numpy_fft(n):
    """Column m of W is the FFT of the m-th unit vector."""
    return np.fft.fft(np.eye(n), axis=0)


def toeplitz_from_scipy(h, n_input):
    h = np.asarray(h, dtype=float)
    return scipy.linalg.toeplitz(np.r_[h, np.zeros(n_input - 1)], np.r_[h[0], np.zeros(n_input - 1)])


@pytest.mark.parametrize("exercise_id,oracle", [
    ("00.1", lambda f, d, sr: np.sin(2 * np.pi * f * np.arange(round(d * sr)) / sr)),
    ("00.2", lambda x: 20 * np.log10(np.abs(x).max())),
    ("01.1", aliased_frequency_by_search),
    ("01.2", quantize_by_level_table),
    ("01.3", add_noise_by_rms),
    ("02.1", dft_matrix_from_numpy_fft),
    ("02.2", scipy.signal.fftconvolve),
    ("02.2", np.convolve),
    ("02.3", toeplitz_from_scipy),
])
def test_independent_answers_pass(exercise_id, oracle):
    result = check.exercise(exercise_id, oracle, quiet=True, strict=False)
    assert result, result.message
    assert result.n_cases >= 4


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv(check.STRICT_ENV, "1")
    with pytest.raises(check.ExerciseFailed, match="01.1"):
        check.exercise("01.1", lambda f, sr: f, quiet=True)


def test_answers_in_other_types_are_accepted():
    # a list instead of an array, float32 instead of float64: the values are what count
    assert check.exercise("02.2", lambda x, h: np.convolve(x, h).tolist(), quiet=True, strict=False)
    assert check.exercise("00.1", lambda f, d, sr: np.sin(2 * np.pi * f * np.arange(round(d * sr)) / sr)
                          .astype(np.float32), quiet=True, strict=False)
