"""Evaluation metrics: classification, sequence (CER/WER), frame-level and retrieval.

Every function takes NumPy arrays, torch tensors or lists and returns plain floats or NumPy
arrays, so a notebook can print the number it states. Classification functions follow
scikit-learn's conventions (rows of the confusion matrix are true classes, precision of a class
that is never predicted is 0) and are tested against it.

Notebook: 06_cnn_audio_classification (classification metrics), 13_speech_recognition_ctc
(CER/WER), 09_temporal_models (frame F1), 10_self_supervised (recall@k).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "per_class_f1",
    "macro_f1",
    "unweighted_average_recall",
    "edit_distance",
    "cer",
    "wer",
    "frame_f1",
    "recall_at_k",
]


def _labels(y: Any, name: str) -> np.ndarray:
    """Convert labels (list, NumPy array or torch tensor) to a 1-D int64 array."""
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D class indices, got shape {arr.shape}; "
            "for logits pass logits.argmax(dim=1)"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}: they must match")
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty: nothing to score")
    return t, p


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the true label.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)

    Returns
    -------
    float in [0, 1]

    Notebook: 05_from_filters_to_cnns
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Count matrix ``C[i, j]`` = number of items of true class i predicted as class j.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)
    n_classes : int, optional
        Size of the matrix; default ``max(label) + 1``. Pass it so that classes absent from a
        small test set still get a row.

    Returns
    -------
    np.ndarray, shape (n_classes, n_classes), int64

    Notebook: 06_cnn_audio_classification
    """
    t, p = _pair(y_true, y_pred)
    if min(t.min(), p.min()) < 0:
        raise ValueError("labels must be >= 0 (class indices)")
    k = int(max(t.max(), p.max())) + 1
    if n_classes is None:
        n_classes = k
    elif n_classes < k:
        raise ValueError(f"n_classes={n_classes} but a label {k - 1} occurs: raise n_classes")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def precision_recall_f1(
    y_true: Any, y_pred: Any, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 (0 where undefined, as scikit-learn's zero_division=0).

    Returns
    -------
    precision, recall, f1 : np.ndarray, each shape (n_classes,)

    Notebook: 06_cnn_audio_classification
    """
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def per_class_f1(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """F1 of each class, shape (n_classes,). Notebook: 06_cnn_audio_classification"""
    return precision_recall_f1(y_true, y_pred, n_classes)[2]


def macro_f1(y_true: Any, y_pred: Any, n_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores.

    Every class counts equally however rare it is, which is why it is reported next to
    accuracy on imbalanced sets. The course's one definition, used by ``train.fit``'s
    ``val_macro_f1`` and ``train.evaluate().macro_f1``, passes ``n_classes`` (the model's output
    width): all ``n_classes`` are averaged, a class never predicted nor present scoring 0
    (scikit-learn's ``f1_score(labels=range(n_classes), average="macro", zero_division=0)``).
    Without ``n_classes`` only classes that occur in ``y_true`` or ``y_pred`` are averaged
    (scikit-learn's default ``labels``), which is higher when a class is missing.

    Notebook: 06_cnn_audio_classification
    """
    t, p = _pair(y_true, y_pred)
    f1 = per_class_f1(t, p, n_classes)
    if n_classes is None:
        present = np.union1d(t, p)
        return float(f1[present].mean())
    return float(f1.mean())


def unweighted_average_recall(y_true: Any, y_pred: Any) -> float:
    """UAR: the mean of per-class recalls over the classes present in ``y_true``.

    Equal to scikit-learn's ``balanced_accuracy_score``; chance level is ``1 / n_classes``
    whatever the class balance, which is why emotion recognition reports it.

    Notebook: 14_speech_emotion
    """
    t, p = _pair(y_true, y_pred)
    recall = precision_recall_f1(t, p)[1]
    return float(recall[np.unique(t)].mean())


def edit_distance(reference: Sequence[Any], hypothesis: Sequence[Any]) -> int:
    """Levenshtein distance: fewest substitutions, insertions and deletions from ref to hyp.

    ``torchaudio.functional.edit_distance`` (the row-by-row dynamic programme), on lists.

    Parameters
    ----------
    reference, hypothesis : sequence
        Strings (compared by character) or lists of tokens (e.g. words).

    Returns
    -------
    int

    Notebook: 13_speech_recognition_ctc
    """
    from torchaudio.functional import edit_distance as levenshtein  # lazy: torchaudio imports torch

    return int(levenshtein(list(reference), list(hypothesis)))


def _error_rate(refs: list[list[Any]], hyps: list[list[Any]]) -> float:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses: they must pair up")
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("the references are empty: the error rate is undefined")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / total


def cer(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> float:
    """Character error rate: total edit distance / total reference characters.

    Parameters
    ----------
    reference, hypothesis : str or list of str
        One transcript each, or lists of transcripts (corpus-level rate, not a mean of rates).

    Notebook: 13_speech_recognition_ctc
    """
    refs = [reference] if isinstance(reference, str) else list(reference)
    hyps = [hypothesis] if isinstance(hypothesis, str) else list(hypothesis)
    return _error_rate([list(r) for r in refs], [list(h) for h in hyps])


def wer(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> float:
    """Word error rate: total word-level edit distance / total reference words.

    Words are split on whitespace. Can exceed 1 when the hypothesis has many insertions.

    Notebook: 13_speech_recognition_ctc
    """
    refs = [reference] if isinstance(reference, str) else list(reference)
    hyps = [hypothesis] if isinstance(hypothesis, str) else list(hypothesis)
    return _error_rate([r.split() for r in refs], [h.split() for h in hyps])


def frame_f1(reference: Any, estimate: Any) -> float:
    """F1 of binary frame decisions (e.g. voice activity, onset frames).

    Parameters
    ----------
    reference, estimate : array-like of {0, 1} or bool, any shape (flattened)

    Returns
    -------
    float: 2 TP / (2 TP + FP + FN); 1.0 when both are all zero.

    Notebook: 09_temporal_models
    """
    ref = np.asarray(reference.detach().cpu() if hasattr(reference, "detach") else reference)
    est = np.asarray(estimate.detach().cpu() if hasattr(estimate, "detach") else estimate)
    if ref.shape != est.shape:
        raise ValueError(f"reference shape {ref.shape} != estimate shape {est.shape}")
    ref, est = ref.astype(bool).ravel(), est.astype(bool).ravel()
    tp = np.sum(ref & est)
    denom = 2 * tp + np.sum(~ref & est) + np.sum(ref & ~est)
    return 1.0 if denom == 0 else float(2 * tp / denom)


def recall_at_k(
    embeddings: Any,
    labels: Any,
    k: int | Sequence[int] = (1, 5),
    *,
    queries: Any = None,
    query_labels: Any = None,
    groups: Any = None,
    query_groups: Any = None,
) -> dict[int, float]:
    """Retrieval recall@k: fraction of queries with a same-label item among their k nearest.

    Neighbours are ranked by cosine similarity. Without ``queries`` every embedding queries
    all the others (leave-one-out: an item never retrieves itself). With ``groups`` (the source
    recording, speaker or kit of each item) a query never retrieves an item of its own group
    either: clips cut from one recording share its microphone, room and background, so finding
    one from another is not evidence that the embedding knows the class.

    Parameters
    ----------
    embeddings : array-like, shape (n, d)
        The database.
    labels : array-like of int, shape (n,)
    k : int or sequence of int
    queries : array-like, shape (m, d), optional
    query_labels : array-like of int, shape (m,), required with ``queries``
    groups : array-like, shape (n,), optional
        Group of each database item (any hashable values: strings, ints); candidates of the
        query's own group are excluded.
    query_groups : array-like, shape (m,), optional
        Group of each query; required with ``queries`` and ``groups`` (leave-one-out uses
        ``groups``).

    Returns
    -------
    dict mapping each k to recall@k in [0, 1]

    Raises
    ------
    ValueError
        When a ``k`` exceeds the number of candidates some query has (after the exclusions).

    Notebook: 10_self_supervised
    """
    db = np.asarray(embeddings.detach().cpu() if hasattr(embeddings, "detach") else embeddings,
                    dtype=np.float64)
    db_labels = _labels(labels, "labels")
    if db.ndim != 2 or db.shape[0] != db_labels.size:
        raise ValueError(f"embeddings must be (n, d) with n = len(labels); got {db.shape}")
    leave_one_out = queries is None
    if leave_one_out:
        q, q_labels = db, db_labels
    else:
        if query_labels is None:
            raise ValueError("pass query_labels together with queries")
        q = np.asarray(queries.detach().cpu() if hasattr(queries, "detach") else queries,
                       dtype=np.float64)
        q_labels = _labels(query_labels, "query_labels")
    ks = [k] if isinstance(k, int) else list(k)
    excluded = np.zeros((q.shape[0], db.shape[0]), dtype=bool)
    if leave_one_out:
        np.fill_diagonal(excluded, True)
    if groups is not None:
        db_groups = np.asarray(groups.detach().cpu() if hasattr(groups, "detach") else groups)
        if db_groups.shape != (db.shape[0],):
            raise ValueError(f"groups must hold one group per embedding ({db.shape[0]}), "
                             f"got shape {db_groups.shape}")
        if leave_one_out:
            q_groups = db_groups
        elif query_groups is None:
            raise ValueError("pass query_groups together with queries and groups")
        else:
            q_groups = np.asarray(query_groups.detach().cpu() if hasattr(query_groups, "detach")
                                  else query_groups)
            if q_groups.shape != (q.shape[0],):
                raise ValueError(f"query_groups must hold one group per query ({q.shape[0]}), "
                                 f"got shape {q_groups.shape}")
        excluded |= q_groups[:, None] == db_groups[None, :]
    n_candidates = int((~excluded).sum(axis=1).min()) if q.shape[0] else db.shape[0]
    if min(ks) < 1 or max(ks) > n_candidates:
        why = " after excluding each query's own group" if groups is not None else ""
        raise ValueError(f"k must lie in 1..{n_candidates} (the fewest candidates a query has"
                         f"{why}), got {ks}")

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    sim = unit(q) @ unit(db).T
    sim[excluded] = -np.inf
    order = np.argsort(-sim, axis=1, kind="stable")
    hits = db_labels[order] == q_labels[:, None]
    return {kk: float(np.mean(hits[:, :kk].any(axis=1))) for kk in ks}
