"""Checks for 13_speech_recognition_ctc: edit distance, bigram language-model probabilities.

Notebook: 13_speech_recognition_ctc
"""

from __future__ import annotations

import numpy as np

from course_lib.asr import bigram_probabilities
from course_lib.checks import Case, compare_arrays, exercise_check, reject_known_mistakes
from course_lib.metrics import edit_distance

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _levenshtein(ref, hyp, substitution=1, init_borders=True):
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=int)
    if init_borders:
        d[:, 0] = np.arange(n + 1)
        d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = 0 if ref[i - 1] == hyp[j - 1] else substitution
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + cost)
    return int(d[n, m])


@exercise_check("13.1", "edit distance")
def _check_edit_distance(candidate):
    cases = [
        ("kitten", "sitting", "two substitutions and an insertion"),
        ("8839", "883", "a deletion at the end"),
        ("", "123", "empty reference: three insertions"),
        ("4512", "", "empty hypothesis: four deletions"),
        ("12345", "23451", "a shift: one deletion + one insertion, not five substitutions"),
        ("abc", "abc", "identical"),
        ("ab", "ba", "two substitutions"),
        (["eight", "three", "nine"], ["eight", "nine"], "word lists: one deleted word"),
    ]
    for ref, hyp, what in cases:
        case = Case(f"reference {ref!r}, hypothesis {hyp!r} ({what})")
        got = case.call(candidate, ref, hyp)
        expected = edit_distance(ref, hyp)
        if got is None:
            case.fail("nothing returned: did you forget to `return` the distance?")
        try:
            value = float(got)
        except (TypeError, ValueError):
            case.fail(f"return a number (the count of edits); got {type(got).__name__}")
        if value != expected and len(ref) and np.isclose(value, expected / len(ref)):
            case.fail(f"got {value:.4g}, expected {expected}: you divided by the reference length. The "
                      "edit distance is a count; the error *rate* (CER/WER) divides the total later.")
        reject_known_mistakes(case, value, expected, {
            "a substitution was counted as two edits (cost 2, a deletion plus an insertion); it costs 1":
                lambda: _levenshtein(ref, hyp, substitution=2),
            "the first row and column of the table must hold 0, 1, 2, ... (turning a prefix into the "
            "empty sequence takes that many deletions or insertions); they were left at 0":
                lambda: _levenshtein(ref, hyp, init_borders=False),
            "you compared the sequences position by position (Hamming distance plus the length difference):"
            " an insertion or deletion shifts everything after it, which only the dynamic programme handles":
                lambda: sum(a != b for a, b in zip(ref, hyp)) + abs(len(ref) - len(hyp)),
            "you returned the difference in lengths, which ignores substitutions and shifts":
                lambda: abs(len(ref) - len(hyp)),
        })
        if value != expected:
            case.fail(f"got {value:g}, expected {expected}.")
        yield case


def _bigram_without_end(sequences, n, k):
    counts = np.full((n + 1, n + 1), float(k))
    for s in sequences:
        tokens = [n, *s]
        for a, b in zip(tokens, tokens[1:]):
            counts[a, b] += 1
    return counts / counts.sum(1, keepdims=True)


def _bigram_counts(sequences, n, k):
    counts = np.full((n + 1, n + 1), float(k))
    for s in sequences:
        tokens = [n, *s, n]
        for a, b in zip(tokens, tokens[1:]):
            counts[a, b] += 1
    return counts


@exercise_check("13.2", "bigram language model")
def _check_bigram(candidate):
    cases = [
        ([[3, 3, 1], [0, 2, 3], [1]], 4, 0.5, "add-0.5 smoothing"),
        ([[0, 1, 1], [2], [1, 0]], 3, 1.0, "add-one smoothing"),
        ([[1, 0], [1, 0, 1, 0]], 2, 0.1, "two symbols"),
        ([[0, 1, 1], [2], [1, 0]], 3, 0.0, "no smoothing"),
    ]
    for sequences, n, k, what in cases:
        case = Case(f"sequences {sequences}, n_symbols={n}, smoothing={k} ({what})")
        got = case.call(candidate, [list(s) for s in sequences], n, k)
        expected = bigram_probabilities(sequences, n, k)
        if got is None:
            case.fail("nothing returned: did you forget to `return` the table?")
        got = np.asarray(got, dtype=float)
        counts = _bigram_counts(sequences, n, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            reject_known_mistakes(case, got, expected, {
                "you normalised the columns (axis=0): each row, one context, must sum to 1":
                    lambda: counts / counts.sum(0, keepdims=True),
                "the table is transposed: row = previous token, column = next token (P[previous, next]), "
                "so each *row* sums to 1": lambda: expected.T,
                "the sentence end is missing: after the last token of each sentence, count a transition "
                "to the end column (index n_symbols)": lambda: _bigram_without_end(sequences, n, k),
                "you returned the counts: divide each row by its total": lambda: counts,
                "the smoothing k was not added to every count (or only to the denominator)":
                    lambda: _bigram_counts(sequences, n, 0.0) / counts.sum(1, keepdims=True),
                "the smoothing k was ignored": lambda: bigram_probabilities(sequences, n, 0.0),
            }, atol=1e-9)
        compare_arrays(case, got, expected, atol=1e-9, name="P")
        yield case
