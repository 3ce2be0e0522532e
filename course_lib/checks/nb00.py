"""Checks for 00_welcome: the demonstration exercises (a sine tone, a peak level in dBFS).

Notebook: 00_welcome
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import Case, as_numpy, compare_arrays, compare_scalar, exercise_check, reject_known_mistakes

__all__ = ["reference_peak_dbfs", "reference_sine"]


def reference_sine(frequency_hz: float, duration_s: float, sample_rate: int) -> np.ndarray:
    """A unit-amplitude sine: ``sin(2π f n / sr)`` for ``n = 0 .. round(duration·sr) - 1``."""
    n = np.arange(int(round(duration_s * sample_rate)))
    return np.sin(2 * np.pi * frequency_hz * n / sample_rate)


_SINE_CASES = [
    (440.0, 0.01, 8000),
    (1000.0, 0.5, 16000),
    (3.0, 1.0, 50),
    (100.0, 0.0, 8000),
    # 0.29 * 100 is 28.999999999999996 in floating point: int() truncates it to 28 samples.
    (3.0, 0.29, 100),
    # np.arange(0, 0.07, 0.01) has 8 elements, not 7: a float step overshoots.
    (5.0, 0.07, 100),
]


@exercise_check("00.1", "a sine tone as samples")
def _check_sine(candidate):
    for f, d, sr in _SINE_CASES:
        case = Case(f"frequency_hz={f}, duration_s={d}, sample_rate={sr}")
        got = case.call(candidate, f, d, sr)
        expected = reference_sine(f, d, sr)
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.ndim == 1 and got_arr.size != expected.size:
            if got_arr.size == int(d * sr):
                case.fail(f"{got_arr.size} samples, expected {expected.size}: duration_s * sample_rate = "
                          f"{d * sr!r} in floating point and int() truncates it; use "
                          "int(round(duration_s * sample_rate))")
            if got_arr.size == np.arange(0, d, 1 / sr).size:
                case.fail(f"{got_arr.size} samples, expected {expected.size}: np.arange with a float step "
                          "(1 / sample_rate) can overshoot by one sample; build integer sample indices "
                          "n = np.arange(round(duration_s * sample_rate)) and use t = n / sample_rate")
            case.fail(f"{got_arr.size} samples, expected round(duration_s * sample_rate) = {expected.size}")
        n = np.arange(expected.size)
        reject_known_mistakes(case, got, expected, {
            "this is a cosine: the exercise asks for sin(2*pi*f*n/sr), which starts at 0":
                lambda: np.cos(2 * np.pi * f * n / sr),
            "the phase is missing its 2*pi: sin() takes radians, and one cycle is 2*pi radians "
            "(sin(2 * np.pi * f * t))":
                lambda: np.sin(f * n / sr),
            "np.linspace(0, duration_s, N) includes the end point, so the samples are "
            "duration_s / (N - 1) apart instead of 1 / sample_rate: use t = np.arange(N) / sample_rate":
                lambda: np.sin(2 * np.pi * f * np.linspace(0, d, expected.size)),
            "the sample index n is used as time in seconds: divide by the sample rate, t = n / sample_rate":
                lambda: np.sin(2 * np.pi * f * n),
            "the phase uses degrees (360 per cycle): np.sin takes radians (2*pi per cycle)":
                lambda: np.sin(360 * f * n / sr),
        }, atol=1e-6, rtol=0)
        compare_arrays(case, got, expected, atol=1e-6, rtol=0)
        yield case


def reference_peak_dbfs(x: np.ndarray) -> float:
    """Peak level in dB relative to full scale: ``20·log10(max |x|)``."""
    return float(20 * np.log10(np.max(np.abs(x))))


@exercise_check("00.2", "peak level in dBFS")
def _check_peak(candidate):
    rng = np.random.default_rng(0)
    for description, x in [("a full-scale sine", reference_sine(440.0, 0.01, 8000)),
                           ("a half-scale square wave", 0.5 * np.sign(reference_sine(5, 1, 100) + 1e-9)),
                           ("noise with a negative peak", np.append(0.1 * rng.standard_normal(99), -0.9)),
                           ("a quiet tone (peak 0.05)", 0.05 * reference_sine(100.0, 0.05, 8000))]:
        case = Case(description)
        got = case.call(candidate, x.copy())
        expected = reference_peak_dbfs(x)
        peak = float(np.max(np.abs(x)))
        rms = float(np.sqrt(np.mean(x**2)))
        reject_known_mistakes(case, got, expected, {
            "looks like 10·log10: amplitude ratios use 20·log10 (power ratios use 10·log10)":
                10 * np.log10(peak),
            "np.log is the natural logarithm: decibels use np.log10": 20 * np.log(peak),
            "the sign is flipped: a signal below full scale has a negative level in dBFS, "
            "20·log10(peak) (not -20·log10 or 20·log10(1 / peak))": -20 * np.log10(peak),
            "that is the RMS level: the peak level uses the largest absolute sample, max(|x|)":
                20 * np.log10(rms),
            "max(x) misses a negative peak: take the largest *absolute* value, np.max(np.abs(x))":
                lambda: 20 * np.log10(float(np.max(x))),
            "that is the peak as a ratio, not in dB: convert with 20·log10": peak,
        }, atol=1e-6, rtol=0)
        compare_scalar(case, got, expected, atol=1e-6)
        yield case
