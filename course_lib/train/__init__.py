"""The course's trainer: one explicit loop that runs unchanged on CUDA, Apple MPS and CPU.

``fit`` is the loop of notebook 05 with the parts a real run needs around it:

* **device and precision**: batches move with ``non_blocking=True``; ``torch.autocast`` runs the
  forward pass in bfloat16 on Ampere+ GPUs and on CPUs where it is native and measured faster,
  or float16 with a ``GradScaler`` on GPUs without bfloat16 (Colab's T4); float32 otherwise —
  see ``choose_precision``;
* **on-device features**: ``batch_transform`` (e.g. a log-mel ``FeaturePipeline``) runs on the
  raw waveforms after they reach the device, so the loader only slices packed arrays;
* **optimisation**: AdamW or SGD+momentum, weight decay, gradient clipping, OneCycle or cosine
  learning-rate schedules, early stopping with restore-best;
* **checkpoints that survive a disconnect**: written atomically (temp file, fsync, rename) every
  few minutes, at the end and on Ctrl-C, keeping the previous good one; a rerun resumes exactly
  (weights, optimiser, scaler, scheduler, epoch, step, RNG states, history);
* **feedback**: tqdm progress bars, a live loss/metric plot in notebooks, one log line per epoch
  elsewhere; a ``History`` to print and plot.

``evaluate`` and ``predict`` run a model over a loader for the numbers a notebook reports.

Notebook: 05_from_filters_to_cnns (the loop written by hand, then ``fit``),
06_cnn_audio_classification (optimisers, schedules, early stopping, ``evaluate``).

The package's files say what they hold: ``loop`` (``fit``: the loop itself, one screen, and the
training step), ``precision`` (autocast dtype and GradScaler), ``history`` (``History``),
``evaluate`` (``predict``, ``evaluate``, ``Evaluation``), ``checkpoint`` (atomic checkpoints, RNG
states, the run's fingerprint), ``display`` (progress bars, live plot), ``batches`` (reading a
batch, ``make_loader``). Everything public is re-exported here: ``from course_lib import train;
train.fit(...)``.
"""

from course_lib.train.batches import _split_batch, make_loader
from course_lib.train.checkpoint import CHECKPOINT_FILES, load_checkpoint, save_checkpoint
from course_lib.train.evaluate import Evaluation, evaluate, predict
from course_lib.train.history import History
from course_lib.train.loop import fit
from course_lib.train.precision import Precision, choose_precision

__all__ = [
    "Precision",
    "choose_precision",
    "History",
    "Evaluation",
    "fit",
    "evaluate",
    "predict",
    "make_loader",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_FILES",
]

