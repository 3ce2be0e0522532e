"""Checks for 09_temporal_models: causal padding, attention pooling, greedy CTC decoding.

Notebook: 09_temporal_models
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.checks import Case, as_numpy, compare_arrays, exercise_check, matches, reject_known_mistakes
from course_lib.models.temporal import greedy_ctc_decode

__all__: list[str] = []  # checks register themselves; nothing to import from here


@exercise_check("09.1", "causal dilated convolution")
def _check_causal_conv(candidate):
    gen = torch.Generator().manual_seed(9)
    shapes = ((1, 1, 1, 10, 2, 1), (2, 3, 4, 30, 3, 2), (1, 2, 2, 25, 5, 4), (2, 1, 3, 8, 3, 1))
    for batch, c_in, c_out, T, k, d in shapes:
        x = torch.randn(batch, c_in, T, generator=gen, dtype=torch.float64)
        w = torch.randn(c_out, c_in, k, generator=gen, dtype=torch.float64)
        case = Case(f"x ({batch}, {c_in}, {T}), weight ({c_out}, {c_in}, {k}), dilation={d}")
        got = case.call(candidate, x.clone(), w.clone(), d)
        expected = F.conv1d(F.pad(x, ((k - 1) * d, 0)), w, dilation=d)
        if got is None:
            case.fail("nothing returned: did you forget to `return` y?")
        got = torch.as_tensor(got)
        if got.shape[-1] == T - (k - 1) * d and got.shape[-1] != T:
            case.fail(f"{got.shape[-1]} output frames instead of {T}: pad (k - 1) * dilation zeros on the "
                      "left so that every input frame gets an output.")
        if got.shape[-1] == T - (k - 1) * d + (k - 1) and d > 1:
            case.fail("the padding ignores the dilation: a dilated kernel spans (k - 1) * dilation + 1 "
                      "frames, so pad (k - 1) * dilation.")
        if d * (k - 1) % 2 == 0 and matches(got, F.conv1d(x, w, dilation=d, padding=(k - 1) * d // 2)):
            case.fail("this is 'same' padding, split over both ends: the output at t then sees the future "
                      "(t + 1, ...). A causal convolution pads only on the left.")
        if matches(got, F.conv1d(F.pad(x, (0, (k - 1) * d)), w, dilation=d)):
            case.fail("the zeros went on the right: output t then depends on inputs t ... t + (k-1)*d "
                      "(the future). Pad on the left: F.pad(x, ((k - 1) * dilation, 0)).")
        if d > 1 and got.shape[-1] == T + (k - 1) * (d - 1):
            case.fail(f"{got.shape[-1]} output frames instead of {T}: the padding is right for a "
                      "dilated kernel but F.conv1d was not told: pass dilation=dilation")
        reject_known_mistakes(case, got, expected, {
            "the kernel is flipped: PyTorch's conv1d is a cross-correlation (weight[..., 0] meets "
            "the oldest input), so pass the weight as it is": lambda: F.conv1d(
                F.pad(x, ((k - 1) * d, 0)), w.flip(-1), dilation=d),
        }, atol=1e-9, rtol=1e-9)
        compare_arrays(case, got, expected, atol=1e-9, rtol=1e-9, name="y")
        yield case


def _reference_pool(h: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    return torch.einsum("bt,btd->bd", weights, h)


@exercise_check("09.2", "attention pooling")
def _check_attention_pooling(candidate):
    gen = torch.Generator().manual_seed(10)
    for lengths, D in (([4], 3), ([6, 6], 2), ([7, 3, 5], 4), ([9, 1], 5)):
        B, T = len(lengths), max(lengths)
        h = torch.randn(B, T, D, generator=gen, dtype=torch.float64)
        scores = 2 * torch.randn(B, T, generator=gen, dtype=torch.float64)
        mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
        h[~mask] = 50.0  # padding holds garbage: it must get zero weight
        case = Case(f"h ({B}, {T}, {D}), lengths {lengths}")
        got = case.call(candidate, h.clone(), scores.clone(), mask.clone())
        expected = _reference_pool(h, scores, mask)
        if got is not None and not mask.all():
            if matches(got, _reference_pool(h, scores, torch.ones_like(mask))):
                case.fail("the padding frames got weight: set their scores to -inf before the softmax "
                          "(scores.masked_fill(~mask, float('-inf'))).")
            w = torch.softmax(scores, dim=1) * mask
            if matches(got, torch.einsum("bt,btd->bd", w, h)):
                case.fail("zeroing the weights after the softmax leaves them summing to less than 1: "
                          "mask the scores before the softmax instead.")
        if got is not None and B > 1 and matches(got, torch.einsum("bt,btd->bd", torch.softmax(
                scores.masked_fill(~mask, float("-inf")), dim=0).nan_to_num(), h)):
            case.fail("the softmax ran over the batch axis: normalise over time (dim=1).")
        if got is not None and matches(got, torch.einsum("bt,btd->bd", mask.double(), h)):
            case.fail("every valid frame got weight 1 (the pooled vector is their sum): the softmax ran "
                      "over an axis of size 1 (the batch axis, with one example?); normalise over time, dim=1.")
        if got is not None and matches(got, torch.einsum("bt,btd->bd", scores.masked_fill(~mask, 0.0), h)):
            case.fail("the raw scores were used as weights: turn them into a distribution over time "
                      "with a softmax first.")
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.shape == (B, D) and np.isnan(got_arr).any():
            case.fail("the result contains NaN: a row whose scores are all -inf has no softmax. "
                      "mask is True on *real* frames, so fill the scores where ~mask (the padding)")
        valid = mask.double()
        reject_known_mistakes(case, got, expected, {
            "padding scores filled with 0 still get weight exp(0) = 1 in the softmax: fill them with "
            "float('-inf') so their weight is exactly 0": lambda: _reference_pool(
                h, scores.masked_fill(~mask, 0.0), torch.ones_like(mask)),
            "that is the plain mean of the valid frames: weight each frame by softmax(scores) "
            "over time instead": lambda: torch.einsum("bt,btd->bd", valid / valid.sum(1, keepdim=True), h),
            "the scores were divided by sqrt(D): here the scores are given, pool with "
            "softmax(scores) as they are (1/sqrt(d) belongs inside dot-product attention)":
                lambda: _reference_pool(h, scores / D**0.5, mask),
        }, atol=1e-9, rtol=1e-9)
        compare_arrays(case, got, expected, atol=1e-9, rtol=1e-9, name="pooled")
        yield case


def _one_hot_log_probs(path: list[int], vocab: int = 5) -> torch.Tensor:
    return torch.log(F.one_hot(torch.tensor(path), vocab).double() * 0.96 + 0.01)


@exercise_check("09.3", "greedy CTC decoding")
def _check_greedy_ctc(candidate):
    cases = [
        ([3, 1, 0, 1, 2, 0, 4], 0, "the symbols are not sorted"),
        ([1, 1, 0, 1, 2, 2, 0], 0, "a blank separates two 1s; repeated 2s collapse"),
        ([0, 0, 0, 0], 0, "all blank"),
        ([3, 3, 3], 0, "one long symbol"),
        ([1, 2, 1, 2], 0, "no blanks, no repeats"),
        ([0, 4, 4, 0, 0, 4, 0, 2], 0, "repeats across blanks"),
        ([2, 2, 1, 1, 3, 1], 1, "blank=1"),
        ([2, 0, 1, 3, 2], 0, "the first and last frames hold the same symbol"),
    ]
    rng = np.random.default_rng(11)
    for path, blank, what in cases:
        log_probs = _one_hot_log_probs(path) + 1e-3 * torch.as_tensor(rng.standard_normal((len(path), 5)))
        case = Case(f"frame argmax {path}, blank={blank} ({what})")
        got = case.call(candidate, log_probs.clone(), blank)
        expected = greedy_ctc_decode(log_probs, blank=blank)
        if got is not None and not isinstance(got, (list, tuple)):
            if hasattr(got, "tolist"):
                got = got.tolist()
            else:
                case.fail(f"return a list of ints; got {type(got).__name__}")
        got = [int(s) for s in got] if got is not None else None
        if got is None:
            case.fail("nothing returned: did you forget to `return` the decoded list?")
        no_collapse = [s for s in log_probs.argmax(-1).tolist() if s != blank]
        if got == no_collapse and got != expected:
            case.fail(f"got {got}, expected {expected}: repeated frames of one symbol must collapse "
                      "to one (compare each frame with the previous frame).")
        nb = [s for s in log_probs.argmax(-1).tolist() if s != blank]
        blanks_first = [s for i, s in enumerate(nb) if i == 0 or s != nb[i - 1]]
        if got == blanks_first and got != expected:
            case.fail(f"got {got}, expected {expected}: you removed blanks before collapsing repeats, so "
                      "'1 _ 1' became '1'. Collapse repeats first (a blank between them keeps both), then "
                      "drop blanks.")
        path = log_probs.argmax(-1).tolist()
        wrapped = [s for i, s in enumerate(path) if s != path[i - 1] and s != blank]
        if got == wrapped and got != expected:
            case.fail(f"got {got}, expected {expected}: the first frame was compared with the *last* "
                      "one (path[i - 1] for i = 0 is path[-1] in Python). Start with previous = None.")
        over_time = [s for s in log_probs.argmax(0).tolist()]
        if got != expected and got in ([s for i, s in enumerate(over_time)
                                        if (i == 0 or s != over_time[i - 1]) and s != blank], over_time):
            case.fail(f"got {got}, expected {expected}: the argmax ran over time (dim 0); take the best "
                      "symbol of each frame, argmax over the vocabulary (dim=-1)")
        if got != expected and got == sorted(set(path) - {blank}):
            case.fail(f"got {got}, expected {expected}: set() / np.unique sorts the symbols and merges "
                      "*all* repeats, even those a blank separates; compare each frame with the "
                      "previous one instead")
        if blank in got and blank not in expected:
            case.fail(f"got {got}, expected {expected}: the blank ({blank}) is not a symbol; drop it.")
        if got != expected:
            case.fail(f"got {got}, expected {expected}")
        yield case
