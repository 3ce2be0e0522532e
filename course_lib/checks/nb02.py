"""Checks for 02_fourier_and_convolution: the DFT matrix, FFT convolution, the Toeplitz matrix.

Notebook: 02_fourier_and_convolution
"""

from __future__ import annotations

import numpy as np

from course_lib import dsp
from course_lib.checks import Case, compare_arrays, exercise_check

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _close(got, expected, atol: float = 1e-8) -> bool:
    got = np.asarray(got)
    return got.shape == np.shape(expected) and bool(np.allclose(got, expected, atol=atol))


@exercise_check("02.1", "DFT matrix")
def _check_dft_matrix(candidate):
    for n in (1, 2, 4, 7, 16):
        case = Case(f"n={n}")
        got = case.call(candidate, n)
        expected = dsp.dft_matrix(n)
        if got is not None and n > 2 and _close(got, np.conj(expected)):
            case.fail("you built the *inverse* transform's kernel, exp(+2j*pi*k*m/n): the "
                      "forward DFT has a minus sign in the exponent.")
        if got is not None and n >= 2:
            if _close(got, expected / np.sqrt(n)) or _close(got, expected / n):
                case.fail("your matrix is normalised; numpy.fft.fft (and this exercise) use the "
                          "unnormalised DFT: no 1/n or 1/sqrt(n) factor.")
            if _close(np.real(got), expected.real) and not np.iscomplexobj(got):
                case.fail("only the real part (cosines) is there: the DFT matrix is complex, "
                          "use np.exp(-2j * np.pi * ...).")
        compare_arrays(case, got, expected, atol=1e-8, rtol=0, name="W")
        yield case
    case = Case("n=8, applied to a random vector x (W @ x vs np.fft.fft(x))")
    x = np.random.default_rng(0).standard_normal(8)
    W = case.call(candidate, 8)
    compare_arrays(case, np.asarray(W) @ x, np.fft.fft(x), atol=1e-8, rtol=0, name="W @ x")
    yield case


@exercise_check("02.2", "linear convolution by FFT")
def _check_fft_convolve(candidate):
    rng = np.random.default_rng(1)
    for n_x, n_h in ((8, 3), (100, 31), (5, 5), (1, 4), (257, 64)):
        x, h = rng.standard_normal(n_x), rng.standard_normal(n_h)
        case = Case(f"len(x)={n_x}, len(h)={n_h}")
        got = case.call(candidate, x.copy(), h.copy())
        expected = np.convolve(x, h)
        if got is not None and hasattr(got, "__len__"):
            got_arr = np.asarray(got)
            if got_arr.shape == (max(n_x, n_h),) != expected.shape:
                case.fail(f"{got_arr.size} samples instead of len(x) + len(h) - 1 = "
                          f"{expected.size}: multiplying length-{max(n_x, n_h)} DFTs gives the "
                          "*circular* convolution. Zero-pad both signals to "
                          "len(x) + len(h) - 1 before the FFT.")
            if got_arr.shape == expected.shape and np.iscomplexobj(got_arr):
                case.fail("the result is complex: for real x and h take the real part of the "
                          "inverse FFT (or use np.fft.rfft / np.fft.irfft).")
        compare_arrays(case, got, expected, atol=1e-9, rtol=1e-9, name="x * h")
        yield case


@exercise_check("02.3", "convolution as a Toeplitz matrix")
def _check_convolution_matrix(candidate):
    rng = np.random.default_rng(2)
    for n_h, n_input in ((3, 5), (1, 4), (4, 4), (5, 2), (7, 20)):
        h = rng.standard_normal(n_h)
        case = Case(f"len(h)={n_h}, n_input={n_input}")
        got = case.call(candidate, h.copy(), n_input)
        expected = dsp.convolution_matrix(h, n_input)
        if got is not None and n_h > 1:
            if _close(got, dsp.convolution_matrix(h[::-1], n_input)):
                case.fail("your matrix computes a *correlation* (the filter is not flipped): "
                          "convolution needs T[i, j] = h[i - j].")
        compare_arrays(case, got, expected, atol=1e-12, rtol=0, name="T")
        yield case
