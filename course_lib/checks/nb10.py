"""Checks for 10_self_supervised: the InfoNCE (NT-Xent) loss, recall@k with source groups.

Notebook: 10_self_supervised
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.checks import Case, as_numpy, compare_scalar, exercise_check, reject_known_mistakes

__all__: list[str] = []  # checks register themselves; nothing to import from here


# ------------------------------------------------------------------------------- 10.1 InfoNCE
def _cross_entropy_rows(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"):
    return F.cross_entropy(logits, targets, reduction=reduction)


def _nt_xent_variant(z1, z2, temperature, *, normalise=True, mask_self=True, targets="pairs",
                     reduction="mean", anchors="both"):
    """NT-Xent with one knob turned: the classic slips, computed on the check's inputs."""
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    if normalise:
        z = F.normalize(z, dim=1)
    logits = z @ z.T / temperature
    if mask_self:
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    if targets == "pairs":
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    elif targets == "self":
        target = torch.arange(2 * n)
    else:  # "first half": arange(n) twice, right for the second half only
        target = torch.cat([torch.arange(n), torch.arange(n)])
    rows = slice(0, n) if anchors == "first view" else slice(0, 2 * n)
    loss = _cross_entropy_rows(logits[rows], target[rows], reduction="none")
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean over N":
        return loss.sum() / n
    return loss.mean()


def _cross_view(z1, z2, temperature, both=True, normalise=True):
    """CLIP's form: candidates from the other view only (N - 1 negatives instead of 2N - 2)."""
    if normalise:
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    target = torch.arange(z1.shape[0])
    forward = F.cross_entropy(z1 @ z2.T / temperature, target)
    return (forward + F.cross_entropy(z2 @ z1.T / temperature, target)) / 2 if both else forward


@exercise_check("10.1", "InfoNCE, the NT-Xent loss")
def _check_info_nce(candidate):
    from course_lib.ssl import info_nce

    gen = torch.Generator().manual_seed(10)
    for n, dim, temperature in [(3, 4, 0.5), (5, 3, 0.1), (4, 8, 2.0), (6, 5, 0.2)]:
        # Norms far from 1 (a missing normalisation shows); views related but not equal.
        z1 = torch.randn(n, dim, generator=gen, dtype=torch.float64) * (0.5 + 3 * torch.rand(n, 1, generator=gen,
                                                                                              dtype=torch.float64))
        z2 = z1 + 0.8 * torch.randn(n, dim, generator=gen, dtype=torch.float64)
        case = Case(f"z1, z2 of shape ({n}, {dim}), temperature={temperature}")
        got = case.call(candidate, z1.clone(), z2.clone(), temperature)
        expected = float(info_nce(z1, z2, temperature))
        _check_scalar_loss(case, got, expected, z1, z2, temperature)
        yield case

    # Last, the case computed by hand (symmetric, so some slips agree with it: the random cases
    # above tell them apart first).
    eye = torch.eye(2, dtype=torch.float64)
    hand = math.log(1 + 2 / math.e)
    case = Case("z1 = z2 = [[1, 0], [0, 1]], temperature=1 (by hand: each anchor's positive has "
                f"similarity 1, its two negatives 0, so every term is -log(e / (e + 2)) = {hand:.6f})")
    got = case.call(candidate, eye.clone(), eye.clone(), 1.0)
    _check_scalar_loss(case, got, hand, eye, eye, 1.0)
    yield case


def _check_scalar_loss(case, got, expected, z1, z2, temperature):
    if got is None:
        case.fail("nothing returned: did you forget to `return` the loss?")
    array = as_numpy(got)
    if array is not None and array.size > 1:
        if array.size == 2 * z1.shape[0] and np.isclose(array.mean(), expected, rtol=1e-6, atol=1e-9):
            case.fail(f"you returned one loss per anchor (shape {array.shape}): return their mean, a scalar")
        case.fail(f"return one number (a scalar loss), got an array of shape {array.shape}")
    if array is not None and not np.all(np.isfinite(array)):
        if np.isinf(float(_nt_xent_variant(z1, z2, temperature, targets="first half"))):
            case.fail("the loss is infinite: some anchor's positive index points at itself, whose "
                      "logit you set to -inf. The positive of row i < N is i + N, of row i >= N is i - N "
                      "(torch.cat([torch.arange(N, 2 * N), torch.arange(N)]))")
        case.fail("the loss is NaN or infinite: mask each anchor's similarity with itself with "
                  "float('-inf') *before* the softmax/cross-entropy, and never use it as a target")
    reject_known_mistakes(case, got, expected, {
        "no temperature: the similarities must be divided by the temperature before the softmax":
            lambda: _nt_xent_variant(z1, z2, 1.0),
        "the temperature multiplies the similarities: divide by it (logits = similarity / T)":
            lambda: _nt_xent_variant(z1, z2, 1.0 / temperature),
        "raw dot products: L2-normalise the embeddings first (cosine similarity), otherwise the "
        "loss depends on their lengths": lambda: _nt_xent_variant(z1, z2, temperature, normalise=False),
        "each anchor's similarity with itself stayed in the denominator: mask the diagonal with "
        "float('-inf') (the positive is the *other* view)":
            lambda: _nt_xent_variant(z1, z2, temperature, mask_self=False),
        "positives on the wrong diagonal: the target of row i was i itself (the anchor), not its "
        "other view i + N (or i - N)":
            lambda: _nt_xent_variant(z1, z2, temperature, mask_self=False, targets="self"),
        "summed over the anchors instead of the mean: average the 2N per-anchor losses":
            lambda: _nt_xent_variant(z1, z2, temperature, reduction="sum"),
        "divided by N instead of 2N: there are 2N anchors (both views), average over all of them":
            lambda: _nt_xent_variant(z1, z2, temperature, reduction="mean over N"),
        "only one direction: the anchors of the second view (rows N..2N-1) are missing; average "
        "over both views' anchors":
            lambda: _nt_xent_variant(z1, z2, temperature, anchors="first view"),
        "negatives only from the other view (CLIP's form, N - 1 negatives): NT-Xent also contrasts "
        "each anchor with the other clips of its own view (2N - 2 negatives)":
            lambda: _cross_view(z1, z2, temperature),
        "only one direction, and negatives only from the other view: use all 2N embeddings as "
        "anchors and candidates": lambda: _cross_view(z1, z2, temperature, both=False),
    }, atol=1e-7, rtol=1e-6)
    compare_scalar(case, got, expected, atol=1e-7, rtol=1e-6, name="loss")


# ------------------------------------------------------------------------------- 10.2 recall@k
def _recall_variant(emb, labels, groups, k, *, exclude_self=True, exclude_group=True, cosine=True,
                    farthest=False, precision=False):
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True) if cosine else emb
    if cosine:
        score = unit @ unit.T
    else:
        score = -np.square(emb[:, None, :] - emb[None, :, :]).sum(-1)
    if farthest:
        score = -score
    n = len(labels)
    excluded = np.zeros((n, n), dtype=bool)
    if exclude_self:
        np.fill_diagonal(excluded, True)
    if exclude_group:
        excluded |= groups[:, None] == groups[None, :]
    score = np.where(excluded, -np.inf, score)
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    same = labels[order] == labels[:, None]
    return float(same.mean()) if precision else float(same.any(axis=1).mean())


def _retrieval_case(seed: int, n_groups: int, per_group: int, n_classes: int, dim: int):
    """Clustered by class, with a strong shared offset per group (a recording's 'sound')."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    groups = np.repeat(np.arange(n_groups), per_group)
    labels = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_classes, dim))
    offsets = 1.2 * rng.normal(size=(n_groups, dim))
    emb = 0.8 * centres[labels] + offsets[groups] + 0.6 * rng.normal(size=(n, dim))
    emb *= rng.uniform(0.3, 4.0, size=(n, 1))  # lengths vary: cosine and Euclidean disagree
    return emb, labels, np.array([f"rec{g}" for g in groups])


@exercise_check("10.2", "recall@k excluding the query and its recording")
def _check_recall_at_k(candidate):
    from course_lib.metrics import recall_at_k

    settings = [(0, 6, 5, 3, 4, 1), (1, 8, 4, 4, 6, 3), (2, 5, 6, 3, 5, 5), (3, 10, 3, 5, 8, 2),
                (4, 7, 5, 4, 3, 4)]
    for seed, n_groups, per_group, n_classes, dim, k in settings:
        emb, labels, groups = _retrieval_case(seed, n_groups, per_group, n_classes, dim)
        case = Case(f"{len(labels)} clips from {n_groups} recordings, {n_classes} classes, k={k}")
        got = case.call(candidate, emb.copy(), labels.copy(), groups.copy(), k)
        expected = recall_at_k(emb, labels, k=k, groups=groups)[k]
        if got is None:
            case.fail("nothing returned: did you forget to `return` the recall?")
        if isinstance(got, dict):
            case.fail("return one number, recall@k for this k (the library returns a dict for several k)")
        args = (emb, labels, groups, k)
        reject_known_mistakes(case, got, expected, {
            "the query retrieved itself (similarity 1 with itself): exclude it from its own "
            "candidates": lambda: _recall_variant(*args, exclude_self=False, exclude_group=False),
            "clips from the query's own recording were candidates: exclude every clip whose group "
            "equals the query's (not only the query itself)":
                lambda: _recall_variant(*args, exclude_group=False),
            "k off by one: that is recall@(k+1); keep the k best candidates (order[:, :k])":
                lambda: _recall_variant(emb, labels, groups, k + 1),
            "k off by one: that is recall@(k-1); keep the k best candidates (order[:, :k])":
                lambda: _recall_variant(emb, labels, groups, k - 1),
            "the farthest candidates were taken: sort similarities in decreasing order "
            "(np.argsort(-similarity))": lambda: _recall_variant(*args, farthest=True),
            "Euclidean distance on unnormalised embeddings: rank by cosine similarity (normalise "
            "each embedding to length 1 first)": lambda: _recall_variant(*args, cosine=False),
            "that is precision@k (the share of the k neighbours with the query's label): recall@k "
            "counts a query as found when *any* of its k neighbours has its label":
                lambda: _recall_variant(*args, precision=True),
        }, atol=1e-12, rtol=0)
        compare_scalar(case, got, expected, atol=1e-12, rtol=0, name=f"recall@{k}")
        yield case
