"""Figures every notebook uses: labelled axes with units, and a player next to each audio figure.

Notebook: 00_welcome (and every notebook after it)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "listen",
    "plot_spectrogram",
    "plot_waveform",
    "show_clip",
]


def _as_mono_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:  # (channels, samples): listen to and plot the mix
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected a waveform of shape (samples,) or (channels, samples); got {x.shape}")
    return x


def listen(x: Any, sr: int, *, normalize: bool = True):
    """An audio player for ``x`` (NumPy array or tensor, mono or ``(channels, samples)``).

    Parameters
    ----------
    x : array_like, shape (samples,) or (channels, samples)
    sr : int
        Sample rate in Hz.
    normalize : bool
        Scale to full range for listening (off to hear true levels, e.g. quantisation noise).
    """
    from IPython.display import Audio

    return Audio(_as_mono_numpy(x), rate=int(sr), normalize=normalize)


def plot_waveform(x: Any, sr: int, *, ax: plt.Axes | None = None, title: str | None = None,
                  color: str | None = None, label: str | None = None) -> plt.Axes:
    """Amplitude against time in seconds.

    Parameters
    ----------
    x : array_like, shape (samples,) or (channels, samples)
    sr : int
        Sample rate in Hz.
    """
    x = _as_mono_numpy(x)
    ax = ax or plt.subplots(figsize=(9, 2.5))[1]
    t = np.arange(x.size) / sr
    ax.plot(t, x, lw=0.7, color=color, label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude (full scale)")
    ax.set_xlim(0, max(t[-1], 1 / sr) if x.size else 1)
    if title:
        ax.set_title(title)
    return ax


def plot_spectrogram(spec_db: Any, sr: int, hop_length: int, *, ax: plt.Axes | None = None,
                     y_axis: str = "linear", fmax: float | None = None, title: str | None = None,
                     colorbar: bool = True, unit: str = "dB", n_fft: int | None = None) -> plt.Axes:
    """A time-frequency image with time in seconds and frequency in Hz (or mel bands).

    Parameters
    ----------
    spec_db : array_like, shape (n_bins, n_frames)
        Values to show, typically in dB.
    sr : int
        Sample rate in Hz.
    hop_length : int
        Samples between frames (sets the time axis).
    y_axis : {"linear", "mel", "bins"}
        ``linear``: bins of an STFT (0 .. sr/2 Hz). ``mel``: mel bands, labelled by index.
        ``bins``: raw bin index.
    n_fft : int, optional
        FFT length, for the bin spacing ``sr / n_fft`` of the linear axis; by default inferred from
        ``n_bins = 1 + n_fft // 2``.

    Pixel centres are placed on the frame times ``t * hop_length / sr`` (centred frames) and the bin
    frequencies, so curves drawn on top line up with the image.

    Notebook: 01_sound_as_signal
    """
    spec = np.asarray(spec_db.detach().cpu() if hasattr(spec_db, "detach") else spec_db)
    ax = ax or plt.subplots(figsize=(9, 3))[1]
    n_bins, n_frames = spec.shape
    # Pixel centres sit on the frame times t * hop / sr (centred STFT frames) and, on the linear axis,
    # on the bin frequencies k * sr / n_fft, so overlays (a predicted pitch, an f0 track) line up.
    frame_s = hop_length / sr
    t_end = (n_frames - 0.5) * frame_s
    if y_axis == "linear":
        bin_hz = sr / n_fft if n_fft else sr / 2 / max(n_bins - 1, 1)
        extent = [-frame_s / 2, t_end, -bin_hz / 2, (n_bins - 0.5) * bin_hz]
        ylabel = "frequency (Hz)"
    elif y_axis == "mel":
        extent = [-frame_s / 2, t_end, 0, n_bins]
        ylabel = "mel band"
    else:
        extent = [-frame_s / 2, t_end, 0, n_bins]
        ylabel = "bin"
    image = ax.imshow(spec, origin="lower", aspect="auto", extent=extent, cmap="magma")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, t_end)
    if y_axis == "linear":
        ax.set_ylim(0, sr / 2 if fmax is None else fmax)
    if title:
        ax.set_title(title)
    if colorbar:
        plt.colorbar(image, ax=ax, label=unit)
    return ax


def show_clip(x: Any, sr: int, *, title: str = "", n_fft: int = 1024, hop_length: int = 256,
              fmax: float | None = None, axes: Sequence[plt.Axes] | None = None):
    """Waveform above its log-power STFT, then a player: the course's standard look at a clip.

    Returns the ``IPython.display.Audio`` player so a notebook cell can end with it.
    """
    import librosa

    x = _as_mono_numpy(x)
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True, constrained_layout=True)
    plot_waveform(x, sr, ax=axes[0], title=title or None)
    spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop_length)) ** 2
    plot_spectrogram(librosa.power_to_db(spec, ref=np.max), sr, hop_length, ax=axes[1], fmax=fmax,
                     title="log-power spectrogram (dB re. max)")
    plt.show()
    return listen(x, sr)
