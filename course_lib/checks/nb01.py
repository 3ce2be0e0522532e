"""Checks for 01_sound_as_signal: aliasing, quantisation, mixing at a target SNR.

Each check compares the student's function with :mod:`course_lib.dsp` on several inputs and, for
the classic mistakes, gives a hint that names the mistake rather than only the wrong number.

Notebook: 01_sound_as_signal
"""

from __future__ import annotations

import numpy as np

from course_lib import dsp
from course_lib.checks import Case, compare_arrays, compare_scalar, exercise_check

__all__: list[str] = []  # checks register themselves; nothing to import from here


@exercise_check("01.1", "aliased frequency")
def _check_aliased_frequency(candidate):
    cases = [(1000.0, 8000), (3999.0, 8000), (5000.0, 8000), (7000.0, 8000),
             (8000.0, 8000), (9500.0, 8000), (17000.0, 16000), (440.0, 44100)]
    for f, sr in cases:
        case = Case(f"f_hz={f}, sr={sr}")
        got = case.call(candidate, f, sr)
        expected = dsp.aliased_frequency(f, sr)
        try:
            value = float(got)
        except (TypeError, ValueError):
            value = None
        if value is not None and not np.isclose(value, expected, atol=1e-6):
            if np.isclose(value, f % sr) and f % sr > sr / 2:
                case.fail(f"got {value:g} Hz = f mod sr, expected {expected:g} Hz. A *real* tone at "
                          "f and at sr - f give the same samples (up to a sign): fold frequencies above "
                          "sr/2 back down (the answer always lies in [0, sr/2]).")
            if np.isclose(value, sr - f) or np.isclose(value, f - sr / 2):
                case.fail(f"got {value:g} Hz, expected {expected:g} Hz: the alias is the distance "
                          "from f to the *nearest* multiple of sr, |f - k*sr|.")
        compare_scalar(case, got, expected, atol=1e-6, rtol=0, name="aliased frequency")
        yield case
    case = Case("an array of frequencies [500, 4500, 12000] Hz at sr=8000")
    freqs = np.array([500.0, 4500.0, 12000.0])
    got = case.call(candidate, freqs, 8000)
    compare_arrays(case, got, dsp.aliased_frequency(freqs, 8000), atol=1e-6, rtol=0,
                   name="aliased frequencies (use NumPy operations, not `if`, so arrays work)")
    yield case


@exercise_check("01.2", "uniform mid-rise quantiser")
def _check_quantize(candidate):
    rng = np.random.default_rng(1)
    sine = np.sin(2 * np.pi * 997.3 * np.arange(800) / 8000 + 0.1)
    inputs = [
        ("a full-scale sine, bits=3", sine, 3),
        ("a full-scale sine, bits=8", sine, 8),
        ("uniform noise on [-1, 1], bits=4", rng.uniform(-1, 1, 1000), 4),
        ("values beyond full scale [-1.5, -1, 0, 1, 1.5], bits=2",
         np.array([-1.5, -1.0, 0.0, 1.0, 1.5]), 2),
    ]
    for description, x, bits in inputs:
        case = Case(description)
        got = case.call(candidate, x.copy(), bits)
        expected = dsp.quantize(x, bits)
        if got is not None and np.shape(got) == expected.shape:
            got_arr = np.asarray(got, dtype=np.float64)
            levels = np.unique(got_arr)
            delta = 2.0 / 2**bits
            if np.abs(got_arr).max() > 1.0 + 1e-9:
                case.fail(f"values reach {np.abs(got_arr).max():.4g}: clip to the outermost levels "
                          f"+-(1 - delta/2) = +-{1 - delta / 2:g}.")
            if np.any(np.isclose(levels, 0.0)) and not np.allclose(got_arr, expected, atol=1e-9):
                case.fail("your quantiser has a level at 0, i.e. it is mid-*tread* (rounding). "
                          "This exercise asks for mid-*rise*: (floor(x / delta) + 0.5) * delta, "
                          f"levels at odd multiples of delta/2 (delta = {delta:g}).")
            if levels.size > 2**bits:
                case.fail(f"{levels.size} distinct levels for bits={bits}; an N-bit quantiser has "
                          f"at most 2**N = {2**bits}.")
        compare_arrays(case, got, expected, atol=1e-9, rtol=0, name="quantised signal")
        yield case


@exercise_check("01.3", "mix noise at a target SNR")
def _check_add_noise(candidate):
    rng = np.random.default_rng(2)
    x = np.sin(2 * np.pi * 440 * np.arange(4000) / 16000)
    for target in (20.0, 0.0, -6.0, 3.5):
        noise = rng.standard_normal(x.size) * rng.uniform(0.1, 3.0)
        case = Case(f"a 440 Hz tone and white noise of the same length, snr_db={target}")
        got = case.call(candidate, x.copy(), noise.copy(), target)
        expected = dsp.add_noise(x, noise, target)
        if got is not None and np.shape(got) == x.shape:
            achieved = dsp.snr_db(x, np.asarray(got, dtype=np.float64))
            if target != 0 and np.isclose(achieved, 2 * target, atol=0.05):
                case.fail(f"the result has SNR {achieved:.2f} dB, twice the target: you scaled the "
                          "noise *amplitude* by 10**(-snr_db / 10). Power is amplitude squared, so "
                          "amplitudes scale by 10**(-snr_db / 20).")
            if target != 0 and np.isclose(achieved, target / 2, atol=0.05):
                case.fail(f"the result has SNR {achieved:.2f} dB, half the target: a *power* ratio "
                          "in dB is 10**(snr_db / 10), and 10**(snr_db / 20) is an amplitude ratio.")
            if np.isclose(achieved, -target, atol=0.05) and target != 0:
                case.fail(f"the result has SNR {achieved:.2f} dB, the target with its sign flipped: "
                          "SNR = signal power / noise power, so more SNR means *less* noise.")
        compare_arrays(case, got, expected, atol=1e-9, rtol=1e-9, name="noisy mix")
        yield case
