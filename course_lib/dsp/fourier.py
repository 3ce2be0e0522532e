"""Chapter 02, Fourier and convolution: the DFT as a matrix, convolution, windows, FIR design.

Notebook: 02_fourier_and_convolution. NumPy/SciPy only; see :mod:`course_lib.dsp` for the
conventions.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from course_lib.dsp._common import ConvMode, WindowSpec, as_signal, check_positive_int

__all__ = [
    "dft_matrix",
    "dft",
    "fft_convolve",
    "circular_convolve",
    "convolution_matrix",
    "get_window",
    "fir_lowpass",
]


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
    n = check_positive_int(n, "n")
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
    x = as_signal(x)
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
    x = as_signal(x)
    h = as_signal(h, "h")
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
    x = as_signal(x)
    h = as_signal(h, "h")
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
    h = as_signal(h, "h")
    n_input = check_positive_int(n_input, "n_input")
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
    n = check_positive_int(n, "n")
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
    num_taps = check_positive_int(num_taps, "num_taps")
    if not 0 < cutoff_hz < sr / 2:
        raise ValueError(
            f"cutoff_hz must lie strictly between 0 and the Nyquist frequency sr/2 = {sr / 2} Hz; "
            f"got {cutoff_hz}."
        )
    fc = cutoff_hz / sr
    m = np.arange(num_taps) - (num_taps - 1) / 2.0
    h = 2.0 * fc * np.sinc(2.0 * fc * m) * get_window(window, num_taps, fftbins=False)
    return h / np.sum(h)
