"""Checks for 15_music_classification: the MFCC-statistics feature and track-level decisions.

15.1 compares the student's mean/std-of-MFCC vector of one clip with librosa's MFCCs reduced over
frames (an independent reference: the course's own ``mir.mfcc_statistics`` is not used), and names
the slips: statistics over the coefficient axis, variance instead of standard deviation, the
sample standard deviation (``ddof=1``, torch's default), only the means, interleaved means and
stds, the log-mel instead of the MFCCs, and librosa's default 22,050 Hz instead of the clip's rate.

15.2 compares the student's track posteriors with ``mir.track_posteriors`` on interleaved tracks
of unequal length, and names: a majority vote of segment argmaxes, averaged logits, the softmax
over segments instead of classes, averaging over the class axis, summing instead of averaging,
consecutive runs of segments taken as tracks, all segments pooled into one decision, and tracks
in first-appearance instead of sorted order.

Notebook: 15_music_classification
"""

from __future__ import annotations

import itertools

import numpy as np

from course_lib.checks import Case, as_numpy, compare_arrays, exercise_check, matches, reject_known_mistakes
from course_lib.mir import track_posteriors

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _clips() -> list[tuple[str, np.ndarray, int, int]]:
    rng = np.random.default_rng(15)
    t16 = np.arange(int(0.6 * 16000)) / 16000
    t22 = np.arange(int(0.5 * 22050)) / 22050
    chirp = np.sin(2 * np.pi * (200 * t22 + 1500 * t22 ** 2)) * np.linspace(0.1, 0.8, t22.size)
    return [
        ("0.6 s of a 440 Hz tone plus noise at 16 kHz, n_mfcc=20",
         (0.5 * np.sin(2 * np.pi * 440 * t16) + 0.05 * rng.standard_normal(t16.size)).astype(np.float32), 16000, 20),
        ("0.5 s of a rising chirp at 22.05 kHz, n_mfcc=13", chirp.astype(np.float32), 22050, 13),
        ("0.3 s of white noise at 16 kHz, n_mfcc=8 (few frames)",
         (0.3 * rng.standard_normal(int(0.3 * 16000))).astype(np.float32), 16000, 8),
    ]


def _mfcc_mistakes(x: np.ndarray, sr: int, n_mfcc: int, m: np.ndarray) -> dict[str, object]:
    import librosa

    return {
        "the statistics were taken over the coefficient axis (axis 0): average each MFCC over the "
        "FRAMES (the last axis), so the vector has 2 * n_mfcc values":
            lambda: np.concatenate([m.mean(axis=0), m.std(axis=0)]),
        "only the means: the feature is the means followed by the standard deviations (2 * n_mfcc values)":
            lambda: m.mean(axis=-1),
        "the variance instead of the standard deviation (take its square root: np.std)":
            lambda: np.concatenate([m.mean(axis=-1), m.var(axis=-1)]),
        "the sample standard deviation (ddof=1, torch.std's default): use the population one, "
        "np.std(..., axis=-1) with ddof=0":
            lambda: np.concatenate([m.mean(axis=-1), m.std(axis=-1, ddof=1)]),
        "means and standard deviations interleaved (mean_0, std_0, mean_1, ...): put all the "
        "means first, then all the standard deviations (np.concatenate)":
            lambda: np.stack([m.mean(axis=-1), m.std(axis=-1)], axis=-1).reshape(-1),
        "statistics of the log-mel spectrogram, not of the MFCCs (librosa.feature.mfcc)":
            lambda: (lambda s: np.concatenate([s.mean(axis=-1), s.std(axis=-1)]))(
                librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sr))),
        "librosa used its default sample rate (22,050 Hz): pass sr=sr to librosa.feature.mfcc, "
        "or the mel bands sit at the wrong frequencies":
            lambda: (lambda w: np.concatenate([w.mean(axis=-1), w.std(axis=-1)]))(
                librosa.feature.mfcc(y=x, n_mfcc=n_mfcc)),
    }


@exercise_check("15.1", "MFCC statistics: mean and std over frames")
def _check_mfcc_statistics(candidate):
    import librosa

    for description, x, sr, n_mfcc in _clips():
        case = Case(description)
        got = case.call(candidate, x.copy(), sr, n_mfcc)
        m = librosa.feature.mfcc(y=x, sr=sr, n_mfcc=n_mfcc)   # (n_mfcc, frames)
        expected = np.concatenate([m.mean(axis=-1), m.std(axis=-1)])
        if got is None:
            case.fail("the function returned None: did you forget to `return` the vector?")
        got_arr = as_numpy(got)
        if got_arr is not None:
            got_arr = got_arr.astype(np.float64).reshape(-1) if got_arr.ndim == 2 and 1 in got_arr.shape else got_arr
        reject_known_mistakes(case, got_arr, expected, _mfcc_mistakes(x, sr, n_mfcc, m), atol=1e-3, rtol=1e-4)
        compare_arrays(case, got_arr, expected, atol=1e-3, rtol=1e-4, name="mfcc statistics")
        yield case


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _group(tracks: list[str], values: np.ndarray, names: list[str], reduce) -> np.ndarray:
    t = np.asarray(tracks)
    return np.stack([reduce(values[t == n]) for n in names])


def _aggregation_cases() -> list[tuple[str, np.ndarray, list[str]]]:
    rng = np.random.default_rng(152)
    # Two segments of track "b": one confident (class 0), one hesitant (class 1 by a little):
    # the mean of the logits and the mean of the posteriors disagree, and so do vote and average.
    logits = np.array([[6.0, 0.0, 0.0], [0.0, 0.4, 0.0], [0.0, 0.5, 0.2],
                       [0.1, 0.0, 2.0], [0.0, 3.0, 0.0], [0.2, 0.0, 0.4], [0.0, 0.2, 0.0]])
    cases = [
        ("7 segments of 3 interleaved tracks ('b', 'b', 'a', 'c', 'a', 'c', 'b')",
         logits, ["b", "b", "a", "c", "a", "c", "b"]),
        ("tracks named so that sorted order differs from first appearance ('z', 'm', 'a')",
         np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.5], [3.0, -1.0], [-2.0, 0.5]]), ["z", "m", "z", "a", "m"]),
    ]
    names = ["blues.00012", "jazz.00003", "rock.00044", "pop.00007"]
    tracks = [names[i] for i in rng.integers(0, 4, 30)]
    cases.append(("30 segments of 4 GTZAN-like tracks in random order, 10 classes",
                  rng.normal(0.0, 2.0, (30, 10)), tracks))
    return cases


def _aggregation_mistakes(z: np.ndarray, tracks: list[str]) -> dict[str, object]:
    names = sorted(set(tracks))
    first_seen = list(dict.fromkeys(tracks))
    p = _softmax(z, axis=1)
    votes = np.eye(z.shape[1])[z.argmax(axis=1)]
    runs = [(k, [i for i, _ in g]) for k, g in itertools.groupby(enumerate(tracks), key=lambda it: it[1])]
    return {
        "a majority vote of the segments' argmaxes: the exercise asks for the AVERAGE of the "
        "segments' softmax posteriors (a confident segment then counts more than a hesitant one)":
            lambda: _group(tracks, votes, names, lambda v: v.mean(axis=0)),
        "the logits were averaged (then a softmax): average the segments' softmax POSTERIORS":
            lambda: _softmax(_group(tracks, z, names, lambda v: v.mean(axis=0)), axis=1),
        "the logits were averaged without a softmax: average the segments' softmax posteriors":
            lambda: _group(tracks, z, names, lambda v: v.mean(axis=0)),
        "the softmax ran over the segments (axis 0) instead of over the classes (axis 1)":
            lambda: _group(tracks, _softmax(z, axis=0), names, lambda v: v.mean(axis=0)),
        "the average ran over the class axis too (a mean without axis=0 gives one number per "
        "track): average over a track's SEGMENTS only (axis 0), keeping one probability per class":
            lambda: _group(tracks, p, names, lambda v: v.mean()),
        "the posteriors were summed, not averaged: a track with more segments gets larger numbers "
        "(rows must sum to 1)":
            lambda: _group(tracks, p, names, lambda v: v.sum(axis=0)),
        "segments were pooled across tracks (every track got the mean of ALL segments): average "
        "only the segments of each track":
            lambda: np.repeat(p.mean(axis=0, keepdims=True), len(names), axis=0),
        "consecutive runs of segments were taken as tracks (itertools.groupby without sorting): "
        "segments of one track need not be adjacent; group by the track name":
            lambda: np.stack([p[idx].mean(axis=0) for _, idx in runs]),
        "the tracks are in order of first appearance: return them sorted (np.unique order), with "
        "the posteriors in the same order":
            lambda: _group(tracks, p, first_seen, lambda v: v.mean(axis=0)),
    }


@exercise_check("15.2", "track posteriors from segment posteriors")
def _check_track_posteriors(candidate):
    for description, z, tracks in _aggregation_cases():
        case = Case(description)
        got = case.call(candidate, z.copy(), list(tracks))
        names, expected = track_posteriors(z, tracks)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            case.fail(f"return a pair (track names, posteriors); got {type(got).__name__}")
        got_names, got_p = list(got[0]), as_numpy(got[1])
        if got_p is None:
            case.fail(f"the posteriors should be an array (n_tracks, n_classes); got {type(got[1]).__name__}")
        got_p = got_p.astype(np.float64)
        mistakes = _aggregation_mistakes(z, tracks)
        if [str(n) for n in got_names] == list(dict.fromkeys(tracks)) != names:
            case.fail(list(mistakes)[-1])
        if [str(n) for n in got_names] != names:
            if len(got_names) != len(names):
                reject_known_mistakes(case, got_p, expected, mistakes, atol=1e-6)
            case.fail(f"track names {got_names}, expected the distinct tracks sorted: {names}")
        reject_known_mistakes(case, got_p, expected, mistakes, atol=1e-6)
        if got_p.shape == expected.shape and not matches(got_p.sum(axis=1), np.ones(len(names)), atol=1e-6):
            case.fail("each track's posterior should sum to 1 (an average of softmax outputs)")
        compare_arrays(case, got_p, expected, atol=1e-6, rtol=1e-6, name="posteriors")
        yield case
