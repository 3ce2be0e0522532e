"""Part I mappings as batched torch ops that run on the device (CPU here, CUDA on Colab).

``course_lib.dsp`` computes these mappings from scratch with NumPy, one clip at a time, so a student
can read every line. This module computes the same mappings on whole batches, on the device that
holds the batch, so a trainer can apply them after moving a batch there. The maths lives in pure
functions (``log_mel``, ``mfcc``, ``spec_augment``, ``mixup``, ``add_noise_snr``, ``random_shift``,
``speed_perturb``); the ``nn.Module`` classes (``LogMel``, ``MFCC``, ``SpecAugment``, ``AddNoise``,
``RandomShift``, ``SpeedPerturb``, ``FeaturePipeline``) only hold settings and buffers and call them,
the way ``torchaudio.functional`` and ``torchaudio.transforms`` are split.

Conventions
-----------
* Waveforms are ``[B, n]`` or ``[B, 1, n]`` float tensors (mono); a single ``[n]`` clip also works.
* Spectrograms are ``[B, n_mels, frames]``; the frame layout follows ``librosa`` (``center=True``,
  ``n_frames = 1 + n // hop_length``) so features match ``librosa.feature.melspectrogram``.
* Randomness comes from an optional ``torch.Generator`` (``generator=``). Random draws are made on
  the generator's device (CPU by default) and moved to the batch's device, so one seeded CPU
  generator gives the same augmentation on CPU and on CUDA.
* STFTs are computed in float32 even inside ``torch.autocast``: half-precision FFTs lose the quiet
  bins that the dB scale magnifies.

Notebook: 04_features_and_preprocessing
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import torch
import torchaudio.functional as taF
from torch import Tensor, nn

__all__ = [
    "mel_filterbank",
    "power_spectrogram",
    "power_to_db",
    "log_mel",
    "mfcc",
    "spec_augment_masks",
    "spec_augment",
    "mixup",
    "add_noise_snr",
    "random_shift",
    "speed_perturb",
    "normalize_utterance",
    "LogMel",
    "MFCC",
    "SpecAugment",
    "AddNoise",
    "RandomShift",
    "SpeedPerturb",
    "FeaturePipeline",
]

DeviceLike = torch.device | str | None
Normalization = Literal["utterance", "global"] | None


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _runtime_device() -> torch.device:
    """The device ``course_lib.runtime`` picked for this session (imported late: runtime is a lower
    layer, but importing it at module import would read the environment too early)."""
    from course_lib.runtime import get_runtime

    return get_runtime().device


def _resolve_device(device: DeviceLike) -> torch.device:
    return _runtime_device() if device is None else torch.device(device)


def _as_batch(waveforms: Tensor, name: str = "waveforms") -> tuple[Tensor, tuple[int, ...]]:
    """Flatten ``[n]``, ``[B, n]`` or ``[B, 1, n]`` to ``[B, n]``; return the leading shape to undo it."""
    if not isinstance(waveforms, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape [B, n] or [B, 1, n], got {type(waveforms).__name__}; "
            "convert NumPy arrays with torch.from_numpy(x).float()."
        )
    if waveforms.ndim == 1:
        return waveforms.unsqueeze(0), ()
    if waveforms.ndim == 2:
        return waveforms, (waveforms.shape[0],)
    if waveforms.ndim == 3:
        if waveforms.shape[1] != 1:
            raise ValueError(
                f"{name} has shape {tuple(waveforms.shape)}: expected mono [B, 1, n]; "
                "mix the channels down first (e.g. waveforms.mean(dim=1, keepdim=True))."
            )
        return waveforms[:, 0], (waveforms.shape[0],)
    raise ValueError(f"{name} must be [n], [B, n] or [B, 1, n]; got shape {tuple(waveforms.shape)}.")


def _check_positive_int(value: int, name: str) -> None:
    if not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


# --------------------------------------------------------------------------------------------
# Spectrograms
# --------------------------------------------------------------------------------------------
def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int = 64,
    f_min: float = 0.0,
    f_max: float | None = None,
    device: DeviceLike = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Slaney-style mel filter bank, the same matrix as ``librosa.filters.mel``.

    Parameters
    ----------
    sample_rate : int
        Sampling rate in Hz.
    n_fft : int
        FFT size; the bank has ``n_fft // 2 + 1`` frequency columns.
    n_mels : int
        Number of triangular filters.
    f_min, f_max : float
        Lowest and highest band edges in Hz (``f_max=None`` means ``sample_rate / 2``).
    device, dtype
        Where and in what precision to build it (``device=None`` uses the runtime's device).

    Returns
    -------
    Tensor, shape (n_mels, n_fft // 2 + 1)
        Filter weights (Slaney area normalisation), so ``fb @ power_spec`` gives mel power.

    Notebook: 04_features_and_preprocessing
    """
    _check_positive_int(sample_rate, "sample_rate")
    _check_positive_int(n_fft, "n_fft")
    _check_positive_int(n_mels, "n_mels")
    f_max = sample_rate / 2 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= sample_rate/2 = {sample_rate / 2} Hz; got f_min={f_min}, f_max={f_max}."
        )
    fb = taF.melscale_fbanks(
        n_freqs=n_fft // 2 + 1,
        f_min=float(f_min),
        f_max=f_max,
        n_mels=n_mels,
        sample_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return fb.T.contiguous().to(device=_resolve_device(device), dtype=dtype)


def power_spectrogram(
    waveforms: Tensor,
    n_fft: int = 1024,
    hop_length: int | None = None,
    window: Tensor | None = None,
    pad_mode: str = "constant",
) -> Tensor:
    """Batched power spectrogram ``|STFT|^2`` in float32, framed like ``librosa.stft``.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Mono audio.
    n_fft : int
        FFT size (and window length) in samples.
    hop_length : int, optional
        Hop in samples (default ``n_fft // 4``).
    window : Tensor, shape (n_fft,), optional
        Analysis window (default: periodic Hann on the waveforms' device).
    pad_mode : str
        How the signal is padded by ``n_fft // 2`` on both sides (``center=True``); ``"constant"``
        (zeros) is librosa's default since 0.10.

    Returns
    -------
    Tensor, shape (B, n_fft // 2 + 1, frames), float32
        Power per bin and frame, ``frames = 1 + n // hop_length``.

    Notebook: 03_stft_and_time_frequency (the STFT), 04_features_and_preprocessing (on the device)
    """
    _check_positive_int(n_fft, "n_fft")
    hop_length = n_fft // 4 if hop_length is None else hop_length
    _check_positive_int(hop_length, "hop_length")
    x, lead = _as_batch(waveforms)
    if window is None:
        window = torch.hann_window(n_fft, periodic=True, device=x.device)
    # Autocast must not push the FFT to half precision: the dB scale magnifies its rounding errors.
    with torch.autocast(device_type=x.device.type, enabled=False):
        spec = torch.stft(
            x.float(),
            n_fft=n_fft,
            hop_length=hop_length,
            window=window.float(),
            center=True,
            pad_mode=pad_mode,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
    return power.reshape(*lead, *power.shape[-2:])


def power_to_db(
    power: Tensor,
    ref: float | Literal["max"] = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> Tensor:
    """Power to decibels, per example, like ``librosa.power_to_db``.

    Parameters
    ----------
    power : Tensor, shape (B, F, T) or (F, T)
        Non-negative power.
    ref : float or "max"
        Reference power for 0 dB; ``"max"`` uses each example's maximum.
    amin : float
        Floor applied before the logarithm (avoids ``log(0)``).
    top_db : float, optional
        Clip each example to ``max - top_db`` dB (``None`` disables).

    Returns
    -------
    Tensor, same shape, in dB.

    Notebook: 04_features_and_preprocessing
    """
    if amin <= 0:
        raise ValueError(f"amin must be > 0, got {amin}.")
    squeeze = power.ndim == 2
    p = power.unsqueeze(0) if squeeze else power
    with torch.autocast(device_type=p.device.type, enabled=False):
        p = p.float()
        db = 10.0 * torch.log10(p.clamp_min(amin))
        if ref == "max":
            db = db - 10.0 * torch.log10(p.amax(dim=(-2, -1), keepdim=True).clamp_min(amin))
        else:
            db = db - 10.0 * math.log10(max(amin, float(ref)))
        if top_db is not None:
            if top_db < 0:
                raise ValueError(f"top_db must be >= 0 dB, got {top_db}.")
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - top_db)
    return db[0] if squeeze else db


def log_mel(
    waveforms: Tensor,
    sample_rate: int,
    n_fft: int = 1024,
    hop_length: int | None = None,
    n_mels: int = 64,
    f_min: float = 0.0,
    f_max: float | None = None,
    top_db: float | None = 80.0,
    *,
    ref: float | Literal["max"] = 1.0,
    filterbank: Tensor | None = None,
    window: Tensor | None = None,
) -> Tensor:
    """Batched log-mel spectrogram in dB; matches ``librosa.power_to_db(librosa.feature.melspectrogram(...))``.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Mono audio at ``sample_rate``.
    sample_rate : int
        Sampling rate in Hz.
    n_fft, hop_length : int
        STFT size and hop in samples (hop defaults to ``n_fft // 4``).
    n_mels : int
        Number of mel bands.
    f_min, f_max : float
        Mel band edges in Hz (``f_max=None`` is Nyquist).
    top_db : float, optional
        Dynamic range kept per example, in dB below its maximum.
    ref : float or "max"
        0 dB reference power (``librosa``'s ``ref``).
    filterbank : Tensor, shape (n_mels, n_fft // 2 + 1), optional
        A precomputed bank (``LogMel`` passes its buffer) to skip rebuilding it.
    window : Tensor, shape (n_fft,), optional
        Analysis window (default periodic Hann).

    Returns
    -------
    Tensor, shape (B, n_mels, frames) (or (n_mels, frames) for a single clip), float32, dB.

    Notebook: 04_features_and_preprocessing
    """
    power = power_spectrogram(waveforms, n_fft=n_fft, hop_length=hop_length, window=window)
    if filterbank is None:
        filterbank = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, device=power.device)
    elif filterbank.shape != (n_mels, n_fft // 2 + 1):
        raise ValueError(
            f"filterbank has shape {tuple(filterbank.shape)}, expected (n_mels, n_fft//2+1) = "
            f"({n_mels}, {n_fft // 2 + 1})."
        )
    with torch.autocast(device_type=power.device.type, enabled=False):
        mel = torch.matmul(filterbank.to(power.device, torch.float32), power)
    return power_to_db(mel, ref=ref, top_db=top_db)


def _lifter_weights(n_mfcc: int, lifter: float, device: torch.device) -> Tensor:
    n = torch.arange(n_mfcc, device=device, dtype=torch.float32)
    return 1.0 + (lifter / 2.0) * torch.sin(math.pi * (n + 1.0) / lifter)


def mfcc(
    waveforms: Tensor,
    sample_rate: int,
    n_mfcc: int = 20,
    n_fft: int = 1024,
    hop_length: int | None = None,
    n_mels: int = 64,
    f_min: float = 0.0,
    f_max: float | None = None,
    top_db: float | None = 80.0,
    lifter: float = 0.0,
    *,
    dct_matrix: Tensor | None = None,
    filterbank: Tensor | None = None,
) -> Tensor:
    """Batched MFCCs: orthonormal DCT-II of the log-mel spectrogram, like ``librosa.feature.mfcc``.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Mono audio.
    sample_rate : int
        Sampling rate in Hz.
    n_mfcc : int
        Number of coefficients kept (``<= n_mels``).
    n_fft, hop_length, n_mels, f_min, f_max, top_db
        As in :func:`log_mel`.
    lifter : float
        Cepstral liftering coefficient (0 disables), librosa's definition.
    dct_matrix : Tensor, shape (n_mels, n_mfcc), optional
        Precomputed DCT basis (``MFCC`` passes its buffer).
    filterbank : Tensor, optional
        Precomputed mel bank, see :func:`log_mel`.

    Returns
    -------
    Tensor, shape (B, n_mfcc, frames) (or (n_mfcc, frames) for a single clip).

    Notebook: 04_features_and_preprocessing
    """
    _check_positive_int(n_mfcc, "n_mfcc")
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc={n_mfcc} cannot exceed n_mels={n_mels}: the DCT has n_mels coefficients.")
    db = log_mel(
        waveforms, sample_rate, n_fft, hop_length, n_mels, f_min, f_max, top_db, filterbank=filterbank
    )
    if dct_matrix is None:
        dct_matrix = taF.create_dct(n_mfcc, n_mels, norm="ortho").to(db.device)
    # (..., n_mels, T) -> (..., n_mfcc, T)
    coeffs = torch.matmul(dct_matrix.to(db.device, torch.float32).T, db)
    if lifter > 0:
        coeffs = coeffs * _lifter_weights(n_mfcc, lifter, db.device)[:, None]
    elif lifter < 0:
        raise ValueError(f"lifter must be >= 0, got {lifter}.")
    return coeffs


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------
def _band_masks(
    batch: int, size: int, mask_param: int, n_masks: int, generator: torch.Generator | None
) -> Tensor:
    """Boolean [batch, size] union of ``n_masks`` random bands of width in [0, mask_param] each."""
    if n_masks == 0 or mask_param == 0 or size == 0:
        return torch.zeros(batch, size, dtype=torch.bool)
    gdev = _generator_device(generator)
    width = torch.randint(0, min(mask_param, size) + 1, (batch, n_masks), generator=generator, device=gdev)
    # Start uniform over the positions where the band still fits inside the axis.
    u = torch.rand(batch, n_masks, generator=generator, device=gdev)
    start = (u * (size - width + 1).float()).floor().long()
    idx = torch.arange(size, device=gdev)
    inside = (idx >= start[..., None]) & (idx < (start + width)[..., None])
    return inside.any(dim=1).cpu()


def spec_augment_masks(
    batch: int,
    n_freq: int,
    n_frames: int,
    freq_mask_param: int = 8,
    time_mask_param: int = 10,
    n_freq_masks: int = 2,
    n_time_masks: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw SpecAugment masks, independently for each example.

    Each of the ``n_freq_masks`` frequency masks covers ``w ~ U{0..freq_mask_param}`` consecutive
    bins starting at a uniform position where it fits (and likewise in time), as in Park et al. 2019.

    Parameters
    ----------
    batch, n_freq, n_frames : int
        Batch size and spectrogram size (bins, frames).
    freq_mask_param, time_mask_param : int
        Maximum width of one mask, in bins and frames.
    n_freq_masks, n_time_masks : int
        How many masks per example on each axis (they may overlap).
    generator : torch.Generator, optional
        Source of randomness (seed it for reproducible masks).

    Returns
    -------
    freq_mask : Tensor, shape (batch, n_freq), bool, on CPU
    time_mask : Tensor, shape (batch, n_frames), bool, on CPU
        True where the spectrogram is masked.

    Notebook: 04_features_and_preprocessing
    """
    for value, name in [
        (freq_mask_param, "freq_mask_param"),
        (time_mask_param, "time_mask_param"),
        (n_freq_masks, "n_freq_masks"),
        (n_time_masks, "n_time_masks"),
    ]:
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    freq = _band_masks(batch, n_freq, freq_mask_param, n_freq_masks, generator)
    time = _band_masks(batch, n_frames, time_mask_param, n_time_masks, generator)
    return freq, time


def spec_augment(
    spec: Tensor,
    freq_mask_param: int = 8,
    time_mask_param: int = 10,
    n_freq_masks: int = 2,
    n_time_masks: int = 2,
    generator: torch.Generator | None = None,
    mask_value: float | Literal["mean"] = 0.0,
) -> Tensor:
    """SpecAugment frequency and time masking with different masks for each example.

    Parameters
    ----------
    spec : Tensor, shape (B, F, T) or (B, 1, F, T)
        A batch of spectrograms (any scale; ``mask_value`` should be "silence" or the mean on it).
    freq_mask_param, time_mask_param, n_freq_masks, n_time_masks, generator
        See :func:`spec_augment_masks`.
    mask_value : float or "mean"
        What masked cells become: a constant (0 is the mean of normalised features) or each
        example's own mean.

    Returns
    -------
    Tensor, same shape as ``spec`` (a new tensor; the input is not modified).

    Notebook: 04_features_and_preprocessing
    """
    if spec.ndim == 4:
        if spec.shape[1] != 1:
            raise ValueError(f"spec has shape {tuple(spec.shape)}: expected (B, F, T) or (B, 1, F, T).")
        return spec_augment(
            spec[:, 0], freq_mask_param, time_mask_param, n_freq_masks, n_time_masks, generator, mask_value
        ).unsqueeze(1)
    if spec.ndim != 3:
        raise ValueError(f"spec must be (B, F, T) or (B, 1, F, T); got shape {tuple(spec.shape)}.")
    b, f, t = spec.shape
    fmask, tmask = spec_augment_masks(
        b, f, t, freq_mask_param, time_mask_param, n_freq_masks, n_time_masks, generator
    )
    mask = (fmask[:, :, None] | tmask[:, None, :]).to(spec.device)
    if mask_value == "mean":
        fill = spec.mean(dim=(-2, -1), keepdim=True).expand_as(spec)
        return torch.where(mask, fill, spec)
    return spec.masked_fill(mask, float(mask_value))


def mixup(
    x: Tensor,
    y_onehot: Tensor,
    alpha: float = 0.2,
    generator: torch.Generator | None = None,
    return_params: bool = False,
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mixup: convex combinations of pairs of examples and of their labels (Zhang et al. 2018).

    Each example ``i`` is mixed with example ``perm[i]`` of a random permutation, with its own
    ``lam_i ~ Beta(alpha, alpha)``: ``x_i' = lam_i x_i + (1 - lam_i) x_perm[i]`` and the same for the
    labels. Apply it to waveforms or features and train with soft-label cross-entropy.

    Parameters
    ----------
    x : Tensor, shape (B, ...)
        Inputs (waveforms or spectrograms).
    y_onehot : Tensor, shape (B, n_classes)
        One-hot (or already soft) labels.
    alpha : float
        Beta distribution parameter (> 0); small values keep most examples close to one source.
    generator : torch.Generator, optional
        Source of randomness for the permutation and the weights.
    return_params : bool
        Also return ``lam`` (shape (B,)) and ``perm`` (shape (B,), long).

    Returns
    -------
    x_mixed : Tensor, same shape as ``x``
    y_mixed : Tensor, shape (B, n_classes), rows sum to 1 if the inputs' rows did
    lam, perm : Tensor, only if ``return_params``

    Notebook: 04_features_and_preprocessing
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0 (Beta(alpha, alpha)); got {alpha}.")
    if y_onehot.ndim != 2 or y_onehot.shape[0] != x.shape[0]:
        raise ValueError(
            f"y_onehot must be (B, n_classes) with B = x.shape[0] = {x.shape[0]}; got {tuple(y_onehot.shape)}. "
            "Build it with torch.nn.functional.one_hot(labels, n_classes).float()."
        )
    b = x.shape[0]
    gdev = _generator_device(generator)
    perm = torch.randperm(b, generator=generator, device=gdev)
    # torch's Beta sampler takes no generator: seed a NumPy one from the torch generator instead,
    # so a seeded generator still fixes every draw.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=gdev).item())
    lam_np = np.random.default_rng(seed).beta(alpha, alpha, size=b)
    lam = torch.as_tensor(lam_np, dtype=torch.float32, device=x.device)
    perm = perm.to(x.device)
    lam_x = lam.to(x.dtype).reshape(b, *([1] * (x.ndim - 1)))
    x_mixed = lam_x * x + (1 - lam_x) * x[perm]
    y = y_onehot.float()
    y_mixed = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
    if return_params:
        return x_mixed, y_mixed, lam, perm
    return x_mixed, y_mixed


def add_noise_snr(
    waveforms: Tensor,
    noise: Tensor,
    snr_db: float | Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add noise scaled so that each example's signal-to-noise ratio is exactly ``snr_db``.

    ``SNR = 10 log10(sum(s^2) / sum(g^2 n^2))``: the gain ``g`` is solved per example over the
    waveform's length.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Clean signals.
    noise : Tensor, shape (B, m), (B, 1, m), (m,) or (1, m)
        Noise: one clip per example or one shared clip. If ``m > n`` a random (``generator``)
        excerpt of length ``n`` is taken per example; if ``m < n`` the noise is tiled.
    snr_db : float or Tensor, shape (B,)
        Target SNR in dB, one for all or one per example.
    generator : torch.Generator, optional
        Picks the noise excerpt when the noise is longer than the signal.

    Returns
    -------
    Tensor, same shape as ``waveforms``: ``s + g * n``.

    Notebook: 04_features_and_preprocessing
    """
    x, lead = _as_batch(waveforms)
    nz, _ = _as_batch(noise, "noise")
    b, n = x.shape
    if nz.shape[0] not in (1, b):
        raise ValueError(
            f"noise has {nz.shape[0]} clips for {b} waveforms: pass one noise clip per example or a single one."
        )
    nz = nz.to(device=x.device, dtype=x.dtype).expand(b, -1)
    m = nz.shape[-1]
    if m == 0:
        raise ValueError("noise is empty: pass at least one sample of noise.")
    if m < n:
        nz = nz.repeat(1, math.ceil(n / m))[:, :n]
    elif m > n:
        offsets = torch.randint(0, m - n + 1, (b,), generator=generator, device=_generator_device(generator))
        idx = offsets.to(x.device)[:, None] + torch.arange(n, device=x.device)
        nz = torch.gather(nz, 1, idx)
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=x.device).reshape(-1)
    if snr.numel() not in (1, b):
        raise ValueError(f"snr_db must be a number or have one value per example ({b}); got {snr.numel()}.")
    p_signal = x.float().square().sum(-1)
    p_noise = nz.float().square().sum(-1)
    if bool((p_noise == 0).any()):
        raise ValueError("a noise excerpt is all zeros: its SNR cannot be set. Use a non-silent noise clip.")
    gain = torch.sqrt(p_signal / (p_noise * 10.0 ** (snr / 10.0)))
    out = x + gain.to(x.dtype)[:, None] * nz
    return out.reshape(*lead, 1, n) if waveforms.ndim == 3 else out.reshape(*lead, n)


def random_shift(
    waveforms: Tensor,
    max_shift: int,
    generator: torch.Generator | None = None,
    mode: Literal["roll", "zero"] = "zero",
) -> Tensor:
    """Shift each example in time by its own random number of samples in ``[-max_shift, max_shift]``.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Audio.
    max_shift : int
        Largest shift in samples (``0.1 * sample_rate`` is 100 ms).
    generator : torch.Generator, optional
        Source of randomness.
    mode : {"zero", "roll"}
        ``"zero"`` fills the vacated samples with silence; ``"roll"`` wraps them around.

    Returns
    -------
    Tensor, same shape: ``y[t] = x[t - shift]``.

    Notebook: 04_features_and_preprocessing
    """
    if mode not in ("roll", "zero"):
        raise ValueError(f"mode must be 'roll' or 'zero', got {mode!r}.")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0 samples, got {max_shift}.")
    x, lead = _as_batch(waveforms)
    b, n = x.shape
    shift = torch.randint(
        -max_shift, max_shift + 1, (b,), generator=generator, device=_generator_device(generator)
    ).to(x.device)
    src = torch.arange(n, device=x.device)[None, :] - shift[:, None]
    out = torch.gather(x, 1, src.remainder(n))
    if mode == "zero":
        out = out.masked_fill((src < 0) | (src >= n), 0.0)
    return out.reshape(waveforms.shape)


def speed_perturb(
    waveforms: Tensor,
    factors: float | Sequence[float] = (0.9, 1.0, 1.1),
    generator: torch.Generator | None = None,
    keep_length: bool = True,
) -> Tensor | list[Tensor]:
    """Speed perturbation by resampling (tape-speed change: tempo and pitch move together).

    A clip played ``f`` times faster is the clip resampled from ``f * 100`` to ``100`` (rational
    factors, one polyphase resampling per distinct factor): cheap on CPU, unlike a phase-vocoder
    pitch shift (torchaudio's ``pitch_shift`` takes ~11 s per second of audio on CPU).

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Audio.
    factors : float or sequence of float
        Speed factor(s), e.g. ``1.1`` is 10 % faster and higher. With a sequence, each example
        draws its own factor from it. Factors are rounded to 0.01.
    generator : torch.Generator, optional
        Source of randomness for drawing the factors.
    keep_length : bool
        Crop or zero-pad each result back to ``n`` samples so the batch stays one tensor. With
        ``False`` a list of ``[1, n / f]`` (or ``[n / f]``) tensors is returned.

    Returns
    -------
    Tensor, same shape as ``waveforms`` (or a list, see ``keep_length``).

    Notebook: 04_features_and_preprocessing
    """
    x, lead = _as_batch(waveforms)
    b, n = x.shape
    choices = [float(factors)] if isinstance(factors, (int, float)) else [float(f) for f in factors]
    if not choices or any(not 0.25 <= f <= 4.0 for f in choices):
        raise ValueError(f"speed factors must lie in [0.25, 4]; got {choices}.")
    pick = torch.randint(0, len(choices), (b,), generator=generator, device=_generator_device(generator))
    per_example = [int(round(choices[int(i)] * 100)) for i in pick]
    results: list[Tensor | None] = [None] * b
    for orig in sorted(set(per_example)):
        rows = [i for i, f in enumerate(per_example) if f == orig]
        sub = x[rows]
        if orig != 100:
            with torch.autocast(device_type=x.device.type, enabled=False):
                sub = taF.resample(sub.float(), orig_freq=orig, new_freq=100).to(x.dtype)
        for j, i in enumerate(rows):
            results[i] = sub[j]
    if not keep_length:
        return [r.unsqueeze(0) if waveforms.ndim == 3 else r for r in results]  # type: ignore[union-attr]
    out = x.new_zeros(b, n)
    for i, r in enumerate(results):
        k = min(n, r.shape[-1])  # type: ignore[union-attr]
        out[i, :k] = r[:k]  # type: ignore[index]
    return out.reshape(waveforms.shape)


def normalize_utterance(spec: Tensor, eps: float = 1e-5) -> Tensor:
    """Standardise each example to zero mean and unit variance over all its bins and frames.

    One mean and one standard deviation per example keep the spectral shape (which band is louder)
    and remove the recording level.

    Parameters
    ----------
    spec : Tensor, shape (B, F, T) or (B, 1, F, T)
        Features (e.g. log-mel in dB).
    eps : float
        Added to the standard deviation so silent examples stay finite.

    Returns
    -------
    Tensor, same shape.

    Notebook: 04_features_and_preprocessing
    """
    dims = tuple(range(1, spec.ndim))
    mean = spec.mean(dim=dims, keepdim=True)
    std = spec.std(dim=dims, keepdim=True, unbiased=False)
    return (spec - mean) / (std + eps)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------
class LogMel(nn.Module):
    """Log-mel spectrogram module: holds the window and mel bank as buffers, calls :func:`log_mel`.

    Parameters
    ----------
    sample_rate, n_fft, hop_length, n_mels, f_min, f_max, top_db
        See :func:`log_mel`.
    device : torch.device or str, optional
        Where the buffers live (default: the runtime's device). ``.to(device)`` moves them later.

    Shapes: ``(B, n)`` or ``(B, 1, n)`` -> ``(B, n_mels, frames)``.

    Notebook: 04_features_and_preprocessing
    """

    filterbank: Tensor
    window: Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int | None = None,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        top_db: float | None = 80.0,
        device: DeviceLike = None,
    ) -> None:
        super().__init__()
        dev = _resolve_device(device)
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = n_fft // 4 if hop_length is None else hop_length
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.top_db = top_db
        # Non-persistent: both are recomputed from the settings, so checkpoints need not carry them.
        self.register_buffer(
            "filterbank", mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, device=dev), persistent=False
        )
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True, device=dev), persistent=False)

    def forward(self, waveforms: Tensor) -> Tensor:
        return log_mel(
            waveforms,
            self.sample_rate,
            self.n_fft,
            self.hop_length,
            self.n_mels,
            self.f_min,
            self.f_max,
            self.top_db,
            filterbank=self.filterbank,
            window=self.window,
        )

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"n_mels={self.n_mels}, f_min={self.f_min}, f_max={self.f_max}, top_db={self.top_db}"
        )


class MFCC(nn.Module):
    """MFCC module: log-mel (:class:`LogMel`) followed by an orthonormal DCT-II held as a buffer.

    Parameters
    ----------
    sample_rate, n_mfcc, n_fft, hop_length, n_mels, f_min, f_max, top_db, lifter
        See :func:`mfcc`.
    device : torch.device or str, optional
        Where the buffers live (default: the runtime's device).

    Shapes: ``(B, n)`` or ``(B, 1, n)`` -> ``(B, n_mfcc, frames)``.

    Notebook: 04_features_and_preprocessing
    """

    dct: Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mfcc: int = 20,
        n_fft: int = 1024,
        hop_length: int | None = None,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        top_db: float | None = 80.0,
        lifter: float = 0.0,
        device: DeviceLike = None,
    ) -> None:
        super().__init__()
        if n_mfcc > n_mels:
            raise ValueError(f"n_mfcc={n_mfcc} cannot exceed n_mels={n_mels}.")
        self.log_mel = LogMel(sample_rate, n_fft, hop_length, n_mels, f_min, f_max, top_db, device=device)
        self.n_mfcc = n_mfcc
        self.lifter = lifter
        self.register_buffer(
            "dct", taF.create_dct(n_mfcc, n_mels, norm="ortho").to(_resolve_device(device)), persistent=False
        )

    def forward(self, waveforms: Tensor) -> Tensor:
        coeffs = torch.matmul(self.dct.T, self.log_mel(waveforms))
        if self.lifter > 0:
            coeffs = coeffs * _lifter_weights(self.n_mfcc, self.lifter, coeffs.device)[:, None]
        return coeffs


class SpecAugment(nn.Module):
    """SpecAugment as a module: masks each example differently in ``train()`` mode, identity in ``eval()``.

    Parameters
    ----------
    freq_mask_param, time_mask_param, n_freq_masks, n_time_masks, mask_value
        See :func:`spec_augment`.

    Shapes: ``(B, F, T)`` or ``(B, 1, F, T)`` -> same.

    Notebook: 04_features_and_preprocessing
    """

    def __init__(
        self,
        freq_mask_param: int = 8,
        time_mask_param: int = 10,
        n_freq_masks: int = 2,
        n_time_masks: int = 2,
        mask_value: float | Literal["mean"] = 0.0,
    ) -> None:
        super().__init__()
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.n_freq_masks = n_freq_masks
        self.n_time_masks = n_time_masks
        self.mask_value = mask_value

    def forward(self, spec: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not self.training:
            return spec
        return spec_augment(
            spec,
            self.freq_mask_param,
            self.time_mask_param,
            self.n_freq_masks,
            self.n_time_masks,
            generator,
            self.mask_value,
        )

    def extra_repr(self) -> str:
        return (
            f"freq_mask_param={self.freq_mask_param}, time_mask_param={self.time_mask_param}, "
            f"n_freq_masks={self.n_freq_masks}, n_time_masks={self.n_time_masks}"
        )


class AddNoise(nn.Module):
    """Add noise from a bank at a random SNR per example (train mode only).

    Parameters
    ----------
    noise_bank : Tensor, shape (K, m) or (m,)
        Noise clips at the model's sample rate; each example draws one.
    snr_db : tuple of float
        ``(low, high)``: each example's SNR is uniform in this range, in dB.
    p : float
        Probability that an example receives noise at all.

    Notebook: 04_features_and_preprocessing
    """

    noise_bank: Tensor

    def __init__(self, noise_bank: Tensor, snr_db: tuple[float, float] = (5.0, 30.0), p: float = 1.0) -> None:
        super().__init__()
        bank, _ = _as_batch(noise_bank, "noise_bank")
        if snr_db[0] > snr_db[1]:
            raise ValueError(f"snr_db must be (low, high) with low <= high, got {snr_db}.")
        self.register_buffer("noise_bank", bank.float(), persistent=False)
        self.snr_db = snr_db
        self.p = p

    def forward(self, waveforms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not self.training:
            return waveforms
        x, _ = _as_batch(waveforms)
        b = x.shape[0]
        gdev = _generator_device(generator)
        pick = torch.randint(0, self.noise_bank.shape[0], (b,), generator=generator, device=gdev)
        lo, hi = self.snr_db
        snr = lo + (hi - lo) * torch.rand(b, generator=generator, device=gdev)
        keep = torch.rand(b, generator=generator, device=gdev) < self.p
        noisy = add_noise_snr(x, self.noise_bank[pick.to(self.noise_bank.device)], snr, generator=generator)
        out = torch.where(keep.to(x.device)[:, None], noisy, x)
        return out.reshape(waveforms.shape)


class RandomShift(nn.Module):
    """:func:`random_shift` as a train-only module; ``max_shift`` in samples.

    Notebook: 04_features_and_preprocessing
    """

    def __init__(self, max_shift: int, mode: Literal["roll", "zero"] = "zero") -> None:
        super().__init__()
        self.max_shift = max_shift
        self.mode = mode

    def forward(self, waveforms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not self.training:
            return waveforms
        return random_shift(waveforms, self.max_shift, generator, self.mode)


class SpeedPerturb(nn.Module):
    """:func:`speed_perturb` as a train-only module (keeps the length).

    Notebook: 04_features_and_preprocessing
    """

    def __init__(self, factors: Sequence[float] = (0.9, 1.0, 1.1)) -> None:
        super().__init__()
        self.factors = tuple(float(f) for f in factors)

    def forward(self, waveforms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not self.training:
            return waveforms
        return speed_perturb(waveforms, self.factors, generator, keep_length=True)  # type: ignore[return-value]


class FeaturePipeline(nn.Module):
    """Waveform batch -> (augmentation) -> log-mel -> normalisation -> (SpecAugment), on the device.

    The trainer applies it to each batch after moving the batch to the device; the augmentations
    run only in ``train()`` mode, so ``model.eval()`` style switching turns them off. Mixup needs the
    labels too, so it is not part of this pipeline (call :func:`mixup` on the output).

    Parameters
    ----------
    sample_rate, n_fft, hop_length, n_mels, f_min, f_max, top_db
        Log-mel settings, see :func:`log_mel`.
    normalize : {"utterance", "global", None}
        ``"utterance"``: :func:`normalize_utterance` per example. ``"global"``: subtract a per-band
        mean and divide by a per-band std measured on training data with :meth:`fit_normalization`
        (stored as buffers, so they travel in the state dict). ``None``: raw dB.
    waveform_augment : nn.Module, optional
        Applied to the waveforms before the log-mel in train mode (e.g. ``nn.Sequential(
        RandomShift(1600), AddNoise(bank))``).
    spec_augment : SpecAugment, optional
        Applied after normalisation in train mode (so a mask value of 0 means "average").
    add_channel : bool
        Return ``(B, 1, n_mels, frames)`` for 2-D CNNs instead of ``(B, n_mels, frames)``.
    device : torch.device or str, optional
        Where the buffers live (default: the runtime's device).

    Notebook: 04_features_and_preprocessing
    """

    norm_mean: Tensor
    norm_std: Tensor
    norm_fitted: Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int | None = None,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        top_db: float | None = 80.0,
        normalize: Normalization = "utterance",
        waveform_augment: nn.Module | None = None,
        spec_augment: SpecAugment | None = None,
        add_channel: bool = True,
        device: DeviceLike = None,
    ) -> None:
        super().__init__()
        if normalize not in ("utterance", "global", None):
            raise ValueError(f"normalize must be 'utterance', 'global' or None, got {normalize!r}.")
        dev = _resolve_device(device)
        self.log_mel = LogMel(sample_rate, n_fft, hop_length, n_mels, f_min, f_max, top_db, device=dev)
        self.normalize = normalize
        self.waveform_augment = waveform_augment
        self.spec_augment = spec_augment
        self.add_channel = add_channel
        self.register_buffer("norm_mean", torch.zeros(n_mels, device=dev))
        self.register_buffer("norm_std", torch.ones(n_mels, device=dev))
        self.register_buffer("norm_fitted", torch.tensor(False, device=dev))
        if waveform_augment is not None:
            waveform_augment.to(dev)

    @torch.no_grad()
    def fit_normalization(self, waveform_batches: Iterable[Tensor]) -> FeaturePipeline:
        """Measure the per-band mean and std of the (un-augmented) log-mel over training batches.

        Parameters
        ----------
        waveform_batches : iterable of Tensor, each (B, n) or (B, 1, n)
            Training waveforms (e.g. ``(x for x, *_ in train_loader)``); moved to the buffers' device.

        Returns
        -------
        self, with ``norm_mean``/``norm_std`` (shape (n_mels,)) set.
        """
        dev = self.norm_mean.device
        total = torch.zeros(self.log_mel.n_mels, dtype=torch.float64, device=dev)
        total_sq = torch.zeros_like(total)
        count = 0
        for batch in waveform_batches:
            db = self.log_mel(batch.to(dev)).double()
            if db.ndim == 2:
                db = db.unsqueeze(0)
            total += db.sum(dim=(0, 2))
            total_sq += db.square().sum(dim=(0, 2))
            count += db.shape[0] * db.shape[2]
        if count == 0:
            raise ValueError("fit_normalization got no batches: pass the training loader's waveforms.")
        mean = total / count
        var = (total_sq / count - mean.square()).clamp_min(0.0)
        self.norm_mean.copy_(mean.float())
        self.norm_std.copy_(var.sqrt().float().clamp_min(1e-5))
        self.norm_fitted.fill_(True)
        return self

    def forward(self, waveforms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = waveforms
        if self.training and self.waveform_augment is not None:
            x = _call_augment(self.waveform_augment, x, generator)
        feats = self.log_mel(x)
        if feats.ndim == 2:
            feats = feats.unsqueeze(0)
        if self.normalize == "utterance":
            feats = normalize_utterance(feats)
        elif self.normalize == "global":
            if not bool(self.norm_fitted):
                raise RuntimeError(
                    "FeaturePipeline(normalize='global') has no statistics yet: call "
                    "pipeline.fit_normalization(training_waveform_batches) first, or use normalize='utterance'."
                )
            feats = (feats - self.norm_mean[:, None]) / self.norm_std[:, None]
        if self.training and self.spec_augment is not None:
            feats = self.spec_augment(feats, generator=generator)
        return feats.unsqueeze(1) if self.add_channel else feats


def _call_augment(module: nn.Module, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Run a waveform augmentation, passing the generator to the course's modules (and through
    ``nn.Sequential``) but not to arbitrary modules whose forward takes one argument."""
    if isinstance(module, nn.Sequential):
        for child in module:
            x = _call_augment(child, x, generator)
        return x
    if isinstance(module, (AddNoise, RandomShift, SpeedPerturb, SpecAugment)):
        return module(x, generator=generator)
    return module(x)
