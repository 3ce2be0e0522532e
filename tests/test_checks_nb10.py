"""Checks of notebook 10 accept right answers computed another way (plain loops, NumPy, a
logsumexp, a sort by Euclidean distance between unit vectors).

The classic wrong answers and their hints are in test_checks_mistakes.py.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from course_lib import checks as check


def info_nce_by_loops(z1, z2, temperature):
    """Anchor by anchor, in Python floats: -log(exp(s_ip / T) / sum_{j != i} exp(s_ij / T))."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        p = i + n if i < n else i - n
        denominator = sum(math.exp(float(z[i] @ z[j]) / temperature) for j in range(2 * n) if j != i)
        total -= math.log(math.exp(float(z[i] @ z[p]) / temperature) / denominator)
    return total / (2 * n)


def info_nce_logsumexp(z1, z2, temperature):
    """Numerically stable form with the diagonal dropped by indexing, not by -inf."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    n2 = len(z)
    logits = z @ z.T / temperature
    keep = ~torch.eye(n2, dtype=torch.bool)
    others = logits[keep].view(n2, n2 - 1)
    positive = torch.cat([logits.diagonal(len(z1)), logits.diagonal(-len(z1))])
    return (torch.logsumexp(others, dim=1) - positive).mean()


def recall_by_loops(embeddings, labels, groups, k):
    hits = 0
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    for i in range(len(labels)):
        candidates = [j for j in range(len(labels)) if groups[j] != groups[i]]
        candidates.sort(key=lambda j: -float(unit[i] @ unit[j]))
        hits += any(labels[j] == labels[i] for j in candidates[:k])
    return hits / len(labels)


def recall_by_unit_euclidean(embeddings, labels, groups, k):
    # For unit vectors, the nearest in Euclidean distance are the most similar in cosine.
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    distance = np.linalg.norm(unit[:, None] - unit[None], axis=-1)
    distance[groups[:, None] == groups[None, :]] = np.inf
    nearest = np.argsort(distance, axis=1)[:, :k]
    return np.mean([labels[i] in labels[row] for i, row in enumerate(nearest)])


def test_info_nce_check_accepts_other_correct_forms():
    for fn in (info_nce_by_loops, info_nce_logsumexp):
        result = check.exercise("10.1", fn, quiet=True, strict=False)
        assert result, result.message


def test_recall_check_accepts_other_correct_forms():
    for fn in (recall_by_loops, recall_by_unit_euclidean):
        result = check.exercise("10.2", fn, quiet=True, strict=False)
        assert result, result.message


def test_info_nce_check_includes_the_hand_computed_case():
    # A function right on the random cases but wrong on the identity case must be caught there.
    def wrong_only_by_hand(z1, z2, temperature):
        if torch.equal(z1, torch.eye(2, dtype=z1.dtype)):
            return torch.tensor(0.5)
        return info_nce_logsumexp(z1, z2, temperature)

    result = check.exercise("10.1", wrong_only_by_hand, quiet=True, strict=False)
    assert not result and "log(e / (e + 2))" in result.message
