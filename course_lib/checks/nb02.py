"""Checks for 02_fourier_and_convolution: the DFT matrix, FFT convolution, the Toeplitz matrix.

Notebook: 02_fourier_and_convolution
"""

from __future__ import annotations

import numpy as np

from course_lib import dsp
from course_lib.checks import (Case, as_numpy, compare_arrays, exercise_check, matches,
                               reject_known_mistakes)

__all__: list[str] = []  # checks register themselves; nothing to import from here


@exercise_check("02.1", "DFT matrix")
def _check_dft_matrix(candidate):
    for n in (1, 2, 4, 7, 16):
        case = Case(f"n={n}")
        got = case.call(candidate, n)
        expected = dsp.dft_matrix(n)
        k = np.arange(n)
        got_arr = as_numpy(got)
        if got_arr is not None and n >= 2 and not np.iscomplexobj(got_arr) \
                and matches(got_arr, expected.real, atol=1e-8):
            case.fail("only the real part (cosines) is there: the DFT matrix is complex, "
                      "use np.exp(-2j * np.pi * ...).")
        reject_known_mistakes(case, got, expected, {
            "you built the *inverse* transform's kernel, exp(+2j*pi*k*m/n): the "
            "forward DFT has a minus sign in the exponent.": lambda: np.conj(expected),
            "your matrix is normalised by 1/sqrt(n); numpy.fft.fft (and this exercise) use the "
            "unnormalised DFT: no 1/n or 1/sqrt(n) factor.": lambda: expected / np.sqrt(n),
            "your matrix is normalised by 1/n; numpy.fft.fft (and this exercise) use the "
            "unnormalised DFT: the 1/n belongs to the inverse.": lambda: expected / n,
            "the exponent is not divided by n: W[k, m] = exp(-2j*pi*k*m/n) (with k*m alone every "
            "entry is exp(-2j*pi*integer) = 1)": lambda: np.exp(-2j * np.pi * np.outer(k, k)),
            "the indices start at 1: k and m run from 0 to n - 1 (np.arange(n)), so row 0 and "
            "column 0 are all ones": lambda: np.exp(-2j * np.pi * np.outer(k + 1, k + 1) / n),
            "the exponent is missing its 2: one full turn is 2*pi, W[k, m] = exp(-2j*pi*k*m/n)":
                lambda: np.exp(-1j * np.pi * np.outer(k, k) / n),
            "sin and cos are swapped or the imaginary unit is missing: build the complex "
            "exponential np.exp(-2j * np.pi * k * m / n)":
                lambda: np.sin(2 * np.pi * np.outer(k, k) / n) + 1j * np.cos(2 * np.pi * np.outer(k, k) / n),
        }, atol=1e-8, rtol=0)
        compare_arrays(case, got, expected, atol=1e-8, rtol=0, name="W",
                       factors={"1/n": 1 / n, "1/sqrt(n)": 1 / np.sqrt(n)})
        yield case
    case = Case("n=8, applied to a random vector x (W @ x vs np.fft.fft(x))")
    x = np.random.default_rng(0).standard_normal(8)
    W = case.call(candidate, 8)
    compare_arrays(case, np.asarray(W) @ x, np.fft.fft(x), atol=1e-8, rtol=0, name="W @ x")
    yield case


@exercise_check("02.2", "linear convolution by FFT")
def _check_fft_convolve(candidate):
    rng = np.random.default_rng(1)
    # (5, 5) and (7, 2) give odd output lengths: np.fft.irfft without n returns one sample less.
    for n_x, n_h in ((8, 3), (100, 31), (5, 5), (1, 4), (257, 64), (7, 2)):
        x, h = rng.standard_normal(n_x), rng.standard_normal(n_h)
        case = Case(f"len(x)={n_x}, len(h)={n_h}")
        got = case.call(candidate, x.copy(), h.copy())
        expected = np.convolve(x, h)
        n = expected.size
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.ndim == 1:
            if got_arr.size == n - 1 and n % 2 == 1 and matches(
                    got_arr, np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n)), atol=1e-9):
                case.fail(f"{got_arr.size} samples instead of {n}: np.fft.irfft without n assumes an "
                          "even length, 2 * (n_bins - 1), and drops the last sample of an odd-length "
                          f"result. Pass the length: np.fft.irfft(X * H, n={n}) (n = len(x) + len(h) - 1).")
            if got_arr.size == max(n_x, n_h) != n:
                case.fail(f"{got_arr.size} samples instead of len(x) + len(h) - 1 = "
                          f"{n}: multiplying length-{max(n_x, n_h)} DFTs gives the "
                          "*circular* convolution. Zero-pad both signals to "
                          "len(x) + len(h) - 1 before the FFT.")
            if got_arr.size > n and matches(got_arr[:n], expected, atol=1e-9) \
                    and np.allclose(got_arr[n:], 0, atol=1e-9):
                case.fail(f"{got_arr.size} samples instead of {n}, the extra ones zero: a longer FFT "
                          "(a power of two, say) is fine, but trim the result to len(x) + len(h) - 1.")
            if got_arr.shape == expected.shape and np.iscomplexobj(got_arr):
                case.fail("the result is complex: for real x and h take the real part of the "
                          "inverse FFT (or use np.fft.rfft / np.fft.irfft).")
        reject_known_mistakes(case, got, expected, {
            "np.abs of the inverse FFT throws away the sign of the samples: take its real part "
            "(.real), or use np.fft.rfft / np.fft.irfft":
                lambda: np.abs(np.fft.ifft(np.fft.fft(x, n) * np.fft.fft(h, n))),
        }, atol=1e-9, rtol=1e-9)
        compare_arrays(case, got, expected, atol=1e-9, rtol=1e-9, name="x * h",
                       factors={"n = len(x) + len(h) - 1": n, "1/n": 1 / n})
        yield case


@exercise_check("02.3", "convolution as a Toeplitz matrix")
def _check_convolution_matrix(candidate):
    rng = np.random.default_rng(2)
    for n_h, n_input in ((3, 5), (1, 4), (4, 4), (5, 2), (7, 20)):
        h = rng.standard_normal(n_h)
        case = Case(f"len(h)={n_h}, n_input={n_input}")
        got = case.call(candidate, h.copy(), n_input)
        expected = dsp.convolution_matrix(h, n_input)
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.shape == (n_input, n_input) != expected.shape:
            circulant = np.stack([np.roll(np.resize(np.r_[h, np.zeros(max(0, n_input - n_h))], n_input), j)
                                  for j in range(n_input)], axis=1)
            if n_h <= n_input and matches(got_arr, circulant, atol=1e-12):
                case.fail(f"a square circulant matrix (np.roll wraps h around): the full convolution "
                          f"has n_input + len(h) - 1 = {expected.shape[0]} outputs, and nothing wraps; "
                          "entries with i - j outside 0..len(h)-1 are zero.")
            case.fail(f"shape {got_arr.shape}, expected ({n_input} + {n_h} - 1, {n_input}) = "
                      f"{expected.shape}: the full convolution has n_input + len(h) - 1 outputs "
                      "(the filter runs off both ends of x), so T has that many rows.")
        shifted = np.vstack([np.zeros((1, n_input)), expected[:-1]])
        reject_known_mistakes(case, got, expected, {
            "your matrix computes a *correlation* (the filter is not flipped): "
            "convolution needs T[i, j] = h[i - j].": lambda: dsp.convolution_matrix(h[::-1], n_input),
            "column j is one row too low: T[j, j] = h[0] (the output at i = j is the first to see x[j]), "
            "so column j holds h in rows j .. j + len(h) - 1": lambda: shifted,
        }, atol=1e-12, rtol=0)
        compare_arrays(case, got, expected, atol=1e-12, rtol=0, name="T")
        yield case
