"""course_lib.metrics against scikit-learn and torchaudio where they have the same metric."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sklearn.metrics as sk
import torch

from course_lib import metrics


@pytest.fixture(params=[0, 1, 2])
def labels(request):
    rng = np.random.default_rng(request.param)
    y_true = rng.integers(0, 5, 200)
    # Mostly right, some confusions, and class 4 never predicted (zero-division cases).
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    return y_true, y_pred


def test_accuracy_and_confusion(labels):
    t, p = labels
    assert metrics.accuracy(t, p) == pytest.approx(sk.accuracy_score(t, p))
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p), sk.confusion_matrix(t, p))
    cm = metrics.confusion_matrix(t, p, n_classes=7)
    assert cm.shape == (7, 7) and cm.sum() == len(t)


def test_per_class_and_macro_f1(labels):
    t, p = labels
    prec, rec, f1 = metrics.precision_recall_f1(t, p)
    ref = sk.precision_recall_fscore_support(t, p, zero_division=0)
    np.testing.assert_allclose(prec, ref[0])
    np.testing.assert_allclose(rec, ref[1])
    np.testing.assert_allclose(f1, ref[2])
    np.testing.assert_allclose(metrics.per_class_f1(t, p), ref[2])
    assert metrics.macro_f1(t, p) == pytest.approx(sk.f1_score(t, p, average="macro"))
    assert metrics.macro_f1(t, p, n_classes=6) == pytest.approx(
        sk.f1_score(t, p, average="macro", labels=range(6), zero_division=0))


def test_uar_is_balanced_accuracy(labels):
    t, p = labels
    assert metrics.unweighted_average_recall(t, p) == pytest.approx(
        sk.balanced_accuracy_score(t, p))


def test_accepts_torch_tensors(labels):
    t, p = labels
    assert metrics.accuracy(torch.from_numpy(t), torch.from_numpy(p)) == metrics.accuracy(t, p)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="argmax"):
        metrics.accuracy([0, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="must match"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="n_classes"):
        metrics.confusion_matrix([0, 5], [0, 1], n_classes=3)


def _fewest_edits_by_search(a: list, b: list) -> int:
    """Independent oracle: the smallest k such that some k single edits turn a into b, found by
    breadth-first search over all strings reachable with 0, 1, 2, ... edits (tiny inputs only)."""
    alphabet = sorted(set(a) | set(b))
    frontier, seen = {tuple(a)}, {tuple(a)}
    for k in itertools.count():
        if tuple(b) in frontier:
            return k
        nxt = set()
        for s in frontier:
            for i in range(len(s) + 1):
                nxt.update(s[:i] + (c,) + s[i:] for c in alphabet)  # insertions
                if i < len(s):
                    nxt.add(s[:i] + s[i + 1:])  # deletion
                    nxt.update(s[:i] + (c,) + s[i + 1:] for c in alphabet)  # substitutions
        frontier = nxt - seen
        seen |= nxt
    raise AssertionError("unreachable")


def test_edit_distance_by_hand_and_by_search():
    assert metrics.edit_distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert metrics.edit_distance("", "abc") == 3
    assert metrics.edit_distance("abc", "") == 3
    assert metrics.edit_distance("flaw", "lawn") == 2  # -f, +n
    assert metrics.edit_distance("the cat sat".split(), "the bat sat down".split()) == 2
    rng = np.random.default_rng(0)
    for _ in range(40):
        a = list(rng.integers(0, 3, rng.integers(0, 5)))
        b = list(rng.integers(0, 3, rng.integers(0, 5)))
        assert metrics.edit_distance(a, b) == _fewest_edits_by_search(a, b), (a, b)


def test_cer_and_wer():
    assert metrics.wer("the cat sat", "the cat sat") == 0.0
    assert metrics.wer("the cat sat", "the bat sat down") == pytest.approx(2 / 3)
    assert metrics.cer("abcd", "abed") == pytest.approx(1 / 4)
    # Corpus level: total edits / total reference length, not the mean of per-item rates.
    assert metrics.wer(["a b", "c d e f"], ["a x", "c d e f"]) == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="pair up"):
        metrics.cer(["a"], ["a", "b"])


def test_frame_f1_matches_sklearn():
    rng = np.random.default_rng(1)
    ref = rng.random(500) < 0.3
    est = np.where(rng.random(500) < 0.8, ref, ~ref)
    assert metrics.frame_f1(ref, est) == pytest.approx(sk.f1_score(ref, est))
    assert metrics.frame_f1(np.zeros(4), np.zeros(4)) == 1.0


def test_recall_at_k_against_brute_force():
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(40, 6))
    lab = rng.integers(0, 4, 40)
    got = metrics.recall_at_k(emb, lab, k=(1, 3, 10))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for k, value in got.items():
        hits = 0
        for i in range(40):
            sims = [(unit[i] @ unit[j], j) for j in range(40) if j != i]
            top = [j for _, j in sorted(sims, key=lambda s: -s[0])[:k]]
            hits += any(lab[j] == lab[i] for j in top)
        assert value == pytest.approx(hits / 40)
    # Perfectly clustered embeddings retrieve their class at k = 1.
    clustered = np.repeat(np.eye(4), 5, axis=0)
    assert metrics.recall_at_k(clustered, np.repeat(np.arange(4), 5), k=1) == {1: 1.0}
    q = metrics.recall_at_k(clustered, np.repeat(np.arange(4), 5), k=1, queries=np.eye(4),
                            query_labels=[0, 1, 2, 3])
    assert q == {1: 1.0}


def test_recall_at_k_with_groups_against_brute_force():
    # Leave-one-out with groups: a query never retrieves itself nor an item of its own group.
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(36, 5))
    lab = rng.integers(0, 3, 36)
    grp = np.repeat(np.arange(6), 6)
    got = metrics.recall_at_k(emb, lab, k=(1, 2, 5), groups=grp)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for k, value in got.items():
        hits = 0
        for i in range(36):
            sims = [(unit[i] @ unit[j], j) for j in range(36) if grp[j] != grp[i]]
            top = [j for _, j in sorted(sims, key=lambda s: -s[0])[:k]]
            hits += any(lab[j] == lab[i] for j in top)
        assert value == pytest.approx(hits / 36)
    # With separate queries, query_groups decide what each query may retrieve.
    q_emb, q_lab, q_grp = rng.normal(size=(7, 5)), rng.integers(0, 3, 7), rng.integers(0, 6, 7)
    got = metrics.recall_at_k(emb, lab, k=3, queries=q_emb, query_labels=q_lab, groups=grp,
                              query_groups=q_grp)
    q_unit = q_emb / np.linalg.norm(q_emb, axis=1, keepdims=True)
    hits = 0
    for i in range(7):
        sims = [(q_unit[i] @ unit[j], j) for j in range(36) if grp[j] != q_grp[i]]
        top = [j for _, j in sorted(sims, key=lambda s: -s[0])[:3]]
        hits += any(lab[j] == q_lab[i] for j in top)
    assert got[3] == pytest.approx(hits / 7)


def test_recall_at_k_groups_exclude_near_duplicates():
    # Two recordings, each cut into two near-identical clips of different classes' look-alikes:
    # without groups every clip finds its twin (same recording, same label); with groups it must
    # find the other recording's clip of its class.
    emb = np.array([[1.0, 0.0], [0.99, 0.01], [0.0, 1.0], [0.01, 0.99]])
    lab = np.array([0, 0, 1, 1])
    assert metrics.recall_at_k(emb, lab, k=1) == {1: 1.0}
    assert metrics.recall_at_k(emb, lab, k=1, groups=["a", "a", "b", "b"]) == {1: 0.0}
    # Groups are any hashable labels; the old behaviour is unchanged without them.
    assert metrics.recall_at_k(emb, lab, k=1, groups=["a", "b", "a", "b"]) == {1: 1.0}


def test_recall_at_k_groups_errors_name_the_problem():
    emb, lab = np.eye(4), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="after excluding each query's own group"):
        metrics.recall_at_k(emb, lab, k=3, groups=[0, 0, 1, 1])   # each query has 2 candidates
    with pytest.raises(ValueError, match="one group per embedding"):
        metrics.recall_at_k(emb, lab, k=1, groups=[0, 1])
    with pytest.raises(ValueError, match="query_groups"):
        metrics.recall_at_k(emb, lab, k=1, queries=emb, query_labels=lab, groups=[0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"k must lie in 1\.\.3"):
        metrics.recall_at_k(emb, lab, k=4)
