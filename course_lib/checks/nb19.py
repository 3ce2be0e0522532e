"""Checks for 19_deploy_and_scale: uint8 affine quantisation of a tensor, and latency per second of
audio measured with warm-up excluded and the median of repeats.

19.1 compares with ``course_lib.deploy.quantize_affine`` (ONNX Runtime's uint8 rule) on vectors with
both signs, only positive or only negative values, all zeros, 4 bits and a 2-D array, and names the
classic slips: a range that leaves out 0, 2^b instead of 2^b - 1 steps, truncation instead of
rounding, a symmetric range, the zero point's sign, a zero point left unrounded, rounding
``(x - r_min) / scale`` instead of adding the integer zero point after rounding.

19.2 times a fake ``run`` with a fake ``clock`` (each call advances it by a set duration: slow
warm-up calls, one outlier) and names: the warm-up timed, the mean or the minimum instead of the
median, no division by the audio's duration (or a multiplication), ``time.perf_counter`` used
instead of the ``clock`` argument, ``run`` called the wrong number of times.

Notebook: 19_deploy_and_scale
"""

from __future__ import annotations

import statistics

import numpy as np

from course_lib.checks import Case, as_numpy, exercise_check
from course_lib.deploy import measure_latency, quantize_affine

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _quantize_cases() -> list[tuple[str, np.ndarray, int]]:
    rng = np.random.default_rng(19)
    return [
        ("12 values of both signs, 8 bits", rng.normal(0.0, 1.0, 12), 8),
        ("only positive values (the range must still contain 0), 8 bits", rng.uniform(0.5, 3.0, 10), 8),
        ("only negative values, 8 bits", -rng.uniform(0.2, 1.7, 9), 8),
        ("all zeros (an empty range: scale 1.0)", np.zeros(5), 8),
        ("both signs, 4 bits", rng.normal(0.3, 2.0, 16), 4),
        ("a 3 x 4 weight matrix, 8 bits", rng.normal(0.0, 0.1, (3, 4)), 8),
    ]


def _quantize_mistakes(x: np.ndarray, n_bits: int) -> dict[str, tuple[np.ndarray, float, float]]:
    q_max = 2 ** n_bits - 1
    lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)

    def rule(r_min, r_max, steps=q_max, rounding=np.rint, zp_sign=1.0, round_zp=True, offset=False):
        scale = (r_max - r_min) / steps if r_max > r_min else 1.0
        zp = zp_sign * (-r_min / scale)
        zp = float(np.rint(zp)) if round_zp else zp
        q = rounding((x - r_min) / scale) if offset else rounding(x / scale) + zp
        return np.clip(q, 0, q_max), scale, zp

    sym = max(abs(x.min()), abs(x.max()))
    sym_scale = 2 * sym / q_max if sym > 0 else 1.0
    sym_zp = float(np.rint(q_max / 2))
    return {
        "the range must contain 0 (r_min = min(x.min(), 0), r_max = max(x.max(), 0)) so that 0.0, zero padding "
        "and ReLU's zeros are exact": rule(x.min(), x.max()),
        "2^b - 1 steps between r_min and r_max (b bits give the integers 0 ... 2^b - 1): "
        "scale = (r_max - r_min) / (2^b - 1), not / 2^b": rule(lo, hi, steps=q_max + 1),
        "the values were truncated (astype(int) or np.floor): round to the nearest step (np.rint)":
            rule(lo, hi, rounding=np.floor),
        "a symmetric range (±max|x|, zero point in the middle) wastes half the codes on values that never "
        "occur: use the asymmetric range [r_min, r_max]": (np.clip(np.rint(x / sym_scale) + sym_zp, 0, q_max),
                                                          sym_scale, sym_zp),
        "the zero point has the wrong sign: 0.0 maps to zero_point = -r_min / scale (a positive integer)":
            rule(lo, hi, zp_sign=-1.0),
        "the zero point must be an integer (np.rint(-r_min / scale)): otherwise 0.0 has no exact code":
            rule(lo, hi, round_zp=False),
        "round x / scale first, then add the integer zero point (ONNX Runtime's QuantizeLinear: "
        "round(x / scale) + zero_point); rounding (x - r_min) / scale puts some values one step off":
            rule(lo, hi, offset=True),
    }


@exercise_check("19.1", "uint8 affine quantisation: codes, scale, zero point")
def _check_quantize_affine(candidate):
    for description, x, n_bits in _quantize_cases():
        case = Case(description)
        got = case.call(candidate, x.copy(), n_bits)
        q_ref, scale_ref, zp_ref = quantize_affine(x, n_bits)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            case.fail(f"return a triple (q, scale, zero_point); got {type(got).__name__}")
        q, scale, zero_point = got
        q_arr = as_numpy(q)
        try:
            scale, zero_point = float(scale), float(zero_point)
        except (TypeError, ValueError):
            case.fail(f"scale and zero_point should be numbers; got {scale!r}, {zero_point!r}")
        if q_arr is None or q_arr.shape != x.shape:
            case.fail(f"q should be an array of x's shape {x.shape}; got "
                      f"{'nothing usable' if q_arr is None else q_arr.shape}")
        right = (np.array_equal(q_arr, q_ref) and abs(scale - scale_ref) <= 1e-9 * max(1.0, scale_ref)
                 and zero_point == zp_ref)
        if right:
            yield case
            continue
        for hint, (wrong_q, wrong_scale, wrong_zp) in _quantize_mistakes(x, n_bits).items():
            same_as_right = (np.array_equal(wrong_q, q_ref) and abs(wrong_scale - scale_ref) <= 1e-12
                             and wrong_zp == zp_ref)
            if (not same_as_right and np.allclose(q_arr, wrong_q, atol=1e-6)
                    and abs(scale - wrong_scale) <= 1e-9 * max(1.0, abs(wrong_scale))
                    and abs(zero_point - wrong_zp) <= 1e-6):
                case.fail(hint)
        if abs(scale - scale_ref) > 1e-9 * max(1.0, scale_ref):
            case.fail(f"scale = {scale:.6g}, expected {scale_ref:.6g} = (r_max - r_min) / (2^{n_bits} - 1) with "
                      f"r_min = {min(x.min(), 0.0):.4g}, r_max = {max(x.max(), 0.0):.4g}")
        if zero_point != zp_ref:
            case.fail(f"zero_point = {zero_point:g}, expected {zp_ref} = rint(-r_min / scale)")
        if q_arr.min() < 0 or q_arr.max() > 2 ** n_bits - 1:
            case.fail(f"codes outside 0 ... {2 ** n_bits - 1}: clip them (np.clip)")
        bad = np.argwhere(q_arr != q_ref)[0]
        at = tuple(int(i) for i in bad)
        case.fail(f"q{list(at)} = {q_arr[at]:g}, expected {q_ref[at]} (x = {x[at]:.6g})")


class _FakeTiming:
    """A clock and a ``run`` that advances it by set durations, counting the calls."""

    def __init__(self, durations: list[float]) -> None:
        self.durations, self.now, self.calls = list(durations), 1000.0, 0

    def clock(self) -> float:
        return self.now

    def run(self) -> None:
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


def _latency_cases() -> list[tuple[str, list[float], float, int, int]]:
    return [
        ("2 slow warm-up calls, 5 timed calls with one outlier, 1 s of audio",
         [0.9, 0.3, 0.010, 0.012, 0.011, 0.200, 0.013], 1.0, 2, 5),
        ("1 warm-up call, 4 timed calls (an even count: the median is the mean of the middle two), 2 s of audio",
         [0.5, 0.020, 0.030, 0.026, 0.090], 2.0, 1, 4),
        ("no warm-up, 3 timed calls, 0.5 s of audio", [0.004, 0.003, 0.100], 0.5, 0, 3),
        ("3 warm-up calls, 7 timed calls, 1.5 s of audio",
         [2.0, 0.8, 0.4, 0.05, 0.07, 0.06, 0.30, 0.055, 0.065, 0.058], 1.5, 3, 7),
    ]


@exercise_check("19.2", "latency per second of audio: warm-up excluded, median of repeats")
def _check_latency(candidate):
    for description, durations, audio_s, n_warmup, n_repeats in _latency_cases():
        case = Case(description)
        fake = _FakeTiming(durations)
        got = case.call(candidate, fake.run, audio_s, n_warmup, n_repeats, clock=fake.clock)
        reference = _FakeTiming(durations)
        expected = measure_latency(reference.run, audio_s, n_warmup, n_repeats, clock=reference.clock)
        try:
            value = float(got)
        except (TypeError, ValueError):
            case.fail(f"return one number (seconds per second of audio); got {type(got).__name__}")
        if abs(value - expected) <= 1e-9:
            if fake.calls != n_warmup + n_repeats:
                case.fail(f"run was called {fake.calls} times; expected n_warmup + n_repeats = {n_warmup + n_repeats}")
            yield case
            continue
        if fake.calls != n_warmup + n_repeats:
            case.fail(f"run was called {fake.calls} times; expected n_warmup + n_repeats = {n_warmup + n_repeats} "
                      f"({n_warmup} untimed, then {n_repeats} timed one by one)")
        timed, all_calls = durations[n_warmup:n_warmup + n_repeats], durations[:n_warmup + n_repeats]
        mistakes = {
            "the warm-up calls were timed too: time only the n_repeats calls after the warm-up":
                statistics.median(all_calls) / audio_s,
            "the mean is pulled up by one slow call (an interrupt, a page fault): report the median of the "
            "repeats (a timed loop's total / n_repeats is the mean too)": statistics.fmean(timed) / audio_s,
            "the minimum is the luckiest call, not a typical one: report the median of the repeats":
                min(timed) / audio_s,
            "seconds per call, not per second of audio: divide by audio_seconds": statistics.median(timed),
            "multiplied by audio_seconds: the real-time factor is seconds of compute / seconds of audio":
                statistics.median(timed) * audio_s,
            "the warm-up calls were timed and averaged: exclude them and take the median":
                statistics.fmean(all_calls) / audio_s,
        }
        for hint, wrong in mistakes.items():
            if abs(value - wrong) <= 1e-9 and abs(wrong - expected) > 1e-9:
                case.fail(hint)
        if 0 <= value < 1e-3 * expected:
            case.fail(f"got {value:.3g}, far below any call's duration: time with the `clock` argument "
                      "(clock() before and after each call), not time.perf_counter directly")
        case.fail(f"got {value:.6g} s per second of audio, expected {expected:.6g} (median of the timed calls "
                  f"{timed} / {audio_s} s)")
