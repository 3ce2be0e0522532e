"""Part I of the course, from scratch: the signal mappings written in NumPy/SciPy.

Every function here is the *reference* the rest of ``course_lib`` (and the notebooks' exercises)
is tested against, so each one is small, readable and checked against a public library in
``tests/test_dsp.py`` (numpy.fft, scipy.signal, librosa, torch/torchaudio). Keyword names follow
librosa where librosa has the same function, so a student can swap one for the other.

Conventions
-----------
- Signals are real ``np.ndarray`` of shape ``(n_samples,)`` (most functions also accept leading
  batch/channel axes ``(..., n_samples)``); amplitudes are in full-scale units, i.e. ``[-1, 1]``.
- Spectrograms have shape ``(..., n_freqs, n_frames)`` with ``n_freqs = 1 + n_fft // 2``.
- Frequencies are in Hz, times in samples unless a name says ``_s`` / ``duration``.

This module imports nothing else of ``course_lib`` (see ``docs/DEVELOPING.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.fft
import scipy.signal

__all__ = [
    # 01_sound_as_signal
    "quantize",
    "aliased_frequency",
    "rms",
    "amplitude_to_db",
    "power_to_db",
    "snr_db",
    "add_noise",
    # 02_fourier_and_convolution
    "dft_matrix",
    "dft",
    "fft_convolve",
    "circular_convolve",
    "convolution_matrix",
    "fir_lowpass",
    "get_window",
    # 03_stft_and_time_frequency
    "frame",
    "stft",
    "istft",
    "cola_error",
    "griffin_lim",
    "spectral_convergence",
    "morlet_scalogram",
    # 04_features_and_preprocessing
    "hz_to_mel",
    "mel_to_hz",
    "mel_frequencies",
    "mel_filterbank",
    "melspectrogram",
    "log_mel",
    "dct_matrix",
    "mfcc",
    "spectral_subtraction",
    "wiener_denoise",
]

ConvMode = Literal["full", "same", "valid"]
WindowSpec = str | np.ndarray


def _as_signal(x: np.ndarray, name: str = "x", min_ndim: int = 1) -> np.ndarray:
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


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _default_hop(hop_length: int | None, win_length: int) -> int:
    """librosa's default hop: a quarter of the window (75 % overlap)."""
    if hop_length is None:
        return max(win_length // 4, 1)
    return _check_positive_int(hop_length, "hop_length")


# ----------------------------------------------------------------------------------------------
# 01_sound_as_signal: sampling, quantisation, levels, noise
# ----------------------------------------------------------------------------------------------


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
    x = _as_signal(x, min_ndim=0)
    if np.iscomplexobj(x):
        raise TypeError("quantize expects a real signal; got a complex array.")
    bits = _check_positive_int(bits, "bits")
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
    x = _as_signal(x)
    if frame_length is None:
        out = np.sqrt(np.mean(np.abs(x) ** 2, axis=-1))
        return float(out) if out.ndim == 0 else out
    frame_length = _check_positive_int(frame_length, "frame_length")
    if center:
        x = _pad_last(x, frame_length // 2)
    frames = frame(x, frame_length, hop_length)
    return np.sqrt(np.mean(np.abs(frames) ** 2, axis=-2))


def power_to_db(
    S: np.ndarray,
    ref: float | Callable[[np.ndarray], float] = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Power (e.g. ``|X|**2``) to decibels, ``10 * log10(S / ref)``, as ``librosa.power_to_db``.

    Notebook: 01_sound_as_signal (levels), 04_features_and_preprocessing (log-mel)

    Parameters
    ----------
    S : np.ndarray, any shape
        Non-negative power values.
    ref : float or callable
        Reference power (0 dB), or a function of ``S`` such as ``np.max``.
    amin : float
        Floor applied to ``S`` and ``ref`` before the log, ``> 0``, so silence gives a finite value.
    top_db : float or None
        If given, clip the output to ``max - top_db`` dB (dynamic range limit).

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
    ref_value = ref(S) if callable(ref) else np.abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(amin, S))
    log_spec = log_spec - 10.0 * np.log10(np.maximum(amin, ref_value))
    if top_db is not None:
        if top_db < 0:
            raise ValueError(f"top_db must be non-negative; got {top_db}.")
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def amplitude_to_db(
    S: np.ndarray,
    ref: float | Callable[[np.ndarray], float] = 1.0,
    amin: float = 1e-5,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Amplitude (e.g. ``|X|`` or RMS) to decibels, ``20 * log10(S / ref)``, as librosa.

    Notebook: 01_sound_as_signal

    Parameters
    ----------
    S : np.ndarray, any shape
        Amplitudes; complex input uses its magnitude.
    ref : float or callable
        Reference amplitude (0 dB), or a function of ``|S|`` such as ``np.max``.
    amin : float
        Amplitude floor, ``> 0``.
    top_db : float or None
        Dynamic range limit in dB below the maximum.

    Returns
    -------
    np.ndarray, shape like ``S``
        Level in dB.
    """
    magnitude = np.abs(np.asarray(S))
    ref_value = ref(magnitude) if callable(ref) else np.abs(ref)
    return power_to_db(magnitude**2, ref=ref_value**2, amin=amin**2, top_db=top_db)


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
    clean = _as_signal(clean, "clean")
    noisy = _as_signal(noisy, "noisy")
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
    x = _as_signal(x)
    noise = _as_signal(noise, "noise")
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


# ----------------------------------------------------------------------------------------------
# 02_fourier_and_convolution: the DFT as a matrix, convolution, FIR design, windows
# ----------------------------------------------------------------------------------------------


def dft_matrix(n: int) -> np.ndarray:
    """The unnormalised ``n x n`` DFT matrix ``W[k, m] = exp(-2j pi k m / n)``.

    ``dft_matrix(n) @ x == np.fft.fft(x)`` for any ``x`` of length ``n``: the DFT is a linear map.

    Notebook: 02_fourier_and_convolution

    Parameters
    ----------
    n : int
        Transform length (``>= 1``).

    Returns
    -------
    np.ndarray, shape (n, n), complex128
        Row ``k`` is the complex exponential at frequency ``k / n`` cycles per sample.
    """
    n = _check_positive_int(n, "n")
    k = np.arange(n)
    # Reducing k*m mod n before the exponential keeps the phase argument small, which keeps
    # large-n matrices accurate to ~1e-15 instead of drifting with k*m.
    return np.exp(-2j * np.pi * (np.outer(k, k) % n) / n)


def dft(x: np.ndarray) -> np.ndarray:
    """Discrete Fourier transform by matrix product, ``X = W x`` (O(N^2)).

    Notebook: 02_fourier_and_convolution

    Parameters
    ----------
    x : np.ndarray, shape (..., n)
        Real or complex signal(s); the transform runs over the last axis.

    Returns
    -------
    np.ndarray, shape (..., n), complex
        Same as ``np.fft.fft(x)``.
    """
    x = _as_signal(x)
    return x @ dft_matrix(x.shape[-1]).T


def _conv_slice(full: np.ndarray, n_x: int, n_h: int, mode: str) -> np.ndarray:
    """Cut a full linear convolution down to np.convolve's ``same`` / ``valid`` parts."""
    if mode == "full":
        return full
    longest, shortest = max(n_x, n_h), min(n_x, n_h)
    if mode == "same":
        start = (shortest - 1) // 2
        return full[..., start : start + longest]
    if mode == "valid":
        return full[..., shortest - 1 : longest]
    raise ValueError(f"mode must be 'full', 'same' or 'valid'; got {mode!r}.")


def fft_convolve(x: np.ndarray, h: np.ndarray, mode: ConvMode = "full") -> np.ndarray:
    """Linear convolution through the convolution theorem: ``x * h = IDFT(DFT(x) . DFT(h))``.

    Both inputs are zero-padded to ``len(x) + len(h) - 1`` samples first, so the product of
    spectra is a *linear* (not circular) convolution. Output sizes follow ``np.convolve``:
    ``full`` has ``N + M - 1`` samples, ``same`` ``max(N, M)`` (centred), ``valid``
    ``max(N, M) - min(N, M) + 1``.

    Notebook: 02_fourier_and_convolution

    Parameters
    ----------
    x : np.ndarray, shape (N,)
        Signal.
    h : np.ndarray, shape (M,)
        Impulse response (filter).
    mode : {"full", "same", "valid"}
        Which part of the full convolution to return.

    Returns
    -------
    np.ndarray
        Real if both inputs are real, else complex.
    """
    x = _as_signal(x)
    h = _as_signal(h, "h")
    if x.ndim != 1 or h.ndim != 1 or x.size == 0 or h.size == 0:
        raise ValueError(
            f"fft_convolve expects two non-empty 1-D arrays; got shapes {x.shape} and {h.shape}."
        )
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"mode must be 'full', 'same' or 'valid'; got {mode!r}.")
    n_out = x.size + h.size - 1
    # A fast FFT length (>= n_out) only adds zeros, which the linear result does not see.
    n_fft = scipy.fft.next_fast_len(n_out)
    if np.iscomplexobj(x) or np.iscomplexobj(h):
        full = np.fft.ifft(np.fft.fft(x, n_fft) * np.fft.fft(h, n_fft))[:n_out]
    else:
        full = np.fft.irfft(np.fft.rfft(x, n_fft) * np.fft.rfft(h, n_fft), n_fft)[:n_out]
    return _conv_slice(full, x.size, h.size, mode)


def circular_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Circular convolution of length ``N = len(x)``: ``y[n] = sum_m h[m] x[(n - m) mod N]``.

    This is what multiplying two length-``N`` DFTs gives; compare with :func:`fft_convolve`, which
    pads to avoid the wrap-around.

    Notebook: 02_fourier_and_convolution (and 08_spectral_graph_networks: a filter on a ring graph)

    Parameters
    ----------
    x : np.ndarray, shape (N,)
        Signal, treated as one period.
    h : np.ndarray, shape (M,), M <= N
        Filter, zero-padded to ``N``.

    Returns
    -------
    np.ndarray, shape (N,)
        Real if both inputs are real.
    """
    x = _as_signal(x)
    h = _as_signal(h, "h")
    if x.ndim != 1 or h.ndim != 1:
        raise ValueError(f"circular_convolve expects 1-D arrays; got {x.shape} and {h.shape}.")
    n = x.size
    if h.size > n:
        raise ValueError(
            f"circular_convolve: h has {h.size} samples but the period len(x) is {n}; "
            "shorten h or fold it modulo len(x) yourself."
        )
    y = np.fft.ifft(np.fft.fft(x) * np.fft.fft(h, n))
    return y if (np.iscomplexobj(x) or np.iscomplexobj(h)) else y.real


def convolution_matrix(h: np.ndarray, n_input: int, mode: ConvMode = "full") -> np.ndarray:
    """Toeplitz matrix ``T`` with ``T @ x == np.convolve(x, h, mode)`` when ``len(x) == n_input``.

    Each row holds the flipped filter shifted by one sample: convolution is a linear map with
    shared (tied) weights, the structure a convolutional layer learns.

    Notebook: 02_fourier_and_convolution (and 05_from_filters_to_cnns)

    Parameters
    ----------
    h : np.ndarray, shape (M,)
        Filter taps.
    n_input : int
        Length ``N`` of the signals the matrix will multiply.
    mode : {"full", "same", "valid"}
        Output size as in ``np.convolve``.

    Returns
    -------
    np.ndarray, shape (n_out, n_input)
        ``n_out`` is ``N + M - 1``, ``max(N, M)`` or ``max(N, M) - min(N, M) + 1``.
        Same as ``scipy.linalg.convolution_matrix(h, n_input, mode)``.
    """
    h = _as_signal(h, "h")
    n_input = _check_positive_int(n_input, "n_input")
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"h must be a non-empty 1-D array of taps; got shape {h.shape}.")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"mode must be 'full', 'same' or 'valid'; got {mode!r}.")
    m = h.size
    rows = np.arange(n_input + m - 1)[:, None]
    cols = np.arange(n_input)[None, :]
    lag = rows - cols  # full[i] = sum_j h[i - j] x[j]
    inside = (lag >= 0) & (lag < m)
    full = np.where(inside, h[np.clip(lag, 0, m - 1)], 0)
    return _conv_slice(full.T, n_input, m, mode).T


def get_window(window: WindowSpec, n: int, fftbins: bool = True) -> np.ndarray:
    """A window of length ``n``: ``"hann"``, ``"hamming"``, ``"blackman"``, ``"rectangular"``.

    ``fftbins=True`` gives the *periodic* window (one period of the cosine over ``n`` samples,
    the last sample dropped), the one librosa and ``scipy.signal.get_window`` use for spectral
    analysis because shifted copies then add up to a constant (COLA). ``fftbins=False`` gives the
    *symmetric* window used for FIR design (``scipy.signal.firwin``).

    Notebook: 02_fourier_and_convolution (leakage), 03_stft_and_time_frequency

    Parameters
    ----------
    window : str or np.ndarray
        A name (``"hann"``/``"hanning"``, ``"hamming"``, ``"blackman"``,
        ``"rectangular"``/``"boxcar"``/``"ones"``) or an array of length ``n``, returned as is.
    n : int
        Window length in samples.
    fftbins : bool
        Periodic (True) or symmetric (False).

    Returns
    -------
    np.ndarray, shape (n,), float64
    """
    n = _check_positive_int(n, "n")
    if not isinstance(window, str):
        w = np.asarray(window, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(
                f"An explicit window must have shape ({n},) to match the frame; got {w.shape}."
            )
        return w
    name = window.lower()
    if name in ("rectangular", "boxcar", "ones", "rect"):
        return np.ones(n)
    if n == 1:
        return np.ones(1)
    # Periodic = the first n samples of a symmetric window of length n + 1.
    denom = n if fftbins else n - 1
    phase = 2.0 * np.pi * np.arange(n) / denom
    if name in ("hann", "hanning"):
        return 0.5 - 0.5 * np.cos(phase)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(phase)
    if name == "blackman":
        w = 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2.0 * phase)
        # The formula gives -1e-17 at the ends; windows are non-negative by definition.
        return np.maximum(w, 0.0)
    raise ValueError(
        f"Unknown window {window!r}: use 'hann', 'hamming', 'blackman', 'rectangular', "
        "or pass an array."
    )


def fir_lowpass(
    cutoff_hz: float, sr: float, num_taps: int, window: WindowSpec = "hamming"
) -> np.ndarray:
    """Linear-phase FIR low-pass filter by the windowed-sinc method.

    The ideal low-pass impulse response ``2 fc sinc(2 fc (n - (L-1)/2))`` (``fc`` = cutoff in
    cycles per sample) is infinitely long; truncating it to ``num_taps`` and tapering with a
    symmetric window trades transition width for stop-band ripple. Taps are scaled to unit gain
    at 0 Hz, as ``scipy.signal.firwin(num_taps, cutoff_hz, window=window, fs=sr)`` does.

    Notebook: 02_fourier_and_convolution

    Parameters
    ----------
    cutoff_hz : float
        Cutoff (-6 dB point) in Hz, ``0 < cutoff_hz < sr / 2``.
    sr : float
        Sampling rate in Hz.
    num_taps : int
        Filter length ``L`` (odd lengths give a whole-sample delay of ``(L-1)/2``).
    window : str or np.ndarray
        Taper, see :func:`get_window` (symmetric form is used).

    Returns
    -------
    np.ndarray, shape (num_taps,)
        Filter taps ``h``; apply with ``fft_convolve(x, h)`` or ``scipy.signal.lfilter(h, 1, x)``.
    """
    num_taps = _check_positive_int(num_taps, "num_taps")
    if not 0 < cutoff_hz < sr / 2:
        raise ValueError(
            f"cutoff_hz must lie strictly between 0 and the Nyquist frequency sr/2 = {sr / 2} Hz; "
            f"got {cutoff_hz}."
        )
    fc = cutoff_hz / sr
    m = np.arange(num_taps) - (num_taps - 1) / 2.0
    h = 2.0 * fc * np.sinc(2.0 * fc * m) * get_window(window, num_taps, fftbins=False)
    return h / np.sum(h)


# ----------------------------------------------------------------------------------------------
# 03_stft_and_time_frequency: framing, STFT/ISTFT, COLA, Griffin-Lim, wavelets
# ----------------------------------------------------------------------------------------------


def _pad_last(x: np.ndarray, pad: int) -> np.ndarray:
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    return np.pad(x, widths, mode="constant")


def frame(x: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Slice a signal into overlapping frames (no padding), as ``librosa.util.frame(x, axis=-1)``.

    Notebook: 03_stft_and_time_frequency

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal(s).
    frame_length : int
        Samples per frame; at most ``n_samples``.
    hop_length : int
        Samples between the starts of consecutive frames.

    Returns
    -------
    np.ndarray, shape (..., frame_length, n_frames)
        ``n_frames = 1 + (n_samples - frame_length) // hop_length``; column ``t`` is
        ``x[..., t * hop_length : t * hop_length + frame_length]``.
    """
    x = _as_signal(x)
    frame_length = _check_positive_int(frame_length, "frame_length")
    hop_length = _check_positive_int(hop_length, "hop_length")
    n = x.shape[-1]
    if n < frame_length:
        raise ValueError(
            f"Signal of {n} samples is shorter than frame_length={frame_length}: pad the signal "
            "(e.g. center=True) or use a shorter frame."
        )
    n_frames = 1 + (n - frame_length) // hop_length
    index = np.arange(frame_length)[:, None] + hop_length * np.arange(n_frames)[None, :]
    return x[..., index]


def _stft_window(window: WindowSpec, win_length: int, n_fft: int) -> np.ndarray:
    """Analysis window of ``win_length`` zero-padded (centred) to ``n_fft``, as librosa does."""
    if win_length > n_fft:
        raise ValueError(f"win_length={win_length} must not exceed n_fft={n_fft}.")
    w = get_window(window, win_length, fftbins=True)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def stft(
    x: np.ndarray,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
) -> np.ndarray:
    """Short-time Fourier transform: frame, window, real FFT.

    Matches ``librosa.stft(x, n_fft=..., ..., pad_mode="constant")`` and
    ``torch.stft(..., center=center, pad_mode="constant", return_complex=True)`` with a periodic
    window.

    Notebook: 03_stft_and_time_frequency

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Real signal(s).
    n_fft : int
        FFT length (frame length after padding the window); any positive integer, e.g. 500.
    hop_length : int or None
        Samples between frames; default ``win_length // 4``.
    win_length : int or None
        Window length ``<= n_fft``; default ``n_fft``. Shorter windows are zero-padded on both
        sides.
    window : str or np.ndarray
        See :func:`get_window` (periodic form).
    center : bool
        If True, pad ``n_fft // 2`` zeros on both sides so frame ``t`` is centred on sample
        ``t * hop_length``.

    Returns
    -------
    np.ndarray, shape (..., 1 + n_fft // 2, n_frames), complex
        ``n_frames = 1 + (n_samples + 2 * (n_fft // 2) * center - n_fft) // hop_length``.
    """
    x = _as_signal(x)
    if np.iscomplexobj(x):
        raise TypeError("stft expects a real signal; got a complex array.")
    n_fft = _check_positive_int(n_fft, "n_fft")
    win_length = n_fft if win_length is None else _check_positive_int(win_length, "win_length")
    hop_length = _default_hop(hop_length, win_length)
    w = _stft_window(window, win_length, n_fft)
    if center:
        x = _pad_last(x, n_fft // 2)
    if x.shape[-1] < n_fft:
        raise ValueError(
            f"n_fft={n_fft} is longer than the {'padded ' if center else ''}signal "
            f"({x.shape[-1]} samples): use a smaller n_fft or a longer signal."
        )
    frames = frame(x, n_fft, hop_length) * w[:, None]
    return np.fft.rfft(frames, n=n_fft, axis=-2)


def istft(
    stft_matrix: np.ndarray,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    length: int | None = None,
    n_fft: int | None = None,
) -> np.ndarray:
    """Inverse STFT by weighted overlap-add, normalised by the summed squared window.

    Each column is inverted with ``irfft``, multiplied by the synthesis window, and added at its
    hop position; dividing by ``sum_t w[n - t hop]^2`` (wherever it is non-zero) makes
    ``istft(stft(x)) == x`` for any window whose squared shifts do not vanish. Same result as
    ``librosa.istft``.

    Notebook: 03_stft_and_time_frequency

    Parameters
    ----------
    stft_matrix : np.ndarray, shape (..., 1 + n_fft // 2, n_frames), complex
        STFT as produced by :func:`stft`.
    hop_length : int or None
        Default ``win_length // 4``.
    win_length : int or None
        Default ``n_fft``.
    window : str or np.ndarray
        The analysis window used by :func:`stft`.
    center : bool
        Whether the STFT was centred (then ``n_fft // 2`` samples are trimmed at both ends).
    length : int or None
        If given, the output is cut or zero-padded to exactly this many samples.
    n_fft : int or None
        FFT length; default ``2 * (n_freqs - 1)``. Pass it for an odd ``n_fft`` (both ``2k`` and
        ``2k + 1`` give ``k + 1`` bins).

    Returns
    -------
    np.ndarray, shape (..., n_samples), float64
    """
    S = np.asarray(stft_matrix)
    if S.ndim < 2:
        raise ValueError(
            f"stft_matrix must have shape (..., n_freqs, n_frames); got shape {S.shape}."
        )
    if n_fft is None:
        n_fft = 2 * (S.shape[-2] - 1)
        if n_fft < 1:
            raise ValueError("stft_matrix needs at least 2 frequency bins (n_fft >= 2).")
    elif S.shape[-2] != 1 + _check_positive_int(n_fft, "n_fft") // 2:
        raise ValueError(
            f"stft_matrix has {S.shape[-2]} frequency bins but n_fft={n_fft} gives "
            f"{1 + n_fft // 2}; pass the n_fft used for the STFT."
        )
    win_length = n_fft if win_length is None else _check_positive_int(win_length, "win_length")
    hop_length = _default_hop(hop_length, win_length)
    w = _stft_window(window, win_length, n_fft)
    n_frames = S.shape[-1]
    if length is not None:
        padded = length + 2 * (n_fft // 2) if center else length
        n_frames = min(n_frames, int(np.ceil(padded / hop_length)))
    frames = np.fft.irfft(S[..., :n_frames], n=n_fft, axis=-2) * w[:, None]
    n_full = n_fft + hop_length * (n_frames - 1)
    y = np.zeros(S.shape[:-2] + (n_full,))
    win_sum = np.zeros(n_full)
    for t in range(n_frames):
        y[..., t * hop_length : t * hop_length + n_fft] += frames[..., t]
        win_sum[t * hop_length : t * hop_length + n_fft] += w**2
    nonzero = win_sum > np.finfo(np.float64).tiny
    y[..., nonzero] /= win_sum[nonzero]
    start = n_fft // 2 if center else 0
    if length is None:
        length = n_full - 2 * start
    y = y[..., start : start + length]
    if y.shape[-1] < length:
        y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, length - y.shape[-1])])
    return y


def cola_error(
    window: WindowSpec, hop_length: int, win_length: int | None = None, power: int = 1
) -> float:
    """How far shifted copies of a window are from summing to a constant (the COLA condition).

    Computes the steady-state sum ``s[n] = sum_t w[n - t hop]**power`` over one hop period and
    returns ``(max s - min s) / mean s``: 0 for a window that satisfies COLA at this hop (e.g. a
    periodic Hann at ``hop = n / 2`` or ``n / 4``). ``power=1`` is the plain overlap-add
    condition (``scipy.signal.check_COLA``); ``power=2`` the weighted-overlap-add one that
    matters when the same window is used for analysis and synthesis.

    Notebook: 03_stft_and_time_frequency

    Parameters
    ----------
    window : str or np.ndarray
        Window name (then ``win_length`` is required) or window samples.
    hop_length : int
        Hop in samples.
    win_length : int or None
        Length when ``window`` is a name.
    power : int
        1 (COLA) or 2 (squared window, WOLA).

    Returns
    -------
    float
        Relative peak-to-peak ripple of the overlap-added window (dimensionless).
    """
    if isinstance(window, str):
        if win_length is None:
            raise ValueError("cola_error needs win_length when window is given by name.")
        w = get_window(window, win_length, fftbins=True)
    else:
        w = np.asarray(window, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"window must be a non-empty 1-D array; got shape {w.shape}.")
    hop_length = _check_positive_int(hop_length, "hop_length")
    # Folding the window onto one hop period gives the steady-state overlap-add sum directly.
    n_periods = int(np.ceil(w.size / hop_length))
    padded = np.zeros(n_periods * hop_length)
    padded[: w.size] = w**power
    s = padded.reshape(n_periods, hop_length).sum(axis=0)
    mean = s.mean()
    if mean == 0:
        raise ValueError("The window sums to zero: it cannot satisfy COLA.")
    return float((s.max() - s.min()) / mean)


def spectral_convergence(reference_mag: np.ndarray, estimate_mag: np.ndarray) -> float:
    """Spectral convergence ``||R - E||_F / ||R||_F`` between two magnitude spectrograms.

    Notebook: 03_stft_and_time_frequency, 18_speech_generation_vocoder

    Parameters
    ----------
    reference_mag : np.ndarray, shape (n_freqs, n_frames)
        Target magnitudes ``|X|``.
    estimate_mag : np.ndarray, same shape
        Magnitudes of the estimate.

    Returns
    -------
    float
        0 for a perfect match; dimensionless.
    """
    R = np.asarray(reference_mag, dtype=np.float64)
    E = np.asarray(estimate_mag, dtype=np.float64)
    if R.shape != E.shape:
        raise ValueError(
            f"spectral_convergence needs equal shapes; got {R.shape} and {E.shape} "
            "(use the same n_fft, hop_length and center, and the same signal length)."
        )
    norm = np.linalg.norm(R)
    if norm == 0:
        raise ValueError("reference_mag is all zeros; spectral convergence is undefined.")
    return float(np.linalg.norm(R - E) / norm)


def griffin_lim(
    magnitude: np.ndarray,
    n_iter: int = 32,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    momentum: float = 0.99,
    length: int | None = None,
    rng: np.random.Generator | int | None = None,
    return_history: bool = False,
    n_fft: int | None = None,
) -> np.ndarray | tuple[np.ndarray, list[float]]:
    """Recover a signal from an STFT magnitude by (fast) Griffin-Lim phase retrieval.

    Start from random phases; repeat: invert (:func:`istft`), re-analyse (:func:`stft`), keep the
    new phases with the *given* magnitudes. ``momentum`` extrapolates the phase update
    (Perraudin et al. 2013, "fast Griffin-Lim"); ``momentum=0`` is the original algorithm. With the
    same generator it gives the same result as
    ``librosa.griffinlim(magnitude, ..., random_state=rng)``.

    Notebook: 03_stft_and_time_frequency, 17_audio_style_transfer, 18_speech_generation_vocoder

    Parameters
    ----------
    magnitude : np.ndarray, shape (1 + n_fft // 2, n_frames)
        Non-negative STFT magnitudes.
    n_iter : int
        Number of iterations.
    hop_length, win_length, window, center
        STFT settings used to make ``magnitude``.
    momentum : float
        ``>= 0``; 0.99 as librosa.
    length : int or None
        Output length in samples.
    rng : np.random.Generator, int or None
        Random phase initialisation (``np.random.default_rng(rng)``).
    return_history : bool
        Also return the spectral convergence after each iteration.
    n_fft : int or None
        FFT length; default ``2 * (n_freqs - 1)`` (pass it when it was odd).

    Returns
    -------
    np.ndarray, shape (n_samples,)
        The signal; with ``return_history`` a tuple ``(signal, history)`` where ``history[i]`` is
        :func:`spectral_convergence` of the magnitudes of the iterate after ``i + 1`` iterations.
    """
    S = np.asarray(magnitude, dtype=np.float64)
    if np.any(S < 0) or S.ndim < 2:
        raise ValueError(
            "griffin_lim expects a non-negative magnitude spectrogram of shape "
            f"(n_freqs, n_frames); got shape {S.shape} (pass np.abs(stft(x)))."
        )
    if momentum < 0:
        raise ValueError(f"momentum must be >= 0; got {momentum}.")
    if n_fft is None:
        n_fft = 2 * (S.shape[-2] - 1)
    kw = dict(hop_length=hop_length, win_length=win_length, window=window, center=center)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    angles = np.exp(2j * np.pi * gen.random(size=S.shape)) * S
    previous = np.zeros_like(angles)
    history: list[float] = []
    eps = np.finfo(np.float64).tiny
    for _ in range(n_iter):
        y = istft(angles, length=length, n_fft=n_fft, **kw)
        rebuilt = stft(y, n_fft=n_fft, **kw)
        if return_history:
            history.append(spectral_convergence(S, np.abs(rebuilt)[..., : S.shape[-1]]))
        angles = rebuilt - (momentum / (1.0 + momentum)) * previous
        angles = angles / (np.abs(angles) + eps) * S
        previous = rebuilt
    y = istft(angles, length=length, n_fft=n_fft, **kw)
    return (y, history) if return_history else y


def morlet_scalogram(
    x: np.ndarray, sr: float, freqs: np.ndarray, n_cycles: float = 7.0
) -> np.ndarray:
    """Continuous wavelet transform with complex Morlet wavelets (a constant-Q time-frequency view).

    The wavelet at frequency ``f`` is ``exp(2j pi f t) exp(-t^2 / (2 sigma^2))`` with
    ``sigma = n_cycles / (2 pi f)``: its duration shrinks as ``f`` grows, so time resolution
    improves with frequency while frequency resolution is a constant fraction of ``f``. Each
    wavelet is scaled so that a sinusoid of amplitude ``A`` at ``f`` gives ``|coefficient| = A``.

    Notebook: 03_stft_and_time_frequency

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
        Real signal.
    sr : float
        Sampling rate in Hz.
    freqs : np.ndarray, shape (n_freqs,)
        Centre frequencies in Hz, ``0 < f < sr / 2``.
    n_cycles : float
        Cycles per wavelet (sets the Q); 5 to 10 is typical.

    Returns
    -------
    np.ndarray, shape (n_freqs, n_samples), complex
        Coefficients aligned with ``x`` (centred wavelets); plot ``np.abs``.
    """
    x = _as_signal(x)
    if x.ndim != 1:
        raise ValueError(f"morlet_scalogram expects a 1-D signal; got shape {x.shape}.")
    freqs = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    if np.any(freqs <= 0) or np.any(freqs >= sr / 2):
        raise ValueError(f"freqs must lie strictly between 0 and sr/2 = {sr / 2} Hz.")
    out = np.empty((freqs.size, x.size), dtype=np.complex128)
    for i, f in enumerate(freqs):
        sigma = n_cycles / (2.0 * np.pi * f)
        t = np.arange(-np.ceil(4 * sigma * sr), np.ceil(4 * sigma * sr) + 1) / sr
        envelope = np.exp(-(t**2) / (2.0 * sigma**2))
        # Correlation with the wavelet = convolution with its time-reversed conjugate; the
        # Gaussian is symmetric so only the carrier's sign flips.
        wavelet = 2.0 * envelope * np.exp(2j * np.pi * f * t) / envelope.sum()
        out[i] = scipy.signal.fftconvolve(x, wavelet, mode="same")
    return out


# ----------------------------------------------------------------------------------------------
# 04_features_and_preprocessing: mel, MFCC, denoising
# ----------------------------------------------------------------------------------------------

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
        Frequency range in Hz; ``fmax`` defaults to ``sr / 2``.
    htk : bool
        HTK mel formula instead of Slaney's.
    norm : {"slaney", None}
        Area normalisation, or none (peak 1).

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2)
        Weights; ``mel_filterbank(...) @ power_spectrogram`` is a mel spectrogram.
    """
    n_fft = _check_positive_int(n_fft, "n_fft")
    n_mels = _check_positive_int(n_mels, "n_mels")
    if fmax is None:
        fmax = sr / 2.0
    if not 0 <= fmin < fmax:
        raise ValueError(f"Need 0 <= fmin < fmax; got fmin={fmin}, fmax={fmax}.")
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None; got {norm!r}.")
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
    hop_length: int = 512,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    power: float = 2.0,
    n_mels: int = 128,
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
    n_fft, hop_length, win_length, window, center
        STFT settings (see :func:`stft`).
    power : float
        1 for magnitude, 2 for power.
    n_mels, fmin, fmax, htk, norm
        Filterbank settings (see :func:`mel_filterbank`).

    Returns
    -------
    np.ndarray, shape (..., n_mels, n_frames)
    """
    S = np.abs(stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                    window=window, center=center)) ** power
    fb = mel_filterbank(sr, n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    return fb @ S


def log_mel(
    x: np.ndarray,
    sr: float,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    ref: float | Callable[[np.ndarray], float] = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
    **kwargs,
) -> np.ndarray:
    """Log-mel spectrogram in dB: ``power_to_db(melspectrogram(x, ...))``.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal(s).
    sr : float
        Sampling rate in Hz.
    n_fft, hop_length, n_mels
        See :func:`melspectrogram`; other keywords (``win_length``, ``fmin``, ...) pass through.
    ref, amin, top_db
        See :func:`power_to_db`.

    Returns
    -------
    np.ndarray, shape (..., n_mels, n_frames)
        Level in dB.
    """
    M = melspectrogram(x, sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, **kwargs)
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
    n_out = _check_positive_int(n_out, "n_out")
    n_in = _check_positive_int(n_in, "n_in")
    if n_out > n_in:
        raise ValueError(f"n_out={n_out} cannot exceed n_in={n_in} for an orthonormal DCT.")
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    D = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    D[0] /= np.sqrt(2.0)
    return D


def mfcc(
    x: np.ndarray,
    sr: float,
    n_mfcc: int = 20,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    top_db: float | None = 80.0,
    **kwargs,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients: DCT-II of the log-mel spectrum.

    Same result as ``librosa.feature.mfcc(y=x, sr=sr, n_mfcc, n_fft, hop_length, n_mels)``.

    Notebook: 04_features_and_preprocessing

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal(s).
    sr : float
        Sampling rate in Hz.
    n_mfcc : int
        Coefficients kept.
    n_fft, hop_length, n_mels, top_db
        See :func:`log_mel`; other keywords pass through to :func:`melspectrogram`.

    Returns
    -------
    np.ndarray, shape (..., n_mfcc, n_frames)
    """
    L = log_mel(x, sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, top_db=top_db, **kwargs)
    return dct_matrix(n_mfcc, n_mels) @ L


def _noise_psd(
    noisy_power: np.ndarray,
    noise_estimate: np.ndarray | None,
    sr: float,
    noise_duration: float,
    stft_kw: dict,
) -> np.ndarray:
    """Mean noise power per frequency bin, shape (n_freqs, 1)."""
    if noise_estimate is not None:
        noise_power = np.abs(stft(_as_signal(noise_estimate, "noise_estimate"), **stft_kw)) ** 2
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
    noisy = _as_signal(noisy, "noisy")
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
    noisy = _as_signal(noisy, "noisy")
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
