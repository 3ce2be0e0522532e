"""Checks of notebooks 08 and 09 accept right answers computed another way (scipy, an
eigendecomposition, scikit-learn, plain loops).

The classic wrong answers and their hints are in test_checks_mistakes.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse.csgraph
import torch
from numpy.polynomial import chebyshev
from sklearn.neighbors import NearestNeighbors

from course_lib import checks as check
from course_lib import graphs
from course_lib.models.temporal import greedy_ctc_decode


def ring_laplacian_scipy(n):
    A = np.roll(np.eye(n), 1, axis=1) + np.roll(np.eye(n), -1, axis=1)
    return scipy.sparse.csgraph.laplacian(A)


def chebyshev_filter_by_eigendecomposition(x, L, theta):
    """sum_k U T_k(Lambda_hat) U^T x theta_k, with T_k evaluated on the eigenvalues by numpy."""
    lam, U = np.linalg.eigh(np.asarray(L, dtype=np.float64))
    x, theta = np.asarray(x, dtype=np.float64), np.asarray(theta, dtype=np.float64)
    out = 0
    for k in range(len(theta)):
        t_k = chebyshev.chebval(lam - 1.0, np.eye(len(theta))[k])  # L_hat = 2 L / 2 - I
        out = out + U @ np.diag(t_k) @ U.T @ x @ theta[k]
    return torch.as_tensor(out)


def knn_with_sklearn(frames, k):
    centred = frames - frames.mean(axis=0)
    found = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(centred).kneighbors(centred)[1]
    return np.array([[j for j in row if j != i][:k] for i, row in enumerate(found)])


def causal_conv_by_loops(x, weight, dilation):
    batch, _, T = x.shape
    c_out, c_in, k = weight.shape
    y = torch.zeros(batch, c_out, T, dtype=x.dtype)
    for t in range(T):
        for j in range(k):
            source = t - (k - 1 - j) * dilation  # weight[..., k-1] meets x[t]
            if source >= 0:
                y[:, :, t] += x[:, :, source] @ weight[:, :, j].T
    return y


def attention_pool_by_loops(h, scores, mask):
    out = torch.zeros(h.shape[0], h.shape[2], dtype=h.dtype)
    for b in range(h.shape[0]):
        valid = mask[b]
        weights = torch.softmax(scores[b, valid], dim=0)
        out[b] = weights @ h[b, valid]
    return out


def greedy_decode_groupby(log_probs, blank=0):
    return [s for s, _ in itertools.groupby(log_probs.argmax(-1).tolist()) if s != blank]


@pytest.mark.parametrize("exercise_id,fn", [
    ("08.1", ring_laplacian_scipy),
    ("08.1", lambda n: graphs.laplacian(graphs.ring_graph(n))),
    ("08.2", chebyshev_filter_by_eigendecomposition),
    ("08.2", lambda x, L, theta: graphs.chebyshev_filter(x, L, theta)),
    ("08.3", knn_with_sklearn),
    ("09.1", causal_conv_by_loops),
    ("09.2", attention_pool_by_loops),
    ("09.3", greedy_decode_groupby),
    ("09.3", lambda lp, blank: greedy_ctc_decode(lp, blank=blank)),
])
def test_right_answers_pass(exercise_id, fn):
    result = check.exercise(exercise_id, fn, quiet=True, strict=True)
    assert result and result.n_cases >= 3


def test_strict_mode_raises_for_a_wrong_answer(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    with pytest.raises(check.ExerciseFailed, match="09.3"):
        check.exercise("09.3", lambda lp, blank=0: [], quiet=True)
