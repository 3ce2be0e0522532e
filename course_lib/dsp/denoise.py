"""Chapter 04, preprocessing: noise reduction by spectral subtraction and a Wiener gain.

Notebook: 04_features_and_preprocessing. NumPy only; see :mod:`course_lib.dsp` for the
conventions.
"""

from __future__ import annotations

import numpy as np

from course_lib.dsp._common import as_signal
from course_lib.dsp.timefreq import istft, stft

__all__ = ["spectral_subtraction", "wiener_denoise"]


def _noise_psd(
    noisy_power: np.ndarray,
    noise_estimate: np.ndarray | None,
    sr: float,
    noise_duration: float,
    stft_kw: dict,
) -> np.ndarray:
    """Mean noise power per frequency bin, shape (n_freqs, 1)."""
    if noise_estimate is not None:
        noise_power = np.abs(stft(as_signal(noise_estimate, "noise_estimate"), **stft_kw)) ** 2
    else:
        hop = stft_kw["hop_length"]
        n_frames = max(1, int(noise_duration * sr) // hop)
        if n_frames > noisy_power.shape[-1]:
            raise ValueError(
                f"noise_duration={noise_duration} s covers {n_frames} frames but the signal has "
                f"only {noisy_power.shape[-1]}; pass a shorter noise_duration or noise_estimate."
            )
        noise_power = noisy_power[:, :n_frames]
    return noise_power.mean(axis=-1, keepdims=True)


def spectral_subtraction(
    noisy: np.ndarray,
    sr: float,
    noise_estimate: np.ndarray | None = None,
    noise_duration: float = 0.25,
    n_fft: int = 512,
    hop_length: int = 128,
    over_subtraction: float = 2.0,
    floor: float = 0.02,
) -> np.ndarray:
    """Denoise by power spectral subtraction (Boll 1979, with Berouti's over-subtraction).

    The noise power spectrum ``N(f)`` is averaged over a noise-only recording (``noise_estimate``)
    or over the first ``noise_duration`` seconds of ``noisy`` (assumed speech-free). Each bin's
    power becomes ``max(|Y|^2 - alpha N, beta |Y|^2)`` and the noisy phase is kept; the spectral
    floor ``beta`` limits "musical noise".

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    noisy : np.ndarray, shape (n_samples,)
        Noisy signal.
    sr : float
        Sampling rate in Hz.
    noise_estimate : np.ndarray or None
        Noise-only signal with the same statistics; if None the leading ``noise_duration`` is used.
    noise_duration : float
        Seconds of leading noise-only signal (when ``noise_estimate`` is None).
    n_fft, hop_length : int
        STFT settings (Hann window).
    over_subtraction : float
        ``alpha >= 1``: subtract more than the mean noise to remove its fluctuations.
    floor : float
        ``beta`` in ``[0, 1)``: minimum power gain.

    Returns
    -------
    np.ndarray, shape (n_samples,)
        Enhanced signal.
    """
    noisy = as_signal(noisy, "noisy")
    if not 0 <= floor < 1:
        raise ValueError(f"floor must lie in [0, 1); got {floor}.")
    kw = dict(n_fft=n_fft, hop_length=hop_length)
    Y = stft(noisy, **kw)
    power = np.abs(Y) ** 2
    noise = _noise_psd(power, noise_estimate, sr, noise_duration, kw)
    clean_power = np.maximum(power - over_subtraction * noise, floor * power)
    gain = np.sqrt(clean_power / np.maximum(power, np.finfo(np.float64).tiny))
    return istft(gain * Y, hop_length=hop_length, length=noisy.shape[-1])


def wiener_denoise(
    noisy: np.ndarray,
    sr: float,
    noise_estimate: np.ndarray | None = None,
    noise_duration: float = 0.25,
    n_fft: int = 512,
    hop_length: int = 128,
    alpha: float = 0.98,
    min_gain: float = 0.05,
) -> np.ndarray:
    """Denoise with a Wiener gain whose a-priori SNR is tracked by the decision-directed rule.

    For each frame ``t`` and bin: posterior SNR ``gamma = |Y|^2 / N``; a-priori SNR
    ``xi = alpha |G_{t-1} Y_{t-1}|^2 / N + (1 - alpha) max(gamma - 1, 0)`` (Ephraim & Malah 1984);
    gain ``G = xi / (1 + xi)`` (the Wiener filter), floored at ``min_gain``. The noise PSD ``N``
    is estimated as in :func:`spectral_subtraction`.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    noisy : np.ndarray, shape (n_samples,)
        Noisy signal.
    sr : float
        Sampling rate in Hz.
    noise_estimate, noise_duration
        Noise PSD source (see :func:`spectral_subtraction`).
    n_fft, hop_length : int
        STFT settings (Hann window).
    alpha : float
        Decision-directed smoothing in ``[0, 1)``; larger = smoother, less musical noise.
    min_gain : float
        Lowest gain applied to any bin, in ``[0, 1]``.

    Returns
    -------
    np.ndarray, shape (n_samples,)
        Enhanced signal.
    """
    noisy = as_signal(noisy, "noisy")
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must lie in [0, 1); got {alpha}.")
    kw = dict(n_fft=n_fft, hop_length=hop_length)
    Y = stft(noisy, **kw)
    power = np.abs(Y) ** 2
    noise = np.maximum(_noise_psd(power, noise_estimate, sr, noise_duration, kw)[:, 0], 1e-20)
    gain = np.empty_like(power)
    previous_clean = np.zeros(power.shape[0])
    for t in range(power.shape[1]):
        gamma = power[:, t] / noise
        xi = alpha * previous_clean / noise + (1 - alpha) * np.maximum(gamma - 1.0, 0.0)
        g = np.maximum(xi / (1.0 + xi), min_gain)
        gain[:, t] = g
        previous_clean = g**2 * power[:, t]
    return istft(gain * Y, hop_length=hop_length, length=noisy.shape[-1])
