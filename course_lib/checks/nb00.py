"""Checks for 00_welcome: the demonstration exercise."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Case, compare_arrays, exercise_check

__all__ = ["reference_peak_dbfs", "reference_sine"]


def reference_sine(frequency_hz: float, duration_s: float, sample_rate: int) -> np.ndarray:
    """A unit-amplitude sine: ``sin(2π f n / sr)`` for ``n = 0 .. round(duration·sr) - 1``."""
    n = np.arange(int(round(duration_s * sample_rate)))
    return np.sin(2 * np.pi * frequency_hz * n / sample_rate)


@exercise_check("00.1", "a sine tone as samples")
def _check_sine(candidate):
    for f, d, sr in [(440.0, 0.01, 8000), (1000.0, 0.5, 16000), (3.0, 1.0, 50), (100.0, 0.0, 8000)]:
        case = Case(f"frequency_hz={f}, duration_s={d}, sample_rate={sr}")
        got = case.call(candidate, f, d, sr)
        expected = reference_sine(f, d, sr)
        if hasattr(got, "__len__") and len(got) != len(expected):
            case.fail(f"{len(got)} samples, expected round(duration_s * sample_rate) = {len(expected)}")
        compare_arrays(case, got, expected, atol=1e-6, rtol=0)
        yield case


def reference_peak_dbfs(x: np.ndarray) -> float:
    """Peak level in dB relative to full scale: ``20·log10(max |x|)``."""
    return float(20 * np.log10(np.max(np.abs(x))))


@exercise_check("00.2", "peak level in dBFS")
def _check_peak(candidate):
    from course_lib.checks import compare_scalar

    rng = np.random.default_rng(0)
    for description, x in [("a full-scale sine", reference_sine(440.0, 0.01, 8000)),
                           ("a half-scale square wave", 0.5 * np.sign(reference_sine(5, 1, 100) + 1e-9)),
                           ("noise with a negative peak", np.append(0.1 * rng.standard_normal(99), -0.9))]:
        case = Case(description)
        got = case.call(candidate, x)
        expected = reference_peak_dbfs(x)
        if got is not None and np.ndim(got) == 0 and np.isclose(float(got), 10 * np.log10(np.max(np.abs(x))), atol=1e-6) \
                and not np.isclose(expected, 0):
            case.fail("looks like 10·log10: amplitude ratios use 20·log10 (power ratios use 10·log10)")
        compare_scalar(case, got, expected, atol=1e-6)
        yield case
