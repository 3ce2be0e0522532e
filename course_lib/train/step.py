"""One training step's parts, so ``fit`` reads like notebook 05's hand-written loop: the optimiser
and schedule, moving a batch to the device with its on-device transform and label-aware hook,
the autocast context, the backward/clip/step/schedule update, and validation.

Notebook: 05_from_filters_to_cnns, 06_cnn_audio_classification
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_lib import metrics
from course_lib.train.batches import _batch_size, _set_transform_mode, _split_batch, _to_device
from course_lib.train.precision import Precision

_METRICS_MAX = ("accuracy", "macro_f1", "uar")
BatchHook = Callable[[Any, torch.Tensor], tuple[Any, torch.Tensor]]


def _make_optimizer(model: nn.Module, name: str, lr: float, momentum: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                               weight_decay=weight_decay, nesterov=momentum > 0)
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {name!r}")


def _make_schedule(opt: torch.optim.Optimizer, name: str | None, lr: float,
                   total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    # Both schedules step once per batch, so they are independent of the epoch count's grain.
    if name is None:
        return None
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    raise ValueError(f"schedule must be 'onecycle', 'cosine' or None, got {name!r}")


@dataclass
class _Step:
    """What a training step needs besides the model: device, precision, optimiser, schedule,
    scaler, loss, the batch transform and hook, gradient clipping, and what the target is."""

    device: torch.device
    precision: Precision
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler | None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None
    grad_clip: float | None
    target: str
    batch_hook: BatchHook | None = None
    updating: bool = False  # between backward() and the end of the step: weights half-updated

    def inputs_targets(self, batch: Any, training: bool = False) -> tuple[Any, Any]:
        """Move a batch to the device, apply the on-device transform (e.g. log-mel) and, in
        training, the label-aware ``batch_hook`` (e.g. mixup: inputs and soft targets)."""
        x, y = (_to_device(t, self.device) for t in _split_batch(batch))
        if self.batch_transform is not None:
            x = self.batch_transform(x)
        y = x if self.target == "input" else y
        if training and self.batch_hook is not None:
            x, y = self.batch_hook(x, y)
        return x, y

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward pass's mixed-precision context (a no-op in float32)."""
        return torch.autocast(self.device.type, dtype=self.precision.dtype or torch.float32,
                              enabled=self.precision.autocast)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``; float16 first scales the loss so small gradients survive."""
        self.updating = True
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
        else:
            loss.backward()

    def clip(self, params: Iterable[nn.Parameter]) -> None:
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, self.grad_clip)

    def optimizer_step(self) -> None:
        """``optimizer.step()`` (through the scaler in float16), then the schedule's step."""
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()


def _validate(net: nn.Module, loader: Iterable[Any], step: _Step) -> dict[str, float]:
    """Validation loss (mean per sample) and, for classifiers, accuracy, macro-F1 and UAR.

    Macro-F1 is the course's one definition (:func:`course_lib.metrics.macro_f1` over all
    ``n_classes`` = the logits' width, zero_division=0), the same number ``evaluate`` reports.
    """
    net.eval()
    was_training = getattr(step.batch_transform, "training", None)
    _set_transform_mode(step.batch_transform, False)
    total, n, preds, trues, n_classes = 0.0, 0, [], [], 0
    try:
        # Validation must not change training: iterating a DataLoader draws a seed from torch's
        # global generator even without shuffling, so the same seed trained with and without a
        # validation set ended with different weights. fork_rng puts the CPU generator back.
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for batch in loader:
                x, y = step.inputs_targets(batch, training=False)
                with step.autocast():
                    out = net(x)
                    loss = step.loss_fn(out, y)
                total += loss.float().item() * _batch_size(x)
                n += _batch_size(x)
                if step.target == "label" and out.dim() == 2 and y is not None and y.dim() == 1:
                    preds.append(out.argmax(dim=1).cpu())
                    trues.append(y.cpu())
                    n_classes = out.shape[1]
    finally:
        net.train()
        if was_training is not None:
            _set_transform_mode(step.batch_transform, was_training)
    result = {"val_loss": total / max(n, 1)}
    if preds:
        p, t = torch.cat(preds).numpy(), torch.cat(trues).numpy()
        result |= {"val_accuracy": metrics.accuracy(t, p),
                   "val_macro_f1": metrics.macro_f1(t, p, n_classes=n_classes),
                   "val_uar": metrics.unweighted_average_recall(t, p)}
    return result
