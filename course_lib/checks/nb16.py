"""Checks for 16_music_generation: the piano roll of a note list, and the sampling distribution
(temperature, top-k, nucleus).

The roll check uses notes off the grid (so rounding and truncation differ), repeated and
overlapping notes, and a fixed ``n_steps``; it names a roll with time first, the end step included,
``int()`` truncation instead of rounding, velocities instead of ones, onsets only, and ``n_steps``
ignored. The sampling check uses random logits without ties and names temperature applied to the
probabilities (after the softmax), temperature multiplied instead of divided, top-k keeping k - 1
or k + 1 tokens, the nucleus without the token that crosses p, no renormalisation, and the nucleus
taken on the probabilities before top-k instead of after.

Notebook: 16_music_generation
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib.checks import Case, compare_arrays, exercise_check, reject_known_mistakes
from course_lib.music import Note, notes_to_roll, sampling_distribution

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _roll_cases() -> list[tuple[str, list[Note], float, int | None]]:
    toy = [Note(60, 0.0, 0.5), Note(60, 0.5, 1.0), Note(62, 1.0, 1.5), Note(62, 1.5, 2.0)]
    off_grid = [Note(64, 0.1, 0.49), Note(67, 0.37, 0.88, 100), Note(72, 0.6, 0.62, 50)]
    chord = [Note(48, 0.0, 1.0, 90), Note(55, 0.0, 0.5, 70), Note(64, 0.25, 1.0, 110), Note(55, 0.5, 1.0, 60)]
    rng = np.random.default_rng(16)
    starts = np.round(rng.uniform(0, 3, 12), 3)
    many = [Note(int(p), float(s), float(s + d), int(v)) for p, s, d, v in
            zip(rng.integers(40, 80, 12), starts, np.round(rng.uniform(0.2, 1.2, 12), 3), rng.integers(30, 127, 12))]
    return [("the toy C C D D at step_s=0.5", toy, 0.5, None),
            ("notes off the grid, step_s=0.25", off_grid, 0.25, None),
            ("a chord with a repeated note, step_s=0.25, n_steps=8", chord, 0.25, 8),
            ("12 random notes, step_s=0.125", many, 0.125, None),
            ("12 random notes, step_s=0.125, n_steps=40 (longer than the notes)", many, 0.125, 40)]


def _roll_mistakes(notes: list[Note], step_s: float, n_steps: int | None, expected: np.ndarray) -> dict:
    def roll_with(start_of, end_of, value_of=lambda n: 1.0, length=None):
        cols = length or max(end_of(n) for n in notes)
        roll = np.zeros((128, cols), dtype=np.float32)
        for n in notes:
            roll[n.pitch, start_of(n):max(start_of(n) + 1, end_of(n))] = value_of(n)
        return roll

    r = lambda t: int(round(t / step_s))
    r0 = lambda n: r(n.start_s)
    r1 = lambda n: r(n.end_s)
    out = {
        "time comes first: the piano roll is (128 pitches, n_steps), pitch on the rows": lambda: expected.T,
        "a note sounds up to, NOT including, its end step (end_s / step_s is the first silent step)":
            lambda: roll_with(r0, lambda n: r1(n) + 1, length=n_steps),
        "int() truncates: snap starts and ends to the NEAREST step with round(t / step_s)":
            lambda: roll_with(lambda n: int(n.start_s / step_s), lambda n: int(n.end_s / step_s), length=n_steps),
        "the roll holds 1 where a pitch sounds, not its velocity":
            lambda: roll_with(r0, r1, lambda n: float(n.velocity), length=n_steps),
        "only the onset step is marked: a note sounds in every step from its start to its end":
            lambda: roll_with(r0, lambda n: r0(n) + 1, length=n_steps or expected.shape[1]),
    }
    if n_steps is not None:
        out["n_steps was ignored: the roll must have exactly n_steps columns when it is given"] = (
            lambda: notes_to_roll(notes, step_s))
    return out


@exercise_check("16.1", "piano roll of a note list")
def _check_piano_roll(candidate):
    for description, notes, step_s, n_steps in _roll_cases():
        case = Case(description)
        got = case.call(candidate, list(notes), step_s, n_steps)
        expected = notes_to_roll(notes, step_s, n_steps)
        reject_known_mistakes(case, got, expected, _roll_mistakes(notes, step_s, n_steps, expected), atol=1e-6)
        compare_arrays(case, got, expected, atol=1e-6)
        yield case


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _sampling_mistakes(logits: np.ndarray, temperature: float, top_k, top_p) -> dict:
    def keep_top(p, k):
        out = np.zeros_like(p)
        idx = np.argsort(p)[::-1][:k]
        out[idx] = p[idx]
        return out

    def nucleus(p, crossing=True):
        order = np.argsort(p)[::-1]
        cum = np.cumsum(p[order])
        keep = (cum - p[order] < top_p) if crossing else (cum < top_p)
        if not keep.any():
            keep[0] = True
        out = np.zeros_like(p)
        out[order[keep]] = p[order[keep]]
        return out

    def pipeline(scale="divide", k_shift=0, crossing=True, renormalise=True, p_before_k=False):
        if scale == "divide":
            p = _softmax(logits / temperature)
        elif scale == "multiply":
            p = _softmax(logits * temperature)
        elif scale == "probs":  # temperature on the probabilities, after the softmax
            p = _softmax(logits) / temperature
        else:
            p = _softmax(logits)
        base = p
        if top_k is not None:
            p = keep_top(p, max(1, top_k + k_shift))
            if renormalise:
                p = p / p.sum()
        if top_p is not None:
            p = nucleus(base if p_before_k else p, crossing)
            if p_before_k and top_k is not None:
                p = keep_top(p, top_k)
            if renormalise:
                p = p / p.sum()
        return p

    out = {}
    if temperature != 1:
        out["temperature divides the LOGITS before the softmax: softmax(logits / T). Dividing the "
            "probabilities after the softmax changes nothing once they are renormalised (or breaks "
            "the sum to 1)"] = lambda: pipeline("probs")
        out["temperature was ignored or applied after the softmax: softmax(logits / T) "
            "is what flattens or sharpens"] = lambda: pipeline("none")
        out["the logits were multiplied by the temperature: divide them (T > 1 must flatten)"] = (
            lambda: pipeline("multiply"))
    if top_k is not None:
        out["top-k kept k - 1 tokens (an off-by-one in the slice): keep exactly the k most probable"] = (
            lambda: pipeline(k_shift=-1))
        out["top-k kept k + 1 tokens: keep exactly the k most probable"] = lambda: pipeline(k_shift=1)
    if top_p is not None:
        out["the nucleus must INCLUDE the token whose probability crosses p: keep a token while the "
            "probability of the tokens before it is < p"] = lambda: pipeline(crossing=False)
        if top_k is not None:
            out["the nucleus is taken on the top-k distribution after renormalising it (top-k "
                "first, then top-p)"] = lambda: pipeline(p_before_k=True)
    if top_k is not None or top_p is not None:
        out["after filtering, renormalise: the kept probabilities must sum to 1"] = (
            lambda: pipeline(renormalise=False))
    return out


def _sampling_cases() -> list[tuple[str, np.ndarray, float, int | None, float | None]]:
    rng = np.random.default_rng(1616)
    z = rng.normal(0, 2, 10)
    z20 = rng.normal(0, 1.5, 20)
    return [("10 logits, temperature 1 (plain softmax)", z, 1.0, None, None),
            ("10 logits, temperature 0.5", z, 0.5, None, None),
            ("10 logits, temperature 2", z, 2.0, None, None),
            ("10 logits, top_k=3", z, 1.0, 3, None),
            ("10 logits, top_p=0.6", z, 1.0, None, 0.6),
            ("20 logits, temperature 1.5, top_k=8", z20, 1.5, 8, None),
            ("20 logits, temperature 0.8, top_p=0.9", z20, 0.8, None, 0.9),
            ("20 logits, temperature 1.2, top_k=10, top_p=0.5", z20, 1.2, 10, 0.5)]


@exercise_check("16.2", "sampling distribution: temperature, top-k, nucleus")
def _check_sampling_distribution(candidate):
    for description, logits, temperature, top_k, top_p in _sampling_cases():
        case = Case(description)
        got = case.call(candidate, logits.copy(), temperature, top_k, top_p)
        expected = sampling_distribution(torch.from_numpy(logits), temperature, top_k, top_p).double().numpy()
        reject_known_mistakes(case, got, expected, _sampling_mistakes(logits, temperature, top_k, top_p), atol=1e-5)
        compare_arrays(case, got, expected, atol=1e-5)
        yield case
