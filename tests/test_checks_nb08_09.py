"""Checks of notebooks 08 and 09: the reference solutions pass; typical mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import checks as check
from course_lib import graphs
from course_lib.models.temporal import greedy_ctc_decode


def _hint(exercise_id: str, fn) -> str:
    result = check.exercise(exercise_id, fn, quiet=True, strict=False)
    assert not result, f"a wrong answer passed {exercise_id}"
    return result.message


# ---------------------------------------------------------------------------- solutions as written
# The same code as the solution cells of the notebooks.
def ring_laplacian_solution(n):
    A = np.zeros((n, n))
    for m in range(n):
        A[m, (m + 1) % n] = A[(m + 1) % n, m] = 1.0
    return np.diag(A.sum(axis=1)) - A


def knn_neighbours_solution(frames, k):
    centred = frames - frames.mean(axis=0, keepdims=True)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1)[:, :k]


def chebyshev_filter_solution(x, L, theta):
    L_hat = L - torch.eye(L.shape[0], dtype=L.dtype)  # 2 L / lambda_max - I with lambda_max = 2
    t_prev, out = x, x @ theta[0]
    if len(theta) > 1:
        t_cur = L_hat @ x
        out = out + t_cur @ theta[1]
        for k in range(2, len(theta)):
            t_prev, t_cur = t_cur, 2 * L_hat @ t_cur - t_prev
            out = out + t_cur @ theta[k]
    return out


def causal_conv_solution(x, weight, dilation):
    k = weight.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * dilation, 0)), weight, dilation=dilation)


def attention_pool_solution(h, scores, mask):
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    return (weights.unsqueeze(-1) * h).sum(dim=1)


def greedy_decode_solution(log_probs, blank=0):
    decoded, previous = [], None
    for s in log_probs.argmax(dim=-1).tolist():
        if s != previous and s != blank:
            decoded.append(s)
        previous = s
    return decoded


@pytest.mark.parametrize("exercise_id,fn", [
    ("08.1", ring_laplacian_solution),
    ("08.1", lambda n: graphs.laplacian(graphs.ring_graph(n))),
    ("08.3", knn_neighbours_solution),
    ("08.2", chebyshev_filter_solution),
    ("08.2", lambda x, L, theta: graphs.chebyshev_filter(x, L, theta)),
    ("09.1", causal_conv_solution),
    ("09.2", attention_pool_solution),
    ("09.3", greedy_decode_solution),
    ("09.3", lambda lp, blank: greedy_ctc_decode(lp, blank=blank)),
])
def test_reference_solutions_pass(exercise_id, fn):
    result = check.exercise(exercise_id, fn, quiet=True, strict=True)
    assert result and result.n_cases >= 3


def test_ring_laplacian_hints():
    assert "flipped" in _hint("08.1", lambda n: -ring_laplacian_solution(n))
    assert "adjacency" in _hint("08.1", lambda n: graphs.ring_graph(n))

    def path(n):
        A = np.eye(n, k=1) + np.eye(n, k=-1)
        return np.diag(A.sum(1)) - A

    assert "wrap" in _hint("08.1", path)
    assert "normalised" in _hint("08.1", lambda n: ring_laplacian_solution(n) / 2)
    assert "ZeroDivisionError" in _hint("08.1", lambda n: 1 / 0)
    assert "not implemented" in _hint("08.1", _stub)


def _stub(*args):
    raise NotImplementedError("Exercise: write it")


def test_knn_hints():
    def with_self(frames, k):
        centred = frames - frames.mean(axis=0)
        sim = centred @ centred.T / np.outer(np.linalg.norm(centred, axis=1), np.linalg.norm(centred, axis=1))
        return np.argsort(-sim, axis=1)[:, :k]

    def least(frames, k):
        centred = frames - frames.mean(axis=0)
        sim = centred @ centred.T / np.outer(np.linalg.norm(centred, axis=1), np.linalg.norm(centred, axis=1))
        np.fill_diagonal(sim, np.inf)
        return np.argsort(sim, axis=1)[:, :k]

    assert "itself" in _hint("08.3", with_self)
    assert "centred" in _hint("08.3", _raw_knn)
    assert "LEAST" in _hint("08.3", least)
    assert "shape" in _hint("08.3", lambda frames, k: knn_neighbours_solution(frames, k).T)


def _raw_knn(frames, k):
    unit = frames / np.linalg.norm(frames, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1)[:, :k]


def test_chebyshev_hints():
    def unscaled(x, L, theta):
        return chebyshev_filter_solution(x, L + torch.eye(L.shape[0], dtype=L.dtype), theta)

    def power_series(x, L, theta):
        L_hat = L - torch.eye(L.shape[0], dtype=L.dtype)
        return sum(torch.linalg.matrix_power(L_hat, k) @ x @ theta[k] for k in range(len(theta)))

    assert "scaled Laplacian" in _hint("08.2", unscaled)
    assert "power series" in _hint("08.2", power_series)


def test_causal_conv_hints():
    def same(x, w, d):
        k = w.shape[-1]
        return F.conv1d(x, w, dilation=d, padding=(k - 1) * d // 2)

    def right(x, w, d):
        k = w.shape[-1]
        return F.conv1d(F.pad(x, (0, (k - 1) * d)), w, dilation=d)

    def no_pad(x, w, d):
        return F.conv1d(x, w, dilation=d)

    def no_dilation_pad(x, w, d):
        k = w.shape[-1]
        return F.conv1d(F.pad(x, (k - 1, 0)), w, dilation=d)

    assert "right" in _hint("09.1", right)
    assert "left" in _hint("09.1", no_pad)
    assert "dilation" in _hint("09.1", no_dilation_pad)
    # 'same' padding for k=2 cannot be split evenly: the first case flags the length instead.
    assert "frames" in _hint("09.1", same) or "future" in _hint("09.1", same)


def test_attention_pooling_hints():
    def unmasked(h, scores, mask):
        return (torch.softmax(scores, dim=1).unsqueeze(-1) * h).sum(1)

    def mask_after(h, scores, mask):
        return ((torch.softmax(scores, dim=1) * mask).unsqueeze(-1) * h).sum(1)

    def raw_scores(h, scores, mask):
        return (scores.masked_fill(~mask, 0.0).unsqueeze(-1) * h).sum(1)

    assert "padding frames got weight" in _hint("09.2", unmasked)
    assert "after the softmax" in _hint("09.2", mask_after)
    assert "raw scores" in _hint("09.2", raw_scores)


def test_greedy_ctc_hints():
    def no_collapse(lp, blank=0):
        return [s for s in lp.argmax(-1).tolist() if s != blank]

    def blanks_first(lp, blank=0):
        nb = [s for s in lp.argmax(-1).tolist() if s != blank]
        return [s for i, s in enumerate(nb) if i == 0 or s != nb[i - 1]]

    def keep_blanks(lp, blank=0):
        path = lp.argmax(-1).tolist()
        return [s for i, s in enumerate(path) if i == 0 or s != path[i - 1]]

    assert "collapse" in _hint("09.3", no_collapse)
    assert "before collapsing" in _hint("09.3", blanks_first)
    assert "not a symbol" in _hint("09.3", keep_blanks)
    assert "not implemented" in _hint("09.3", _stub)


def test_strict_mode_raises_for_a_wrong_answer(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    with pytest.raises(check.ExerciseFailed, match="09.3"):
        check.exercise("09.3", lambda lp, blank=0: [], quiet=True)
