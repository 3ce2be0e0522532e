"""Checks for 12_keyword_spotting: the false-reject rate at a fixed false-alarm rate, and keyword
detection in a posterior track (causal smoothing, threshold, refractory suppression).

Both compare the student's function with ``course_lib.kws`` on small hand-made inputs with ties,
short streams and events close together, and name the classic slips: for the FRR the threshold
picked on all scores or on the positives, ``>=`` instead of ``>``, an interpolated quantile, the
acceptance rate instead of the rejection rate; for detection no suppression, a centred (non-causal)
or zero-padded moving average, unknown/silence detected as keywords, a refractory period one step
short, or suppression that restarts on every frame above the threshold.

Notebook: 12_keyword_spotting
"""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks import Case, compare_scalar, exercise_check
from course_lib.kws import detect_keywords, frr_at_fa, smooth_posteriors

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _frr_cases() -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(12)
    cases = [
        ("10 negatives, 2 positives, fa_rate=0.1",
         np.array([0.95, 0.35]), np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]), 0.1),
        ("ties among the negatives at the threshold",
         np.array([0.9, 0.6, 0.55, 0.3]), np.array([0.1, 0.2, 0.6, 0.6, 0.7]), 0.2),
        ("a positive exactly at the threshold",
         np.array([0.8, 0.5, 0.2]), np.array([0.1, 0.3, 0.5, 0.4, 0.45, 0.35, 0.25, 0.15]), 0.125),
        ("fa_rate=0: no false alarm allowed",
         np.array([0.99, 0.7, 0.4]), np.array([0.2, 0.6, 0.3, 0.1]), 0.0),
        ("fa_rate=1: every negative may be accepted",
         np.array([0.3, 0.01]), np.array([0.2, 0.6, 0.3]), 1.0),
    ]
    pos, neg = rng.uniform(0.3, 1.0, 40), rng.uniform(0.0, 0.7, 200)
    cases.append(("40 positives, 200 negatives, fa_rate=0.05", pos, neg, 0.05))
    return cases


def _frr_mistakes(pos: np.ndarray, neg: np.ndarray, fa: float) -> dict[str, tuple[float, float]]:
    """Hint -> (frr, threshold) that mistake returns."""
    out: dict[str, tuple[float, float]] = {}
    allowed = int(math.floor(fa * neg.size + 1e-9))
    order = np.sort(neg)[::-1]
    if allowed < neg.size:
        t = order[allowed]
        out["a clip exactly at the threshold was accepted (score >= threshold): with ties the "
            "false-alarm rate then exceeds the target. Accept only scores strictly above it"] = (
            float(np.mean(pos < t)), float(t))
        out["the false-reject rate counts the positives ABOVE the threshold (that is the detection "
            "rate, 1 - FRR): count those at or below it"] = (float(np.mean(pos > t)), float(t))
    if 0 < allowed <= neg.size:
        t = order[allowed - 1]
        out["off by one: the m-th highest negative lets only m - 1 false alarms through; with "
            "m = floor(fa_rate * n_negatives) allowed, the threshold is the (m + 1)-th highest"] = (
            float(np.mean(pos <= t)), float(t))
    t = float(np.quantile(neg, 1 - fa))
    out["np.quantile interpolates between two negative scores: the threshold must be one of the "
        "negatives' scores (the (m + 1)-th highest), so that exactly the allowed number is above it"] = (
        float(np.mean(pos <= t)), t)
    both = np.concatenate([pos, neg])
    t = float(np.quantile(both, 1 - fa))
    out["the threshold was picked on all scores, positives included: the false-alarm rate is "
        "measured on the negatives only"] = (float(np.mean(pos <= t)), t)
    t = float(np.quantile(pos, fa))
    out["the threshold was picked on the positives: a false alarm is a NEGATIVE accepted, so the "
        "threshold comes from the negatives' scores"] = (float(np.mean(pos <= t)), t)
    return out


@exercise_check("12.1", "false-reject rate at a fixed false-alarm rate")
def _check_frr_at_fa(candidate):
    for description, pos, neg, fa in _frr_cases():
        case = Case(description)
        got = case.call(candidate, pos.copy(), neg.copy(), fa)
        expected = frr_at_fa(pos, neg, fa)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            case.fail(f"return a pair (frr, threshold); got {type(got).__name__}")
        try:
            frr, threshold = float(got[0]), float(got[1])
        except (TypeError, ValueError):
            case.fail(f"frr and threshold should be numbers; got {got!r}")
        same = lambda a, b: (a == b) or (math.isinf(a) and math.isinf(b) and a * b > 0) or abs(a - b) < 1e-9
        if same(frr, expected[0]) and same(threshold, expected[1]):
            yield case
            continue
        if fa >= 1.0 and not math.isinf(threshold) and frr > 0:
            case.fail(f"with fa_rate=1 every negative may be accepted, so nothing need be rejected: "
                      f"threshold -inf and FRR 0 (got threshold {threshold}, FRR {frr})")
        if fa == 0.0 and threshold < neg.max():
            case.fail(f"with fa_rate=0 no negative may be accepted: the threshold is the highest "
                      f"negative score, {neg.max()} (got {threshold})")
        for hint, (wrong_frr, wrong_t) in _frr_mistakes(pos, neg, fa).items():
            if same(frr, wrong_frr) and same(threshold, wrong_t) and not (
                    same(wrong_frr, expected[0]) and same(wrong_t, expected[1])):
                case.fail(hint)
        if same(threshold, expected[1]):
            compare_scalar(case, frr, expected[0], atol=1e-9, name="frr (the threshold is right)")
        compare_scalar(case, threshold, expected[1], atol=1e-9, name="threshold")
        yield case


def _track(n_steps: int, n_classes: int, bumps: list[tuple[int, int, int, float]], seed: int) -> np.ndarray:
    """Posteriors: mostly class n_classes-1 ("silence"), with bumps (start, length, class, height)."""
    rng = np.random.default_rng(seed)
    p = np.full((n_steps, n_classes), 0.02) + 0.01 * rng.random((n_steps, n_classes))
    p[:, -1] += 0.8
    for start, length, cls, height in bumps:
        p[start:start + length, cls] += height
        p[start:start + length, -1] -= min(height, 0.8)
    p = np.clip(p, 1e-3, None)
    return p / p.sum(axis=1, keepdims=True)


def _detect_cases() -> list[tuple[str, np.ndarray, int, float, int, list[int]]]:
    return [
        ("one keyword, 6 steps long, smoothing 3, refractory 5",
         _track(20, 5, [(5, 6, 1, 2.0)], 1), 3, 0.5, 5, [0, 1, 2]),
        ("two keywords 4 steps apart, refractory 3 (both detected)",
         _track(24, 5, [(3, 3, 0, 3.0), (10, 3, 2, 3.0)], 2), 1, 0.6, 3, [0, 1, 2]),
        ("a keyword at the very start (smoothing over the outputs so far)",
         _track(12, 4, [(0, 2, 1, 3.0)], 3), 4, 0.3, 6, [0, 1]),
        ("unknown (class 3) is loud but is not a keyword",
         _track(18, 5, [(2, 5, 3, 4.0), (10, 4, 0, 3.0)], 4), 2, 0.5, 2, [0, 1, 2]),
        ("a long keyword: suppression counts from the detection, not from the last frame above threshold",
         _track(30, 4, [(4, 12, 2, 4.0)], 5), 1, 0.5, 6, [0, 1, 2]),
        ("refractory exactly as long as the gap to the next keyword",
         _track(20, 4, [(2, 1, 0, 6.0), (6, 3, 1, 6.0)], 6), 1, 0.5, 4, [0, 1, 2]),
        ("a posterior exactly at the threshold",
         np.array([[0.1, 0.1, 0.8], [0.5, 0.25, 0.25], [0.25, 0.25, 0.5], [0.1, 0.1, 0.8],
                   [0.1, 0.5, 0.4], [0.1, 0.1, 0.8]]), 1, 0.5, 1, [0, 1]),
    ]


def _detect_mistakes(p: np.ndarray, n_smooth: int, threshold: float, refractory: int, keys: list[int]
                     ) -> dict[str, list[tuple[int, int]]]:
    def run(smoothed: np.ndarray, classes: list[int], refr: int, restart: bool = False, strict: bool = False):
        out, blocked = [], -1
        for t in range(smoothed.shape[0]):
            best = classes[int(np.argmax(smoothed[t, classes]))]
            above = smoothed[t, best] > threshold if strict else smoothed[t, best] >= threshold
            if t <= blocked:
                if restart and above:
                    blocked = t + refr
                continue
            if above:
                out.append((t, best))
                blocked = t + refr
        return out

    right = smooth_posteriors(p, n_smooth)
    padded = np.vstack([np.zeros((n_smooth - 1, p.shape[1])), p])
    zero_pad = np.stack([padded[t:t + n_smooth].mean(0) for t in range(p.shape[0])])
    half = n_smooth // 2
    centred = np.stack([p[max(0, t - half): t + n_smooth - half].mean(0) for t in range(p.shape[0])])
    return {
        "no suppression after a detection: one keyword fires on every frame above the threshold. After a "
        "detection, skip the next `refractory` steps": run(right, keys, 0),
        "the unknown/silence classes were detected: take the best of the KEYWORD classes only "
        "(keyword_indices)": run(right, list(range(p.shape[1])), refractory),
        "the moving average is centred, so step t reads future outputs (t + 1, ...): a stream cannot; "
        "average the last n_smooth outputs up to and including t": run(centred, keys, refractory),
        "the smoothing was skipped: average each class over the last n_smooth outputs first":
            run(p, keys, refractory),
        "the first steps were averaged with zeros (divided by n_smooth although fewer outputs exist): "
        "at the start, average the outputs so far": run(zero_pad, keys, refractory),
        "the refractory period is one step short: after a detection at t, steps t + 1 ... t + refractory "
        "are suppressed": run(right, keys, refractory - 1),
        "the suppression restarted on every step above the threshold, so a long keyword silenced the "
        "next one: count `refractory` steps from the detection": run(right, keys, refractory, restart=True),
        "a score exactly at the threshold must count (>= threshold)": run(right, keys, refractory, strict=True),
    }


@exercise_check("12.2", "keyword detection: smoothing, threshold, refractory suppression")
def _check_detect(candidate):
    for description, p, n_smooth, threshold, refractory, keys in _detect_cases():
        case = Case(f"{description} ({p.shape[0]} steps, {p.shape[1]} classes, keywords {keys})")
        got = case.call(candidate, p.copy(), n_smooth, threshold, refractory, list(keys))
        expected = detect_keywords(p, n_smooth, threshold, refractory, keys)
        try:
            got = [(int(t), int(c)) for t, c in got]
        except (TypeError, ValueError):
            case.fail(f"return a list of (step, class) pairs; got {got!r}"[:200])
        if got == expected:
            yield case
            continue
        hints = [hint for hint, wrong in _detect_mistakes(p, n_smooth, threshold, refractory, keys).items()
                 if got == wrong and wrong != expected]
        if hints:  # on this input several slips can give the same detections: name each
            case.fail(" -- or: ".join(hints))
        case.fail(f"detections {got}, expected {expected}")
