"""Chapter 01, sound as a signal: sampling, quantisation, levels in dB, noise at a given SNR.

Notebook: 01_sound_as_signal. NumPy only; see :mod:`course_lib.dsp` for the conventions.
"""

from __future__ import annotations

import numpy as np

from course_lib.dsp._common import RefSpec, as_signal, check_positive_int, pad_last
from course_lib.dsp.timefreq import frame

__all__ = [
    "aliased_frequency",
    "quantize",
    "rms",
    "power_to_db",
    "amplitude_to_db",
    "snr_db",
    "add_noise",
]


def aliased_frequency(f_hz: float | np.ndarray, sr: float) -> float | np.ndarray:
    """Frequency heard when a real tone of ``f_hz`` is sampled at ``sr`` (folding about Nyquist).

    A sampled sinusoid cannot be told apart from one at ``f + k * sr`` for any integer ``k``, and a
    real one cannot be told apart from its negative frequency, so the apparent frequency is the
    distance from ``f_hz`` to the nearest multiple of ``sr``.

    Notebook: 01_sound_as_signal

    Parameters
    ----------
    f_hz : float or np.ndarray
        True frequency (or frequencies) in Hz, ``>= 0``.
    sr : float
        Sampling rate in Hz, ``> 0``.

    Returns
    -------
    float or np.ndarray
        Apparent frequency in Hz, in ``[0, sr / 2]``; same shape as ``f_hz``.
    """
    if sr <= 0:
        raise ValueError(f"sr must be a positive sampling rate in Hz; got {sr}.")
    f = np.abs(np.asarray(f_hz, dtype=np.float64))
    out = np.abs(f - sr * np.round(f / sr))
    return float(out) if out.ndim == 0 else out


def quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """Uniform **mid-rise** quantiser with ``2**bits`` levels on ``[-1, 1]``.

    The step is ``delta = 2 / 2**bits``; a sample maps to the centre of its step,
    ``(floor(x / delta) + 0.5) * delta``, and values outside the range clip to the outermost
    levels ``+-(1 - delta / 2)``. Mid-rise has no level at exactly 0 but uses all ``2**bits``
    codes symmetrically, which is what gives a full-scale sine the textbook
    ``SNR = 6.02 * bits + 1.76 dB`` (error uniform on ``[-delta/2, delta/2]``, power
    ``delta**2 / 12``).

    Notebook: 01_sound_as_signal

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal in full-scale units.
    bits : int
        Word length ``N >= 1``.

    Returns
    -------
    np.ndarray, shape like ``x``
        Quantised signal (float64), still in full-scale units.
    """
    x = as_signal(x, min_ndim=0)
    if np.iscomplexobj(x):
        raise TypeError("quantize expects a real signal; got a complex array.")
    bits = check_positive_int(bits, "bits")
    delta = 2.0 / 2**bits
    top = 1.0 - delta / 2
    return np.clip((np.floor(x / delta) + 0.5) * delta, -top, top)


def rms(
    x: np.ndarray,
    frame_length: int | None = None,
    hop_length: int = 512,
    center: bool = True,
) -> float | np.ndarray:
    """Root-mean-square level, of the whole signal or per frame.

    Notebook: 01_sound_as_signal

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,) or (..., n_samples)
        Signal in full-scale units.
    frame_length : int or None
        ``None`` (default) returns one RMS over the last axis. Otherwise frames of this many
        samples, the same as
        ``librosa.feature.rms(y=x, frame_length, hop_length, center)[..., 0, :]``
        (zero padding of ``frame_length // 2`` on both sides when ``center``).
    hop_length : int
        Hop between frames in samples (framewise mode only).
    center : bool
        Centre frames on their time stamps (framewise mode only).

    Returns
    -------
    float or np.ndarray
        A float for a 1-D signal in global mode; ``(...,)`` for batched global mode;
        ``(..., n_frames)`` in framewise mode.
    """
    x = as_signal(x)
    if frame_length is None:
        out = np.sqrt(np.mean(np.abs(x) ** 2, axis=-1))
        return float(out) if out.ndim == 0 else out
    frame_length = check_positive_int(frame_length, "frame_length")
    if center:
        x = pad_last(x, frame_length // 2)
    frames = frame(x, frame_length, hop_length)
    return np.sqrt(np.mean(np.abs(frames) ** 2, axis=-2))


def _per_example_axes(ndim: int) -> tuple[int, ...]:
    """Axes of one example: the last two (``n_freqs, n_frames``), or all of a 0-D/1-D/2-D array."""
    return tuple(range(max(ndim - 2, 0), ndim))


def _reference(S: np.ndarray, ref: RefSpec | np.ndarray) -> np.ndarray | float:
    """The 0 dB reference per example: ``ref`` itself, or ``ref`` applied to each example."""
    if not callable(ref):
        return np.abs(np.asarray(ref, dtype=np.float64))
    if S.ndim <= 2:
        return ref(S)
    examples = S.reshape(-1, *S.shape[-2:])
    values = np.array([ref(example) for example in examples], dtype=np.float64)
    return values.reshape(S.shape[:-2] + (1, 1))


def power_to_db(
    S: np.ndarray,
    ref: RefSpec = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Power (e.g. ``|X|**2``) to decibels, ``10 * log10(S / ref)``, as ``librosa.power_to_db``.

    One *example* is one spectrogram, the last two axes ``(n_freqs, n_frames)`` (a 1-D or 2-D
    array is one example). A callable ``ref`` and the ``top_db`` floor act on each example
    separately, so a batch gives the same numbers as its clips one at a time (and the same as
    ``course_lib.features.power_to_db``). For one 1-D/2-D array this is exactly librosa's result.

    Notebook: 01_sound_as_signal (levels), 04_features_and_preprocessing (log-mel)

    Parameters
    ----------
    S : np.ndarray, shape (..., n_freqs, n_frames), (n,) or scalar
        Non-negative power values.
    ref : float or callable
        Reference power (0 dB), or a function of one example such as ``np.max``.
    amin : float
        Floor applied to ``S`` and ``ref`` before the log, ``> 0``, so silence gives a finite value.
    top_db : float or None
        If given, clip each example to its own ``max - top_db`` dB (dynamic range limit).

    Returns
    -------
    np.ndarray, shape like ``S``
        Level in dB.
    """
    S = np.asarray(S)
    if amin <= 0:
        raise ValueError(f"amin must be strictly positive; got {amin}.")
    if np.iscomplexobj(S):
        raise TypeError(
            "power_to_db got a complex array: pass np.abs(X) ** 2 (power), or use "
            "amplitude_to_db(np.abs(X))."
        )
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative; got {top_db}.")
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec = log_spec - 10.0 * np.log10(np.maximum(amin, _reference(S, ref)))
    if top_db is not None:
        peak = log_spec.max(axis=_per_example_axes(log_spec.ndim), keepdims=True)
        log_spec = np.maximum(log_spec, peak - top_db)
    return log_spec


def amplitude_to_db(
    S: np.ndarray,
    ref: RefSpec = 1.0,
    amin: float = 1e-5,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Amplitude (e.g. ``|X|`` or RMS) to decibels, ``20 * log10(S / ref)``, as librosa.

    Examples, ``ref`` and ``top_db`` work as in :func:`power_to_db`.

    Notebook: 01_sound_as_signal

    Parameters
    ----------
    S : np.ndarray, shape (..., n_freqs, n_frames), (n,) or scalar
        Amplitudes; complex input uses its magnitude.
    ref : float or callable
        Reference amplitude (0 dB), or a function of one example of ``|S|`` such as ``np.max``.
    amin : float
        Amplitude floor, ``> 0``.
    top_db : float or None
        Dynamic range limit in dB below each example's maximum.

    Returns
    -------
    np.ndarray, shape like ``S``
        Level in dB.
    """
    magnitude = np.abs(np.asarray(S))
    ref_value = _reference(magnitude, ref)
    return power_to_db(magnitude**2, ref=np.square(ref_value), amin=amin**2, top_db=top_db)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Signal-to-noise ratio of ``noisy`` against ``clean``: ``10 log10(sum clean^2 / sum e^2)``.

    The noise is whatever differs from the clean signal, ``e = noisy - clean``.

    Notebook: 01_sound_as_signal, 04_features_and_preprocessing

    Parameters
    ----------
    clean : np.ndarray, shape (n_samples,)
        Reference signal.
    noisy : np.ndarray, shape (n_samples,)
        Degraded signal, same shape.

    Returns
    -------
    float
        SNR in dB (``inf`` if the signals are identical).
    """
    clean = as_signal(clean, "clean")
    noisy = as_signal(noisy, "noisy")
    if clean.shape != noisy.shape:
        raise ValueError(
            f"snr_db needs clean and noisy of the same shape; got {clean.shape} and "
            f"{noisy.shape}. Trim or align them first."
        )
    signal_power = float(np.sum(np.abs(clean) ** 2))
    noise_power = float(np.sum(np.abs(noisy - clean) ** 2))
    if noise_power == 0.0:
        return float("inf")
    if signal_power == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal_power / noise_power))


def add_noise(
    x: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Mix ``noise`` into ``x`` at exactly ``snr_db`` dB (over the whole signal).

    The noise is tiled if shorter than ``x``; if longer, a random segment of ``len(x)`` samples is
    taken (``rng`` picks its start). It is then scaled so that
    ``snr_db(x, result) == snr_db`` up to floating-point error.

    Notebook: 01_sound_as_signal, 04_features_and_preprocessing (augmentation)

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
        Clean signal, not all zeros.
    noise : np.ndarray, shape (n_noise,)
        Noise signal, not all zeros.
    snr_db : float
        Target signal-to-noise ratio in dB.
    rng : np.random.Generator, int or None
        Random generator (or seed) for the crop offset.

    Returns
    -------
    np.ndarray, shape (n_samples,)
        ``x + g * noise_segment``.
    """
    x = as_signal(x)
    noise = as_signal(noise, "noise")
    if x.ndim != 1 or noise.ndim != 1:
        raise ValueError(
            f"add_noise expects 1-D x and noise; got shapes {x.shape} and {noise.shape}. "
            "Mix each channel separately."
        )
    n = x.shape[-1]
    if noise.size == 0:
        raise ValueError("noise is empty; pass at least one sample of noise.")
    if noise.size < n:
        noise = np.tile(noise, int(np.ceil(n / noise.size)))[:n]
    elif noise.size > n:
        start = int(np.random.default_rng(rng).integers(0, noise.size - n + 1))
        noise = noise[start : start + n]
    p_signal = np.mean(np.abs(x) ** 2)
    p_noise = np.mean(np.abs(noise) ** 2)
    if p_signal == 0 or p_noise == 0:
        raise ValueError(
            "add_noise needs non-silent x and noise (an SNR of a silent signal is undefined)."
        )
    gain = np.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return x + gain * noise
