"""CTC prefix beam search against brute force, the bigram LM, the length check, normalisation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.asr import (BLANK, BigramLM, bigram_probabilities, check_ctc_lengths, ctc_loss_checked,
                            normalise_digit_words, prefix_beam_search)


def _collapse(path):
    out, previous = [], None
    for s in path:
        if s != previous and s != BLANK:
            out.append(s)
        previous = s
    return tuple(out)


def _brute_force(log_probs):
    """Probability of every label sequence: sum over all V**T frame paths that collapse to it."""
    n_frames, vocab = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(vocab), repeat=n_frames):
        p = math.exp(sum(log_probs[t, s] for t, s in enumerate(path)))
        key = _collapse(path)
        totals[key] = totals.get(key, 0.0) + p
    return totals


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_beam_search_equals_brute_force_over_alignments(seed):
    rng = np.random.default_rng(seed)
    log_probs = np.log(rng.dirichlet(np.ones(3), size=5))          # 5 frames, blank + 2 symbols
    exact = _brute_force(log_probs)
    assert math.isclose(sum(exact.values()), 1.0, rel_tol=1e-9)
    found = prefix_beam_search(log_probs, beam_width=10_000)        # no pruning: every prefix kept
    assert len(found) == len(exact)
    for prefix, score in found:
        assert math.isclose(math.exp(score), exact[prefix], rel_tol=1e-9), prefix
    best_exact = max(exact, key=exact.get)
    assert found[0][0] == best_exact


def test_prefix_beam_search_can_beat_the_best_path():
    # Best path: frame argmax = blank, blank -> ""; but "1" has probability 1 - 0.4**2 > 0.5.
    probs = np.array([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]])
    best = prefix_beam_search(np.log(probs), beam_width=4)[0]
    assert best[0] == (1,)
    assert math.isclose(math.exp(best[1]), _brute_force(np.log(probs))[(1,)], rel_tol=1e-9)


def test_language_model_weight_changes_the_ranking():
    probs = np.array([[0.1, 0.45, 0.45], [0.9, 0.05, 0.05]])        # 1 or 2: acoustically a tie
    lm = BigramLM([[2], [2], [2], [1]], vocab_size=3, smoothing=0.1)
    assert prefix_beam_search(np.log(probs), beam_width=4, lm=lm, lm_weight=1.0)[0][0] == (2,)
    lm_other = BigramLM([[1], [1], [1], [2]], vocab_size=3, smoothing=0.1)
    assert prefix_beam_search(np.log(probs), beam_width=4, lm=lm_other, lm_weight=1.0)[0][0] == (1,)


def test_bigram_probabilities_sum_to_one_and_match_counts():
    sequences = [[0, 1, 1], [2], [1, 0]]
    table = bigram_probabilities(sequences, 3, smoothing=0.0)
    assert np.allclose(table.sum(axis=1), 1.0)
    # start -> 0 once, -> 2 once, -> 1 once: 1/3 each; after 1: 1 once, end once, 0 once
    assert np.allclose(table[3, :3], [1 / 3, 1 / 3, 1 / 3])
    assert np.allclose(table[1], [1 / 3, 1 / 3, 0, 1 / 3])
    smoothed = bigram_probabilities(sequences, 3, smoothing=0.5)
    assert np.allclose(smoothed.sum(axis=1), 1.0) and np.all(smoothed > 0)


def test_bigram_lm_distribution_over_symbols_and_end_sums_to_one():
    lm = BigramLM([[1, 2, 3], [3, 3], [2]], vocab_size=4, smoothing=1.0)
    for previous in (None, 1, 2, 3):
        dist = lm.next_probabilities(previous)
        assert BLANK not in dist
        assert math.isclose(sum(dist.values()), 1.0, rel_tol=1e-12)
    with pytest.raises(ValueError, match="blank"):
        lm.log_prob(BLANK, None)


def test_length_check_raises_with_a_clear_message():
    check_ctc_lengths(torch.tensor([3, 4]), [[1, 2, 3], [1, 1, 2]])    # 3 >= 3 and 4 >= 3 + 1 repeat
    with pytest.raises(ValueError, match="needs at least 4"):
        check_ctc_lengths(torch.tensor([3]), [[1, 1, 2]])
    with pytest.raises(ValueError, match="stride"):
        ctc_loss_checked(torch.log_softmax(torch.randn(1, 2, 4), -1), [[1, 2, 3]], torch.tensor([2]))


def test_checked_loss_matches_torch_when_lengths_suffice():
    log_probs = torch.log_softmax(torch.randn(2, 6, 4), -1)
    targets = [[1, 2], [3, 3, 1]]
    ours = ctc_loss_checked(log_probs, targets, torch.tensor([6, 5]))
    ref = F.ctc_loss(log_probs.transpose(0, 1), torch.tensor([1, 2, 3, 3, 1]), torch.tensor([6, 5]),
                     torch.tensor([2, 3]), blank=0)
    assert torch.isclose(ours, ref)


def test_normalise_digit_words():
    assert normalise_digit_words("Eight, eight THREE") == "883"
    assert normalise_digit_words("oh nine eight(2) eighty three") == "09883"
    assert normalise_digit_words("vieira to") == ""
