"""Part I mappings as batched torch ops that run on the device (CPU here, CUDA on Colab).

``course_lib.dsp`` computes these mappings from scratch with NumPy, one clip at a time, so a student
can read every line. This module computes the same mappings on whole batches, on the device that
holds the batch, so a trainer can apply them after moving a batch there. The maths lives in pure
functions (``melspectrogram``, ``log_mel``, ``mfcc``, ``spec_augment``, ``mixup``, ``add_noise``,
``random_shift``, ``speed_perturb``); the ``nn.Module`` classes (``LogMel``, ``MFCC``,
``SpecAugment``, ``AddNoise``, ``RandomShift``, ``SpeedPerturb``, ``FeaturePipeline``) only hold
settings and buffers and call them, the way ``torchaudio.functional`` and ``torchaudio.transforms``
are split.

Conventions
-----------
* Names, defaults and conventions are those of :mod:`course_lib.dsp` (and librosa): a function that
  exists in both modules takes the same arguments in the same order with the same defaults and
  returns the same numbers (``tests/test_vocabulary.py`` checks both). See "Vocabulary" in
  ``docs/DEVELOPING.md``.
* Waveforms are ``[batch, time]`` or ``[batch, 1, time]`` float tensors (mono); a single ``[time]``
  clip also works. Spectrograms are ``[batch, n_mels, n_frames]`` with centred frames
  (``n_frames = 1 + time // hop_length``).
* The constant matrices (mel filterbank, DCT, lifter) are :mod:`course_lib.dsp`'s, built once in
  float64 and stored in the working precision; the per-batch work (STFT, products, logs) is torch.
* Randomness comes from an optional ``torch.Generator`` (``generator=``). Random draws are made on
  the generator's device (CPU by default) and moved to the batch's device, so one seeded CPU
  generator gives the same augmentation on CPU and on CUDA.
* STFTs run in float32 (float64 for float64 input) even inside ``torch.autocast``: half-precision
  FFTs lose the quiet bins that the dB scale magnifies.

Notebook: 04_features_and_preprocessing
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np
import torch
import torchaudio.functional as taF
from torch import Tensor, nn

from course_lib import dsp
from course_lib.dsp._common import check_positive_int

__all__ = [
    "band_mean_std",
    "mel_filterbank",
    "power_spectrogram",
    "melspectrogram",
    "power_to_db",
    "log_mel",
    "mfcc",
    "spec_augment_masks",
    "spec_augment",
    "mixup",
    "Mixup",
    "add_noise",
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
WindowSpec = str | Tensor
# A 0 dB reference: a power, or a function of one example (np.max and torch.amax included).
RefSpec = float | Callable[..., float]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _device(device: DeviceLike) -> torch.device:
    """``device``, or the runtime's device when None (runtime imported late: it reads the
    environment, which importing this module must not do)."""
    from course_lib.runtime import torch_device

    return torch_device(device)


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


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def _work_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64 (for exact comparisons with dsp); everything else computes in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _analysis_window(window: WindowSpec, win_length: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A periodic window of ``win_length`` samples: a tensor as given, or a name as :func:`dsp.get_window`."""
    if isinstance(window, Tensor):
        if window.shape != (win_length,):
            raise ValueError(f"window has shape {tuple(window.shape)}; expected ({win_length},) = (win_length,).")
        return window.to(device=device, dtype=dtype)
    if window in ("hann", "hanning"):
        return torch.hann_window(win_length, periodic=True, device=device, dtype=dtype)
    return torch.as_tensor(dsp.get_window(window, win_length, fftbins=True), device=device, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Spectrograms
# --------------------------------------------------------------------------------------------
def mel_filterbank(
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | None = "slaney",
    *,
    device: DeviceLike = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """:func:`course_lib.dsp.mel_filterbank` (= ``librosa.filters.mel``) as a tensor.

    The matrix is built once per module in float64 by the from-scratch version and then lives on the
    device. (``torchaudio.functional.melscale_fbanks`` places the FFT bins on
    ``linspace(0, sr // 2, n_freqs)``, which is wrong for an odd ``n_fft`` and computes in
    float32; the reference has neither problem.)

    Parameters
    ----------
    sr : float
        Sampling rate in Hz.
    n_fft : int
        FFT size; the bank has ``n_fft // 2 + 1`` frequency columns.
    n_mels : int
        Number of triangular filters.
    fmin, fmax : float
        Lowest and highest band edges in Hz, ``0 <= fmin < fmax <= sr / 2`` (``fmax=None``: ``sr / 2``).
    htk, norm
        Mel formula and area normalisation, see :func:`course_lib.dsp.mel_filterbank`.
    device, dtype
        Where and in what precision to store it (``device=None`` uses the runtime's device).

    Returns
    -------
    Tensor, shape (n_mels, n_fft // 2 + 1)
        Filter weights, so ``fb @ power_spec`` gives mel power.

    Notebook: 04_features_and_preprocessing
    """
    fb = dsp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk=htk, norm=norm)
    return torch.as_tensor(fb, dtype=dtype, device=_device(device))


def power_spectrogram(
    waveforms: Tensor,
    n_fft: int = 2048,
    hop_length: int | None = None,
    *,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
) -> Tensor:
    """Batched power spectrogram ``|STFT|^2``, ``abs(dsp.stft(...)) ** 2`` on tensors.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Mono audio.
    n_fft : int
        FFT size in samples.
    hop_length : int, optional
        Hop in samples (default ``win_length // 4``).
    win_length : int, optional
        Window length ``<= n_fft`` (default ``n_fft``), zero-padded to ``n_fft`` in the middle.
    window : str or Tensor
        A name (``"hann"``, ``"hamming"``, ...; periodic) or a tensor of ``win_length`` samples.
    center : bool
        Pad ``n_fft // 2`` samples on both sides so frame ``t`` is centred on ``t * hop_length``.
    pad_mode : str
        How the centre padding is filled: ``"constant"`` (zeros, librosa's default) or ``"reflect"``.

    Returns
    -------
    Tensor, shape (B, n_fft // 2 + 1, frames)
        Power per bin and frame, float32 (float64 for float64 input); ``frames = 1 + n // hop_length``
        when centred.

    Notebook: 03_stft_and_time_frequency (the STFT), 04_features_and_preprocessing (on the device)
    """
    n_fft = check_positive_int(n_fft, "n_fft")
    win_length = n_fft if win_length is None else check_positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ValueError(f"win_length={win_length} must not exceed n_fft={n_fft}.")
    hop_length = max(win_length // 4, 1) if hop_length is None else check_positive_int(hop_length, "hop_length")
    x, lead = _as_batch(waveforms)
    dtype = _work_dtype(x)
    w = _analysis_window(window, win_length, x.device, dtype)
    if x.shape[-1] + (2 * (n_fft // 2) if center else 0) < n_fft:
        raise ValueError(
            f"n_fft={n_fft} is longer than the {'padded ' if center else ''}signal ({x.shape[-1]} samples): "
            "use a smaller n_fft or a longer signal."
        )
    # Autocast must not push the FFT to half precision: the dB scale magnifies its rounding errors.
    with torch.autocast(device_type=x.device.type, enabled=False):
        spec = torch.stft(
            x.to(dtype),
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=w,
            center=center,
            pad_mode=pad_mode,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
    return power.reshape(*lead, *power.shape[-2:])


def melspectrogram(
    waveforms: Tensor,
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
    filterbank: Tensor | None = None,
) -> Tensor:
    """Batched mel spectrogram ``F |STFT|^power``: :func:`course_lib.dsp.melspectrogram` on tensors.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Mono audio at ``sr``.
    sr, n_fft, hop_length, n_mels, win_length, window, center, pad_mode, power, fmin, fmax, htk, norm
        As in :func:`course_lib.dsp.melspectrogram`.
    filterbank : Tensor, shape (n_mels, n_fft // 2 + 1), optional
        A precomputed bank (``LogMel`` passes its buffer) to skip rebuilding it.

    Returns
    -------
    Tensor, shape (B, n_mels, frames) (or (n_mels, frames) for a single clip).

    Notebook: 04_features_and_preprocessing
    """
    spec = power_spectrogram(waveforms, n_fft, hop_length, win_length=win_length, window=window,
                             center=center, pad_mode=pad_mode)
    if filterbank is None:
        filterbank = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm, device=spec.device, dtype=spec.dtype)
    elif filterbank.shape != (n_mels, n_fft // 2 + 1):
        raise ValueError(
            f"filterbank has shape {tuple(filterbank.shape)}, expected (n_mels, n_fft//2+1) = "
            f"({n_mels}, {n_fft // 2 + 1})."
        )
    with torch.autocast(device_type=spec.device.type, enabled=False):
        if power != 2.0:
            spec = spec.sqrt() ** power
        return torch.matmul(filterbank.to(spec.device, spec.dtype), spec)


_MAX_REDUCTIONS = (np.max, np.amax, torch.max, torch.amax, max)


def _example_dims(ndim: int) -> tuple[int, ...]:
    """Dimensions of one example: the last two, or all of a 1-D/2-D tensor (as dsp.power_to_db)."""
    return tuple(range(max(ndim - 2, 0), ndim))


def _reference(S: Tensor, ref: RefSpec) -> Tensor | float:
    """The 0 dB reference per example: ``ref``, the example's maximum, or ``ref(example)``."""
    if not callable(ref):
        return abs(float(ref))
    dims = _example_dims(S.ndim)
    if any(ref is r for r in _MAX_REDUCTIONS):
        return S.amax(dim=dims, keepdim=True)
    if S.ndim <= 2:
        return torch.as_tensor(ref(S), dtype=S.dtype, device=S.device)
    examples = S.reshape(-1, *S.shape[-2:])
    values = torch.stack([torch.as_tensor(ref(e), dtype=S.dtype, device=S.device) for e in examples])
    return values.reshape(*S.shape[:-2], 1, 1)


def power_to_db(
    S: Tensor,
    ref: RefSpec = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> Tensor:
    """Power to decibels per example: :func:`course_lib.dsp.power_to_db` (``librosa.power_to_db``) on tensors.

    One example is the last two dimensions (``(F, T)``); a callable ``ref`` and the ``top_db``
    floor act on each example separately, as in :mod:`course_lib.dsp`.

    Parameters
    ----------
    S : Tensor, shape (B, F, T) or (F, T)
        Non-negative power.
    ref : float or callable
        Reference power for 0 dB, or a function of one example (``np.max`` and ``torch.amax`` take
        each example's maximum without leaving the device).
    amin : float
        Floor applied before the logarithm (avoids ``log(0)``).
    top_db : float, optional
        Clip each example to its own ``max - top_db`` dB (``None`` disables).

    Returns
    -------
    Tensor, same shape, in dB (float32, or float64 for float64 input).

    Notebook: 04_features_and_preprocessing
    """
    if amin <= 0:
        raise ValueError(f"amin must be strictly positive; got {amin}.")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative; got {top_db}.")
    if S.is_complex():
        raise TypeError("power_to_db got a complex tensor: pass S.abs() ** 2 (power).")
    with torch.autocast(device_type=S.device.type, enabled=False):
        p = S.to(_work_dtype(S))
        db = 10.0 * torch.log10(p.clamp_min(amin))
        reference = _reference(p, ref)
        if isinstance(reference, Tensor):
            db = db - 10.0 * torch.log10(reference.clamp_min(amin))
        else:
            db = db - 10.0 * math.log10(max(amin, reference))
        if top_db is not None:
            db = torch.maximum(db, db.amax(dim=_example_dims(db.ndim), keepdim=True) - top_db)
    return db


def log_mel(
    waveforms: Tensor,
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
    filterbank: Tensor | None = None,
) -> Tensor:
    """Batched log-mel spectrogram in dB: :func:`course_lib.dsp.log_mel` on tensors.

    Matches ``librosa.power_to_db(librosa.feature.melspectrogram(y, sr=sr, ...))`` clip by clip.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Mono audio at ``sr``.
    sr, n_fft, hop_length, n_mels, win_length, window, center, pad_mode, fmin, fmax, htk, norm
        As in :func:`melspectrogram` (power 2).
    ref, amin, top_db
        As in :func:`power_to_db` (per example).
    filterbank : Tensor, shape (n_mels, n_fft // 2 + 1), optional
        A precomputed bank (``LogMel`` passes its buffer) to skip rebuilding it.

    Returns
    -------
    Tensor, shape (B, n_mels, frames) (or (n_mels, frames) for a single clip), dB.

    Notebook: 04_features_and_preprocessing
    """
    mel = melspectrogram(waveforms, sr, n_fft, hop_length, n_mels, win_length=win_length, window=window,
                         center=center, pad_mode=pad_mode, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
                         filterbank=filterbank)
    return power_to_db(mel, ref=ref, amin=amin, top_db=top_db)


def mfcc(
    waveforms: Tensor,
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
    dct: Tensor | None = None,
    filterbank: Tensor | None = None,
) -> Tensor:
    """Batched MFCCs: :func:`course_lib.dsp.mfcc` (= ``librosa.feature.mfcc``) on tensors.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Mono audio.
    sr, n_mfcc, n_fft, hop_length, n_mels, lifter, ...
        As in :func:`course_lib.dsp.mfcc`.
    dct : Tensor, shape (n_mfcc, n_mels), optional
        Precomputed orthonormal DCT-II rows (``MFCC`` passes its buffer), as ``dsp.dct_matrix``.
    filterbank : Tensor, optional
        Precomputed mel bank, see :func:`log_mel`.

    Returns
    -------
    Tensor, shape (B, n_mfcc, frames) (or (n_mfcc, frames) for a single clip).

    Notebook: 04_features_and_preprocessing
    """
    n_mfcc = check_positive_int(n_mfcc, "n_mfcc")
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc={n_mfcc} cannot exceed n_mels={n_mels}: the DCT has n_mels coefficients.")
    if lifter < 0:
        raise ValueError(f"lifter must be >= 0 (0 disables it); got {lifter}.")
    db = log_mel(waveforms, sr, n_fft, hop_length, n_mels, win_length=win_length, window=window, center=center,
                 pad_mode=pad_mode, fmin=fmin, fmax=fmax, htk=htk, norm=norm, ref=ref, amin=amin, top_db=top_db,
                 filterbank=filterbank)
    if dct is None:
        dct = torch.as_tensor(dsp.dct_matrix(n_mfcc, n_mels), device=db.device)
    with torch.autocast(device_type=db.device.type, enabled=False):
        coeffs = torch.matmul(dct.to(db.device, db.dtype), db)
        if lifter > 0:
            coeffs = coeffs * torch.as_tensor(dsp.lifter_weights(n_mfcc, lifter), device=db.device, dtype=db.dtype)[:, None]
    return coeffs


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------
def _band_masks(batch: int, size: int, mask_param: int, n_masks: int) -> Tensor:
    """Boolean [batch, size]: ``n_masks`` bands per row drawn by ``torchaudio.functional.mask_along_axis_iid``
    (CPU, from the global generator, which the caller has seeded)."""
    canvas = torch.zeros(batch, 1, 1, size)
    for _ in range(n_masks):
        canvas = taF.mask_along_axis_iid(canvas, mask_param, 1.0, axis=3)
    return canvas[:, 0, 0] > 0


def spec_augment_masks(
    batch: int,
    n_freqs: int,
    n_frames: int,
    freq_mask_param: int = 8,
    time_mask_param: int = 10,
    n_freq_masks: int = 2,
    n_time_masks: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw SpecAugment masks, independently for each example, with torchaudio's masking function.

    Each of the ``n_freq_masks`` frequency masks covers ``w`` consecutive bins, ``w`` uniform in
    ``{0, ..., freq_mask_param - 1}``, starting at a uniform position where it fits (likewise in
    time): ``torchaudio.functional.mask_along_axis_iid``, the function behind
    ``torchaudio.transforms.FrequencyMasking(iid_masks=True)`` (Park et al. 2019). torchaudio draws
    from torch's global generator; here the draws come from ``generator`` (a seed taken from it
    fixes a private copy of the CPU generator), so a seeded generator gives the same masks on every
    device and the global random state is left alone.

    Parameters
    ----------
    batch, n_freqs, n_frames : int
        Batch size and spectrogram size (bins, frames).
    freq_mask_param, time_mask_param : int
        Upper bound (exclusive) of one mask's width, in bins and frames.
    n_freq_masks, n_time_masks : int
        How many masks per example on each axis (they may overlap).
    generator : torch.Generator, optional
        Source of randomness (seed it for reproducible masks).

    Returns
    -------
    freq_mask : Tensor, shape (batch, n_freqs), bool, on CPU
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
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_generator_device(generator)))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        freq = _band_masks(batch, n_freqs, freq_mask_param, n_freq_masks)
        time = _band_masks(batch, n_frames, time_mask_param, n_time_masks)
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



class Mixup:
    """Mixup as ``fit``'s label-aware ``batch_hook``: ``(inputs, labels) -> (mixed, soft targets)``.

    Integer labels ``(B,)`` become one-hot rows of ``n_classes`` (soft rows ``(B, n_classes)``
    pass through), then :func:`mixup` mixes inputs and targets. Train with a loss that accepts
    class probabilities: ``nn.CrossEntropyLoss`` does.

    Parameters
    ----------
    n_classes : int
    alpha : float
        Beta(alpha, alpha) mixing weights, see :func:`mixup`.
    generator : torch.Generator, optional

    Examples
    --------
    >>> fit(model, train_loader, val_loader, batch_hook=Mixup(n_classes=10), epochs=20)

    Notebook: 06_cnn_audio_classification
    """

    def __init__(self, n_classes: int, alpha: float = 0.2,
                 generator: torch.Generator | None = None) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0 (Beta(alpha, alpha)); got {alpha}.")
        self.n_classes, self.alpha, self._generator = int(n_classes), float(alpha), generator

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if y.ndim == 1:
            y = torch.nn.functional.one_hot(y.long(), self.n_classes).float()
        x_mixed, y_mixed = mixup(x, y, self.alpha, generator=self._generator)  # type: ignore[misc]
        return x_mixed, y_mixed

    def __repr__(self) -> str:
        return f"Mixup(n_classes={self.n_classes}, alpha={self.alpha})"

def add_noise(
    waveforms: Tensor,
    noise: Tensor,
    snr_db: float | Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add noise scaled so that each example's signal-to-noise ratio is exactly ``snr_db``.

    :func:`course_lib.dsp.add_noise` on a batch: the noise is tiled or cropped to the waveform's
    length, then ``torchaudio.functional.add_noise`` solves the gain ``g`` per example so that
    ``10 log10(sum(s^2) / sum(g^2 n^2)) = snr_db``. Unlike the one-clip reference, a silent
    example is returned unchanged (gain 0) instead of stopping the whole batch with an error.

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
    snr = torch.as_tensor(snr_db, dtype=x.dtype, device=x.device).reshape(-1)
    if snr.numel() not in (1, b):
        raise ValueError(f"snr_db must be a number or have one value per example ({b}); got {snr.numel()}.")
    if bool((nz.square().sum(-1) == 0).any()):
        raise ValueError("a noise excerpt is all zeros: its SNR cannot be set. Use a non-silent noise clip.")
    out = taF.add_noise(x, nz, snr.expand(b))
    # A silent example has energy 0: torchaudio's gain is then 10 ** (-inf) = 0, or NaN for 0 * inf.
    out = torch.where((x.square().sum(-1) == 0)[:, None], x, out)
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
        Largest shift in samples (``int(0.1 * sr)`` is 100 ms).
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

    A clip played ``f`` times faster is the clip resampled from ``1000 f`` to ``1000`` with
    ``torchaudio.functional.resample`` (rational factors, one polyphase resampling per distinct
    factor): cheap on CPU, unlike a phase-vocoder pitch shift (torchaudio's ``pitch_shift`` takes
    ~11 s per second of audio on CPU). ``torchaudio.functional.speed`` is the same resampling, but
    it truncates ``factor * orig_freq`` with ``int()``, so ``1.15`` would become ``1.149``: the
    rational pair is formed here with ``round``. The offline data builders use this function too.

    Parameters
    ----------
    waveforms : Tensor, shape (B, n) or (B, 1, n) or (n,)
        Audio.
    factors : float or sequence of float
        Speed factor(s), e.g. ``1.1`` is 10 % faster and higher. With a sequence, each example
        draws its own factor from it. Factors are rounded to 0.001.
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
    if len(choices) == 1:  # nothing to draw: leave the generator (or torch's global one) alone
        per_example = [int(round(choices[0] * 1000))] * b
    else:
        pick = torch.randint(0, len(choices), (b,), generator=generator, device=_generator_device(generator))
        per_example = [int(round(choices[int(i)] * 1000)) for i in pick]
    results: list[Tensor | None] = [None] * b
    for orig in sorted(set(per_example)):
        rows = [i for i, f in enumerate(per_example) if f == orig]
        sub = x[rows]
        if orig != 1000:
            g = math.gcd(orig, 1000)
            with torch.autocast(device_type=x.device.type, enabled=False):
                sub = taF.resample(sub.to(_work_dtype(sub)), orig_freq=orig // g, new_freq=1000 // g).to(x.dtype)
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
    sr, n_fft, hop_length, n_mels, win_length, window, center, pad_mode, fmin, fmax, htk, norm, ref, amin, top_db
        See :func:`log_mel` (same names, same defaults).
    device : torch.device or str, optional
        Where the buffers live (default: the runtime's device). ``.to(device)`` moves them later.

    Shapes: ``(B, n)`` or ``(B, 1, n)`` -> ``(B, n_mels, frames)``.

    Notebook: 04_features_and_preprocessing
    """

    filterbank: Tensor
    window: Tensor

    def __init__(
        self,
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
        device: DeviceLike = None,
    ) -> None:
        super().__init__()
        dev = _device(device)
        self.sr = sr
        self.n_fft = check_positive_int(n_fft, "n_fft")
        self.win_length = n_fft if win_length is None else check_positive_int(win_length, "win_length")
        self.hop_length = max(self.win_length // 4, 1) if hop_length is None else hop_length
        self.n_mels = n_mels
        self.center, self.pad_mode = center, pad_mode
        self.fmin, self.fmax, self.htk, self.norm = fmin, fmax, htk, norm
        self.ref, self.amin, self.top_db = ref, amin, top_db
        # Non-persistent: both are recomputed from the settings, so checkpoints need not carry them.
        self.register_buffer(
            "filterbank", mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm, device=dev), persistent=False
        )
        self.register_buffer(
            "window", _analysis_window(window, self.win_length, dev, torch.float32), persistent=False
        )

    def forward(self, waveforms: Tensor) -> Tensor:
        return log_mel(
            waveforms, self.sr, self.n_fft, self.hop_length, self.n_mels,
            win_length=self.win_length, window=self.window, center=self.center, pad_mode=self.pad_mode,
            ref=self.ref, amin=self.amin, top_db=self.top_db, filterbank=self.filterbank,
        )

    def extra_repr(self) -> str:
        return (
            f"sr={self.sr}, n_fft={self.n_fft}, hop_length={self.hop_length}, n_mels={self.n_mels}, "
            f"win_length={self.win_length}, fmin={self.fmin}, fmax={self.fmax}, top_db={self.top_db}"
        )


class MFCC(nn.Module):
    """MFCC module: log-mel (:class:`LogMel`) followed by the DCT-II (and lifter) held as buffers.

    Parameters
    ----------
    sr, n_mfcc, n_fft, hop_length, n_mels, lifter, fmin, fmax, top_db, ...
        See :func:`mfcc` (same names, same defaults); the other keywords go to :class:`LogMel`.
    device : torch.device or str, optional
        Where the buffers live (default: the runtime's device).

    Shapes: ``(B, n)`` or ``(B, 1, n)`` -> ``(B, n_mfcc, frames)``.

    Notebook: 04_features_and_preprocessing
    """

    dct: Tensor
    lifter_weights: Tensor

    def __init__(
        self,
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
        device: DeviceLike = None,
    ) -> None:
        super().__init__()
        if n_mfcc > n_mels:
            raise ValueError(f"n_mfcc={n_mfcc} cannot exceed n_mels={n_mels}: the DCT has n_mels coefficients.")
        if lifter < 0:
            raise ValueError(f"lifter must be >= 0 (0 disables it); got {lifter}.")
        dev = _device(device)
        self.log_mel = LogMel(sr, n_fft, hop_length, n_mels, win_length=win_length, window=window, center=center,
                              pad_mode=pad_mode, fmin=fmin, fmax=fmax, htk=htk, norm=norm, ref=ref, amin=amin,
                              top_db=top_db, device=dev)
        self.n_mfcc, self.lifter = n_mfcc, lifter
        weights = dsp.lifter_weights(n_mfcc, lifter) if lifter > 0 else np.ones(n_mfcc)
        self.register_buffer("dct", torch.as_tensor(dsp.dct_matrix(n_mfcc, n_mels), dtype=torch.float32, device=dev),
                             persistent=False)
        self.register_buffer("lifter_weights", torch.as_tensor(weights, dtype=torch.float32, device=dev)[:, None],
                             persistent=False)

    def forward(self, waveforms: Tensor) -> Tensor:
        db = self.log_mel(waveforms)
        with torch.autocast(device_type=db.device.type, enabled=False):
            return torch.matmul(self.dct.to(db.dtype), db) * self.lifter_weights.to(db.dtype)


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
        noisy = add_noise(x, self.noise_bank[pick.to(self.noise_bank.device)], snr, generator=generator)
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


def band_mean_std(spectrogram_batches: Iterable[Tensor], *,
                  empty_message: str = "no spectrograms to measure: pass the training batches"
                  ) -> tuple[Tensor, Tensor]:
    """Each band's mean and standard deviation over every clip and frame of ``spectrogram_batches``.

    One pass, accumulated in float64 (E[x^2] - E[x]^2, clamped at 0), so a training set streams
    through in batches; feature standardisation (``FeaturePipeline``, the keyword spotter of 12)
    fits with it.

    Parameters
    ----------
    spectrogram_batches : iterable of Tensor, each (batch, n_bands, n_frames) or (n_bands, n_frames)
        E.g. log-mel in dB.
    empty_message : str
        The ``ValueError``'s message when the iterable yields nothing.

    Returns
    -------
    mean, std : Tensor, float64, shape (n_bands,), on the batches' device

    Notebook: 06_cnn_audio_classification
    """
    total = total_sq = None
    count = 0
    for spec in spectrogram_batches:
        s = spec.detach().double()
        if s.ndim == 2:
            s = s.unsqueeze(0)
        if total is None:
            total = torch.zeros(s.shape[1], dtype=torch.float64, device=s.device)
            total_sq = torch.zeros_like(total)
        total += s.sum(dim=(0, 2))
        total_sq += s.square().sum(dim=(0, 2))
        count += s.shape[0] * s.shape[2]
    if count == 0:
        raise ValueError(empty_message)
    mean = total / count
    return mean, (total_sq / count - mean.square()).clamp_min(0.0).sqrt()


class FeaturePipeline(nn.Module):
    """Waveform batch -> (augmentation) -> log-mel -> normalisation -> (SpecAugment), on the device.

    The trainer applies it to each batch after moving the batch to the device; the augmentations
    run only in ``train()`` mode, so ``model.eval()`` style switching turns them off. Mixup needs the
    labels too, so it is not part of this pipeline (call :func:`mixup` on the output).

    Parameters
    ----------
    sr, n_fft, hop_length, n_mels, win_length, fmin, fmax, top_db
        Log-mel settings, see :func:`log_mel` (same names, same defaults).
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
        sr: float,
        n_fft: int = 2048,
        hop_length: int | None = None,
        n_mels: int = 128,
        *,
        win_length: int | None = None,
        fmin: float = 0.0,
        fmax: float | None = None,
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
        dev = _device(device)
        self.log_mel = LogMel(sr, n_fft, hop_length, n_mels, win_length=win_length, fmin=fmin, fmax=fmax,
                              top_db=top_db, device=dev)
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
        mean, std = band_mean_std(
            (self.log_mel(batch.to(dev)) for batch in waveform_batches),
            empty_message="fit_normalization got no batches: pass the training loader's waveforms.")
        self.norm_mean.copy_(mean.float())
        self.norm_std.copy_(std.float().clamp_min(1e-5))
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
