"""Speech emotion recognition: prosodic features, speaker-disjoint splits, an attention CNN.

Three pieces the notebook builds on:

- **Prosody as numbers.** :func:`pitch_track` (pYIN, Mauch & Dixon 2014, through ``librosa.pyin``),
  :func:`energy_db` (frame RMS in dBFS) and :func:`speaking_rate` (peaks of the smoothed energy
  envelope per second of speech, a syllable-rate proxy) summarise to one vector per clip,
  :func:`prosodic_features`, named by :data:`PROSODIC_FEATURES`, for a linear model.
- **Who is in the test set.** :func:`speaker_split` keeps every clip of a speaker on one side;
  :func:`random_split` is the speaker-dependent split that many published numbers use;
  :func:`shared_speakers` counts the voices a split leaks. The score that emotion recognition reports
  is the unweighted average recall, ``course_lib.metrics.unweighted_average_recall``.
- **A log-mel CNN with attention pooling.** :class:`AttentionCNN`: 2-D convolution blocks over
  (mel band, frame), the frequency axis averaged away, then a learned weighted average over time
  (``course_lib.models.temporal.AttentionPooling``) that can put its weight on the frames that carry
  the emotion and ignore pauses; the weights come back for plotting.

:func:`fix_length` trims leading and trailing silence and pads or crops clips to one length, so a
batch is one tensor.

Notebook: 14_speech_emotion
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.features import band_mean_std
from course_lib.models.temporal import AttentionPooling

__all__ = [
    "PROSODIC_FEATURES",
    "AttentionCNN",
    "energy_db",
    "fix_length",
    "pitch_track",
    "prosodic_feature_matrix",
    "prosodic_features",
    "random_split",
    "shared_speakers",
    "speaker_split",
    "speaking_rate",
]

#: Names (and units) of the columns of :func:`prosodic_features`, in order.
PROSODIC_FEATURES = (
    "f0 median (st re 100 Hz)",
    "f0 spread IQR (st)",
    "f0 range p5-p95 (st)",
    "f0 slope (st/s)",
    "voiced fraction",
    "energy mean (dBFS)",
    "energy spread std (dB)",
    "energy peak (dBFS)",
    "rate (energy peaks/s)",
    "speech duration (s)",
)

_F0_REF_HZ = 100.0       # semitones are measured from 100 Hz
_AMIN = 1e-5             # amplitude floor for dB: -100 dBFS
_ACTIVE_DB = 35.0        # a frame is speech when within this many dB of the clip's loudest frame


def _signal(x: Any, name: str = "x") -> np.ndarray:
    """One mono signal as float64 (n_samples,), from NumPy or torch, ``(1, n)`` accepted."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be one mono signal (n_samples,) or (1, n_samples); got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or inf samples: check how the audio was loaded")
    return x


def pitch_track(x: Any, sr: int, *, fmin: float = 65.0, fmax: float = 500.0, win_length: int = 1024,
                hop_length: int = 256, resolution: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental frequency per frame with pYIN (``librosa.pyin``), NaN where unvoiced.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (1, n_samples)
        Mono speech, full scale.
    sr : int
        Sample rate in Hz.
    fmin, fmax : float
        Search range in Hz (65-500 Hz covers adult speaking voices, raised and lowered).
    win_length : int
        Analysis window in samples (64 ms at 16 kHz: two periods of 65 Hz fit).
    hop_length : int
        Samples between frames.
    resolution : float
        Pitch-grid step of pYIN's Viterbi decoding, in semitones. librosa's default, 0.1, is
        about ten times slower; 0.5 moves the median f0 of speech by well under a semitone.

    Returns
    -------
    f0 : ndarray, shape (n_frames,)
        Hz; NaN in unvoiced frames. ``n_frames = 1 + n_samples // hop_length`` (centred frames).
    voiced_probability : ndarray, shape (n_frames,)
        pYIN's probability that the frame is voiced.
    """
    import librosa

    y = _signal(x)
    if not 0 < fmin < fmax <= sr / 2:
        raise ValueError(f"need 0 < fmin < fmax <= sr / 2; got fmin={fmin}, fmax={fmax}, sr={sr}")
    f0, _, probability = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=win_length,
                                      hop_length=hop_length, resolution=resolution)
    return f0, probability


def energy_db(x: Any, *, win_length: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Frame RMS level in dBFS (a full-scale sine is -3 dBFS), floored at -100 dBFS.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (1, n_samples)
    win_length, hop_length : int
        Frame length and hop in samples (centred frames, as :func:`pitch_track`'s).

    Returns
    -------
    ndarray, shape (n_frames,), dBFS
    """
    import librosa

    rms = librosa.feature.rms(y=_signal(x), frame_length=win_length, hop_length=hop_length)[0]
    return 20.0 * np.log10(np.maximum(rms, _AMIN))


def _active(level_db: np.ndarray) -> np.ndarray:
    return level_db >= level_db.max() - _ACTIVE_DB


def _span_frames(active: np.ndarray) -> int:
    """Frames from the first to the last active one (pauses inside included)."""
    where = np.flatnonzero(active)
    return int(where[-1] - where[0] + 1) if where.size else 0


def speaking_rate(x: Any, sr: int, *, hop_length: int = 160, smooth_s: float = 0.05,
                  prominence_db: float = 6.0, min_gap_s: float = 0.1) -> float:
    """Energy-envelope peaks per second of speech: a syllable-rate proxy.

    Each syllable has a loud vowel at its centre, so the smoothed frame energy rises and falls about
    once per syllable. Peaks must stand ``prominence_db`` above the dips beside them and lie at least
    ``min_gap_s`` apart; they are divided by the time from the first to the last speech frame
    (frames within 35 dB of the loudest): a speaking rate, pauses inside the utterance included,
    silence before and after it not.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (1, n_samples)
    sr : int
        Sample rate in Hz.
    hop_length : int
        Samples between energy frames (frames of ``2 * hop_length`` samples).
    smooth_s : float
        Length of the moving average over the dB envelope, in seconds.
    prominence_db, min_gap_s : float
        Peak selection, in dB and seconds.

    Returns
    -------
    float
        Peaks per second.
    """
    from scipy.signal import find_peaks

    level = energy_db(x, win_length=2 * hop_length, hop_length=hop_length)
    frames_per_s = sr / hop_length
    k = max(1, int(round(smooth_s * frames_per_s)))
    smooth = np.convolve(np.pad(level, k // 2, mode="edge"), np.ones(k) / k, mode="valid")[: len(level)]
    active = _active(smooth)
    peaks, _ = find_peaks(np.where(active, smooth, smooth.min()), prominence=prominence_db,
                          distance=max(1, int(round(min_gap_s * frames_per_s))))
    return float(len(peaks) / max(_span_frames(active) / frames_per_s, 1e-3))


def prosodic_features(x: Any, sr: int, *, fmin: float = 65.0, fmax: float = 500.0) -> np.ndarray:
    """One clip's prosody as the vector named by :data:`PROSODIC_FEATURES`.

    Pitch statistics are in semitones (``12 log2(f0 / 100 Hz)``: a ratio, as the ear hears pitch)
    over the voiced frames of :func:`pitch_track`; energy statistics in dB over the speech frames
    (within 35 dB of the loudest); rate from :func:`speaking_rate`; the duration runs from the first
    to the last speech frame. A clip without a voiced frame
    gets the f0 statistics of a flat 100 Hz contour (0 st) and a voiced fraction of 0.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (1, n_samples)
    sr : int
        Sample rate in Hz.
    fmin, fmax : float
        Pitch search range in Hz.

    Returns
    -------
    ndarray, shape (len(PROSODIC_FEATURES),), float64
    """
    y = _signal(x)
    # 64 ms windows every 32 ms: pYIN's cost grows with the number of frames (a Python loop per
    # frame), and clip statistics need no finer grid than a syllable's tenth
    hop = int(round(0.032 * sr))
    level = energy_db(y, win_length=2 * hop, hop_length=hop)
    active = _active(level)
    first, last = (np.flatnonzero(active)[[0, -1]] if active.any() else (0, len(active) - 1))
    f0 = np.full(len(level), np.nan)                 # pitch only where there is speech
    segment = y[first * hop: (last + 1) * hop + hop]
    if len(segment) >= 2 * hop:
        f0_segment, _ = pitch_track(segment, sr, fmin=fmin, fmax=fmax, win_length=2 * hop, hop_length=hop)
        f0[first: first + len(f0_segment)] = f0_segment[: len(level) - first]
    voiced = np.isfinite(f0) & active
    if voiced.any():
        st = 12.0 * np.log2(f0[voiced] / _F0_REF_HZ)
        t = np.flatnonzero(voiced) * hop / sr
        q5, q25, q50, q75, q95 = np.percentile(st, [5, 25, 50, 75, 95])
        slope = float(np.polyfit(t, st, 1)[0]) if np.ptp(t) > 0 else 0.0
    else:
        q5 = q25 = q50 = q75 = q95 = slope = 0.0
    speech = level[active]
    return np.array([
        q50, q75 - q25, q95 - q5, slope, voiced.sum() / max(active.sum(), 1),
        speech.mean(), speech.std(), speech.max(),
        speaking_rate(y, sr), _span_frames(active) * hop / sr,
    ], dtype=np.float64)


def prosodic_feature_matrix(waveforms: Iterable[Any], sr: int, *, progress: bool = False) -> np.ndarray:
    """:func:`prosodic_features` of many clips, one row each.

    Parameters
    ----------
    waveforms : iterable of array_like, each (n_samples,) or (1, n_samples)
        Clips of any lengths.
    sr : int
        Sample rate in Hz.
    progress : bool
        Show a progress bar.

    Returns
    -------
    ndarray, shape (n_clips, len(PROSODIC_FEATURES))
    """
    from tqdm.auto import tqdm

    rows = [prosodic_features(w, sr) for w in tqdm(list(waveforms), desc="prosodic features",
                                                   disable=not progress, leave=False)]
    if not rows:
        raise ValueError("prosodic_feature_matrix got no clips")
    return np.stack(rows)


def fix_length(waveforms: Sequence[Any], n_samples: int, *, top_db: float = 40.0) -> Tensor:
    """Trim each clip's leading and trailing silence, then zero-pad or centre-crop to ``n_samples``.

    Parameters
    ----------
    waveforms : sequence of array_like, each (n_samples_i,) or (1, n_samples_i)
    n_samples : int
        Length of every output clip.
    top_db : float
        Samples more than this many dB below the clip's peak at either end count as silence
        (``librosa.effects.trim``).

    Returns
    -------
    Tensor, shape (n_clips, 1, n_samples), float32
    """
    import librosa

    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples}")
    out = torch.zeros(len(waveforms), 1, int(n_samples))
    for i, w in enumerate(waveforms):
        y, _ = librosa.effects.trim(_signal(w, f"waveforms[{i}]"), top_db=top_db)
        if len(y) > n_samples:
            start = (len(y) - n_samples) // 2
            y = y[start:start + n_samples]
        out[i, 0, : len(y)] = torch.from_numpy(y.astype(np.float32))
    return out


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _n_test(n_items: int, test_fraction: float, what: str) -> int:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1; got {test_fraction}")
    if n_items < 2:
        raise ValueError(f"a split needs at least 2 {what}; got {n_items}")
    return min(max(int(round(test_fraction * n_items)), 1), n_items - 1)


def speaker_split(speakers: Sequence[Any], test_fraction: float,
                  rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Speaker-independent split: every clip of a speaker lands on the same side.

    ``round(test_fraction * n_speakers)`` speakers (at least one, at most all but one), drawn at
    random, give all their clips to the test side; the others to training.

    Parameters
    ----------
    speakers : sequence, length n_clips
        The speaker of each clip (any hashable ids).
    test_fraction : float
        Share of the *speakers* held out, in (0, 1).
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    train_indices, test_indices : ndarray of int, sorted
        Together every clip exactly once.
    """
    names = np.array(sorted({str(s) for s in speakers}))
    held_out = set(_rng(rng).permutation(names)[: _n_test(len(names), test_fraction, "speakers")])
    is_test = np.array([str(s) in held_out for s in speakers], dtype=bool)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def random_split(n_clips: int, test_fraction: float,
                 rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Speaker-dependent split: ``round(test_fraction * n_clips)`` clips drawn at random for test.

    What a shuffled train/test split of a corpus does: the same voices end up on both sides.

    Parameters
    ----------
    n_clips : int
    test_fraction : float
        Share of the clips held out, in (0, 1).
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    train_indices, test_indices : ndarray of int, sorted
    """
    order = _rng(rng).permutation(int(n_clips))
    n_test = _n_test(int(n_clips), test_fraction, "clips")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def shared_speakers(speakers: Sequence[Any], train_indices: Sequence[int], test_indices: Sequence[int]) -> set:
    """Speakers with clips on both sides of a split (empty for a speaker-independent split).

    Parameters
    ----------
    speakers : sequence, length n_clips
    train_indices, test_indices : sequence of int

    Returns
    -------
    set of str
    """
    return {str(speakers[i]) for i in train_indices} & {str(speakers[i]) for i in test_indices}


class AttentionCNN(nn.Module):
    """Log-mel CNN with attention pooling over time, for clip-level emotion.

    Input log-mels in dB are standardised per band (statistics of the training clips, kept as
    buffers: :meth:`fit_normalization`), then pass ``len(channels)`` blocks of 3x3 convolution,
    batch norm, ReLU and 2x2 max pooling; the mel axis is averaged away and
    ``AttentionPooling`` turns the frame sequence into one vector: ``a_t = softmax_t(v^T tanh(W h_t))``,
    ``sum_t a_t h_t``. Each weight covers ``2 ** len(channels)`` input frames.

    Parameters
    ----------
    n_mels : int
        Mel bands of the input.
    n_classes : int
        Output classes.
    channels : sequence of int
        Output channels of each block.
    dropout : float
        Dropout before the linear head.

    Shapes: ``(batch, 1, n_mels, n_frames)`` or ``(batch, n_mels, n_frames)`` -> logits
    ``(batch, n_classes)``; with ``return_weights=True`` also the attention weights
    ``(batch, n_frames // 2 ** len(channels))``.
    """

    norm_mean: Tensor
    norm_std: Tensor

    def __init__(self, n_mels: int, n_classes: int, channels: Sequence[int] = (8, 16, 32),
                 dropout: float = 0.2) -> None:
        super().__init__()
        if n_mels < 2 ** len(channels):
            raise ValueError(f"{len(channels)} pooling blocks halve the {n_mels} mel bands to nothing: "
                             f"use at least {2 ** len(channels)} bands or fewer blocks")
        self.n_mels = int(n_mels)
        self.register_buffer("norm_mean", torch.zeros(self.n_mels))
        self.register_buffer("norm_std", torch.ones(self.n_mels))
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out_channels), nn.ReLU(), nn.MaxPool2d(2)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.frames_per_weight = 2 ** len(channels)
        self.attention = AttentionPooling(in_channels)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_channels, n_classes))

    @torch.no_grad()
    def fit_normalization(self, spectrogram_batches: Iterable[Tensor]) -> AttentionCNN:
        """Measure each band's mean and standard deviation (dB) over training log-mels.

        Parameters
        ----------
        spectrogram_batches : iterable of Tensor, each (batch, [1,] n_mels, n_frames)

        Returns
        -------
        self
        """
        mean, std = band_mean_std(
            (s.reshape(-1, self.n_mels, s.shape[-1]).cpu() for s in spectrogram_batches),
            empty_message="AttentionCNN.fit_normalization got no spectrograms: pass the training log-mels.")
        self.norm_mean.copy_(mean.float())
        self.norm_std.copy_(std.float().clamp_min(1e-3))
        return self

    def forward(self, spec: Tensor, return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if spec.ndim == 3:
            spec = spec.unsqueeze(1)
        if spec.ndim != 4 or spec.shape[1] != 1 or spec.shape[2] != self.n_mels:
            raise ValueError(f"AttentionCNN expects log-mel (batch, 1, {self.n_mels}, frames); "
                             f"got {tuple(spec.shape)}")
        if spec.shape[-1] < self.frames_per_weight:
            raise ValueError(f"need at least {self.frames_per_weight} frames; got {spec.shape[-1]}")
        x = (spec - self.norm_mean[:, None]) / self.norm_std[:, None]
        h = self.features(x).mean(dim=2).transpose(1, 2)          # (batch, frames', channels)
        pooled, weights = self.attention(h, return_weights=True)
        logits = self.head(pooled)
        return (logits, weights) if return_weights else logits
