"""``fit``: the training loop of notebook 05, with the parts a real run needs around it.

The loop in ``fit`` is the hand-written one: for each epoch, for each batch: zero_grad, forward
under autocast, loss, backward, clip, optimiser step, schedule step. ``step.py`` holds those
parts, ``run.py`` the bookkeeping around them (loss checks, checkpoints, resuming, time budget,
early stopping, restore-best).

Notebook: 05_from_filters_to_cnns, 06_cnn_audio_classification
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from course_lib.runtime import get_runtime, torch_device
from course_lib.train.batches import _batch_size, _set_transform_mode
from course_lib.train.checkpoint import run_settings
from course_lib.train.display import _Display
from course_lib.train.history import History
from course_lib.train.precision import choose_precision
from course_lib.train.run import _Run
from course_lib.train.step import (_METRICS_MAX, BatchHook, _make_optimizer, _make_schedule,
                                   _Step, _validate)

__all__ = ["fit"]


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any] | None = None,
    *,
    epochs: int,
    lr: float = 1e-3,
    optimizer: str = "adamw",
    momentum: float = 0.9,
    weight_decay: float = 1e-2,
    schedule: str | None = "onecycle",
    grad_clip: float | None = None,
    amp: bool | torch.dtype = True,
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_hook: BatchHook | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    target: str = "label",
    metric: str = "accuracy",
    early_stopping_patience: int | None = None,
    restore_best: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every_s: float = 300.0,
    resume: bool = True,
    device: torch.device | str | None = None,
    compile: bool = False,
    max_seconds: float | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    live_plot: bool | None = None,
) -> History:
    """Train ``model`` on ``train_loader``; validate, checkpoint and report every epoch.

    Parameters
    ----------
    model : nn.Module
        Maps a batch of inputs (after ``batch_transform``) to outputs ``loss_fn`` accepts.
    train_loader, val_loader : iterables of batches
        ``(inputs, labels, ...)`` tuples, dicts with ``waveform``/``label``, tensors, or
        torch-geometric ``Batch`` objects (moved with ``.to(device)``, labels from ``.y``).
        ``train_loader`` needs ``len()`` (the schedules count steps).
    epochs : int
    lr : float
        Peak learning rate (OneCycle's maximum; cosine's start).
    optimizer : {"adamw", "sgd"}
        AdamW, or SGD with (Nesterov) ``momentum``.
    weight_decay : float
        Decoupled weight decay (AdamW) or L2 penalty (SGD).
    schedule : {"onecycle", "cosine", None}
        Per-step learning-rate schedule over ``epochs * len(train_loader)`` steps.
    grad_clip : float, optional
        Clip the global gradient norm to this value.
    amp : bool or torch.dtype
        Mixed precision, see ``choose_precision``.
    batch_transform : callable, optional
        Applied on the device to each batch's inputs (e.g. log-mel features); an ``nn.Module``
        is moved to the device and switched to eval mode for validation.
    batch_hook : callable, optional
        ``batch_hook(inputs, labels) -> (inputs, targets)``, applied to training batches only,
        after ``batch_transform``: a label-aware augmentation such as
        ``course_lib.features.Mixup(n_classes)`` (mixed inputs, soft targets). The loss must
        accept its targets (``nn.CrossEntropyLoss`` accepts class probabilities).
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)``; default cross-entropy.
    target : {"label", "input"}
        What the loss compares the outputs with: the labels, or the (transformed) inputs
        themselves (autoencoders).
    metric : {"accuracy", "macro_f1", "uar", "loss"}
        Validation metric for early stopping and the best epoch (``loss`` is minimised).
    early_stopping_patience : int, optional
        Stop after this many epochs without a better validation metric.
    restore_best : bool
        With a validation loader, end with the weights of the best epoch.
    checkpoint : path, "auto" or None
        Folder for checkpoints; "auto" uses ``runtime.checkpoint_dir/<model>-<fingerprint>``
        (Google Drive on Colab). A fingerprint of the model and every setting that changes the
        run (optimiser, schedule, loss, batch transform and hook, grad clip, precision, metric,
        seed, dataset size) guards against resuming a different run; the warning names the
        settings that differ.
    checkpoint_every_s : float
        Seconds between periodic checkpoints (also written at the end and on Ctrl-C).
    resume : bool
        Continue from the checkpoint in ``checkpoint`` if there is one.
    device : torch.device or str, optional
        Default: ``course_lib.runtime.get_runtime().device``.
    compile : bool
        Run the model through ``torch.compile`` (worth it for long GPU runs only).
    max_seconds : float, optional
        Wall-clock budget for this call: no new epoch starts that is predicted to overrun it,
        and a single overlong epoch is cut short at a step boundary.
    seed : int, optional
        Seed every generator before training (when not resuming), for repeatable runs; on CUDA
        this also selects deterministic kernels (``runtime.make_cuda_deterministic``).
    progress : bool, optional
        Progress bars and per-epoch feedback; default: on in every profile but ``ci`` (whose
        runs are short and read by nbval, not by a person waiting).
    live_plot : bool, optional
        Redraw the loss/metric plot every epoch; default: only in a notebook.

    Returns
    -------
    History

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or inf (the message names the epoch and step).
    KeyboardInterrupt
        Re-raised after saving a checkpoint (when ``checkpoint`` is set).

    Notebook: 05_from_filters_to_cnns, 06_cnn_audio_classification
    """
    _check_arguments(train_loader, epochs, target, metric)
    if progress is None:
        progress = get_runtime().profile != "ci"
    device = torch_device(device)
    model.to(device)
    if isinstance(batch_transform, nn.Module):
        batch_transform.to(device)
    precision = choose_precision(device, amp)
    steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
    optimizer_ = _make_optimizer(model, optimizer, lr, momentum, weight_decay)
    step = _Step(device, precision, optimizer_,
                 _make_schedule(optimizer_, schedule, lr, epochs * steps_per_epoch),
                 torch.amp.GradScaler(device.type) if precision.use_scaler else None,
                 loss_fn if loss_fn is not None else nn.CrossEntropyLoss(), batch_transform,
                 grad_clip, target, batch_hook)
    history = History("val_" + metric if val_loader is not None else "train_loss",
                      "max" if metric in _METRICS_MAX and val_loader is not None else "min")
    history.precision, history.device = str(precision), str(device)
    settings = run_settings(
        epochs=epochs, lr=lr, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
        schedule=schedule, steps_per_epoch=steps_per_epoch, target=target, loss=step.loss_fn,
        batch_transform=batch_transform, batch_hook=batch_hook, grad_clip=grad_clip,
        precision=str(precision), metric=metric, seed=seed,
        dataset_size=_dataset_size(train_loader))
    run = _Run(model, step, history, train_loader, settings, checkpoint, checkpoint_every_s,
               max_seconds, progress)
    run.resume_or_seed(resume, seed)
    net = torch.compile(model) if compile else model
    display = _Display(progress, live_plot, epochs)
    try:
        for epoch in range(run.epoch, epochs):
            if not run.start_epoch():  # stopped, or no time for another epoch
                break
            model.train()
            _set_transform_mode(batch_transform, True)
            for i, batch in enumerate(display.batches(train_loader, epoch, steps_per_epoch)):
                if run.skip_done_batch(i):  # resuming mid-epoch: these batches were trained
                    continue
                # ---------------- one training step, as in notebook 05 ----------------
                x, y = step.inputs_targets(batch, training=True)  # to device, features, hook
                step.optimizer.zero_grad(set_to_none=True)
                with step.autocast():                   # mixed precision, if chosen
                    loss = step.loss_fn(net(x), y)
                step.backward(loss)                     # (scaled in float16)
                step.clip(model.parameters())           # optional gradient clipping
                step.optimizer_step()                   # optimiser, then learning-rate schedule
                # ---------------- bookkeeping: loss check, checkpoint, time budget ----------------
                if run.after_step(i, loss, _batch_size(x)):
                    break
            record = run.end_epoch_training(epoch)
            if val_loader is not None:
                record |= _validate(net, val_loader, step)
            run.end_epoch(record)
            display.epoch_end(history)
            if run.should_stop(early_stopping_patience, val_loader is not None):
                break
    except KeyboardInterrupt:
        run.save_on_interrupt()
        raise
    finally:
        display.close()
    run.finish(restore_best)
    return history


def _check_arguments(train_loader: Iterable[Any], epochs: int, target: str, metric: str) -> None:
    if target not in ("label", "input"):
        raise ValueError(f"target must be 'label' or 'input', got {target!r}")
    if metric not in (*_METRICS_MAX, "loss"):
        raise ValueError(f"metric must be one of {(*_METRICS_MAX, 'loss')}, got {metric!r}")
    try:
        steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
    except TypeError as err:
        raise TypeError("train_loader needs a length (a DataLoader or a list of batches)") from err
    if steps_per_epoch == 0:
        raise ValueError("train_loader yields no batches: is the training set empty?")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")


def _dataset_size(loader: Iterable[Any]) -> int | None:
    dataset = getattr(loader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None  # type: ignore[arg-type]
    except TypeError:
        return None
