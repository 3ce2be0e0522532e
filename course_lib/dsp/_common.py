"""Input checks and small helpers shared by the chapters of :mod:`course_lib.dsp`.

Private to the package (``course_lib.features`` reuses :func:`check_positive_int` so both modules
reject the same bad values with the same words). NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

ConvMode = Literal["full", "same", "valid"]
WindowSpec = str | np.ndarray
# A 0 dB reference: a power/amplitude, or a function of one spectrogram such as ``np.max``.
RefSpec = float | Callable[[np.ndarray], float]


def as_signal(x: np.ndarray, name: str = "x", min_ndim: int = 1) -> np.ndarray:
    """Return ``x`` as a floating/complex array, or raise a message that says what to pass."""
    arr = np.asarray(x)
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must be an array with at least {min_ndim} dimension(s) (samples on the last "
            f"axis); got shape {arr.shape}. Pass e.g. a 1-D NumPy array of samples."
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating)):
        if np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
            arr = arr.astype(np.float64)
        else:
            raise TypeError(f"{name} must be numeric; got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf values; clean the signal before using it.")
    return arr


def check_positive_int(value: int, name: str) -> int:
    """``value`` as an ``int`` if it is a whole number >= 1 (not a bool), else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def default_hop(hop_length: int | None, win_length: int) -> int:
    """The course's (and librosa.stft's) default hop: a quarter of the window (75 % overlap)."""
    if hop_length is None:
        return max(win_length // 4, 1)
    return check_positive_int(hop_length, "hop_length")


def pad_last(x: np.ndarray, pad: int, pad_mode: str = "constant") -> np.ndarray:
    """Pad ``pad`` samples on both sides of the last axis (``np.pad`` modes, zeros by default)."""
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    return np.pad(x, widths, mode=pad_mode)


def check_mel_range(sr: float, fmin: float, fmax: float | None) -> float:
    """``fmax`` (``None`` -> Nyquist) after checking ``0 <= fmin < fmax <= sr / 2``."""
    if sr <= 0:
        raise ValueError(f"sr must be a positive sampling rate in Hz; got {sr}.")
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= sr / 2.0:
        raise ValueError(
            f"Need 0 <= fmin < fmax <= sr/2 = {sr / 2} Hz; got fmin={fmin}, fmax={fmax}. Bands "
            "above the Nyquist frequency would be empty."
        )
    return fmax


def check_norm(norm: str | None) -> None:
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None; got {norm!r}.")
