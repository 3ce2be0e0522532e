"""Checks for 01_sound_as_signal: aliasing, quantisation, mixing at a target SNR.

Each check compares the student's function with :mod:`course_lib.dsp` on several inputs and, for
the classic mistakes, gives a hint that names the mistake rather than only the wrong number.

Notebook: 01_sound_as_signal
"""

from __future__ import annotations

import numpy as np

from course_lib import dsp
from course_lib.checks import (Case, as_numpy, compare_arrays, compare_scalar, exercise_check,
                               reject_known_mistakes)

__all__: list[str] = []  # checks register themselves; nothing to import from here


@exercise_check("01.1", "aliased frequency")
def _check_aliased_frequency(candidate):
    cases = [(1000.0, 8000), (3999.0, 8000), (5000.0, 8000), (7000.0, 8000),
             (8000.0, 8000), (9500.0, 8000), (17000.0, 16000), (440.0, 44100), (13000.0, 8000)]
    for f, sr in cases:
        case = Case(f"f_hz={f}, sr={sr}")
        got = case.call(candidate, f, sr)
        expected = dsp.aliased_frequency(f, sr)
        got_arr = as_numpy(got)
        value = (float(got_arr.ravel()[0]) if got_arr is not None and got_arr.size == 1
                 and got_arr.dtype.kind in "biuf" else None)
        if value is not None and not np.isclose(value, expected, atol=1e-6):
            if np.isclose(value, abs(sr - f)) and f > sr:
                case.fail(f"got {value:g} Hz = |sr - f|, expected {expected:g} Hz: subtracting sr once "
                          "is not enough above 1.5*sr; the alias is the distance from f to the "
                          "*nearest* multiple of sr, |f - k*sr| with k = round(f / sr).")
            if np.isclose(value, f % sr) and f % sr > sr / 2:
                case.fail(f"got {value:g} Hz = f mod sr, expected {expected:g} Hz. A *real* tone at "
                          "f and at sr - f give the same samples (up to a sign): fold frequencies above "
                          "sr/2 back down (the answer always lies in [0, sr/2]).")
            if np.isclose(value, f % (sr / 2)):
                case.fail(f"got {value:g} Hz = f mod (sr/2), expected {expected:g} Hz: folding is a "
                          "*mirror* at sr/2, not a wrap-around. Going up past sr/2 the alias comes back "
                          "down: it is the distance from f to the nearest multiple of sr, |f - k*sr|.")
            if np.isclose(value, sr - f) or np.isclose(value, f - sr / 2):
                case.fail(f"got {value:g} Hz, expected {expected:g} Hz: the alias is the distance "
                          "from f to the *nearest* multiple of sr, |f - k*sr|.")
            if value < 0:
                case.fail(f"got {value:g} Hz, expected {expected:g} Hz: a negative frequency sounds like "
                          "its positive twin (a real tone is cos, and cos(-x) = cos(x)); return the "
                          "distance |f - k*sr|, which is never negative.")
            if value > sr / 2 + 1e-9:
                case.fail(f"got {value:g} Hz, above the Nyquist frequency sr/2 = {sr / 2:g} Hz: a sampled "
                          "real tone always appears in [0, sr/2]")
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
        delta = 2.0 / 2**bits
        top = 1 - delta / 2
        reject_known_mistakes(case, got, expected, {
            f"the step is half what it should be: 2**bits levels share the full-scale range [-1, 1], "
            f"which is 2 wide, so delta = 2 / 2**bits = {delta:g} (not 1 / 2**bits)":
                lambda: np.clip((np.floor(x / (delta / 2)) + 0.5) * delta / 2, -(1 - delta / 4), 1 - delta / 4),
            f"delta = 2 / (2**bits - 1) spaces the levels as if both ends (-1 and +1) were levels; a "
            f"mid-rise quantiser has 2**bits steps of delta = 2 / 2**bits = {delta:g}":
                lambda: np.clip((np.floor(x / (2 / (2**bits - 1))) + 0.5) * 2 / (2**bits - 1), -1, 1),
            "int() / astype(int) truncates toward zero, so negative samples land one step too high: "
            "use np.floor":
                lambda: np.clip((np.trunc(x / delta) + 0.5) * delta, -top, top),
            f"clipped to +-1, which is not a level: clip to the outermost levels +-(1 - delta/2) = "
            f"+-{top:g}":
                lambda: np.clip((np.floor(x / delta) + 0.5) * delta, -1, 1),
        }, atol=1e-9, rtol=0)
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.shape == expected.shape:
            got_arr = got_arr.astype(np.float64)
            levels = np.unique(got_arr)
            if np.abs(got_arr).max() > 1.0 + 1e-9:
                case.fail(f"values reach {np.abs(got_arr).max():.4g}: clip to the outermost levels "
                          f"+-(1 - delta/2) = +-{top:g}.")
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
    hum = 0.5 + np.sin(2 * np.pi * 50 * np.arange(4000) / 16000)  # mains hum with a DC offset
    inputs = [(20.0, "white noise"), (0.0, "white noise"), (-6.0, "white noise"), (3.5, "white noise"),
              (10.0, "hum with a DC offset")]
    for target, kind in inputs:
        noise = rng.standard_normal(x.size) * rng.uniform(0.1, 3.0) if kind == "white noise" else hum
        case = Case(f"a 440 Hz tone and {kind} of the same length, snr_db={target}")
        got = case.call(candidate, x.copy(), noise.copy(), target)
        expected = dsp.add_noise(x, noise, target)
        p_x, p_n = np.mean(x**2), np.mean(noise**2)
        gain = np.sqrt(p_x / (p_n * 10 ** (target / 10)))
        reject_known_mistakes(case, got, expected, {
            "np.var / np.std subtract the mean, so they miss the noise's DC offset: the power of a "
            "signal is its mean square, np.mean(x**2)":
                lambda: x + np.sqrt(np.var(x) / (np.var(noise) * 10 ** (target / 10))) * noise,
            "you scaled the signal instead of the noise: keep x as it is and return x + g * noise":
                lambda: np.sqrt(p_n * 10 ** (target / 10) / p_x) * x + noise,
            "you returned only the scaled noise g * noise: return the mix x + g * noise":
                lambda: gain * noise,
            "the gain multiplies the noise *power*: the noise samples (amplitudes) scale by the "
            "square root of the power ratio, g = sqrt(P_x / (P_noise * 10**(snr_db / 10)))":
                lambda: x + gain**2 * noise,
        }, atol=1e-9, rtol=1e-9)
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.shape == x.shape and got_arr.dtype.kind in "fiu":
            achieved = dsp.snr_db(x, got_arr.astype(np.float64))
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
