"""Checkpoints that survive a disconnect: atomic writes, the previous one kept, RNG states saved,
and a fingerprint of the run's settings so a changed run never resumes an old one.

Notebook: 06_cnn_audio_classification
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FILES"]

# The newest checkpoint, and the one before it, kept in case the newest is damaged.
CHECKPOINT_FILES = ("last.pt", "previous.pt")


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


def describe(obj: Any) -> str:
    """A stable text for a setting that is an object (loss, batch transform, hook): its class
    and its settings (a module's ``repr`` lists its layers and their arguments; other objects
    their plain attributes), so a changed augmentation changes the fingerprint."""
    if obj is None:
        return "None"
    if isinstance(obj, (int, float, str, bool)):
        return repr(obj)
    if hasattr(obj, "__code__"):  # a function: its name says which one
        return f"{obj.__module__}.{obj.__qualname__}"
    def plain(o: Any) -> dict[str, Any]:
        return {k: v for k, v in sorted(vars(o).items()) if not k.startswith("_")
                and k != "training" and isinstance(v, (int, float, str, bool, tuple, type(None)))}

    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if isinstance(obj, nn.Module):  # the layers (repr) and every submodule's plain settings
        text = " ".join(repr(obj).split()) + repr(
            {sub or "self": plain(m) for sub, m in obj.named_modules()})
    else:
        text = repr(plain(obj)) if hasattr(obj, "__dict__") else repr(obj)
    return name + ": " + re.sub(r" at 0x[0-9a-f]+", "", text)


def run_settings(**settings: Any) -> dict[str, str | int | float | None]:
    """The settings a fingerprint covers, as plain values (saved beside it in the checkpoint)."""
    return {k: v if isinstance(v, (int, float, str, type(None))) else describe(v)
            for k, v in sorted(settings.items())}


def settings_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """Which settings differ, as "name: old -> new; ...", for the not-resumed message."""
    if old is None:
        return "the checkpoint predates saved settings"
    changed = [f"{k}: {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}"
               for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(changed) if changed else "the model's layers or their shapes"


def _fingerprint(model: nn.Module, settings: dict[str, Any]) -> str:
    """A short hash of the architecture and the run's settings (:func:`run_settings`: optimiser,
    schedule, loss, batch transform and hook, grad clip, precision, metric, seed, dataset size,
    ...): a checkpoint of another run is never resumed by mistake."""
    h = hashlib.sha1(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(f"{name}{tuple(t.shape)}".encode())
    h.update(repr(sorted(settings.items())).encode())
    return h.hexdigest()[:12]

