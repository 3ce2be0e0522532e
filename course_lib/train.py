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
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib import metrics

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

# The newest checkpoint, and the one before it, kept in case the newest is damaged.
CHECKPOINT_FILES = ("last.pt", "previous.pt")
_METRICS_MAX = ("accuracy", "macro_f1", "uar")


# ---------------------------------------------------------------------------------------------
# Device and precision
# ---------------------------------------------------------------------------------------------
def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    from course_lib.runtime import get_runtime  # late: reading the runtime sets it up

    return get_runtime().device


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: autocast dtype (None = plain float32), loss scaling, and why."""

    dtype: torch.dtype | None
    use_scaler: bool
    reason: str = field(default="", compare=False)

    @property
    def autocast(self) -> bool:
        return self.dtype is not None

    def __str__(self) -> str:
        name = "float32" if self.dtype is None else str(self.dtype).replace("torch.", "")
        return name + (" + GradScaler" if self.use_scaler else "")


def choose_precision(
    device: torch.device | str,
    amp: bool | torch.dtype = True,
    *,
    cuda_bf16_supported: bool | None = None,
) -> Precision:
    """Pick the mixed-precision mode for ``device``.

    * ``amp=False``: float32 everywhere.
    * ``amp=True``: the runtime's decision (``course_lib.runtime.decide_precision``), which
      ``COURSE_PRECISION=fp32|bf16|fp16`` overrides:

      - CPU: bfloat16 autocast only where oneDNN runs bf16 natively (AVX512-BF16, AMX) **and** a
        short probe, timed once per process, finds it faster than float32; float32 otherwise.
        Emulated bf16 made a training step of the course's CNN 4.6-5.2x slower on AVX2-only
        CPUs. bfloat16 has float32's exponent range, so no loss scaling.
      - CUDA with bfloat16 (Ampere and newer): bfloat16 autocast.
      - CUDA without bfloat16 (T4, V100): float16 autocast **and** a ``GradScaler``: float16's
        smallest normal number is ~6e-5, so small gradients would flush to zero unscaled.
    * Apple MPS: float32; autocast support for convolutions there varies with the macOS and
      torch version, and a silent fallback is worse than a slower correct run.
    * ``amp=<dtype>``: that dtype (``torch.float32`` = no autocast); tests force bf16 this way.

    Parameters
    ----------
    device : torch.device or str
    amp : bool or torch.dtype
        True for the choice above, False for float32, or a dtype to force.
    cuda_bf16_supported : bool, optional
        Override the GPU capability query (tests use it to fake a T4).

    Returns
    -------
    Precision

    Notebook: 06_cnn_audio_classification
    """
    device = torch.device(device)
    if amp is False:
        return Precision(None, False, "fp32: amp=False")
    if device.type == "mps":
        return Precision(None, False, "fp32: the trainer does not autocast on MPS")
    if isinstance(amp, torch.dtype):
        dtype, reason = amp, f"amp={amp} given"
    else:
        from course_lib.runtime import decide_precision

        decision = decide_precision(device, cuda_bf16_supported=cuda_bf16_supported)
        dtype, reason = decision.dtype, decision.reason
    if dtype == torch.float32:
        return Precision(None, False, reason)
    return Precision(dtype, device.type == "cuda" and dtype == torch.float16, reason)


# ---------------------------------------------------------------------------------------------
# History and evaluation results
# ---------------------------------------------------------------------------------------------
class History:
    """What ``fit`` measured, one record (a dict) per epoch.

    Keys: ``epoch`` (1-based), ``train_loss``, ``val_loss`` and ``val_<metric>`` (with a
    validation loader), ``lr`` (at the epoch's end), ``seconds`` (wall time of the epoch,
    validation included), ``samples_per_s`` (training throughput).

    ``history["val_accuracy"]`` gives one column as a list; ``history.best`` the best record;
    ``print(history)`` a table; ``history.plot()`` the curves.

    Notebook: 05_from_filters_to_cnns
    """

    def __init__(self, monitor: str = "val_accuracy", mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.records: list[dict[str, float]] = []
        self.stopped: str = ""  # why training ended early, if it did
        self.precision: str = ""
        self.device: str = ""

    def append(self, record: dict[str, float]) -> None:
        self.records.append({k: float(v) for k, v in record.items()})

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        if self.records and key not in self.records[0]:
            raise KeyError(f"no column {key!r}; the history has {list(self.records[0])}")
        return [r[key] for r in self.records]

    @property
    def columns(self) -> list[str]:
        return list(self.records[0]) if self.records else []

    @property
    def best(self) -> dict[str, float] | None:
        """The record with the best ``monitor`` value; None if empty.

        Ties (common for accuracy on small sets) go to the lower validation loss, then to the
        earlier epoch.
        """
        scored = [r for r in self.records if math.isfinite(r.get(self.monitor, math.nan))]
        if not scored:
            return self.records[-1] if self.records else None
        sign = 1.0 if self.mode == "max" else -1.0
        return max(scored, key=lambda r: (sign * r[self.monitor], -r.get("val_loss", 0.0),
                                          -r["epoch"]))

    def epochs_since_best(self) -> int:
        best = self.best
        return 0 if best is None else int(self.records[-1]["epoch"] - best["epoch"])

    def to_table(self, digits: int = 4) -> str:
        """A plain-text table, one row per epoch, the best row marked with ``*``."""
        if not self.records:
            return "History: no epochs yet"
        cols = self.columns
        best = self.best
        rows = [[("*" if r is best else "") + f"{int(r['epoch'])}"]
                + [_fmt(r[c], c, digits) for c in cols[1:]] for r in self.records]
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_table()

    def line(self, epochs: int | None = None) -> str:
        """The last epoch as one log line."""
        r = self.records[-1]
        total = f"/{epochs}" if epochs else ""
        parts = [f"epoch {int(r['epoch'])}{total}"]
        parts += [f"{k} {_fmt(v, k, 4)}" for k, v in r.items() if k != "epoch"]
        return " | ".join(parts)

    def plot(self, axes: Sequence[Any] | None = None) -> Any:
        """Loss curves (left) and the monitored metric (right) against epoch; returns the figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        fig = axes[0].figure
        for ax in axes:
            ax.clear()
        epochs = self["epoch"] if self.records else []
        for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
            if self.records and key in self.records[0]:
                axes[0].plot(epochs, self[key], style, label=key.replace("_", " "), ms=3)
        axes[0].set(xlabel="epoch", ylabel="loss (per sample)", title="loss")
        metric_cols = [c for c in self.columns if c.startswith("val_") and c != "val_loss"]
        for key in metric_cols:
            axes[1].plot(epochs, self[key], "-o", label=key.replace("_", " "), ms=3)
        axes[1].set(xlabel="epoch", ylabel="score (fraction, 1 = perfect)",
                    title="validation metrics")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize="small")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def state_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint loads with ``weights_only=True``."""
        return {"monitor": self.monitor, "mode": self.mode, "records": self.records,
                "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.monitor, self.mode = state["monitor"], state["mode"]
        self.records = [dict(r) for r in state["records"]]
        self.stopped = state["stopped"]


def _fmt(value: float, key: str, digits: int) -> str:
    if key == "lr":
        return f"{value:.2e}"
    if key in ("seconds", "samples_per_s"):
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


@dataclass
class Evaluation:
    """Classification results of ``evaluate``: overall scores, per-class scores, confusion.

    Attributes
    ----------
    accuracy, macro_f1 : float
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


# ---------------------------------------------------------------------------------------------
# Batches, loaders, prediction
# ---------------------------------------------------------------------------------------------
def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(inputs, targets) from a (x, y, ...) tuple, collate_pad's 4-tuple, a dict, or a tensor."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict):
        x = next((batch[k] for k in ("waveform", "x", "input", "features") if k in batch), None)
        y = next((batch[k] for k in ("label", "y", "target") if k in batch), None)
        if x is None:
            raise ValueError(f"a dict batch needs a 'waveform' or 'x' key; got {list(batch)}")
        return x, y
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        if len(batch) == 4 and isinstance(batch[3], list):
            # course_lib.data.collate_pad: (waveforms, lengths, labels, metas)
            return batch[0], batch[2]
        y = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], y
    raise TypeError(
        f"cannot read a batch of type {type(batch).__name__}: yield (inputs, labels, ...) tuples, "
        "a dict with 'waveform'/'label', or a tensor"
    )


def _to_device(t: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    # non_blocking overlaps the copy with compute when the loader pinned the memory (CUDA).
    return None if t is None else t.to(device, non_blocking=True)


def make_loader(
    dataset: Any,
    batch_size: int,
    *,
    shuffle: bool = False,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` set up for ``device``: pinned memory on CUDA, persistent workers.

    Shuffling draws from torch's global generator, which ``fit`` saves in its checkpoints, so
    a resumed run sees the same batch order.

    Notebook: 05_from_filters_to_cnns
    """
    device = _resolve_device(device)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
        collate_fn=collate_fn, drop_last=drop_last, pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
    )


def _set_transform_mode(transform: Any, training: bool) -> None:
    if isinstance(transform, nn.Module):
        transform.train(training)


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
    device = _resolve_device(device)
    precision = choose_precision(device, amp)
    was_training = model.training
    model.to(device).eval()
    if isinstance(batch_transform, nn.Module):
        batch_transform.to(device)
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
        _set_transform_mode(batch_transform, True)
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
    n_classes = logits.shape[1] if classes is None else len(classes)
    if classes is None:
        classes = [str(i) for i in range(n_classes)]
    pred = logits.argmax(dim=1).numpy()
    true = targets.numpy()
    p, r, f1 = metrics.precision_recall_f1(true, pred, n_classes)
    loss = math.nan
    if loss_fn is not None:
        loss = float(loss_fn(logits, targets).item())
    return Evaluation(
        accuracy=metrics.accuracy(true, pred), macro_f1=float(f1.mean()), precision=p, recall=r,
        f1=f1, confusion=metrics.confusion_matrix(true, pred, n_classes), classes=list(classes),
        loss=loss, n=len(true), predictions=pred, targets=true,
    )


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def save_checkpoint(state: dict[str, Any], folder: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``folder/last.pt`` atomically, keeping the old one as ``previous.pt``.

    The bytes go to a temporary file in the same folder, are flushed and fsync'ed, and only
    then renamed over ``last.pt``: a crash or a Colab disconnect mid-write leaves the old files
    intact, never a half-written ``last.pt``.

    Returns
    -------
    Path of the new ``last.pt``.

    Notebook: 06_cnn_audio_classification
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    last, previous = (folder / name for name in CHECKPOINT_FILES)
    tmp = folder / f".{last.name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if last.exists():
        os.replace(last, previous)
    os.replace(tmp, last)
    if hasattr(os, "O_DIRECTORY"):  # make the renames themselves durable (POSIX only)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return last


def load_checkpoint(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], Path] | None:
    """The newest readable checkpoint in ``folder``, or None if there is none.

    Tries ``last.pt`` then ``previous.pt`` with ``torch.load(weights_only=True)`` (which runs no
    pickled code). A file that fails to load or lacks the ``complete`` marker is skipped with a
    warning naming it.

    Returns
    -------
    (state, path) or None

    Notebook: 06_cnn_audio_classification
    """
    folder = Path(folder)
    for name in CHECKPOINT_FILES:
        path = folder / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not (isinstance(state, dict) and state.get("complete") is True):
                raise ValueError("it is not a complete course_lib.train checkpoint")
        except Exception as err:  # noqa: BLE001 - any failure means: do not trust this file
            warnings.warn(
                f"checkpoint {path} cannot be loaded ({type(err).__name__}: {err}); "
                "falling back to the previous checkpoint. Delete the file if this repeats.",
                RuntimeWarning, stacklevel=2,
            )
            continue
        return state, path
    return None


def _capture_rng(loader: Any) -> dict[str, Any]:
    """All random-generator states, as tensors and plain numbers (loadable with weights_only)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_pos": int(pos), "numpy_has_gauss": int(has_gauss), "numpy_cached": float(cached),
        "python_version": int(py_version), "python_state": torch.tensor(py_state, dtype=torch.int64),
        "python_gauss": py_gauss,
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }
    gen = getattr(loader, "generator", None)
    state["loader"] = gen.get_state() if isinstance(gen, torch.Generator) else None
    return state


def _restore_rng(state: dict[str, Any], loader: Any) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32),
                         state["numpy_pos"], state["numpy_has_gauss"], state["numpy_cached"]))
    random.setstate((state["python_version"], tuple(state["python_state"].tolist()),
                     state["python_gauss"]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    gen = getattr(loader, "generator", None)
    if state["loader"] is not None and isinstance(gen, torch.Generator):
        gen.set_state(state["loader"])


def _fingerprint(model: nn.Module, settings: dict[str, Any]) -> str:
    """A short hash of the architecture and the run's settings: a checkpoint of another run
    (changed model, lr, epochs, data size) is never resumed by mistake."""
    h = hashlib.sha1(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(f"{name}{tuple(t.shape)}".encode())
    h.update(repr(sorted(settings.items())).encode())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Display: progress bars, live plot, log lines
# ---------------------------------------------------------------------------------------------
def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Display:
    def __init__(self, progress: bool, live_plot: bool | None, epochs: int) -> None:
        self.progress, self.epochs = progress, epochs
        self.live = _in_notebook() if live_plot is None else live_plot
        self.fig: Any = None
        self.handle: Any = None

    def batches(self, loader: Iterable[Any], epoch: int, total: int | None) -> Iterable[Any]:
        if not self.progress:
            return loader
        from tqdm.auto import tqdm

        return tqdm(loader, total=total, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False,
                    unit="batch")

    def epoch_end(self, history: History) -> None:
        if not self.live:
            if self.progress:
                print(history.line(self.epochs), flush=True)
            return
        from IPython.display import display

        self.fig = history.plot(None if self.fig is None else self.fig.axes)
        self.fig.suptitle(history.line(self.epochs), fontsize="small")
        self.fig.tight_layout()
        if self.handle is None:
            self.handle = display(self.fig, display_id=True)
        else:
            self.handle.update(self.fig)

    def close(self) -> None:
        if self.fig is not None:
            import matplotlib.pyplot as plt

            plt.close(self.fig)  # the display already shows it; do not draw it twice


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
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
    """Everything one training step needs, so the loop in ``fit`` reads in one screen."""

    device: torch.device
    precision: Precision
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler | None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None
    grad_clip: float | None
    target: str

    def inputs_targets(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Move a batch to the device and apply the on-device transform (e.g. log-mel)."""
        x, y = (_to_device(t, self.device) for t in _split_batch(batch))
        if self.batch_transform is not None:
            x = self.batch_transform(x)
        return x, (x if self.target == "input" else y)

    def forward(self, net: nn.Module, x: torch.Tensor,
                y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs and loss, under autocast when mixed precision is on."""
        with torch.autocast(self.device.type, dtype=self.precision.dtype or torch.float32,
                            enabled=self.precision.autocast):
            out = net(x)
            return out, self.loss_fn(out, y)

    def update(self, loss: torch.Tensor, params: Iterable[nn.Parameter]) -> None:
        """Backward pass, optional clipping, optimiser and schedule step."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # float16: scale the loss so small gradients survive
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
        else:
            loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()


def _validate(net: nn.Module, loader: Iterable[Any], step: _Step) -> dict[str, float]:
    """Validation loss (mean per sample) and, for classifiers, accuracy, macro-F1 and UAR."""
    net.eval()
    _set_transform_mode(step.batch_transform, False)
    total, n, preds, trues = 0.0, 0, [], []
    with torch.no_grad():
        for batch in loader:
            x, y = step.inputs_targets(batch)
            out, loss = step.forward(net, x, y)
            total += loss.float().item() * len(x)
            n += len(x)
            if step.target == "label" and out.dim() == 2:
                preds.append(out.argmax(dim=1).cpu())
                trues.append(y.cpu())
    net.train()
    _set_transform_mode(step.batch_transform, True)
    result = {"val_loss": total / max(n, 1)}
    if preds:
        p, t = torch.cat(preds).numpy(), torch.cat(trues).numpy()
        result |= {"val_accuracy": metrics.accuracy(t, p), "val_macro_f1": metrics.macro_f1(t, p),
                   "val_uar": metrics.unweighted_average_recall(t, p)}
    return result


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
    progress: bool = True,
    live_plot: bool | None = None,
) -> History:
    """Train ``model`` on ``train_loader``; validate, checkpoint and report every epoch.

    Parameters
    ----------
    model : nn.Module
        Maps a batch of inputs (after ``batch_transform``) to outputs ``loss_fn`` accepts.
    train_loader, val_loader : iterables of batches
        ``(inputs, labels, ...)`` tuples, dicts with ``waveform``/``label``, or tensors.
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
        (Google Drive on Colab). A fingerprint of the model and settings guards against
        resuming a different run.
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
        Seed every generator before training (when not resuming), for repeatable runs.
    progress : bool
        Progress bars and per-epoch feedback.
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

    device = _resolve_device(device)
    model.to(device)
    if isinstance(batch_transform, nn.Module):
        batch_transform.to(device)
    precision = choose_precision(device, amp)
    opt = _make_optimizer(model, optimizer, lr, momentum, weight_decay)
    sched = _make_schedule(opt, schedule, lr, epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if precision.use_scaler else None
    step = _Step(device, precision, opt, sched, scaler,
                 loss_fn if loss_fn is not None else nn.CrossEntropyLoss(), batch_transform,
                 grad_clip, target)
    history = History("val_" + metric if val_loader is not None else "train_loss",
                      "max" if metric in _METRICS_MAX and val_loader is not None else "min")
    history.precision, history.device = str(precision), str(device)
    net = torch.compile(model) if compile else model

    settings = dict(epochs=epochs, lr=lr, optimizer=optimizer, weight_decay=weight_decay,
                    schedule=schedule, steps_per_epoch=steps_per_epoch, target=target)
    fingerprint = _fingerprint(model, settings)
    ckpt_dir: Path | None = None
    if checkpoint == "auto":
        from course_lib.runtime import get_runtime

        ckpt_dir = get_runtime().checkpoint_dir / f"{type(model).__name__}-{fingerprint}"
    elif checkpoint is not None:
        ckpt_dir = Path(checkpoint)

    # Where the run stands. A checkpoint is this, the modules' states and the RNG states at the
    # epoch's start (to replay its shuffle) and after the last step (to continue from there).
    pos = {"epoch": 0, "batch": 0, "step": 0, "loss_sum": 0.0, "seen": 0, "train_s": 0.0}
    best_state: dict[str, torch.Tensor] | None = None
    epoch_rng = rng_now = None
    found = load_checkpoint(ckpt_dir) if (ckpt_dir is not None and resume) else None
    if found is not None and found[0]["fingerprint"] != fingerprint:
        warnings.warn(f"checkpoint {found[1]} belongs to another model or other settings; "
                      "starting afresh (it will be replaced)", RuntimeWarning, stacklevel=2)
        found = None
    if found is not None:
        state, path = found
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state["scheduler"] is not None:
            sched.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        history.load_state_dict(state["history"])
        if history.stopped.startswith("time budget"):
            history.stopped = ""  # a new call brings a new budget
        pos, best_state = dict(state["position"]), state["best_model"]
        epoch_rng, rng_now = state["epoch_rng"], state["rng"]
        if pos["batch"] == 0 and rng_now is not None:
            _restore_rng(rng_now, train_loader)  # at an epoch boundary: continue from there
        if progress:
            print(f"resumed from {path}: epoch {pos['epoch'] + 1}, batch {pos['batch']}")
    elif seed is not None:
        from course_lib.runtime import seed_everything

        seed_everything(seed)

    partial = False  # the last history record is an epoch cut short by max_seconds

    def snapshot() -> dict[str, Any]:
        hist = history.state_dict()
        if partial:  # the resumed run finishes that epoch and records it then
            hist["records"] = hist["records"][:-1]
        return {
            "complete": True, "fingerprint": fingerprint, "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "history": hist, "position": dict(pos), "best_model": best_state,
            "epoch_rng": epoch_rng, "rng": rng_now,
        }

    pending: list[tuple[torch.Tensor, int]] = []  # (loss, batch size) not yet checked

    def flush_losses() -> None:
        """Check the pending losses are finite and add them up (one GPU sync for many)."""
        if not pending:
            return
        values = torch.stack([loss for loss, _ in pending]).float().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            i = int(bad[0])
            raise FloatingPointError(
                f"the training loss became {values[i].item()} at epoch {pos['epoch'] + 1}, "
                f"step {pos['step'] - len(pending) + i + 1} (batch "
                f"{pos['batch'] - len(pending) + i + 1} of the epoch; learning rate "
                f"{opt.param_groups[0]['lr']:.2e}). Likely fixes: lower lr (try 10x smaller), "
                "set grad_clip=1.0, check the inputs for NaN/inf (a log of 0 in the features "
                "needs an epsilon), or train with amp=False.")
        pos["loss_sum"] += float(sum(v * n for v, (_, n) in zip(values.tolist(), pending)))
        pending.clear()

    check_every = 1 if device.type == "cpu" else 25  # reading a loss value syncs a GPU
    display = _Display(progress, live_plot, epochs)
    start = last_save = time.monotonic()
    consistent = True  # False while the weights are being updated: no state to save then
    try:
        while pos["epoch"] < epochs and not history.stopped:
            epoch, t_epoch, skip = pos["epoch"], time.monotonic(), pos["batch"]
            if max_seconds is not None and history.records and skip == 0 \
                    and t_epoch - start + history.records[-1]["seconds"] > max_seconds:
                history.stopped = f"time budget max_seconds={max_seconds:g} reached"
                break
            if skip:  # resuming mid-epoch: replay the epoch's shuffle, skip the batches done
                _restore_rng(epoch_rng, train_loader)
            else:
                epoch_rng = _capture_rng(train_loader)
            model.train()
            _set_transform_mode(batch_transform, True)
            t_train = time.monotonic()
            for i, batch in enumerate(display.batches(train_loader, epoch, steps_per_epoch)):
                if i < skip:
                    if i == skip - 1:
                        _restore_rng(rng_now, train_loader)
                    continue
                # ---------------- one training step ----------------
                x, y = step.inputs_targets(batch)   # to the device, + features
                _, loss = step.forward(net, x, y)   # autocast forward pass
                consistent = False
                step.update(loss, model.parameters())  # backward, clip, optimiser, schedule
                # ---------------- bookkeeping ----------------
                pending.append((loss.detach(), len(x)))
                pos["step"] += 1
                pos["batch"] = i + 1
                pos["seen"] += len(x)
                rng_now = _capture_rng(train_loader)
                consistent = True
                if len(pending) >= check_every:
                    flush_losses()
                now = time.monotonic()
                if ckpt_dir is not None and now - last_save >= checkpoint_every_s:
                    flush_losses()
                    pos["train_s"], t_train = pos["train_s"] + now - t_train, now
                    save_checkpoint(snapshot(), ckpt_dir)
                    last_save = time.monotonic()
                if max_seconds is not None and now - start > max_seconds \
                        and i + 1 < steps_per_epoch:
                    history.stopped = (f"time budget max_seconds={max_seconds:g} reached in "
                                       f"epoch {epoch + 1} (batch {i + 1}/{steps_per_epoch})")
                    partial = True
                    break
            flush_losses()
            pos["train_s"] += time.monotonic() - t_train
            record = {"epoch": epoch + 1, "train_loss": pos["loss_sum"] / max(pos["seen"], 1)}
            if val_loader is not None:
                record |= _validate(net, val_loader, step)
            record |= {"lr": opt.param_groups[0]["lr"], "seconds": time.monotonic() - t_epoch,
                       "samples_per_s": pos["seen"] / max(pos["train_s"], 1e-9)}
            history.append(record)
            if not partial:
                pos = {"epoch": epoch + 1, "batch": 0, "step": pos["step"], "loss_sum": 0.0,
                       "seen": 0, "train_s": 0.0}
                epoch_rng, rng_now = None, _capture_rng(train_loader)
            if val_loader is not None and history.best is history.records[-1]:
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            display.epoch_end(history)
            if early_stopping_patience is not None and val_loader is not None \
                    and history.epochs_since_best() >= early_stopping_patience:
                history.stopped = (f"early stopping: no better {history.monitor} for "
                                   f"{early_stopping_patience} epochs")
    except KeyboardInterrupt:
        if ckpt_dir is not None and consistent:
            flush_losses()
            print(f"interrupted: saved {save_checkpoint(snapshot(), ckpt_dir)}; run again to resume")
        raise
    finally:
        display.close()

    if ckpt_dir is not None:
        save_checkpoint(snapshot(), ckpt_dir)
    best = history.best
    if restore_best and best_state is not None and best is not history.records[-1]:
        model.load_state_dict(best_state)
        if progress:
            print(f"restored the weights of epoch {int(best['epoch'])} "
                  f"(best {history.monitor} {best[history.monitor]:.4f})")
    return history
