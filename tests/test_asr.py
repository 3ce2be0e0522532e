"""CTC prefix beam search against brute force, the bigram LM, the length check, normalisation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.asr import (BLANK, CHARACTERS, BigramLM, Lexicon, WordBigramLM, bigram_probabilities,
                            check_ctc_lengths, ctc_loss_checked, decode_symbols, encode_text, normalise_text,
                            pocketsphinx_transcribe, prefix_beam_search, rescore_nbest)


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


def test_text_normalisation_and_the_character_vocabulary():
    assert normalise_text("Mister JOHN-Dashwood, 2 it's") == "mister john dashwood it's"
    assert decode_symbols(encode_text("SEVEN  five")) == "seven five"
    assert BLANK not in encode_text("a z '") and max(encode_text("z")) == len(CHARACTERS)
    assert decode_symbols([BLANK, *encode_text("ok")]) == "ok"


def test_lexicon_corrects_to_the_nearest_known_word_and_keeps_far_ones():
    lexicon = Lexicon(["seven five five", "five nine", "one"])
    assert lexicon.words[0] == "five" and len(lexicon) == 4 and "nine" in lexicon
    assert lexicon.correct("sevn fiv nime") == "seven five nine"
    assert lexicon.nearest("fine") == "five"              # distance 1 to five and nine: the more frequent
    assert lexicon.correct("xylophone one") == "xylophone one"   # nothing within half its length: kept
    with pytest.raises(ValueError, match="at least one word"):
        Lexicon(["", "  "])


def test_word_bigram_lm_equals_the_dense_table_and_sums_to_one():
    transcripts = ["a b a", "b b", "a c", "c"]
    lexicon = Lexicon(transcripts)
    lm = WordBigramLM(transcripts, lexicon, smoothing=0.5)
    dense = bigram_probabilities([lm.ids(t) for t in transcripts], len(lm.vocabulary), 0.5)
    words = [*lm.vocabulary, None]
    for i, previous in enumerate([*lm.vocabulary, None]):
        row = i if previous is not None else len(lm.vocabulary)
        if previous == WordBigramLM.UNKNOWN:
            continue
        for j, word in enumerate(words):
            assert lm.prob(word, previous) == pytest.approx(dense[row, j])
        assert sum(lm.next_probabilities(previous).values()) == pytest.approx(1.0)
    assert lm.ids("a zzz") == [lexicon.words.index("a"), len(lexicon)]   # unknown words -> <unk>
    assert lm.sentence_log_prob("a b") == pytest.approx(
        math.log(dense[-1, lm.ids("a")[0]] * dense[lm.ids("a")[0], lm.ids("b")[0]] * dense[lm.ids("b")[0], -1]))
    assert lm.perplexity(["a b"]) == pytest.approx(math.exp(-lm.sentence_log_prob("a b") / 3))
    with pytest.raises(ValueError, match="smoothing must be > 0"):
        WordBigramLM(transcripts, lexicon, smoothing=0)


def test_rescoring_corrects_with_the_lexicon_and_weighs_the_lm():
    transcripts = ["one two three"] * 5 + ["one two tree"]
    lexicon, lm = Lexicon(transcripts), WordBigramLM(transcripts, Lexicon(transcripts))
    nbest = [("one twoo tree", -1.0), ("one two three", -1.2)]
    assert rescore_nbest(nbest) == "one twoo tree"                         # acoustic only
    assert rescore_nbest(nbest, lexicon=lexicon) == "one two tree"        # corrected, still acoustic
    assert rescore_nbest(nbest, lm=lm, lm_weight=1.0, lexicon=lexicon) == "one two three"
    assert rescore_nbest([]) == ""


def test_pocketsphinx_restricted_to_a_vocabulary_returns_only_those_words():
    sr = 16000
    silence = np.zeros(sr, dtype=np.float32)
    with pytest.warns(UserWarning, match="lacks \\['qqqzzz'\\]"):
        hyps = pocketsphinx_transcribe([silence], sr, vocabulary=["one", "two", "qqqzzz"])
    assert set(hyps[0].split()) <= {"one", "two"}
    with pytest.raises(ValueError, match="none of the vocabulary"), pytest.warns(UserWarning):
        pocketsphinx_transcribe([silence], sr, vocabulary=["qqqzzz"])
