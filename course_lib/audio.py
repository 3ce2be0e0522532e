"""Audio files in and out: load, save, mono, resample, with errors that name the file.

Everything goes through soundfile (libsndfile: wav, flac, ogg; no FFmpeg needed). Arrays are
float32 ``[channels, samples]`` in [-1, 1]; sample rates are in Hz.

Notebook: 01_sound_as_signal
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

if TYPE_CHECKING:  # torch is only needed by load_waveform; keep importing this module cheap
    import torch

__all__ = ["AudioError", "load_audio", "save_audio", "to_mono", "resample", "load_waveform"]


class AudioError(ValueError):
    """An audio file is missing, unreadable, empty or holds non-finite samples.

    The message always names the file and says what to do about it.
    """


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2:
        raise ValueError(f"audio must be [samples] or [channels, samples], got shape {x.shape}")
    return x


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of a signal.

    Parameters
    ----------
    x : np.ndarray
        ``[samples]`` or ``[channels, samples]``.

    Returns
    -------
    np.ndarray
        ``[1, samples]``, same dtype as ``x`` for float input.

    Notebook: 01_sound_as_signal
    """
    x2 = _as_2d(x)
    return x2.mean(axis=0, keepdims=True).astype(x2.dtype if x2.dtype.kind == "f" else np.float32)


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Change the sample rate with a band-limited (anti-aliased) resampler.

    Uses soxr (very high quality) when installed, else ``scipy.signal.resample_poly``.

    Parameters
    ----------
    x : np.ndarray
        ``[samples]`` or ``[channels, samples]``, float.
    orig_sr, target_sr : int
        Sample rates in Hz.

    Returns
    -------
    np.ndarray
        float32 with the same number of dimensions as ``x``; length
        ``round(samples * target_sr / orig_sr)``.

    Notebook: 01_sound_as_signal
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    x = np.asarray(x, dtype=np.float32)
    if orig_sr == target_sr:
        return x
    one_d = x.ndim == 1
    x2 = _as_2d(x)
    try:
        import soxr

        y = soxr.resample(x2.T, orig_sr, target_sr, quality="VHQ").T
    except ImportError:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(orig_sr), int(target_sr))
        y = resample_poly(x2, target_sr // g, orig_sr // g, axis=-1)
    y = np.ascontiguousarray(y, dtype=np.float32)
    return y[0] if one_d else y


def load_audio(
    path: str | os.PathLike, sr: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``[channels, samples]``, validated.

    Parameters
    ----------
    path : path-like
        Any file libsndfile reads (wav, flac, ogg/vorbis, ...).
    sr : int, optional
        Resample to this rate in Hz; ``None`` keeps the file's rate.
    mono : bool
        Average the channels to one.

    Returns
    -------
    x : np.ndarray
        float32 ``[channels, samples]`` (``channels == 1`` when ``mono``), values in about [-1, 1].
    sr : int
        The sample rate of ``x`` in Hz.

    Raises
    ------
    AudioError
        The file is missing, cannot be decoded (corrupt, truncated, unknown format), holds no
        samples, or holds NaN/inf samples.

    Notebook: 01_sound_as_signal
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: audio file not found (check the path, or rebuild the data set)")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, expected an audio file")
    try:
        data, file_sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError/TypeError variants
        raise AudioError(
            f"{p}: cannot decode audio ({type(exc).__name__}: {exc}); the file is corrupt, "
            "truncated or not in a format soundfile reads (wav/flac/ogg): re-download or delete it"
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(f"{p}: audio file holds no samples (empty); re-create or delete it")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{p}: audio holds NaN or infinite samples; re-create or delete it")
    x = np.ascontiguousarray(data.T)
    if mono and x.shape[0] > 1:
        x = to_mono(x)
    if sr is not None and sr != file_sr:
        return resample(x, file_sr, sr), int(sr)
    return x, int(file_sr)


def save_audio(
    path: str | os.PathLike, x: np.ndarray, sr: int, subtype: str = "PCM_16"
) -> Path:
    """Write audio atomically (to a temporary file, then rename), so a crash never leaves half a file.

    Parameters
    ----------
    path : path-like
        Destination; the format comes from the suffix (.wav, .flac, .ogg).
    x : np.ndarray
        ``[samples]`` or ``[channels, samples]``, float in [-1, 1] (clipped on integer subtypes).
    sr : int
        Sample rate in Hz.
    subtype : str
        soundfile subtype, e.g. ``"PCM_16"`` (default) or ``"FLOAT"``.

    Returns
    -------
    Path
        The written file.

    Notebook: 01_sound_as_signal
    """
    p = Path(path)
    if p.suffix[1:].upper() not in sf.available_formats():
        raise AudioError(
            f"{p}: soundfile cannot write {p.suffix or 'extension-less'!r} files; name the file "
            ".wav, .flac or .ogg"
        )
    x2 = _as_2d(np.asarray(x, dtype=np.float32))
    if not np.all(np.isfinite(x2)):
        raise AudioError(f"{p}: refusing to save audio with NaN or infinite samples")
    if subtype.startswith("PCM"):
        x2 = np.clip(x2, -1.0, 1.0)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    try:
        sf.write(tmp, x2.T, int(sr), subtype=subtype)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def load_waveform(path: str | os.PathLike, sr: int) -> "torch.Tensor":
    """Load a file as a mono float32 torch tensor at ``sr``.

    Parameters
    ----------
    path : path-like
        Audio file.
    sr : int
        Target rate in Hz.

    Returns
    -------
    torch.Tensor
        float32 ``[1, samples]`` on the CPU.

    Notebook: 01_sound_as_signal
    """
    import torch

    x, _ = load_audio(path, sr=sr, mono=True)
    return torch.from_numpy(x)
