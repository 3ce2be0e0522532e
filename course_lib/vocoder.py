"""Mel -> waveform: mel settings that must match, Griffin-Lim, the multi-resolution STFT loss,
mu-law coding, objective measures and the data plumbing of the vocoder notebook.

* :class:`MelSettings` is everything that decides what a log-mel frame means (sample rate, ``n_fft``,
  hop, window length, mel bands and scale, ``fmin``/``fmax``, the log floor). A vocoder is trained on
  one front end and only understands that one: :func:`assert_same_mel_settings` (called by
  :meth:`Vocoder.vocode`) refuses a mel computed any other way, naming every field that differs.
  The mismatch is the classic silent failure: a mel with another ``fmax`` or mel scale has the same
  shape and the vocoder turns it into wrong audio without complaint.
* :func:`griffin_lim`: the baseline without learning. The mel power is mapped back to linear
  frequencies with the filter bank's pseudo-inverse (clipped at zero), then ``torchaudio``'s fast
  Griffin-Lim (momentum 0.99) estimates a phase.
* :func:`mr_stft_loss`: spectral convergence + L1 distance of log magnitudes, averaged over several
  STFT resolutions (Yamamoto et al. 2020, Parallel WaveGAN; the loss of HiFi-GAN-style vocoders'
  generators besides the GAN). One resolution alone lets artefacts hide between its time and
  frequency grids.
* :func:`mu_law_encode` / :func:`mu_law_decode`: 8-bit companding (ITU-T G.711's curve, torchaudio's
  rounding), the output alphabet of an autoregressive WaveNet.
* Measures against a reference: :func:`log_mel_l1` (dB), :func:`mr_stft_loss` as a distance and
  :func:`stoi` (pystoi's short-time objective intelligibility, 0..1). MOS needs listeners and PESQ a
  package this course does not install: neither is measured.
* Data: :func:`loudest_segments` (fixed-length training excerpts with speech in them),
  :func:`digit_sequence_log_mel` (digits -> concatenated mel frames of recorded renders).

Notebook: 18_speech_generation_vocoder
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio
from torch import Tensor, nn

from course_lib.features import LogMel, mel_filterbank

__all__ = [
    "DEFAULT_RESOLUTIONS",
    "MelSettings",
    "MelSettingsMismatch",
    "Vocoder",
    "assert_same_mel_settings",
    "digit_sequence_log_mel",
    "griffin_lim",
    "log_mel_l1",
    "loudest_segments",
    "mr_stft_loss",
    "mu_law_decode",
    "mu_law_encode",
    "real_time_factor",
    "stoi",
    "vocoder_training_loss",
]

DEFAULT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((256, 64, 256), (512, 128, 512), (1024, 256, 1024))
"""(n_fft, hop_length, win_length) of the multi-resolution STFT loss at 16 kHz: 16, 32 and 64 ms
windows with 75 % overlap (Parallel WaveGAN's three resolutions, scaled from 24 kHz)."""


class MelSettingsMismatch(ValueError):
    """A log-mel was computed with other settings than the ones the vocoder was trained on."""


@dataclass(frozen=True)
class MelSettings:
    """What a log-mel frame means: the settings a front end and its vocoder must share.

    Parameters
    ----------
    sr : int
        Sample rate, Hz.
    n_fft, hop_length, win_length : int
        STFT size, hop and Hann window length, samples (centred frames, zero padding).
    n_mels, fmin, fmax : int, float, float
        Mel bands and their edges in Hz.
    htk, norm : bool, str or None
        Mel formula (False: Slaney) and filter normalisation.
    amin : float
        Log floor on the mel *power* before ``10 log10``: the quietest level, ``10 log10(amin)`` dB.

    The log-mel is ``10 log10(max(mel power, amin))`` with a fixed 0 dB reference and no per-clip
    ``top_db`` floor: a frame's value depends on its own samples only, not on the clip's loudest one.
    """

    sr: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    htk: bool = False
    norm: str | None = "slaney"
    amin: float = 1e-10

    def front_end(self, device: torch.device | str | None = None) -> LogMel:
        """The ``course_lib.features.LogMel`` module that computes this log-mel (dB)."""
        return LogMel(self.sr, self.n_fft, self.hop_length, self.n_mels, win_length=self.win_length,
                      fmin=self.fmin, fmax=self.fmax, htk=self.htk, norm=self.norm, amin=self.amin,
                      top_db=None, device=device)

    @classmethod
    def from_front_end(cls, front_end: LogMel) -> "MelSettings":
        """Read the settings of a ``LogMel`` module (refuses one with a relative reference or ``top_db``)."""
        if front_end.top_db is not None or not isinstance(front_end.ref, (int, float)) or front_end.ref != 1.0:
            raise MelSettingsMismatch(
                f"this LogMel uses ref={front_end.ref!r}, top_db={front_end.top_db!r}: its dB values depend on each "
                "clip's loudest frame, so a vocoder cannot read them. Use ref=1.0, top_db=None "
                "(MelSettings.front_end() builds one).")
        fmax = front_end.fmax if front_end.fmax is not None else front_end.sr / 2
        return cls(sr=int(front_end.sr), n_fft=front_end.n_fft, hop_length=front_end.hop_length,
                   win_length=front_end.win_length, n_mels=front_end.n_mels, fmin=float(front_end.fmin),
                   fmax=float(fmax), htk=bool(front_end.htk), norm=front_end.norm, amin=float(front_end.amin))

    @property
    def floor_db(self) -> float:
        """The lowest value a log-mel takes, dB."""
        return 10 * math.log10(self.amin)


def assert_same_mel_settings(expected: MelSettings, got: MelSettings, *, what: str = "this log-mel") -> None:
    """Raise :class:`MelSettingsMismatch` naming every field in which ``got`` differs from ``expected``.

    Parameters
    ----------
    expected : MelSettings
        The settings the vocoder was trained with.
    got : MelSettings
        The settings the input was computed with.
    what : str
        Names the input in the message.
    """
    differ = [(f.name, getattr(expected, f.name), getattr(got, f.name)) for f in dataclasses.fields(MelSettings)
              if getattr(expected, f.name) != getattr(got, f.name)]
    if differ:
        lines = "\n".join(f"  {name}: vocoder trained with {a!r}, {what} has {b!r}" for name, a, b in differ)
        raise MelSettingsMismatch(
            f"{what} was computed with other mel settings than the vocoder was trained on:\n{lines}\n"
            "A vocoder only understands the log-mel it was trained on (same sample rate, n_fft, hop, window, "
            "mel bands, mel scale, fmin/fmax and log floor). Recompute the mel with the vocoder's settings "
            "(vocoder.settings.front_end()), or train the vocoder on the front end you use.")


class Vocoder:
    """A trained mel -> waveform model together with the mel settings it was trained on.

    Parameters
    ----------
    model : nn.Module
        ``(batch, n_mels, n_frames)`` dB -> ``(batch, n_frames * hop_length)`` samples.
    settings : MelSettings
    """

    def __init__(self, model: nn.Module, settings: MelSettings) -> None:
        self.model, self.settings = model, settings

    @torch.no_grad()
    def vocode(self, log_mel: Tensor, settings: MelSettings, n_samples: int | None = None) -> Tensor:
        """Waveforms ``(batch, n_samples)`` from ``log_mel`` ``(batch, n_mels, n_frames)`` dB.

        ``settings`` are the ones ``log_mel`` was computed with; they must equal the vocoder's
        (:func:`assert_same_mel_settings`). ``n_samples`` crops the output (default: all frames).
        """
        assert_same_mel_settings(self.settings, settings, what="the input log-mel")
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        out = self.model(log_mel.to(device).float()).cpu()
        self.model.train(was_training)
        return out if n_samples is None else out[..., :n_samples]


def griffin_lim(log_mel: Tensor, settings: MelSettings, n_samples: int | None = None, n_iter: int = 32,
                momentum: float = 0.99) -> Tensor:
    """Griffin-Lim from a log-mel: no learning, a phase estimated by alternating projections.

    Parameters
    ----------
    log_mel : Tensor
        ``(batch, n_mels, n_frames)``, dB, computed with ``settings``.
    settings : MelSettings
    n_samples : int, optional
        Output length (default: ``(n_frames - 1) * hop_length``).
    n_iter, momentum : int, float
        Iterations and the "fast Griffin-Lim" momentum (Perraudin et al. 2013), torchaudio's defaults.

    Returns
    -------
    Tensor
        ``(batch, n_samples)`` float32 samples (random initial phase: seed torch's generator).
    """
    power = torch.pow(10.0, log_mel.double() / 10.0)
    filterbank = mel_filterbank(settings.sr, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax,
                                settings.htk, settings.norm, device="cpu").double()
    # Minimum-norm least squares (n_mels < n_freqs), clipped at zero: a power spectrum is never negative.
    linear = (torch.linalg.pinv(filterbank) @ power.cpu()).clamp_min(0.0)
    magnitude = linear.sqrt().float()
    window = torch.hann_window(settings.win_length)
    if n_samples is None:
        n_samples = (log_mel.shape[-1] - 1) * settings.hop_length
    return torchaudio.functional.griffinlim(magnitude, window, settings.n_fft, settings.hop_length,
                                            settings.win_length, 1.0, n_iter, momentum, n_samples, True)


def mr_stft_loss(estimate: Tensor, reference: Tensor,
                 resolutions: Sequence[tuple[int, int, int]] = DEFAULT_RESOLUTIONS, amin: float = 1e-5) -> Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1, averaged over resolutions.

    For each ``(n_fft, hop_length, win_length)``: magnitudes ``|STFT|`` (Hann window of
    ``win_length``, ``torch.stft``'s defaults: centred, reflect padding) clamped below at ``amin``;
    spectral convergence ``||R - E||_F / ||R||_F`` (over the whole batch) plus the mean absolute
    difference of their natural logs. The result is the mean of those sums over the resolutions.

    Parameters
    ----------
    estimate, reference : Tensor
        ``(batch, n_samples)`` or ``(n_samples,)`` waveforms, full scale.
    resolutions : sequence of (int, int, int)
    amin : float
        Magnitude floor (amplitude): keeps ``log`` finite on digital silence.

    Returns
    -------
    Tensor
        Scalar, 0 exactly when the two signals are equal.
    """
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} differ in "
                         "shape: crop both to the same number of samples first")
    estimate, reference = estimate.float(), reference.float()
    total = estimate.new_zeros(())
    for n_fft, hop_length, win_length in resolutions:
        window = torch.hann_window(win_length, device=estimate.device)
        spec = lambda x: torch.stft(x, n_fft, hop_length, win_length, window, return_complex=True).abs().clamp_min(amin)
        est, ref = spec(estimate), spec(reference)
        spectral_convergence = torch.linalg.vector_norm(ref - est) / torch.linalg.vector_norm(ref)
        log_magnitude = (ref.log() - est.log()).abs().mean()
        total = total + spectral_convergence + log_magnitude
    return total / len(resolutions)


def vocoder_training_loss(estimate: Tensor, reference: Tensor) -> Tensor:
    """:func:`mr_stft_loss` after cropping ``estimate`` to ``reference``'s length.

    A vocoder makes ``n_frames * hop_length`` samples from the centred frames of ``n_samples``
    (``n_frames = 1 + n_samples // hop_length``): up to one hop more than the excerpt it hears.
    """
    return mr_stft_loss(estimate[..., :reference.shape[-1]], reference)


def mu_law_encode(x: Tensor, quantization_channels: int = 256) -> Tensor:
    """Mu-law companding and quantisation: ``[-1, 1]`` -> int64 classes ``0 ... quantization_channels - 1``.

    ``y = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` with ``mu = quantization_channels - 1``, then
    ``floor((y + 1) / 2 * mu + 0.5)`` (rounding, torchaudio's ``mu_law_encoding``). Inputs are
    clipped to ``[-1, 1]`` first.
    """
    mu = float(quantization_channels - 1)
    x = x.float().clamp(-1.0, 1.0)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.floor((y + 1) / 2 * mu + 0.5).long()


def mu_law_decode(classes: Tensor, quantization_channels: int = 256) -> Tensor:
    """Inverse of :func:`mu_law_encode`: classes -> float32 samples in ``[-1, 1]``."""
    mu = float(quantization_channels - 1)
    y = classes.float() / mu * 2 - 1
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def log_mel_l1(estimate: Tensor, reference: Tensor, settings: MelSettings) -> float:
    """Mean absolute difference of the two signals' log-mels, dB (same ``settings`` for both)."""
    front_end = settings.front_end(device="cpu")
    with torch.no_grad():
        return float((front_end(estimate.float().cpu()) - front_end(reference.float().cpu())).abs().mean())


def stoi(estimate: Tensor | np.ndarray, reference: Tensor | np.ndarray, sr: int) -> float:
    """Short-time objective intelligibility (Taal et al. 2011) from pystoi, roughly 0 (none) to 1.

    pystoi resamples to 10 kHz and drops silent frames itself.
    """
    from pystoi import stoi as _stoi

    est = np.asarray(estimate, dtype=np.float64).ravel()
    ref = np.asarray(reference, dtype=np.float64).ravel()
    n = min(len(est), len(ref))
    return float(_stoi(ref[:n], est[:n], sr, extended=False))


def real_time_factor(seconds_computing: float, n_samples: int, sr: int) -> float:
    """Compute time divided by the duration of the audio produced (below 1: faster than real time)."""
    return seconds_computing / (n_samples / sr)


def loudest_segments(waveforms: Sequence[Tensor], n_samples: int, n_candidates: int = 4,
                     generator: torch.Generator | None = None) -> Tensor:
    """One ``n_samples`` excerpt per clip: the loudest of ``n_candidates`` random start positions.

    Short clips (one word in a second) would otherwise give many excerpts of silence; long clips
    (read sentences) give a random stretch of speech. Clips shorter than ``n_samples`` are zero-padded.

    Parameters
    ----------
    waveforms : sequence of Tensor
        Clips ``(n,)`` or ``(1, n)``.
    n_samples : int
    n_candidates : int
    generator : torch.Generator, optional

    Returns
    -------
    Tensor
        ``(len(waveforms), n_samples)``.
    """
    out = torch.zeros(len(waveforms), n_samples)
    for i, w in enumerate(waveforms):
        w = w.reshape(-1).float()
        if len(w) <= n_samples:
            out[i, :len(w)] = w
            continue
        starts = torch.randint(0, len(w) - n_samples + 1, (n_candidates,), generator=generator)
        energies = torch.stack([w[s:s + n_samples].pow(2).sum() for s in starts])
        start = int(starts[int(energies.argmax())])
        out[i] = w[start:start + n_samples]
    return out


def digit_sequence_log_mel(digits: Sequence[int], renders: dict[int, Tensor], settings: MelSettings,
                           gap_frames: int = 6, trim_db: float = 40.0) -> Tensor:
    """A log-mel for a digit sequence: each digit's recorded render, trimmed, concatenated.

    This is the acoustic-model stage of a text-to-speech system done by lookup: the "text" is a
    digit sequence, each symbol's mel frames come from a recording of it, and silences of the log
    floor separate them. The vocoder then turns the whole mel into a waveform.

    Parameters
    ----------
    digits : sequence of int
        Digits 0-9.
    renders : dict of int to Tensor
        Digit -> one recording ``(n,)`` at ``settings.sr``.
    settings : MelSettings
    gap_frames : int
        Frames of silence (the log floor) between digits.
    trim_db : float
        Frames more than this below a render's loudest frame (mean over bands) at its start and end
        are cut.

    Returns
    -------
    Tensor
        ``(n_mels, n_frames)`` dB.
    """
    front_end = settings.front_end(device="cpu")
    gap = torch.full((settings.n_mels, gap_frames), settings.floor_db)
    parts = [gap]
    for d in digits:
        if int(d) not in renders:
            raise KeyError(f"no recording of digit {d}; renders has {sorted(renders)}")
        with torch.no_grad():
            mel = front_end(renders[int(d)].reshape(1, -1).float())[0]
        level = mel.mean(dim=0)
        loud = torch.nonzero(level >= level.max() - trim_db).flatten()
        parts += [mel[:, int(loud[0]):int(loud[-1]) + 1], gap]
    return torch.cat(parts, dim=1)
