"""Chapter 04, features: the mel scale, mel filterbanks, log-mel spectrograms, the DCT, MFCCs.

Notebook: 04_features_and_preprocessing. NumPy/SciPy only; see :mod:`course_lib.dsp` for the
conventions. :mod:`course_lib.features` computes the same mappings on batches of tensors, with the
same names and defaults.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from course_lib.dsp._common import (
    RefSpec,
    WindowSpec,
    check_mel_range,
    check_norm,
    check_positive_int,
)
from course_lib.dsp.signals import power_to_db
from course_lib.dsp.timefreq import stft

__all__ = [
    "hz_to_mel",
    "mel_to_hz",
    "mel_frequencies",
    "mel_filterbank",
    "melspectrogram",
    "log_mel",
    "dct_matrix",
    "lifter_weights",
    "mfcc",
]

_F_SP = 200.0 / 3  # Slaney: 66.67 Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies: float | np.ndarray, htk: bool = False) -> float | np.ndarray:
    """Hz to mel: Slaney's scale (linear below 1 kHz, logarithmic above) or HTK's formula.

    Slaney (default, as librosa): ``m = f / (200/3)`` below 1 kHz, then
    ``15 + 27 ln(f / 1000) / ln 6.4``. HTK: ``m = 2595 log10(1 + f / 700)``.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    frequencies : float or np.ndarray
        Frequencies in Hz.
    htk : bool
        Use the HTK formula.

    Returns
    -------
    float or np.ndarray
        Mels, same shape.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    if htk:
        out = 2595.0 * np.log10(1.0 + f / 700.0)
    else:
        linear = f / _F_SP
        with np.errstate(divide="ignore", invalid="ignore"):
            logpart = _MIN_LOG_MEL + np.log(f / _MIN_LOG_HZ) / _LOGSTEP
        out = np.where(f >= _MIN_LOG_HZ, logpart, linear)
    return float(out) if out.ndim == 0 else out


def mel_to_hz(mels: float | np.ndarray, htk: bool = False) -> float | np.ndarray:
    """Mel to Hz, the inverse of :func:`hz_to_mel`.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    mels : float or np.ndarray
        Mel values.
    htk : bool
        Use the HTK formula.

    Returns
    -------
    float or np.ndarray
        Frequencies in Hz, same shape.
    """
    m = np.asarray(mels, dtype=np.float64)
    if htk:
        out = 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    else:
        out = np.where(
            m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m
        )
    return float(out) if out.ndim == 0 else out


def mel_frequencies(
    n_mels: int = 128, fmin: float = 0.0, fmax: float = 11025.0, htk: bool = False
) -> np.ndarray:
    """``n_mels`` frequencies in Hz equally spaced on the mel scale from ``fmin`` to ``fmax``.

    Notebook: 04_features_and_preprocessing

    Returns
    -------
    np.ndarray, shape (n_mels,)
        Frequencies in Hz (as ``librosa.mel_frequencies``).
    """
    mels = np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels)
    return np.asarray(mel_to_hz(mels, htk=htk))


def mel_filterbank(
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | None = "slaney",
) -> np.ndarray:
    """Triangular mel filterbank mapping ``1 + n_fft // 2`` FFT bins to ``n_mels`` bands.

    Band ``i`` rises linearly from mel point ``i`` to ``i + 1`` and falls to ``i + 2``, where the
    ``n_mels + 2`` points are equally spaced in mel between ``fmin`` and ``fmax``. With
    ``norm="slaney"`` each triangle is divided by half its width in Hz, so every band has (about)
    the same area and wide high bands do not dominate. Same as ``librosa.filters.mel``.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    sr : float
        Sampling rate in Hz.
    n_fft : int
        FFT length the spectrogram was computed with.
    n_mels : int
        Number of bands.
    fmin, fmax : float
        Frequency range in Hz, ``0 <= fmin < fmax <= sr / 2``; ``fmax=None`` is ``sr / 2``.
    htk : bool
        HTK mel formula instead of Slaney's.
    norm : {"slaney", None}
        Area normalisation, or none (peak 1).

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2)
        Weights; ``mel_filterbank(...) @ power_spectrogram`` is a mel spectrogram.
    """
    n_fft = check_positive_int(n_fft, "n_fft")
    n_mels = check_positive_int(n_mels, "n_mels")
    fmax = check_mel_range(sr, fmin, fmax)
    check_norm(norm)
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_points = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)
    widths = np.diff(mel_points)
    distance = mel_points[:, None] - fft_freqs[None, :]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights


def melspectrogram(
    x: np.ndarray,
    sr: float,
    n_fft: int = 2048,
    hop_length: int | None = None,
    n_mels: int = 128,
    *,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | None = "slaney",
) -> np.ndarray:
    """Mel spectrogram ``M = F |STFT(x)|^power`` (as ``librosa.feature.melspectrogram``).

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal(s).
    sr : float
        Sampling rate in Hz.
    n_fft, hop_length, win_length, window, center, pad_mode
        STFT settings (see :func:`course_lib.dsp.stft`); ``hop_length=None`` is
        ``win_length // 4`` (librosa's melspectrogram fixes 512 instead: the same for its
        default ``n_fft=2048``).
    power : float
        1 for magnitude, 2 for power.
    n_mels, fmin, fmax, htk, norm
        Filterbank settings (see :func:`mel_filterbank`).

    Returns
    -------
    np.ndarray, shape (..., n_mels, n_frames)
    """
    S = np.abs(stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                    window=window, center=center, pad_mode=pad_mode)) ** power
    fb = mel_filterbank(sr, n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    return fb @ S


def log_mel(
    x: np.ndarray,
    sr: float,
    n_fft: int = 2048,
    hop_length: int | None = None,
    n_mels: int = 128,
    *,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | None = "slaney",
    ref: RefSpec = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Log-mel spectrogram in dB: ``power_to_db(melspectrogram(x, ...))``.

    Same as ``librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sr, ...), ref=ref,
    amin=amin, top_db=top_db)`` for one clip; with leading batch axes each clip keeps its own
    ``top_db`` floor (see :func:`course_lib.dsp.power_to_db`).

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal(s).
    sr : float
        Sampling rate in Hz.
    n_fft, hop_length, n_mels, win_length, window, center, pad_mode, fmin, fmax, htk, norm
        See :func:`melspectrogram` (power 2).
    ref, amin, top_db
        See :func:`course_lib.dsp.power_to_db`.

    Returns
    -------
    np.ndarray, shape (..., n_mels, n_frames)
        Level in dB.
    """
    M = melspectrogram(x, sr, n_fft, hop_length, n_mels, win_length=win_length, window=window,
                       center=center, pad_mode=pad_mode, power=2.0, fmin=fmin, fmax=fmax,
                       htk=htk, norm=norm)
    return power_to_db(M, ref=ref, amin=amin, top_db=top_db)


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``D @ v == scipy.fft.dct(v, type=2, norm="ortho")[:n_out]``.

    ``D[k, n] = s_k cos(pi k (2n + 1) / (2 n_in))`` with ``s_0 = sqrt(1/n_in)`` and
    ``s_k = sqrt(2/n_in)`` otherwise.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    n_out : int
        Number of coefficients kept (``<= n_in``).
    n_in : int
        Input length.

    Returns
    -------
    np.ndarray, shape (n_out, n_in)
        Rows are orthonormal.
    """
    n_out = check_positive_int(n_out, "n_out")
    n_in = check_positive_int(n_in, "n_in")
    if n_out > n_in:
        raise ValueError(f"n_out={n_out} cannot exceed n_in={n_in} for an orthonormal DCT.")
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    D = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    D[0] /= np.sqrt(2.0)
    return D


def lifter_weights(n_mfcc: int, lifter: float) -> np.ndarray:
    """Cepstral lifter ``1 + (L / 2) sin(pi (k + 1) / L)``, k = 0..n_mfcc-1 (librosa's definition).

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    n_mfcc : int
        Number of coefficients.
    lifter : float
        ``L > 0``; larger values boost the higher coefficients less selectively.

    Returns
    -------
    np.ndarray, shape (n_mfcc,)
    """
    if lifter <= 0:
        raise ValueError(f"lifter must be > 0 to build weights (0 means no liftering); got {lifter}.")
    k = np.arange(check_positive_int(n_mfcc, "n_mfcc"))
    return 1.0 + (lifter / 2.0) * np.sin(np.pi * (k + 1.0) / lifter)


def mfcc(
    x: np.ndarray,
    sr: float,
    n_mfcc: int = 20,
    n_fft: int = 2048,
    hop_length: int | None = None,
    n_mels: int = 128,
    *,
    lifter: float = 0.0,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | None = "slaney",
    ref: RefSpec = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients: orthonormal DCT-II of the log-mel spectrum.

    Same result as ``librosa.feature.mfcc(y=x, sr=sr, n_mfcc=..., n_fft=..., ...)``.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal(s).
    sr : float
        Sampling rate in Hz.
    n_mfcc : int
        Coefficients kept, ``<= n_mels``.
    lifter : float
        Cepstral liftering ``L`` (0: none), see :func:`lifter_weights`.
    n_fft, hop_length, n_mels, win_length, window, center, pad_mode, fmin, fmax, htk, norm
        See :func:`log_mel`.
    ref, amin, top_db
        See :func:`course_lib.dsp.power_to_db`.

    Returns
    -------
    np.ndarray, shape (..., n_mfcc, n_frames)
    """
    n_mfcc = check_positive_int(n_mfcc, "n_mfcc")
    if n_mfcc > n_mels:
        raise ValueError(
            f"n_mfcc={n_mfcc} cannot exceed n_mels={n_mels}: the DCT has n_mels coefficients."
        )
    if lifter < 0:
        raise ValueError(f"lifter must be >= 0 (0 disables it); got {lifter}.")
    L = log_mel(x, sr, n_fft, hop_length, n_mels, win_length=win_length, window=window,
                center=center, pad_mode=pad_mode, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
                ref=ref, amin=amin, top_db=top_db)
    coeffs = dct_matrix(n_mfcc, n_mels) @ L
    if lifter > 0:
        coeffs = coeffs * lifter_weights(n_mfcc, lifter)[:, None]
    return coeffs
