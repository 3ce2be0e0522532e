"""``predict`` and ``evaluate``: run a model over a loader for the numbers a notebook reports.

Notebook: 06_cnn_audio_classification
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib import metrics
from course_lib.runtime import torch_device
from course_lib.train.batches import _split_batch, _to_device, _set_transform_mode
from course_lib.train.precision import choose_precision

__all__ = ["Evaluation", "predict", "evaluate"]


@dataclass
class Evaluation:
    """Classification results of ``evaluate``: overall scores, per-class scores, confusion.

    Attributes
    ----------
    accuracy, macro_f1 : float
        Macro-F1 is :func:`course_lib.metrics.macro_f1` over all ``n_classes`` classes
        (scikit-learn's ``f1_score(labels=range(n_classes), average="macro",
        zero_division=0)``), the same definition as ``fit``'s ``val_macro_f1``.
    precision, recall, f1 : np.ndarray, shape (n_classes,)
    confusion : np.ndarray, shape (n_classes, n_classes)
        Rows are true classes, columns predicted classes (counts).
    classes : list of str
    loss : float
        Mean loss per sample (NaN when no loss function was given).
    n : int
        Number of items scored.

    Notebook: 06_cnn_audio_classification
    """

    accuracy: float
    macro_f1: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    confusion: np.ndarray
    classes: list[str]
    loss: float = math.nan
    n: int = 0
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64),
                                    repr=False)
    targets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    @property
    def uar(self) -> float:
        """Unweighted average recall over the classes that occur."""
        return metrics.unweighted_average_recall(self.targets, self.predictions)

    def per_class_table(self) -> str:
        """Precision, recall, F1 and support of each class, as text."""
        support = self.confusion.sum(axis=1)
        width = max(5, *(len(c) for c in self.classes))
        lines = [f"{'class':<{width}}  precision  recall     f1  support"]
        for i, name in enumerate(self.classes):
            lines.append(f"{name:<{width}}  {self.precision[i]:9.3f}  {self.recall[i]:6.3f}  "
                         f"{self.f1[i]:5.3f}  {support[i]:7d}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        loss = "" if math.isnan(self.loss) else f", loss {self.loss:.4f}"
        return (f"Evaluation(n={self.n}, accuracy {self.accuracy:.4f}, "
                f"macro-F1 {self.macro_f1:.4f}{loss})")

    def plot_confusion(self, normalize: bool = True, ax: Any = None) -> Any:
        """Heat map of the confusion matrix (rows normalised to recall if ``normalize``)."""
        import matplotlib.pyplot as plt

        cm = self.confusion.astype(float)
        if normalize:
            cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        if ax is None:
            size = max(4.0, 0.45 * len(self.classes) + 2)
            _, ax = plt.subplots(figsize=(size + 1, size))
        im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
        ticks = np.arange(len(self.classes))
        ax.set_xticks(ticks, self.classes, rotation=60, ha="right", fontsize="small")
        ax.set_yticks(ticks, self.classes, fontsize="small")
        ax.set(xlabel="predicted class", ylabel="true class",
               title=f"confusion ({'fraction of each true class' if normalize else 'counts'})")
        if len(self.classes) <= 15:
            for i in range(len(self.classes)):
                for j in range(len(self.classes)):
                    if self.confusion[i, j]:
                        ax.text(j, i, f"{cm[i, j]:.2f}" if normalize else int(cm[i, j]),
                                ha="center", va="center", fontsize="x-small",
                                color="white" if cm[i, j] > 0.6 * cm.max() else "black")
        ax.figure.colorbar(im, ax=ax, fraction=0.046,
                           label="fraction of true class" if normalize else "clips")
        ax.figure.tight_layout()
        return ax.figure


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    amp: bool | torch.dtype = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``model`` in eval mode over ``loader``.

    Returns
    -------
    outputs : torch.Tensor, shape (n_items, ...), float32 on the CPU
    targets : torch.Tensor, shape (n_items,), or None when batches have no labels

    Notebook: 06_cnn_audio_classification
    """
    device = torch_device(device)
    precision = choose_precision(device, amp)
    was_training = model.training
    model.to(device).eval()
    if isinstance(batch_transform, nn.Module):
        batch_transform.to(device)
    transform_was_training = getattr(batch_transform, "training", None)
    _set_transform_mode(batch_transform, False)
    outputs, targets = [], []
    try:
        for batch in loader:
            x, y = _split_batch(batch)
            x = _to_device(x, device)
            if batch_transform is not None:
                x = batch_transform(x)
            with torch.autocast(device.type, dtype=precision.dtype or torch.float32,
                                enabled=precision.autocast):
                out = model(x)
            outputs.append(out.float().cpu())
            if y is not None:
                targets.append(y.cpu())
    finally:
        model.train(was_training)
        if transform_was_training is not None:  # back to the mode it had, not always train
            _set_transform_mode(batch_transform, transform_was_training)
    if not outputs:
        raise ValueError("the loader yielded no batches: is the dataset empty?")
    return torch.cat(outputs), (torch.cat(targets) if targets else None)


def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    classes: Sequence[str] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    amp: bool | torch.dtype = False,
) -> Evaluation:
    """Accuracy, macro-F1, per-class precision/recall/F1 and confusion matrix of a classifier.

    Parameters
    ----------
    model : nn.Module
        Returns logits ``(batch, n_classes)``.
    loader : iterable of (inputs, labels, ...) batches
    classes : sequence of str, optional
        Class names (default: the loader's ``dataset.classes`` if any, else "0", "1", ...).
    loss_fn : callable, optional
        Also report its mean per sample (e.g. ``nn.CrossEntropyLoss()``).

    Returns
    -------
    Evaluation

    Notebook: 06_cnn_audio_classification
    """
    logits, targets = predict(model, loader, batch_transform=batch_transform, device=device,
                              amp=amp)
    if targets is None:
        raise ValueError("evaluate needs labelled batches (inputs, labels, ...); use predict")
    if logits.dim() != 2:
        raise ValueError(f"evaluate expects logits (batch, n_classes); got {tuple(logits.shape)}")
    if classes is None:
        classes = getattr(getattr(loader, "dataset", None), "classes", None)
    n_classes = logits.shape[1]  # every class the model can predict counts in macro-F1
    if classes is not None and len(classes) != n_classes:
        raise ValueError(f"{len(classes)} class names for a model with {n_classes} outputs: pass "
                         "classes= with one name per output (or none)")
    if classes is None:
        classes = [str(i) for i in range(n_classes)]
    pred = logits.argmax(dim=1).numpy()
    true = targets.numpy()
    p, r, f1 = metrics.precision_recall_f1(true, pred, n_classes)
    loss = math.nan
    if loss_fn is not None:
        loss = float(loss_fn(logits, targets).item())
    return Evaluation(  # macro-F1: the one definition fit's history uses too
        accuracy=metrics.accuracy(true, pred),
        macro_f1=metrics.macro_f1(true, pred, n_classes=n_classes), precision=p, recall=r,
        f1=f1, confusion=metrics.confusion_matrix(true, pred, n_classes), classes=list(classes),
        loss=loss, n=len(true), predictions=pred, targets=true,
    )

