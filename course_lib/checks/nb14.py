"""Checks for 14_speech_emotion: unweighted average recall, and a speaker-disjoint split.

UAR is compared with ``course_lib.metrics.unweighted_average_recall`` (equal to scikit-learn's
``balanced_accuracy_score``, which tests/test_emotion.py checks) on imbalanced labels, a model that
never predicts a class, a predicted class absent from the truth and a perfect model; the hints name
plain (clip-weighted) accuracy, macro precision, macro F1, averaging over the predicted classes or
over every class index, a percentage and a per-class array.

The split is checked by its properties, not against one reference draw: every clip used exactly
once, no speaker on both sides, ``round(test_fraction * n_speakers)`` test speakers (at least one,
at most all but one), the same split for the same seed and different splits for different seeds.
The hints name a random clip-level split (the speaker leak itself), a fraction of clips instead of
speakers, truncation instead of rounding, always the same speakers, and speaker ids returned instead
of clip indices.

Notebook: 14_speech_emotion
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import Case, as_numpy, compare_scalar, exercise_check, reject_known_mistakes
from course_lib.metrics import precision_recall_f1, unweighted_average_recall

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _uar_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(14)
    imbalanced = np.repeat([0, 1, 2, 3], [40, 10, 10, 20])
    noisy = np.where(rng.random(imbalanced.size) < 0.7, imbalanced, rng.integers(0, 4, imbalanced.size))
    return [
        ("imbalanced classes (40/10/10/20 clips), a model that always says class 0",
         imbalanced, np.zeros_like(imbalanced)),
        ("imbalanced classes, 70 % right, errors at random", imbalanced, noisy),
        ("class 3 is predicted but has no true clip",
         np.array([0, 0, 0, 1, 1, 2, 2, 2, 2]), np.array([0, 3, 0, 1, 3, 2, 2, 1, 2])),
        ("labels 1, 4, 6 only (not 0..n-1); class 6 is never predicted",
         np.array([1, 1, 4, 4, 4, 4, 6, 6]), np.array([1, 4, 4, 4, 1, 4, 4, 1])),
        ("a perfect model", np.array([2, 0, 1, 1, 0, 2, 2]), np.array([2, 0, 1, 1, 0, 2, 2])),
    ]


def _uar_mistakes(t: np.ndarray, p: np.ndarray) -> dict[str, object]:
    precision, recall, f1 = precision_recall_f1(t, p)
    present, predicted = np.unique(t), np.unique(p)
    every_index = np.arange(max(t.max(), p.max()) + 1)
    return {
        "that is plain accuracy (weighted by how many clips each class has): UAR averages each "
        "class's recall with equal weight, so a big class cannot hide a missed small one":
            lambda: float(np.mean(t == p)),
        "that is the macro PRECISION (correct / predicted per class): recall divides by the TRUE "
        "clips of each class (rows of the confusion matrix, not columns)":
            lambda: float(precision[np.union1d(present, predicted)].mean()),
        "that is the macro F1: UAR is the mean of the recalls alone":
            lambda: float(f1[np.union1d(present, predicted)].mean()),
        "averaged over every class index 0..max (absent classes counted as recall 0): average only "
        "over the classes present in y_true":
            lambda: float(recall[every_index].mean()),
        "averaged over the classes the model PREDICTED: average over the classes present in y_true":
            lambda: float(recall[predicted].mean()),
        "a percentage: return a fraction between 0 and 1": lambda: 100 * unweighted_average_recall(t, p),
    }


@exercise_check("14.1", "unweighted average recall, UAR")
def _check_uar(candidate):
    for description, t, p in _uar_cases():
        case = Case(description)
        got = case.call(candidate, t.copy(), p.copy())
        expected = unweighted_average_recall(t, p)
        values = as_numpy(got)
        if values is not None and values.size > 1:
            case.fail(f"returned {values.size} numbers (the per-class recalls?): UAR is one number, "
                      f"their mean over the classes present in y_true")
        reject_known_mistakes(case, got, expected, _uar_mistakes(t, p), atol=1e-9)
        compare_scalar(case, got, expected, atol=1e-9, name="UAR")
        yield case


def _speakers(counts: dict, order_seed: int) -> list:
    """Speaker of each clip, ``counts[speaker]`` clips each, in a shuffled order."""
    ids = [s for s, n in counts.items() for _ in range(n)]
    return [ids[i] for i in np.random.default_rng(order_seed).permutation(len(ids))]


def _split_cases() -> list[tuple[str, list, float]]:
    return [
        ("10 speakers, one with 40 clips and nine with 1, test_fraction=0.3",
         _speakers({f"s{i:02d}": 40 if i == 4 else 1 for i in range(10)}, 5), 0.3),
        ("9 speakers with 2 to 12 clips each, in shuffled order, test_fraction=0.3",
         _speakers({f"spk{i}": n for i, n in enumerate([12, 2, 7, 3, 10, 5, 4, 8, 6])}, 0), 0.3),
        ("4 speakers, 5 clips each, test_fraction=0.25",
         _speakers({"anna": 5, "ben": 5, "chen": 5, "dara": 5}, 1), 0.25),
        ("RAVDESS-like actor numbers 1..10 (ints), 6 clips each, test_fraction=0.2",
         _speakers({a: 6 for a in range(1, 11)}, 2), 0.2),
        ("3 speakers, test_fraction=0.1: round gives 0, but a test set needs a speaker",
         _speakers({"x": 4, "y": 3, "z": 5}, 3), 0.1),
        ("5 speakers, test_fraction=0.95: round gives 5, but training needs a speaker",
         _speakers({f"v{i}": 3 for i in range(5)}, 4), 0.95),
    ]


def _expected_n_test(n_speakers: int, fraction: float) -> int:
    return min(max(int(round(fraction * n_speakers)), 1), n_speakers - 1)


def _as_indices(case: Case, value, n_clips: int, speakers: list, side: str) -> np.ndarray:
    arr = as_numpy(value)
    if arr is None or arr.ndim != 1:
        case.fail(f"{side}_indices should be a 1-D array or list of clip indices; got {type(value).__name__}")
    if arr.size and arr.dtype.kind not in "iu":
        if {str(v) for v in arr.tolist()} <= {str(s) for s in speakers}:
            case.fail(f"{side}_indices holds speaker ids: return clip INDICES (positions in `speakers`), "
                      f"so that X[train_indices] selects the clips")
        if arr.dtype.kind == "b":
            case.fail(f"{side}_indices is a boolean mask: return the clip indices (np.flatnonzero(mask))")
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(int)
        else:
            case.fail(f"{side}_indices should hold integer clip indices; got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_clips):
        case.fail(f"{side}_indices has values outside 0..{n_clips - 1} (there are {n_clips} clips)")
    return arr.astype(int)


@exercise_check("14.2", "speaker-disjoint split")
def _check_speaker_split(candidate):
    for description, speakers, fraction in _split_cases():
        case = Case(description)
        got = case.call(candidate, list(speakers), fraction, 0)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            case.fail(f"return a pair (train_indices, test_indices); got {type(got).__name__}")
        n = len(speakers)
        train = _as_indices(case, got[0], n, speakers, "train")
        test = _as_indices(case, got[1], n, speakers, "test")
        if len(set(train.tolist())) < train.size or len(set(test.tolist())) < test.size:
            case.fail("a clip index appears twice on one side: each clip is used once")
        both = set(train.tolist()) & set(test.tolist())
        if both:
            case.fail(f"clips {sorted(both)[:5]} are in both train and test")
        missing = set(range(n)) - set(train.tolist()) - set(test.tolist())
        if missing:
            case.fail(f"{len(missing)} of {n} clips are in neither split (e.g. {sorted(missing)[:5]}): "
                      f"every clip of every speaker must be used, on one side or the other")
        shared = {str(speakers[i]) for i in train} & {str(speakers[i]) for i in test}
        if shared:
            case.fail(f"speakers {sorted(shared)[:4]} have clips in both train and test: that is a random, "
                      f"speaker-DEPENDENT split (clips shuffled one by one), the leak this exercise is "
                      f"about. Draw whole SPEAKERS for the test side and give it all their clips")
        n_speakers = len({str(s) for s in speakers})
        n_test = len({str(speakers[i]) for i in test})
        expected = _expected_n_test(n_speakers, fraction)
        if n_test != expected:
            exact = fraction * n_speakers
            if n_test == 0:
                hint = "the test side is empty: hold out at least one speaker"
            elif n_test == n_speakers:
                hint = "every speaker is in the test side: keep at least one for training"
            elif n_test == int(exact) and int(exact) != round(exact):
                hint = (f"int() truncates {exact:.2f} to {int(exact)}: round(test_fraction * n_speakers) "
                        f"= {round(exact)} speakers")
            else:
                hint = ("test_fraction is the share of the SPEAKERS held out (not of the clips): "
                        "round(test_fraction * n_speakers) speakers, at least 1, at most all but one")
            case.fail(f"{n_test} of {n_speakers} speakers in the test side, expected {expected}: {hint}")
        yield case

    speakers, fraction = _split_cases()[1][1:]
    case = Case("the seed: the same seed twice, then seeds 1..5")
    first = case.call(candidate, list(speakers), fraction, 0)
    again = case.call(candidate, list(speakers), fraction, 0)
    held = lambda split: frozenset(str(speakers[int(i)]) for i in as_numpy(split[1]).tolist())
    if held(first) != held(again):
        case.fail("the same seed gave two different splits: draw with np.random.default_rng(rng), "
                  "not the global random state, so a split can be repeated")
    others = {held(case.call(candidate, list(speakers), fraction, seed)) for seed in range(1, 6)}
    if others == {held(first)}:
        case.fail("every seed held out the same speakers (e.g. the first ones in sorted order): draw "
                  "the test speakers at random with the seed, or every experiment tests the same voices")
    yield case
