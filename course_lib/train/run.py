"""The bookkeeping around ``fit``'s loop: where the run stands, loss checks, checkpoints and
resuming, the time budget, early stopping and restore-best.

A checkpoint holds the modules' states, this position, and the RNG states at the epoch's start
(to replay its shuffle) and after the last step (to continue from there), so a rerun resumes
exactly.

Notebook: 06_cnn_audio_classification
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.train.checkpoint import (_capture_rng, _fingerprint, _restore_rng,
                                         load_checkpoint, save_checkpoint, settings_diff)
from course_lib.train.history import History
from course_lib.train.step import _Step


class _Run:
    """Where a ``fit`` call stands, and everything it does between training steps."""

    def __init__(self, model: nn.Module, step: _Step, history: History, loader: Any,
                 settings: dict[str, Any], checkpoint: str | os.PathLike[str] | None,
                 checkpoint_every_s: float, max_seconds: float | None, progress: bool) -> None:
        self.model, self.step, self.history, self.loader = model, step, history, loader
        self.settings, self.fingerprint = settings, _fingerprint(model, settings)
        self.checkpoint_every_s, self.max_seconds, self.progress = (checkpoint_every_s,
                                                                    max_seconds, progress)
        self.steps_per_epoch = len(loader)
        self.ckpt_dir: Path | None = None
        if checkpoint == "auto":
            from course_lib.runtime import get_runtime

            self.ckpt_dir = (get_runtime().checkpoint_dir
                             / f"{type(model).__name__}-{self.fingerprint}")
        elif checkpoint is not None:
            self.ckpt_dir = Path(checkpoint)
        # Position (what a checkpoint's "position" holds).
        self.epoch, self.batch, self.steps, self.loss_sum, self.seen, self.train_s = 0, 0, 0, 0.0, 0, 0.0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epoch_rng: dict[str, Any] | None = None
        self.rng_now: dict[str, Any] | None = None
        self.partial = False  # the last history record is an epoch cut short by max_seconds
        self.pending: list[tuple[torch.Tensor, int]] = []  # (loss, batch size) not yet checked
        self.check_every = 1 if step.device.type == "cpu" else 25  # reading a loss syncs a GPU
        self.start = self.last_save = self.t_epoch = self.t_train = time.monotonic()
        self.skip = 0

    # ---- position, as saved in a checkpoint ----
    def position(self) -> dict[str, float]:
        return {"epoch": self.epoch, "batch": self.batch, "step": self.steps,
                "loss_sum": self.loss_sum, "seen": self.seen, "train_s": self.train_s}

    def _set_position(self, pos: dict[str, Any]) -> None:
        self.epoch, self.batch, self.steps = int(pos["epoch"]), int(pos["batch"]), int(pos["step"])
        self.loss_sum, self.seen, self.train_s = float(pos["loss_sum"]), int(pos["seen"]), \
            float(pos["train_s"])

    def snapshot(self) -> dict[str, Any]:
        step, hist = self.step, self.history.state_dict()
        if self.partial:  # the resumed run finishes that epoch and records it then
            hist["records"] = hist["records"][:-1]
        return {
            "complete": True, "fingerprint": self.fingerprint, "settings": self.settings,
            "model": self.model.state_dict(), "optimizer": step.optimizer.state_dict(),
            "scheduler": step.schedule.state_dict() if step.schedule is not None else None,
            "scaler": step.scaler.state_dict() if step.scaler is not None else None,
            "history": hist, "position": self.position(), "best_model": self.best_state,
            "epoch_rng": self.epoch_rng, "rng": self.rng_now,
        }

    def resume_or_seed(self, resume: bool, seed: int | None) -> None:
        """Load the checkpoint of this same run if there is one; else seed (if asked)."""
        found = load_checkpoint(self.ckpt_dir) if (self.ckpt_dir is not None and resume) else None
        if found is not None and found[0]["fingerprint"] != self.fingerprint:
            warnings.warn(f"checkpoint {found[1]} is of another run, not resumed; what differs: "
                          f"{settings_diff(found[0].get('settings'), self.settings)}. Starting "
                          "afresh (it will be replaced)", RuntimeWarning, stacklevel=3)
            found = None
        if found is None:
            if seed is not None:
                from course_lib.runtime import seed_everything

                seed_everything(seed)
            return
        state, path = found
        step = self.step
        self.model.load_state_dict(state["model"])
        step.optimizer.load_state_dict(state["optimizer"])
        if step.schedule is not None and state["scheduler"] is not None:
            step.schedule.load_state_dict(state["scheduler"])
        if step.scaler is not None and state["scaler"] is not None:
            step.scaler.load_state_dict(state["scaler"])
        self.history.load_state_dict(state["history"])
        if self.history.stopped.startswith("time budget"):
            self.history.stopped = ""  # a new call brings a new budget
        self._set_position(state["position"])
        self.best_state = state["best_model"]
        self.epoch_rng, self.rng_now = state["epoch_rng"], state["rng"]
        if self.batch == 0 and self.rng_now is not None:
            _restore_rng(self.rng_now, self.loader)  # at an epoch boundary: continue from there
        # always said, progress bars or not: a resumed run must never pass for a fresh one
        print(f"resumed from {path}: epoch {self.epoch + 1}, batch {self.batch}")

    # ---- around each epoch and step ----
    def start_epoch(self) -> bool:
        """Begin an epoch; False when the run must stop (stopped before, or out of time)."""
        if self.history.stopped:
            return False
        self.t_epoch, self.skip = time.monotonic(), self.batch
        records = self.history.records
        if self.max_seconds is not None and records and self.skip == 0 \
                and self.t_epoch - self.start + records[-1]["seconds"] > self.max_seconds:
            self.history.stopped = f"time budget max_seconds={self.max_seconds:g} reached"
            return False
        if self.skip:  # resuming mid-epoch: replay the epoch's shuffle, skip the batches done
            _restore_rng(self.epoch_rng, self.loader)
        else:
            self.epoch_rng = _capture_rng(self.loader)
        self.t_train = time.monotonic()
        return True

    def skip_done_batch(self, i: int) -> bool:
        """True for the batches a resumed epoch already trained on."""
        if i >= self.skip:
            return False
        if i == self.skip - 1:
            _restore_rng(self.rng_now, self.loader)
        return True

    def after_step(self, i: int, loss: torch.Tensor, batch_size: int) -> bool:
        """Count the step, check losses, checkpoint when due; True when the time budget ends
        the epoch here."""
        self.pending.append((loss.detach(), batch_size))
        self.steps, self.batch, self.seen = self.steps + 1, i + 1, self.seen + batch_size
        self.rng_now = _capture_rng(self.loader)
        self.step.updating = False
        if len(self.pending) >= self.check_every:
            self.flush_losses()
        now = time.monotonic()
        if self.ckpt_dir is not None and now - self.last_save >= self.checkpoint_every_s:
            self.flush_losses()
            self.train_s, self.t_train = self.train_s + now - self.t_train, now
            save_checkpoint(self.snapshot(), self.ckpt_dir)
            self.last_save = time.monotonic()
        if self.max_seconds is not None and now - self.start > self.max_seconds \
                and i + 1 < self.steps_per_epoch:
            self.history.stopped = (f"time budget max_seconds={self.max_seconds:g} reached in "
                                    f"epoch {self.epoch + 1} (batch {i + 1}/{self.steps_per_epoch})")
            self.partial = True
            return True
        return False

    def flush_losses(self) -> None:
        """Check the pending losses are finite and add them up (one GPU sync for many)."""
        if not self.pending:
            return
        values = torch.stack([loss for loss, _ in self.pending]).float().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            i, k = int(bad[0]), len(self.pending)
            raise FloatingPointError(
                f"the training loss became {values[i].item()} at epoch {self.epoch + 1}, "
                f"step {self.steps - k + i + 1} (batch {self.batch - k + i + 1} of the epoch; "
                f"learning rate {self.step.optimizer.param_groups[0]['lr']:.2e}). Likely fixes: "
                "lower lr (try 10x smaller), set grad_clip=1.0, check the inputs for NaN/inf (a "
                "log of 0 in the features needs an epsilon), or train with amp=False.")
        self.loss_sum += float(sum(v * n for v, (_, n) in zip(values.tolist(), self.pending)))
        self.pending.clear()

    def end_epoch_training(self, epoch: int) -> dict[str, float]:
        self.flush_losses()
        self.train_s += time.monotonic() - self.t_train
        return {"epoch": epoch + 1, "train_loss": self.loss_sum / max(self.seen, 1)}

    def end_epoch(self, record: dict[str, float]) -> None:
        """Record the epoch; keep the best weights; move the position to the next epoch."""
        record |= {"lr": self.step.optimizer.param_groups[0]["lr"],
                   "seconds": time.monotonic() - self.t_epoch,
                   "samples_per_s": self.seen / max(self.train_s, 1e-9)}
        self.history.append(record)
        if not self.partial:
            self._set_position({"epoch": self.epoch + 1, "batch": 0, "step": self.steps,
                                "loss_sum": 0.0, "seen": 0, "train_s": 0.0})
            self.epoch_rng, self.rng_now = None, _capture_rng(self.loader)
        if "val_loss" in record and self.history.best is self.history.records[-1]:
            self.best_state = {k: v.detach().cpu().clone()
                               for k, v in self.model.state_dict().items()}

    def should_stop(self, patience: int | None, validating: bool) -> bool:
        if patience is not None and validating and self.history.epochs_since_best() >= patience:
            self.history.stopped = (f"early stopping: no better {self.history.monitor} for "
                                    f"{patience} epochs")
        return bool(self.history.stopped)

    # ---- the end ----
    def save_on_interrupt(self) -> None:
        """Ctrl-C: save, unless it hit while the weights were being updated."""
        if self.ckpt_dir is not None and not self.step.updating:
            self.flush_losses()
            print(f"interrupted: saved {save_checkpoint(self.snapshot(), self.ckpt_dir)}; "
                  "run again to resume")

    def finish(self, restore_best: bool) -> None:
        if self.ckpt_dir is not None:
            save_checkpoint(self.snapshot(), self.ckpt_dir)
        best = self.history.best
        if restore_best and self.best_state is not None and best is not self.history.records[-1]:
            self.model.load_state_dict(self.best_state)
            if self.progress:
                print(f"restored the weights of epoch {int(best['epoch'])} "
                      f"(best {self.history.monitor} {best[self.history.monitor]:.4f})")
