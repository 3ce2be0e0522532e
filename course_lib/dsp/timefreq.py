"""Chapter 03, time-frequency analysis: framing, STFT/ISTFT, COLA, Griffin-Lim, Morlet wavelets.

Notebook: 03_stft_and_time_frequency. NumPy/SciPy only; see :mod:`course_lib.dsp` for the
conventions.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from course_lib.dsp._common import WindowSpec, as_signal, check_positive_int, default_hop, pad_last
from course_lib.dsp.fourier import get_window

__all__ = [
    "frame",
    "stft",
    "istft",
    "cola_error",
    "spectral_convergence",
    "griffin_lim",
    "morlet_scalogram",
]


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
    x = as_signal(x)
    frame_length = check_positive_int(frame_length, "frame_length")
    hop_length = check_positive_int(hop_length, "hop_length")
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
    pad_mode: str = "constant",
) -> np.ndarray:
    """Short-time Fourier transform: frame, window, real FFT.

    Matches ``librosa.stft`` with the same arguments and
    ``torch.stft(..., center=center, pad_mode=pad_mode, return_complex=True)`` with a periodic
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
        If True, pad ``n_fft // 2`` samples on both sides so frame ``t`` is centred on sample
        ``t * hop_length``.
    pad_mode : str
        How :func:`numpy.pad` fills the centre padding: ``"constant"`` (zeros, librosa's default
        since 0.10) or e.g. ``"reflect"``.

    Returns
    -------
    np.ndarray, shape (..., 1 + n_fft // 2, n_frames), complex
        ``n_frames = 1 + (n_samples + 2 * (n_fft // 2) * center - n_fft) // hop_length``.
    """
    x = as_signal(x)
    if np.iscomplexobj(x):
        raise TypeError("stft expects a real signal; got a complex array.")
    n_fft = check_positive_int(n_fft, "n_fft")
    win_length = n_fft if win_length is None else check_positive_int(win_length, "win_length")
    hop_length = default_hop(hop_length, win_length)
    w = _stft_window(window, win_length, n_fft)
    if center:
        x = pad_last(x, n_fft // 2, pad_mode)
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
    elif S.shape[-2] != 1 + check_positive_int(n_fft, "n_fft") // 2:
        raise ValueError(
            f"stft_matrix has {S.shape[-2]} frequency bins but n_fft={n_fft} gives "
            f"{1 + n_fft // 2}; pass the n_fft used for the STFT."
        )
    win_length = n_fft if win_length is None else check_positive_int(win_length, "win_length")
    hop_length = default_hop(hop_length, win_length)
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
    hop_length = check_positive_int(hop_length, "hop_length")
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
    x = as_signal(x)
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
