"""Plausible wrong answers to every exercise: each check rejects it AND its hint names the mistake.

Each function below is what a student could write: the right idea with one classic slip (an
off-by-one, a missing 2*pi, 10 vs 20 log10, 1/N on the forward DFT, a missing window, the wrong
axis, power vs magnitude, Hz vs mel, a layer in the wrong order, ...). The decorator records the
exercise and a phrase the printed hint must contain, so a check that stops recognising a mistake,
or lets it pass, fails here. ``test_every_exercise_has_a_list_of_mistakes`` keeps the list
complete as exercises are added.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import checks as check

MISTAKES: list = []


def mistake(exercise_id: str, phrase: str):
    """Register the decorated function as a wrong answer to ``exercise_id`` whose hint contains ``phrase``."""

    def register(fn):
        MISTAKES.append(pytest.param(exercise_id, fn, phrase, id=f"{exercise_id}-{fn.__name__}"))
        return fn

    return register


def _stub(*args, **kwargs):
    raise NotImplementedError("Exercise: write it")


# ================================================================================= 00 welcome
@mistake("00.1", "cosine")
def cos_instead_of_sin(f, d, sr):
    return np.cos(2 * np.pi * f * np.arange(round(d * sr)) / sr)


@mistake("00.1", "missing its 2*pi")
def no_two_pi(f, d, sr):
    return np.sin(f * np.arange(round(d * sr)) / sr)


@mistake("00.1", "np.linspace(0, duration_s, N) includes the end point")
def linspace_time_axis(f, d, sr):
    return np.sin(2 * np.pi * f * np.linspace(0, d, round(d * sr)))


@mistake("00.1", "int() truncates")
def int_instead_of_round(f, d, sr):
    return np.sin(2 * np.pi * f * np.arange(int(d * sr)) / sr)


@mistake("00.1", "np.arange with a float step")
def float_arange(f, d, sr):
    return np.sin(2 * np.pi * f * np.arange(0, d, 1 / sr))


@mistake("00.1", "divide by the sample rate")
def index_as_seconds(f, d, sr):
    return np.sin(2 * np.pi * f * np.arange(round(d * sr)))


@mistake("00.1", "samples, expected")
def one_sample_too_many(f, d, sr):
    return np.zeros(int(round(d * sr)) + 1)


@mistake("00.1", "not implemented yet")
def sine_stub(f, d, sr):
    _stub()


@mistake("00.2", "20·log10")
def ten_log10(x):
    return 10 * np.log10(np.max(np.abs(x)))


@mistake("00.2", "natural logarithm")
def natural_log(x):
    return 20 * np.log(np.max(np.abs(x)))


@mistake("00.2", "*absolute* value")
def max_without_abs(x):
    return 20 * np.log10(np.max(x))


@mistake("00.2", "RMS level")
def rms_instead_of_peak(x):
    return 20 * np.log10(np.sqrt(np.mean(x**2)))


@mistake("00.2", "sign is flipped")
def minus_twenty_log10(x):
    return -20 * np.log10(np.max(np.abs(x)))


@mistake("00.2", "not in dB")
def ratio_not_db(x):
    return np.max(np.abs(x))


# ================================================================================= 01 sound as signal
@mistake("01.1", "fold frequencies above sr/2")
def modulo_only(f, sr):
    return np.asarray(f) % sr


@mistake("01.1", "*mirror* at sr/2, not a wrap-around")
def modulo_nyquist(f, sr):
    return np.asarray(f) % (sr / 2)


@mistake("01.1", "subtracting sr once")
def fold_once(f, sr):
    f = np.asarray(f, dtype=float)
    return np.where(f <= sr / 2, f, np.abs(sr - f))


@mistake("01.1", "never negative")
def signed_difference(f, sr):
    f = np.asarray(f, dtype=float)
    return f - sr * np.round(f / sr)


@mistake("01.1", "array")
def scalar_only_code(f, sr):
    f = f % sr
    if f > sr / 2:  # fails for arrays: the truth value of an array is ambiguous
        f = sr - f
    return f


@mistake("01.2", "mid-*tread*")
def mid_tread(x, bits):
    delta = 2.0 / 2**bits
    return np.clip(np.round(x / delta) * delta, -1, 1)


@mistake("01.2", "clip")
def no_clipping(x, bits):
    delta = 2.0 / 2**bits
    return (np.floor(x / delta) + 0.5) * delta


@mistake("01.2", "delta = 2 / 2**bits")
def step_one_over_levels(x, bits):
    delta = 1.0 / 2**bits  # forgot that [-1, 1] is 2 wide
    return np.clip((np.floor(x / delta) + 0.5) * delta, -(1 - delta / 2), 1 - delta / 2)


@mistake("01.2", "2 / (2**bits - 1)")
def step_with_both_ends(x, bits):
    delta = 2.0 / (2**bits - 1)
    return np.clip((np.floor(x / delta) + 0.5) * delta, -1, 1)


@mistake("01.2", "truncates toward zero")
def astype_int(x, bits):
    delta = 2.0 / 2**bits
    top = 1 - delta / 2
    return np.clip(((x / delta).astype(int) + 0.5) * delta, -top, top)


@mistake("01.2", "clipped to +-1, which is not a level")
def clip_to_one(x, bits):
    delta = 2.0 / 2**bits
    return np.clip((np.floor(x / delta) + 0.5) * delta, -1, 1)


@mistake("01.2", "not implemented yet")
def quantize_stub(x, bits):
    raise NotImplementedError("Exercise 01.2: write the quantiser")


@mistake("01.3", "twice the target")
def amplitude_by_power_ratio(x, noise, snr_db):
    gain = np.sqrt(np.mean(x**2) / np.mean(noise**2)) * 10 ** (-snr_db / 10)
    return x + gain * noise


@mistake("01.3", "half the target")
def power_by_amplitude_ratio(x, noise, snr_db):
    gain = np.sqrt(np.mean(x**2) / (np.mean(noise**2) * 10 ** (snr_db / 20)))
    return x + gain * noise


@mistake("01.3", "sign flipped")
def snr_sign_flipped(x, noise, snr_db):
    gain = np.sqrt(np.mean(x**2) / (np.mean(noise**2) * 10 ** (-snr_db / 10)))
    return x + gain * noise


@mistake("01.3", "np.var / np.std subtract the mean")
def variance_as_power(x, noise, snr_db):
    gain = np.std(x) / np.std(noise) * 10 ** (-snr_db / 20)
    return x + gain * noise


@mistake("01.3", "scaled the signal instead of the noise")
def scales_the_signal(x, noise, snr_db):
    gain = np.sqrt(np.mean(noise**2) * 10 ** (snr_db / 10) / np.mean(x**2))
    return gain * x + noise


@mistake("01.3", "return the mix x + g * noise")
def returns_only_noise(x, noise, snr_db):
    return np.sqrt(np.mean(x**2) / (np.mean(noise**2) * 10 ** (snr_db / 10))) * noise


@mistake("01.3", "square root of the power ratio")
def gain_without_sqrt(x, noise, snr_db):
    return x + np.mean(x**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)) * noise


# ================================================================================= 02 Fourier
def _dft(n):
    k = np.arange(n)
    return np.exp(-2j * np.pi * np.outer(k, k) / n)


@mistake("02.1", "minus sign")
def inverse_kernel(n):
    k = np.arange(n)
    return np.exp(2j * np.pi * np.outer(k, k) / n)


@mistake("02.1", "normalised by 1/sqrt(n)")
def orthonormal_dft(n):
    return _dft(n) / np.sqrt(n)


@mistake("02.1", "normalised by 1/n")
def one_over_n_dft(n):
    return _dft(n) / n


@mistake("02.1", "complex")
def cosines_only(n):
    k = np.arange(n)
    return np.cos(2 * np.pi * np.outer(k, k) / n)


@mistake("02.1", "not divided by n")
def no_division_by_n(n):
    k = np.arange(n)
    return np.exp(-2j * np.pi * np.outer(k, k))


@mistake("02.1", "indices start at 1")
def one_based_indices(n):
    k = np.arange(1, n + 1)
    return np.exp(-2j * np.pi * np.outer(k, k) / n)


@mistake("02.1", "missing its 2")
def pi_instead_of_two_pi(n):
    k = np.arange(n)
    return np.exp(-1j * np.pi * np.outer(k, k) / n)


@mistake("02.2", "irfft without n")
def irfft_without_n(x, h):
    n = len(x) + len(h) - 1
    return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n))


@mistake("02.2", "Zero-pad")
def circular_convolution(x, h):
    n = max(len(x), len(h))
    return np.fft.ifft(np.fft.fft(x, n) * np.fft.fft(h, n)).real


@mistake("02.2", "real part")
def complex_output(x, h):
    n = len(x) + len(h) - 1
    return np.fft.ifft(np.fft.fft(x, n) * np.fft.fft(h, n))


@mistake("02.2", "np.abs of the inverse FFT")
def abs_instead_of_real(x, h):
    n = len(x) + len(h) - 1
    return np.abs(np.fft.ifft(np.fft.fft(x, n) * np.fft.fft(h, n)))


@mistake("02.2", "trim the result")
def power_of_two_untrimmed(x, h):
    n = 1 << int(np.ceil(np.log2(len(x) + len(h) - 1)))
    return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n), n)


@mistake("02.3", "correlation")
def unflipped_filter(h, n_input):
    T = np.zeros((n_input + len(h) - 1, n_input))
    for j in range(n_input):
        T[j:j + len(h), j] = h[::-1]
    return T


@mistake("02.3", "transposed")
def transposed_toeplitz(h, n_input):
    T = np.zeros((n_input + len(h) - 1, n_input))
    for j in range(n_input):
        T[j:j + len(h), j] = h
    return T.T


@mistake("02.3", "n_input + len(h) - 1 outputs")
def square_truncated(h, n_input):
    T = np.zeros((n_input + len(h) - 1, n_input))
    for j in range(n_input):
        T[j:j + len(h), j] = h
    return T[:n_input]


@mistake("02.3", "circulant")
def circulant(h, n_input):
    column = np.zeros(n_input)
    column[:min(len(h), n_input)] = h[:n_input]
    return np.stack([np.roll(column, j) for j in range(n_input)], axis=1)


@mistake("02.3", "one row too low")
def shifted_by_one(h, n_input):
    T = np.zeros((n_input + len(h) - 1, n_input))
    for j in range(n_input):
        T[j + 1:j + 1 + len(h), j] = h[: max(0, T.shape[0] - j - 1)]
    return T


# ================================================================================= 03 STFT
def _frames(x, fl, hop):
    n_frames = 1 + (len(x) - fl) // hop
    return x[hop * np.arange(n_frames)[None, :] + np.arange(fl)[:, None]]


def _hann(n):
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _stft(x, n_fft, hop):
    return np.fft.rfft(_frames(np.pad(x, n_fft // 2), n_fft, hop) * _hann(n_fft)[:, None], axis=0)


@mistake("03.1", "transpose")
def frames_as_rows(x, fl, hop):
    return _frames(x, fl, hop).T


@mistake("03.1", "off by one")
def forgot_plus_one(x, fl, hop):
    n_frames = (len(x) - fl) // hop
    return np.stack([x[t * hop:t * hop + fl] for t in range(n_frames)], axis=1)


@mistake("03.1", "fit entirely")
def zero_padded_tail(x, fl, hop):
    return _frames(np.pad(x, (0, fl)), fl, hop)


@mistake("03.1", "start hop_length")
def stepped_by_frame_length(x, fl, hop):
    n_frames = 1 + (len(x) - fl) // fl
    return np.stack([x[t * fl:t * fl + fl] for t in range(n_frames)], axis=1)


@mistake("03.1", "the end is excluded")
def slice_one_short(x, fl, hop):
    n_frames = 1 + (len(x) - fl) // hop
    return np.stack([x[t * hop:t * hop + fl - 1] for t in range(n_frames)], axis=1)


@mistake("03.2", "no window")
def no_window(x, n_fft, hop):
    return np.fft.rfft(_frames(np.pad(x, n_fft // 2), n_fft, hop), axis=0)


@mistake("03.2", "periodic")
def symmetric_window(x, n_fft, hop):
    return np.fft.rfft(_frames(np.pad(x, n_fft // 2), n_fft, hop) * np.hanning(n_fft)[:, None], axis=0)


@mistake("03.2", "Hamming")
def hamming_window(x, n_fft, hop):
    w = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.fft.rfft(_frames(np.pad(x, n_fft // 2), n_fft, hop) * w[:, None], axis=0)


@mistake("03.2", "no centring")
def not_centred(x, n_fft, hop):
    return np.fft.rfft(_frames(x, n_fft, hop) * _hann(n_fft)[:, None], axis=0)


@mistake("03.2", "rfft")
def full_fft(x, n_fft, hop):
    return np.fft.fft(_frames(np.pad(x, n_fft // 2), n_fft, hop) * _hann(n_fft)[:, None], axis=0)


@mistake("03.2", "pad with zeros")
def reflect_padding(x, n_fft, hop):
    return np.fft.rfft(_frames(np.pad(x, n_fft // 2, mode="reflect"), n_fft, hop) * _hann(n_fft)[:, None], axis=0)


@mistake("03.2", "normalised by 1/n_fft")
def forward_normalised(x, n_fft, hop):
    return np.fft.rfft(_frames(np.pad(x, n_fft // 2), n_fft, hop) * _hann(n_fft)[:, None], axis=0, norm="forward")


@mistake("03.2", "normalised by 1/sqrt(n_fft)")
def ortho_normalised(x, n_fft, hop):
    return np.fft.rfft(_frames(np.pad(x, n_fft // 2), n_fft, hop) * _hann(n_fft)[:, None], axis=0, norm="ortho")


@mistake("03.2", "window's sum")
def divided_by_window_sum(x, n_fft, hop):
    return _stft(x, n_fft, hop) / _hann(n_fft).sum()


@mistake("03.2", "complex conjugate")
def conjugated(x, n_fft, hop):
    return np.conj(_stft(x, n_fft, hop))


@mistake("03.2", "*each* side")
def padded_on_one_side(x, n_fft, hop):
    return np.fft.rfft(_frames(np.pad(x, (n_fft // 2, 0)), n_fft, hop) * _hann(n_fft)[:, None], axis=0)


@mistake("03.2", "magnitudes")
def magnitude_stft(x, n_fft, hop):
    return np.abs(_stft(x, n_fft, hop))


@mistake("03.2", "power |X|^2")
def power_stft(x, n_fft, hop):
    return np.abs(_stft(x, n_fft, hop)) ** 2


@mistake("03.2", "axis 0")
def time_by_frequency(x, n_fft, hop):
    return _stft(x, n_fft, hop).T


@mistake("03.2", "not implemented")
def stft_stub(x, n_fft, hop):
    raise NotImplementedError("Exercise 03.2: compute the STFT")


# ================================================================================= 04 features
def _slaney_hz_to_mel(f):
    f = np.asarray(f, dtype=float)
    linear = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def _slaney_mel_to_hz(m):
    m = np.asarray(m, dtype=float)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3)


def _mel_bank(sr, n_fft, n_mels, fmin, fmax, *, to_mel=_slaney_hz_to_mel, to_hz=_slaney_mel_to_hz,
              bins=None, norm="slaney", n_edges=None, clip=True):
    fmax = sr / 2 if fmax is None else fmax
    mels = np.linspace(to_mel(fmin), to_mel(fmax), (n_mels + 2) if n_edges is None else n_edges)
    edges = to_hz(mels)
    bins = np.fft.rfftfreq(n_fft, 1 / sr) if bins is None else bins
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre))
    tri = np.maximum(0, tri) if clip else tri
    if norm == "slaney":
        return tri * (2 / (upper - lower))
    if norm == "mel":
        return tri * (2 / (mels[2:, None] - mels[:-2, None]))
    if norm == "sum":
        return tri / tri.sum(axis=1, keepdims=True)
    return tri


@mistake("04.1", "transposed")
def transposed_bank(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax).T


@mistake("04.1", "area normalisation")
def peak_one(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, norm=None)


@mistake("04.1", "HTK")
def htk_mels(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, to_mel=lambda f: 2595 * np.log10(1 + np.asarray(f) / 700),
                     to_hz=lambda m: 700 * (10 ** (np.asarray(m) / 2595) - 1))


@mistake("04.1", "equally spaced in Hz")
def hz_spaced_edges(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, to_mel=lambda f: f, to_hz=lambda m: m)


@mistake("04.1", "widths in mel")
def normalised_in_mel(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, norm="mel")


@mistake("04.1", "sum to 1")
def unit_sum_filters(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, norm="sum")


@mistake("04.1", "n_mels + 2 edge frequencies")
def n_mels_edges(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, n_edges=n_mels)


@mistake("04.1", "k * sr / n_fft")
def bins_up_to_sr(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, bins=np.linspace(0, sr, 1 + n_fft // 2))


@mistake("04.1", "fmin and fmax are ignored")
def ignores_fmin_fmax(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, 0.0, None)


@mistake("04.1", "np.maximum(0, ...)")
def negative_skirts(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, clip=False)


@mistake("04.1", "1 + n_fft // 2")
def full_fft_columns(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    return _mel_bank(sr, n_fft, n_mels, fmin, fmax, bins=np.fft.fftfreq(n_fft, 1 / sr))


def _subtraction(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128, over_subtraction=2.0, floor=0.02,
                 *, noise_of=None, clean_of=None, gain_of=None, length=True, keep_phase=True):
    """Power spectral subtraction written out, with one step replaceable to make a mistake."""
    from course_lib import dsp

    Y = dsp.stft(noisy, n_fft=n_fft, hop_length=hop_length)
    power = np.abs(Y) ** 2
    n_noise = max(1, int(noise_duration * sr) // hop_length)
    noise = noise_of(power, n_noise) if noise_of else power[:, :n_noise].mean(axis=1, keepdims=True)
    clean = clean_of(power, noise, over_subtraction, floor) if clean_of else \
        np.maximum(power - over_subtraction * noise, floor * power)
    gain = gain_of(clean, power) if gain_of else np.sqrt(clean / np.maximum(power, 1e-300))
    spectrum = gain * Y if keep_phase else np.sqrt(clean)
    return dsp.istft(spectrum, hop_length=hop_length, length=len(noisy) if length else None)


def _subtraction_mistake(name, phrase, **change):
    def wrong(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128, over_subtraction=2.0, floor=0.02):
        return _subtraction(noisy, sr, noise_duration, n_fft, hop_length, over_subtraction, floor, **change)

    wrong.__name__ = name
    mistake("04.2", phrase)(wrong)


_subtraction_mistake("scalar_noise_estimate", "*per frequency bin*",
                     noise_of=lambda power, n: power[:, :n].mean())
_subtraction_mistake("noise_over_whole_signal", "whole signal",
                     noise_of=lambda power, n: power.mean(axis=1, keepdims=True))
_subtraction_mistake("noise_frames_counted_in_samples", "counts samples, not frames",
                     noise_of=lambda power, n: power[:, :n * 10**6].mean(axis=1, keepdims=True))
_subtraction_mistake("no_spectral_floor", "spectral floor",
                     clean_of=lambda p, n, a, b: np.maximum(p - a * n, 0.0))
_subtraction_mistake("over_subtraction_ignored", "over_subtraction is ignored",
                     clean_of=lambda p, n, a, b: np.maximum(p - n, b * p))
_subtraction_mistake("absolute_floor", "floor is an absolute power",
                     clean_of=lambda p, n, a, b: np.maximum(p - a * n, b))
_subtraction_mistake("floor_relative_to_noise", "relative to the noise estimate",
                     clean_of=lambda p, n, a, b: np.maximum(p - a * n, b * n))
_subtraction_mistake("power_gain_on_amplitudes", "square root",
                     gain_of=lambda clean, power: clean / np.maximum(power, 1e-300))
_subtraction_mistake("phase_dropped", "phase was dropped", keep_phase=False)
_subtraction_mistake("output_length_not_given", "length=len(noisy)", length=False)


@mistake("04.2", "subtracted magnitudes")
def subtracts_magnitudes(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128, over_subtraction=2.0,
                         floor=0.02):
    from course_lib import dsp

    Y = dsp.stft(noisy, n_fft=n_fft, hop_length=hop_length)
    mag = np.abs(Y)
    n_noise = max(1, int(noise_duration * sr) // hop_length)
    clean = np.maximum(mag - over_subtraction * mag[:, :n_noise].mean(axis=1, keepdims=True), np.sqrt(floor) * mag)
    return dsp.istft(clean * np.exp(1j * np.angle(Y)), hop_length=hop_length, length=len(noisy))


@mistake("04.2", "not the ones passed in")
def default_stft_settings(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128, over_subtraction=2.0,
                          floor=0.02):
    return _subtraction(noisy, sr, noise_duration, 512, 128, over_subtraction, floor)


@mistake("04.2", "complex")
def returns_the_spectrum(noisy, sr, **kwargs):
    from course_lib import dsp

    return dsp.stft(noisy)


def _dct_rows(n_out, n_in, first=1.0 / np.sqrt(2.0), k_start=0):
    """sqrt(2/n_in) cos(pi k (2n+1) / (2 n_in)) for k = k_start.., row 0 times `first` (1/sqrt(2) is right)."""
    k = np.arange(k_start, k_start + n_out)[:, None]
    n = np.arange(n_in)[None, :]
    D = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    if k_start == 0:
        D[0] *= first
    return D


@mistake("04.3", "no scale factors")
def dct_plain_cosines(n_out, n_in):
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))


@mistake("04.3", "unnormalised DCT-II")
def dct_scipy_default_norm(n_out, n_in):
    import scipy.fft

    return scipy.fft.dct(np.eye(n_in), type=2, axis=0)[:n_out]  # norm=None: 2 cos(...)


@mistake("04.3", "row 0 is too large")
def dct_row_zero_not_rescaled(n_out, n_in):
    return _dct_rows(n_out, n_in, first=1.0)


@mistake("04.3", "every row is scaled by sqrt(1/n_in)")
def dct_all_rows_sqrt_one_over_n(n_out, n_in):
    return _dct_rows(n_out, n_in, first=1.0) / np.sqrt(2.0)


@mistake("04.3", "no half-sample shift")
def dct_without_half_sample(n_out, n_in):
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    D = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * n / n_in)
    D[0] /= np.sqrt(2.0)
    return D


@mistake("04.3", "scale factors use n_out")
def dct_scaled_by_n_out(n_out, n_in):
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    D = np.sqrt(2.0 / n_out) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    D[0] /= np.sqrt(2.0)
    return D


@mistake("04.3", "DCT-III")
def dct_indices_swapped(n_out, n_in):
    return _dct_rows(n_in, n_in).T[:n_out]


@mistake("04.3", "transposed")
def dct_transposed(n_out, n_in):
    return _dct_rows(n_out, n_in).T


@mistake("04.3", "keep only the first n_out")
def dct_all_rows_returned(n_out, n_in):
    return _dct_rows(n_in, n_in)


@mistake("04.3", "rows start at k = 1")
def dct_rows_from_one(n_out, n_in):
    return _dct_rows(n_out, n_in, k_start=1)


@mistake("04.3", "not implemented")
def dct_stub(n_out, n_in):
    _stub()


# ================================================================================= 05 filters to CNNs
@mistake("05.1", "+ 1")
def forgot_the_first_position(n, k, s=1, p=0, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s


@mistake("05.1", "dilat")
def dilation_ignored(n, k, s=1, p=0, d=1):
    return (n + 2 * p - k) // s + 1


@mistake("05.1", "floor")
def true_division(n, k, s=1, p=0, d=1):
    return (n + 2 * p - d * (k - 1) - 1) / s + 1


@mistake("05.1", "round down")
def ceil_division(n, k, s=1, p=0, d=1):
    return -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1


@mistake("05.1", "*both* ends")
def padding_once(n, k, s=1, p=0, d=1):
    return (n + p - d * (k - 1) - 1) // s + 1


@mistake("05.1", "subtract the whole span")
def span_without_plus_one(n, k, s=1, p=0, d=1):
    return (n + 2 * p - d * (k - 1)) // s + 1


@mistake("05.1", "divide the positions by the stride")
def stride_ignored(n, k, s=1, p=0, d=1):
    return n + 2 * p - d * (k - 1)


@mistake("05.1", "not implemented")
def conv_length_stub(n, k, s=1, p=0, d=1):
    raise NotImplementedError("x")


@mistake("05.2", "*before* that layer's own span")
def jump_updated_before_use(layers):
    field, jump = 1, 1
    for kernel, stride, dilation in layers:
        jump *= stride
        field += (kernel - 1) * dilation * jump
    return field


@mistake("05.2", "product of all earlier strides")
def strides_ignored(layers):
    return 1 + sum((k - 1) * d for k, _, d in layers)


@mistake("05.2", "kernels do not simply add")
def kernels_added(layers):
    return sum(k for k, _, _ in layers)


@mistake("05.2", "the dilation is missing")
def dilation_missing(layers):
    field, jump = 1, 1
    for kernel, stride, _ in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


@mistake("05.2", "start from a field of 1")
def starts_from_zero(layers):
    field, jump = 0, 1
    for kernel, stride, dilation in layers:
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field


@mistake("05.2", "widens the field by k - 1")
def adds_whole_kernels(layers):
    field, jump = 1, 1
    for kernel, stride, dilation in layers:
        field += kernel * dilation * jump
        jump *= stride
    return field


def _article(*, relu=(True, True, True), head=(nn.AdaptiveMaxPool1d(2),), end=(), conv_padding=1):
    """The article's CNN with the fix's pieces switchable."""
    act = lambda on: [nn.ReLU()] if on else []  # noqa: E731
    return nn.Sequential(
        nn.Conv1d(1, 64, 3, padding=conv_padding), *act(relu[0]), nn.MaxPool1d(2),
        nn.Conv1d(64, 64, 3, padding=conv_padding), *act(relu[1]), *head,
        nn.Flatten(), nn.Linear(128, 64), *act(relu[2]), nn.Linear(64, 10), *end)


@mistake("05.3", "no nonlinearity anywhere")
def no_relu_at_all():
    return _article(relu=(False, False, False))


@mistake("05.3", "two Linear layers in a row are one linear map")
def no_relu_between_linears():
    return _article(relu=(True, True, False))


@mistake("05.3", "add an nn.ReLU after Conv1d(1, 64)")
def no_relu_after_first_conv():
    return _article(relu=(False, True, True))


@mistake("05.3", "AdaptiveMaxPool1d")
def the_articles_fixed_pooling():
    return nn.Sequential(nn.Conv1d(1, 64, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


@mistake("05.3", "Linear(128, 64)")
def head_changed_instead():
    return nn.Sequential(nn.Conv1d(1, 64, 3, padding=1), nn.ReLU(), nn.Conv1d(64, 64, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


@mistake("05.3", "raw logits")
def softmax_at_the_end():
    return _article(end=(nn.Softmax(dim=1),))


@mistake("05.3", "the logits are never negative")
def relu_after_the_last_linear():
    return _article(end=(nn.ReLU(),))


@mistake("05.3", "padding=1")
def convolutions_without_padding():
    return _article(conv_padding=0)


class _ProbabilitiesOut(nn.Module):
    """A custom model whose forward ends with F.softmax: no nn.Softmax module to spot."""

    def __init__(self):
        super().__init__()
        self.body = _article()

    def forward(self, x):
        return F.softmax(self.body(x), dim=1)


@mistake("05.3", "probabilities")
def functional_softmax_at_the_end():
    return _ProbabilitiesOut()


# ================================================================================= 06 CNN classification
@mistake("06.1", "ReLU runs before the batch norm")
def relu_before_batch_norm(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(o), nn.MaxPool2d(2),
                         nn.Dropout2d(p))


class _ReluBeforeBn(nn.Module):
    """ReLU before BN hidden in a forward(): only the numbers can tell."""

    def __init__(self, i, o, p):
        super().__init__()
        self.conv, self.bn, self.drop = nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.Dropout2d(p)

    def forward(self, x):
        return self.drop(F.max_pool2d(self.bn(F.relu(self.conv(x))), 2))


@mistake("06.1", "the ReLU comes before the batch norm")
def relu_before_batch_norm_functional(i, o, p):
    return _ReluBeforeBn(i, o, p)


@mistake("06.1", "BatchNorm2d")
def no_batch_norm(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(p))


@mistake("06.1", "MaxPool2d(2)")
def no_pooling(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.Dropout2d(p))


@mistake("06.1", "dropout")
def no_dropout(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))


@mistake("06.1", "no ReLU")
def no_relu(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.MaxPool2d(2), nn.Dropout2d(p))


@mistake("06.1", "average pooling")
def average_pooling(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Dropout2d(p))


@mistake("06.1", "nn.Dropout zeroes single values")
def elementwise_dropout(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(p))


@mistake("06.1", "nn.BatchNorm1d")
def batch_norm_1d(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm1d(o), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout2d(p))


@mistake("06.1", "BatchNorm2d(8)")
def batch_norm_on_input_channels(i, o, p):
    return nn.Sequential(nn.BatchNorm2d(i), nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout2d(p))


@mistake("06.1", "kernel_size=3, padding=1")
def no_conv_padding(i, o, p):
    return nn.Sequential(nn.Conv2d(i, o, 3), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(p))


def _counts(y_true, y_pred, c):
    tp = np.sum((y_pred == c) & (y_true == c))
    return tp, np.sum((y_pred == c) & (y_true != c)), np.sum((y_pred != c) & (y_true == c))


def _f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


@mistake("06.2", "accuracy")
def accuracy_instead(t, p, k):
    return float(np.mean(t == p))


@mistake("06.2", "support-weighted")
def support_weighted(t, p, k):
    support = np.bincount(t, minlength=k)
    return float(sum(_f1(*_counts(t, p, c)) * support[c] for c in range(k)) / len(t))


@mistake("06.2", "only the classes that occur in y_true or y_pred")
def present_classes_only(t, p, k):
    return float(np.mean([_f1(*_counts(t, p, c)) for c in np.union1d(t, p)]))


@mistake("06.2", "only the classes that occur in y_true")
def true_classes_only(t, p, k):
    return float(np.mean([_f1(*_counts(t, p, c)) for c in np.unique(t)]))


@mistake("06.2", "mean recall")
def macro_recall(t, p, k):
    counts = [_counts(t, p, c) for c in range(k)]
    return float(np.mean([tp / (tp + fn) if tp + fn else 0.0 for tp, fp, fn in counts]))


@mistake("06.2", "mean precision")
def macro_precision(t, p, k):
    counts = [_counts(t, p, c) for c in range(k)]
    return float(np.mean([tp / (tp + fp) if tp + fp else 0.0 for tp, fp, fn in counts]))


@mistake("06.2", "harmonic mean of macro-precision and macro-recall")
def f1_of_macro_averages(t, p, k):
    precision = macro_precision(t, p, k)
    recall = macro_recall(t, p, k)
    return 2 * precision * recall / (precision + recall)


@mistake("06.2", "NaN")
def undefined_f1_is_nan(t, p, k):
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean([np.float64(2 * tp) / (2 * tp + fp + fn) for tp, fp, fn in
                              (_counts(t, p, c) for c in range(k))]))


# ================================================================================= 07 time-frequency CNNs
@mistake("07.1", "vertical")
def one_square_kernel(i, o, kf, kt):
    return nn.Conv2d(i, o, (kf, kt), padding=(kf // 2, kt // 2))


@mistake("07.1", "one after the other")
def parallel_branches(i, o, kf, kt):
    from course_lib import models

    return models.MultiScaleBlock(i, o, kernels=((kf, 1), (1, kt)))


@mistake("07.1", "compose into a single")
def no_nonlinearity_between(i, o, kf, kt):
    return nn.Sequential(nn.Conv2d(i, o, (kf, 1), padding=(kf // 2, 0)),
                         nn.Conv2d(o, o, (1, kt), padding=(0, kt // 2)), nn.BatchNorm2d(o), nn.ReLU())


@mistake("07.1", "a ReLU runs before its batch norm")
def relu_before_batch_norm_7(i, o, kf, kt):
    return nn.Sequential(nn.Conv2d(i, o, (kf, 1), padding=(kf // 2, 0)), nn.ReLU(), nn.BatchNorm2d(o),
                         nn.Conv2d(o, o, (1, kt), padding=(0, kt // 2)), nn.ReLU(), nn.BatchNorm2d(o))


@mistake("07.1", "the time filter (1, 5) runs first")
def time_filter_first(i, o, kf, kt):
    return nn.Sequential(nn.Conv2d(i, o, (1, kt), padding=(0, kt // 2)), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, (kf, 1), padding=(kf // 2, 0)), nn.BatchNorm2d(o), nn.ReLU())


@mistake("07.1", "pad (3, 0) for the vertical")
def no_padding(i, o, kf, kt):
    return nn.Sequential(nn.Conv2d(i, o, (kf, 1)), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, (1, kt)), nn.BatchNorm2d(o), nn.ReLU())


@mistake("07.1", "ends with BatchNorm2d -> ReLU")
def no_final_relu(i, o, kf, kt):
    return nn.Sequential(nn.Conv2d(i, o, (kf, 1), padding=(kf // 2, 0)), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, (1, kt), padding=(0, kt // 2)), nn.BatchNorm2d(o))


@mistake("07.1", "no batch norm")
def no_batch_norm_7(i, o, kf, kt):
    return nn.Sequential(nn.Conv2d(i, o, (kf, 1), padding=(kf // 2, 0)), nn.ReLU(),
                         nn.Conv2d(o, o, (1, kt), padding=(0, kt // 2)), nn.ReLU())


def _position(x, low=-1.0, high=1.0):
    b, _, f, t = x.shape
    return torch.linspace(low, high, f, dtype=x.dtype).view(1, 1, f, 1).expand(b, 1, f, t)


@mistake("07.2", "along time")
def position_along_time(x):
    b, _, f, t = x.shape
    return torch.cat([x, torch.linspace(-1, 1, t, dtype=x.dtype).expand(b, 1, f, t)], dim=1)


@mistake("07.2", "-1")
def zero_to_one(x):
    return torch.cat([x, _position(x, 0.0, 1.0)], dim=1)


@mistake("07.2", "after the input channels")
def prepended(x):
    return torch.cat([_position(x), x], dim=1)


@mistake("07.2", "backwards")
def reversed_positions(x):
    return torch.cat([x, _position(x, 1.0, -1.0)], dim=1)


@mistake("07.2", "linspace(-1, 1, n_mels)")
def arange_over_n(x):
    b, _, f, t = x.shape
    pos = (-1 + 2 * torch.arange(f, dtype=x.dtype) / f).view(1, 1, f, 1).expand(b, 1, f, t)
    return torch.cat([x, pos], dim=1)


@mistake("07.2", "rather than overwrite")
def overwrites_a_channel(x):
    x = x.clone()
    x[:, -1] = _position(x)[:, 0]
    return x


@mistake("07.2", "concatenate along dim=1")
def concatenated_along_mels(x):
    return torch.cat([x, _position(x)[:, :, :1].expand(-1, x.shape[1], 1, -1)], dim=2)


@mistake("07.2", "expand it to batch size")
def single_item_batch(x):
    return torch.cat([x[:1], _position(x[:1])], dim=1)


@mistake("07.2", "dtype=x.dtype")
def float32_positions(x):
    b, _, f, t = x.shape
    pos = torch.linspace(-1, 1, f).view(1, 1, f, 1).expand(b, 1, f, t)
    return torch.cat([x.float(), pos], dim=1) if x.dtype != torch.float32 else torch.cat([x, pos], dim=1)


# ================================================================================= 08 spectral graph networks
def _ring_adjacency(n):
    A = np.zeros((n, n))
    for m in range(n):
        A[m, (m + 1) % n] = A[(m + 1) % n, m] = 1.0
    return A


@mistake("08.1", "flipped")
def laplacian_signs_flipped(n):
    A = _ring_adjacency(n)
    return A - np.diag(A.sum(1))


@mistake("08.1", "adjacency")
def adjacency_only(n):
    return _ring_adjacency(n)


@mistake("08.1", "wrap")
def path_not_ring(n):
    A = np.eye(n, k=1) + np.eye(n, k=-1)
    return np.diag(A.sum(1)) - A


@mistake("08.1", "normalised")
def normalised_laplacian(n):
    return np.eye(n) - _ring_adjacency(n) / 2


@mistake("08.1", "not symmetric")
def one_direction_only(n):
    A = np.zeros((n, n))
    for m in range(n):
        A[m, (m + 1) % n] = 1.0
    return np.diag(A.sum(1)) - A


@mistake("08.1", "every node of a ring has 2 neighbours")
def identity_as_degree(n):
    return np.eye(n) - _ring_adjacency(n)


@mistake("08.1", "ZeroDivisionError")
def crashes(n):
    return 1 / 0


@mistake("08.1", "not implemented")
def laplacian_stub(n):
    _stub()


def _chebyshev(x, L, theta, *, L_hat=None, factor=2.0):
    L_hat = L - torch.eye(L.shape[0], dtype=L.dtype) if L_hat is None else L_hat
    t_prev, out = x, x @ theta[0]
    if len(theta) > 1:
        t_cur = L_hat @ x
        out = out + t_cur @ theta[1]
        for k in range(2, len(theta)):
            t_prev, t_cur = t_cur, factor * L_hat @ t_cur - t_prev
            out = out + t_cur @ theta[k]
    return out


@mistake("08.2", "scaled Laplacian")
def unscaled_laplacian(x, L, theta):
    return _chebyshev(x, L, theta, L_hat=L)


@mistake("08.2", "power series")
def power_series(x, L, theta):
    L_hat = L - torch.eye(L.shape[0], dtype=L.dtype)
    return sum(torch.linalg.matrix_power(L_hat, k) @ x @ theta[k] for k in range(len(theta)))


@mistake("08.2", "factor 2")
def recursion_without_two(x, L, theta):
    return _chebyshev(x, L, theta, factor=1.0)


@mistake("08.2", "not I - L")
def identity_minus_laplacian(x, L, theta):
    return _chebyshev(x, L, theta, L_hat=torch.eye(L.shape[0], dtype=L.dtype) - L)


@mistake("08.2", "lambda_max is fixed at 2")
def measured_lambda_max(x, L, theta):
    lam = torch.linalg.eigvalsh(L).max()
    return _chebyshev(x, L, theta, L_hat=2 * L / lam - torch.eye(L.shape[0], dtype=L.dtype))


def _neighbours(similarity, k):
    similarity = similarity.copy()
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1)[:, :k]


def _cosine(frames):
    unit = frames / np.linalg.norm(frames, axis=1, keepdims=True)
    return unit @ unit.T


@mistake("08.3", "itself")
def includes_itself(frames, k):
    return np.argsort(-_cosine(frames - frames.mean(axis=0)), axis=1)[:, :k]


@mistake("08.3", "centred")
def not_centred_knn(frames, k):
    return _neighbours(_cosine(frames), k)


@mistake("08.3", "LEAST")
def least_similar(frames, k):
    sim = _cosine(frames - frames.mean(axis=0))
    np.fill_diagonal(sim, np.inf)
    return np.argsort(sim, axis=1)[:, :k]


@mistake("08.3", "shape")
def knn_transposed(frames, k):
    return _neighbours(_cosine(frames - frames.mean(axis=0)), k).T


@mistake("08.3", "wrong axis")
def centred_per_frame(frames, k):
    return _neighbours(_cosine(frames - frames.mean(axis=1, keepdims=True)), k)


@mistake("08.3", "Euclidean distance")
def euclidean_neighbours(frames, k):
    centred = frames - frames.mean(axis=0)
    return _neighbours(-np.linalg.norm(centred[:, None] - centred[None, :], axis=-1), k)


@mistake("08.3", "not normalised")
def unnormalised_dot_products(frames, k):
    centred = frames - frames.mean(axis=0)
    return _neighbours(centred @ centred.T, k)


# ================================================================================= 09 temporal models
@mistake("09.1", "right")
def zeros_on_the_right(x, w, d):
    k = w.shape[-1]
    return F.conv1d(F.pad(x, (0, (k - 1) * d)), w, dilation=d)


@mistake("09.1", "left")
def no_padding_at_all(x, w, d):
    return F.conv1d(x, w, dilation=d)


@mistake("09.1", "ignores the dilation")
def padding_ignores_dilation(x, w, d):
    k = w.shape[-1]
    return F.conv1d(F.pad(x, (k - 1, 0)), w, dilation=d)


@mistake("09.1", "future")
def same_padding(x, w, d):
    k = w.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * d // 2, (k - 1) * d - (k - 1) * d // 2)), w, dilation=d)


@mistake("09.1", "kernel is flipped")
def flipped_kernel(x, w, d):
    k = w.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * d, 0)), w.flip(-1), dilation=d)


@mistake("09.1", "pass dilation=dilation")
def dilation_not_passed(x, w, d):
    k = w.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * d, 0)), w)


@mistake("09.2", "padding frames got weight")
def unmasked_softmax(h, scores, mask):
    return (torch.softmax(scores, dim=1).unsqueeze(-1) * h).sum(1)


@mistake("09.2", "after the softmax")
def masked_after_softmax(h, scores, mask):
    return ((torch.softmax(scores, dim=1) * mask).unsqueeze(-1) * h).sum(1)


@mistake("09.2", "raw scores")
def raw_scores_as_weights(h, scores, mask):
    return (scores.masked_fill(~mask, 0.0).unsqueeze(-1) * h).sum(1)


@mistake("09.2", "exp(0) = 1")
def padding_filled_with_zero(h, scores, mask):
    return (torch.softmax(scores.masked_fill(~mask, 0.0), dim=1).unsqueeze(-1) * h).sum(1)


@mistake("09.2", "plain mean of the valid frames")
def mean_of_valid_frames(h, scores, mask):
    weights = mask.to(h.dtype) / mask.sum(1, keepdim=True)
    return (weights.unsqueeze(-1) * h).sum(1)


@mistake("09.2", "divided by sqrt(D)")
def scaled_scores(h, scores, mask):
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")) / h.shape[-1] ** 0.5, dim=1)
    return (weights.unsqueeze(-1) * h).sum(1)


@mistake("09.2", "batch axis")
def softmax_over_batch(h, scores, mask):
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0).nan_to_num()
    return (weights.unsqueeze(-1) * h).sum(1)


@mistake("09.2", "NaN")
def inverted_mask(h, scores, mask):
    weights = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=1)
    return (weights.unsqueeze(-1) * h).sum(1)


@mistake("09.3", "collapse")
def no_collapse(lp, blank=0):
    return [s for s in lp.argmax(-1).tolist() if s != blank]


@mistake("09.3", "before collapsing")
def blanks_removed_first(lp, blank=0):
    nb = [s for s in lp.argmax(-1).tolist() if s != blank]
    return [s for i, s in enumerate(nb) if i == 0 or s != nb[i - 1]]


@mistake("09.3", "not a symbol")
def blanks_kept(lp, blank=0):
    path = lp.argmax(-1).tolist()
    return [s for i, s in enumerate(path) if i == 0 or s != path[i - 1]]


@mistake("09.3", "path[i - 1] for i = 0")
def first_frame_compared_with_last(lp, blank=0):
    path = lp.argmax(-1).tolist()
    return [s for i, s in enumerate(path) if s != path[i - 1] and s != blank]


@mistake("09.3", "argmax ran over time")
def argmax_over_time(lp, blank=0):
    path = lp.argmax(0).tolist()
    return [s for i, s in enumerate(path) if (i == 0 or s != path[i - 1]) and s != blank]


@mistake("09.3", "set() / np.unique")
def unique_symbols(lp, blank=0):
    return sorted(set(lp.argmax(-1).tolist()) - {blank})


@mistake("09.3", "not implemented")
def decode_stub(lp, blank=0):
    _stub()


# ================================================================================= 10 self-supervised
def _nt_xent_logits(z1, z2, temperature, normalise=True, mask_self=True):
    z = torch.cat([z1, z2])
    if normalise:
        z = F.normalize(z, dim=1)
    logits = z @ z.T / temperature
    if mask_self:
        logits = logits.masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))
    return logits


def _pair_targets(n):
    return torch.cat([torch.arange(n, 2 * n), torch.arange(n)])


@mistake("10.1", "no temperature")
def info_nce_without_temperature(z1, z2, temperature):
    return F.cross_entropy(_nt_xent_logits(z1, z2, 1.0), _pair_targets(len(z1)))


@mistake("10.1", "multiplies the similarities")
def info_nce_times_temperature(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T * temperature).masked_fill(torch.eye(2 * len(z1), dtype=torch.bool), float("-inf"))
    return F.cross_entropy(logits, _pair_targets(len(z1)))


@mistake("10.1", "raw dot products")
def info_nce_dot_product(z1, z2, temperature):
    return F.cross_entropy(_nt_xent_logits(z1, z2, temperature, normalise=False), _pair_targets(len(z1)))


@mistake("10.1", "itself stayed in the denominator")
def info_nce_self_not_masked(z1, z2, temperature):
    return F.cross_entropy(_nt_xent_logits(z1, z2, temperature, mask_self=False), _pair_targets(len(z1)))


@mistake("10.1", "positives on the wrong diagonal")
def info_nce_self_as_positive(z1, z2, temperature):
    logits = _nt_xent_logits(z1, z2, temperature, mask_self=False)
    return F.cross_entropy(logits, torch.arange(2 * len(z1)))


@mistake("10.1", "positive index points at itself")
def info_nce_targets_arange_twice(z1, z2, temperature):
    n = len(z1)
    return F.cross_entropy(_nt_xent_logits(z1, z2, temperature), torch.cat([torch.arange(n)] * 2))


@mistake("10.1", "summed over the anchors")
def info_nce_sum(z1, z2, temperature):
    return F.cross_entropy(_nt_xent_logits(z1, z2, temperature), _pair_targets(len(z1)), reduction="sum")


@mistake("10.1", "divided by N instead of 2N")
def info_nce_mean_over_n(z1, z2, temperature):
    losses = F.cross_entropy(_nt_xent_logits(z1, z2, temperature), _pair_targets(len(z1)), reduction="none")
    return losses.sum() / len(z1)


@mistake("10.1", "only one direction")
def info_nce_first_view_only(z1, z2, temperature):
    n = len(z1)
    return F.cross_entropy(_nt_xent_logits(z1, z2, temperature)[:n], torch.arange(n, 2 * n))


@mistake("10.1", "negatives only from the other view")
def info_nce_clip_style(z1, z2, temperature):
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    target = torch.arange(len(z1))
    return (F.cross_entropy(a @ b.T / temperature, target) + F.cross_entropy(b @ a.T / temperature, target)) / 2


@mistake("10.1", "one direction, and negatives only from the other view")
def info_nce_clip_one_way(z1, z2, temperature):
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    return F.cross_entropy(a @ b.T / temperature, torch.arange(len(z1)))


@mistake("10.1", "one loss per anchor")
def info_nce_no_reduction(z1, z2, temperature):
    return F.cross_entropy(_nt_xent_logits(z1, z2, temperature), _pair_targets(len(z1)), reduction="none")


@mistake("10.1", "not implemented yet")
def info_nce_stub(z1, z2, temperature):
    _stub()


def _unit_similarity(embeddings):
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return unit @ unit.T


def _recall_from(similarity, labels, k):
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    return float(np.mean((labels[nearest] == labels[:, None]).any(axis=1)))


@mistake("10.2", "the query retrieved itself")
def recall_counting_the_query(embeddings, labels, groups, k):
    return _recall_from(_unit_similarity(embeddings), labels, k)


@mistake("10.2", "clips from the query's own recording")
def recall_without_groups(embeddings, labels, groups, k):
    similarity = _unit_similarity(embeddings)
    np.fill_diagonal(similarity, -np.inf)
    return _recall_from(similarity, labels, k)


@mistake("10.2", "recall@(k+1)")
def recall_k_plus_one(embeddings, labels, groups, k):
    similarity = _unit_similarity(embeddings)
    similarity[groups[:, None] == groups[None, :]] = -np.inf
    return _recall_from(similarity, labels, k + 1)


@mistake("10.2", "recall@(k-1)")
def recall_k_minus_one(embeddings, labels, groups, k):
    similarity = _unit_similarity(embeddings)
    similarity[groups[:, None] == groups[None, :]] = -np.inf
    nearest = np.argsort(-similarity, axis=1)[:, : k - 1]
    return float(np.mean((labels[nearest] == labels[:, None]).any(axis=1)))


@mistake("10.2", "farthest candidates")
def recall_farthest(embeddings, labels, groups, k):
    similarity = _unit_similarity(embeddings)
    similarity[groups[:, None] == groups[None, :]] = np.inf
    nearest = np.argsort(similarity, axis=1)[:, :k]
    return float(np.mean((labels[nearest] == labels[:, None]).any(axis=1)))


@mistake("10.2", "Euclidean distance on unnormalised embeddings")
def recall_euclidean(embeddings, labels, groups, k):
    distance = np.linalg.norm(embeddings[:, None, :] - embeddings[None, :, :], axis=-1)
    distance[groups[:, None] == groups[None, :]] = np.inf
    return _recall_from(-distance, labels, k)


@mistake("10.2", "precision@k")
def precision_at_k(embeddings, labels, groups, k):
    similarity = _unit_similarity(embeddings)
    similarity[groups[:, None] == groups[None, :]] = -np.inf
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    return float(np.mean(labels[nearest] == labels[:, None]))


@mistake("10.2", "return one number")
def recall_as_dict(embeddings, labels, groups, k):
    return {k: 0.5}


@mistake("10.2", "not implemented yet")
def recall_stub(embeddings, labels, groups, k):
    _stub()




# ================================================================================= 11 explainability
def _ig_path(model, x, baseline, alphas):
    path = (baseline + alphas.view(-1, 1, 1, 1) * (x - baseline)).detach().requires_grad_(True)
    return path, model(path)


@mistake("11.1", "no (x - baseline) factor")
def ig_without_the_difference(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(1, steps + 1, dtype=x.dtype) / steps)
    out[:, target].sum().backward()
    return path.grad.mean(dim=0, keepdim=True)


@mistake("11.1", "multiplied by x, not by (x - baseline)")
def ig_times_x(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(1, steps + 1, dtype=x.dtype) / steps)
    out[:, target].sum().backward()
    return x * path.grad.mean(dim=0, keepdim=True)


@mistake("11.1", "the gradient at x only")
def ig_gradient_at_x(model, x, target, baseline, steps):
    x = x.clone().requires_grad_(True)
    model(x)[0, target].backward()
    return (x - baseline).detach() * x.grad


@mistake("11.1", "left Riemann sum")
def ig_left_riemann(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(steps, dtype=x.dtype) / steps)
    out[:, target].sum().backward()
    return (x - baseline) * path.grad.mean(dim=0, keepdim=True)


@mistake("11.1", "linspace(0, 1, steps)")
def ig_linspace(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.linspace(0, 1, steps, dtype=x.dtype))
    out[:, target].sum().backward()
    return (x - baseline) * path.grad.mean(dim=0, keepdim=True)


@mistake("11.1", "summed, not averaged")
def ig_summed(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(1, steps + 1, dtype=x.dtype) / steps)
    out[:, target].sum().backward()
    return (x - baseline) * path.grad.sum(dim=0, keepdim=True)


@mistake("11.1", "divided by steps + 1")
def ig_divided_by_steps_plus_one(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(1, steps + 1, dtype=x.dtype) / steps)
    out[:, target].sum().backward()
    return (x - baseline) * path.grad.sum(dim=0, keepdim=True) / (steps + 1)


@mistake("11.1", "sum of all classes' logits")
def ig_all_classes(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(1, steps + 1, dtype=x.dtype) / steps)
    out.sum().backward()
    return (x - baseline) * path.grad.mean(dim=0, keepdim=True)


@mistake("11.1", "softmax probability, not of the logit")
def ig_of_the_probability(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(1, steps + 1, dtype=x.dtype) / steps)
    out.softmax(dim=1)[:, target].sum().backward()
    return (x - baseline) * path.grad.mean(dim=0, keepdim=True)


@mistake("11.1", "averaged over every axis")
def ig_mean_of_everything(model, x, target, baseline, steps):
    path, out = _ig_path(model, x, baseline, torch.arange(1, steps + 1, dtype=x.dtype) / steps)
    out[:, target].sum().backward()
    return (x - baseline) * path.grad.mean()


@mistake("11.1", "not implemented")
def ig_stub(model, x, target, baseline, steps):
    _stub()


def _occlude(model, x, target, window, stride, fill, *, starts=None, mean=True, sign=1, score=None):
    n_f, n_t = x.shape[-2:]
    score = score or (lambda out: out[0, target])
    starts = starts or (lambda n, w, s: range(0, n - w + 1, s))
    total, count = torch.zeros(n_f, n_t, dtype=x.dtype), torch.zeros(n_f, n_t, dtype=x.dtype)
    with torch.no_grad():
        reference = score(model(x))
        for r in starts(n_f, window[0], stride[0]):
            for c in starts(n_t, window[1], stride[1]):
                occluded = x.clone()
                occluded[..., r:r + window[0], c:c + window[1]] = fill
                total[r:r + window[0], c:c + window[1]] += sign * (reference - score(model(occluded)))
                count[r:r + window[0], c:c + window[1]] += 1
    return (total / count if mean else total).expand_as(x)


@mistake("11.2", "set to 0, not to the stated fill value")
def occlusion_fills_zero(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window, stride, 0.0)


@mistake("11.2", "sign is flipped")
def occlusion_sign_flipped(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window, stride, fill, sign=-1)


@mistake("11.2", "stepped by the window size")
def occlusion_steps_by_window(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window, stride, fill, starts=lambda n, w, s: range(0, n - w + 1, w))


@mistake("11.2", "no window covered a bin")
def occlusion_misses_the_last_window(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window, stride, fill, starts=lambda n, w, s: range(0, n - w, s))


@mistake("11.2", "axes are swapped")
def occlusion_axes_swapped(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window[::-1], stride[::-1], fill)


@mistake("11.2", "sum of the drops")
def occlusion_sums_overlaps(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window, stride, fill, mean=False)


@mistake("11.2", "sum of all classes' logits")
def occlusion_all_classes(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window, stride, fill, score=lambda out: out[0].sum())


@mistake("11.2", "one value per input value")
def occlusion_map_on_the_grid(model, x, target, window, stride, fill):
    return _occlude(model, x, target, window, stride, fill)[0, 0]


@mistake("11.2", "not implemented")
def occlusion_stub(model, x, target, window, stride, fill):
    _stub()



# ================================================================================= 12 keyword spotting
def _frr(pos, neg, fa, pick=None, accept_equal=False, count_above=False):
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    m = int(np.floor(fa * neg.size + 1e-9))
    t = pick(pos, neg, fa, m) if pick else (-np.inf if m >= neg.size else np.sort(neg)[::-1][m])
    if count_above:
        return float(np.mean(pos > t)), float(t)
    return float(np.mean(pos < t) if accept_equal else np.mean(pos <= t)), float(t)


@mistake("12.1", "strictly above")
def frr_accepts_ties(pos, neg, fa):
    return _frr(pos, neg, fa, accept_equal=True)


@mistake("12.1", "detection rate")
def frr_counts_accepted(pos, neg, fa):
    return _frr(pos, neg, fa, count_above=True)


@mistake("12.1", "off by one")
def frr_mth_negative(pos, neg, fa):
    return _frr(pos, neg, fa, pick=lambda p, n, f, m: np.sort(n)[::-1][max(m - 1, 0)] if m > 0 else np.sort(n)[::-1][0])


@mistake("12.1", "np.quantile interpolates")
def frr_quantile(pos, neg, fa):
    return _frr(pos, neg, fa, pick=lambda p, n, f, m: np.quantile(n, 1 - f))


@mistake("12.1", "picked on all scores")
def frr_threshold_on_all(pos, neg, fa):
    return _frr(pos, neg, fa, pick=lambda p, n, f, m: np.quantile(np.concatenate([p, n]), 1 - f))


@mistake("12.1", "picked on the positives")
def frr_threshold_on_positives(pos, neg, fa):
    return _frr(pos, neg, fa, pick=lambda p, n, f, m: np.quantile(p, f))


@mistake("12.1", "not implemented")
def frr_stub(pos, neg, fa):
    _stub()


def _smooth(p, n, mode="causal"):
    p = np.asarray(p, float)
    if mode == "causal":
        return np.stack([p[max(0, t - n + 1): t + 1].mean(0) for t in range(len(p))])
    if mode == "zeros":
        padded = np.vstack([np.zeros((n - 1, p.shape[1])), p])
        return np.stack([padded[t:t + n].mean(0) for t in range(len(p))])
    half = n // 2
    return np.stack([p[max(0, t - half): t + n - half].mean(0) for t in range(len(p))])


def _detect(p, n_smooth, threshold, refractory, keys, mode="causal", all_classes=False, restart=False,
            strict=False, refractory_shift=0):
    s = _smooth(p, n_smooth, mode)
    classes = list(range(s.shape[1])) if all_classes else list(keys)
    out, blocked = [], -1
    for t in range(len(s)):
        best = classes[int(np.argmax(s[t, classes]))]
        above = s[t, best] > threshold if strict else s[t, best] >= threshold
        if t <= blocked:
            if restart and above:
                blocked = t + refractory
            continue
        if above:
            out.append((t, best))
            blocked = t + refractory + refractory_shift
    return out


@mistake("12.2", "no suppression")
def detect_without_refractory(p, n_smooth, threshold, refractory, keys):
    return _detect(p, n_smooth, threshold, 0, keys)


@mistake("12.2", "KEYWORD classes only")
def detect_unknown_too(p, n_smooth, threshold, refractory, keys):
    return _detect(p, n_smooth, threshold, refractory, keys, all_classes=True)


@mistake("12.2", "smoothing was skipped")
def detect_unsmoothed(p, n_smooth, threshold, refractory, keys):
    return _detect(p, 1, threshold, refractory, keys)


@mistake("12.2", "centred")
def detect_centred_smoothing(p, n_smooth, threshold, refractory, keys):
    return _detect(p, n_smooth, threshold, refractory, keys, mode="centred")


@mistake("12.2", "averaged with zeros")
def detect_zero_padded_smoothing(p, n_smooth, threshold, refractory, keys):
    return _detect(p, n_smooth, threshold, refractory, keys, mode="zeros")


@mistake("12.2", "one step short")
def detect_refractory_short(p, n_smooth, threshold, refractory, keys):
    return _detect(p, n_smooth, threshold, refractory, keys, refractory_shift=-1)


@mistake("12.2", "restarted on every step")
def detect_restarting_suppression(p, n_smooth, threshold, refractory, keys):
    return _detect(p, n_smooth, threshold, refractory, keys, restart=True)


@mistake("12.2", ">= threshold")
def detect_strict_threshold(p, n_smooth, threshold, refractory, keys):
    return _detect(p, n_smooth, threshold, refractory, keys, strict=True)


@mistake("12.2", "not implemented")
def detect_stub(p, n_smooth, threshold, refractory, keys):
    _stub()


# ================================================================================= 13 speech recognition
@mistake("13.1", "counted as two")
def substitution_costs_two(ref, hyp):
    n, m = len(ref), len(hyp)
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + 2 * (ref[i - 1] != hyp[j - 1]))
    return d[n][m]


@mistake("13.1", "first row and column")
def borders_left_at_zero(ref, hyp):
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    return d[n][m]


@mistake("13.1", "position by position")
def hamming_distance(ref, hyp):
    return sum(a != b for a, b in zip(ref, hyp)) + abs(len(ref) - len(hyp))


@mistake("13.1", "difference in lengths")
def length_difference(ref, hyp):
    return abs(len(ref) - len(hyp))


@mistake("13.1", "divided by the reference length")
def error_rate_not_count(ref, hyp):
    from course_lib.metrics import edit_distance
    return edit_distance(ref, hyp) / max(len(ref), 1)


@mistake("13.1", "not implemented")
def edit_distance_stub(ref, hyp):
    _stub()


def _bigram_counts13(sequences, n, k, end=True):
    counts = np.full((n + 1, n + 1), float(k))
    for s in sequences:
        tokens = [n, *s, n] if end else [n, *s]
        for a, b in zip(tokens, tokens[1:]):
            counts[a, b] += 1
    return counts


@mistake("13.2", "transposed")
def bigram_transposed(sequences, n, k):
    c = _bigram_counts13(sequences, n, k)
    return (c / c.sum(1, keepdims=True)).T


@mistake("13.2", "normalised the columns")
def bigram_columns(sequences, n, k):
    c = _bigram_counts13(sequences, n, k)
    return c / c.sum(0, keepdims=True)


@mistake("13.2", "sentence end is missing")
def bigram_no_end(sequences, n, k):
    c = _bigram_counts13(sequences, n, k, end=False)
    return c / c.sum(1, keepdims=True)


@mistake("13.2", "returned the counts")
def bigram_counts_only(sequences, n, k):
    return _bigram_counts13(sequences, n, k)


@mistake("13.2", "smoothing k was ignored")
def bigram_unsmoothed(sequences, n, k):
    c = _bigram_counts13(sequences, n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return c / c.sum(1, keepdims=True)


@mistake("13.2", "only to the denominator")
def bigram_smoothing_denominator_only(sequences, n, k):
    c = _bigram_counts13(sequences, n, 0.0)
    return c / (c.sum(1, keepdims=True) + k * (n + 1))


@mistake("13.2", "not implemented")
def bigram_stub(sequences, n, k):
    _stub()


# ================================================================================= 14 speech emotion
@mistake("14.1", "plain accuracy")
def uar_as_accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


@mistake("14.1", "macro PRECISION")
def uar_as_macro_precision(y_true, y_pred):
    from sklearn.metrics import precision_score
    return float(precision_score(y_true, y_pred, average="macro", zero_division=0))


@mistake("14.1", "macro F1")
def uar_as_macro_f1(y_true, y_pred):
    from sklearn.metrics import f1_score
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


@mistake("14.1", "classes the model PREDICTED")
def uar_over_predicted_classes(y_true, y_pred):
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(p[t == c] == c) if np.any(t == c) else 0.0 for c in np.unique(p)]))


@mistake("14.1", "every class index")
def uar_over_all_indices(y_true, y_pred):
    t, p = np.asarray(y_true), np.asarray(y_pred)
    n = max(t.max(), p.max()) + 1
    return float(np.mean([np.mean(p[t == c] == c) if np.any(t == c) else 0.0 for c in range(n)]))


@mistake("14.1", "percentage")
def uar_in_percent(y_true, y_pred):
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return 100 * float(np.mean([np.mean(p[t == c] == c) for c in np.unique(t)]))


@mistake("14.1", "per-class recalls")
def uar_per_class(y_true, y_pred):
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return np.array([np.mean(p[t == c] == c) for c in np.unique(t)])


@mistake("14.1", "not implemented yet")
def uar_stub(y_true, y_pred):
    _stub()


@mistake("14.2", "speaker-DEPENDENT split")
def split_clips_at_random(speakers, test_fraction, rng):
    order = np.random.default_rng(rng).permutation(len(speakers))
    n_test = round(test_fraction * len(speakers))
    return order[n_test:], order[:n_test]


@mistake("14.2", "int() truncates")
def split_int_truncates(speakers, test_fraction, rng):
    names = sorted({str(s) for s in speakers})
    held = set(np.random.default_rng(rng).permutation(names)[: max(1, int(test_fraction * len(names)))])
    is_test = np.array([str(s) in held for s in speakers])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


@mistake("14.2", "share of the SPEAKERS")
def split_fraction_of_clips(speakers, test_fraction, rng):
    names = list(np.random.default_rng(rng).permutation(sorted({str(s) for s in speakers})))
    counts = {n: sum(str(s) == n for s in speakers) for n in names}
    held, n_clips = set(), 0
    for name in names:                       # add speakers until test_fraction of the CLIPS is reached
        if n_clips >= test_fraction * len(speakers):
            break
        held.add(name)
        n_clips += counts[name]
    is_test = np.array([str(s) in held for s in speakers])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


@mistake("14.2", "held out the same speakers")
def split_ignores_the_seed(speakers, test_fraction, rng):
    names = sorted({str(s) for s in speakers})
    n_test = min(max(round(test_fraction * len(names)), 1), len(names) - 1)
    held = set(names[:n_test])
    is_test = np.array([str(s) in held for s in speakers])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


@mistake("14.2", "speaker ids")
def split_returns_speakers(speakers, test_fraction, rng):
    names = list(np.random.default_rng(rng).permutation(sorted({str(s) for s in speakers})))
    n_test = min(max(round(test_fraction * len(names)), 1), len(names) - 1)
    return names[n_test:], names[:n_test]


@mistake("14.2", "every clip of every speaker must be used")
def split_one_clip_per_speaker(speakers, test_fraction, rng):
    names = list(np.random.default_rng(rng).permutation(sorted({str(s) for s in speakers})))
    n_test = min(max(round(test_fraction * len(names)), 1), len(names) - 1)
    first = {n: [str(s) for s in speakers].index(n) for n in names}     # only each speaker's first clip
    return np.array([first[n] for n in names[n_test:]]), np.array([first[n] for n in names[:n_test]])


@mistake("14.2", "hold out at least one speaker")
def split_rounds_to_zero(speakers, test_fraction, rng):
    names = list(np.random.default_rng(rng).permutation(sorted({str(s) for s in speakers})))
    held = set(names[: round(test_fraction * len(names))])
    is_test = np.array([str(s) in held for s in speakers])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


@mistake("14.2", "not implemented yet")
def split_stub(speakers, test_fraction, rng):
    _stub()


# ================================================================================= 15 music classification
def _mfcc15(x, sr, n_mfcc):
    import librosa

    return librosa.feature.mfcc(y=x, sr=sr, n_mfcc=n_mfcc)


@mistake("15.1", "over the coefficient axis")
def mfcc_stats_wrong_axis(x, sr, n_mfcc):
    m = _mfcc15(x, sr, n_mfcc)
    return np.concatenate([m.mean(axis=0), m.std(axis=0)])


@mistake("15.1", "variance instead of the standard deviation")
def mfcc_stats_variance(x, sr, n_mfcc):
    m = _mfcc15(x, sr, n_mfcc)
    return np.concatenate([m.mean(axis=1), m.var(axis=1)])


@mistake("15.1", "sample standard deviation (ddof=1")
def mfcc_stats_torch_std(x, sr, n_mfcc):
    m = torch.from_numpy(_mfcc15(x, sr, n_mfcc))
    return torch.cat([m.mean(dim=1), m.std(dim=1)]).numpy()


@mistake("15.1", "only the means")
def mfcc_stats_mean_only(x, sr, n_mfcc):
    return _mfcc15(x, sr, n_mfcc).mean(axis=1)


@mistake("15.1", "interleaved")
def mfcc_stats_interleaved(x, sr, n_mfcc):
    m = _mfcc15(x, sr, n_mfcc)
    return np.column_stack([m.mean(axis=1), m.std(axis=1)]).ravel()


@mistake("15.1", "log-mel spectrogram, not of the MFCCs")
def mfcc_stats_of_log_mel(x, sr, n_mfcc):
    import librosa

    s = librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=sr))
    return np.concatenate([s.mean(axis=1), s.std(axis=1)])


@mistake("15.1", "default sample rate (22,050 Hz)")
def mfcc_stats_default_sr(x, sr, n_mfcc):
    import librosa

    m = librosa.feature.mfcc(y=x, n_mfcc=n_mfcc)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)])


def _softmax15(z, axis=1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@mistake("15.2", "majority vote")
def track_majority_vote(segment_logits, tracks):
    z, t = np.asarray(segment_logits), np.asarray(tracks)
    names = sorted(set(tracks))
    votes = np.eye(z.shape[1])[z.argmax(axis=1)]
    return names, np.stack([votes[t == n].mean(axis=0) for n in names])


@mistake("15.2", "logits were averaged (then a softmax)")
def track_mean_logits(segment_logits, tracks):
    z, t = np.asarray(segment_logits), np.asarray(tracks)
    names = sorted(set(tracks))
    return names, _softmax15(np.stack([z[t == n].mean(axis=0) for n in names]))


@mistake("15.2", "softmax ran over the segments (axis 0)")
def track_softmax_wrong_axis(segment_logits, tracks):
    z, t = np.asarray(segment_logits), np.asarray(tracks)
    p = _softmax15(z, axis=0)
    names = sorted(set(tracks))
    return names, np.stack([p[t == n].mean(axis=0) for n in names])


@mistake("15.2", "average ran over the class axis")
def track_mean_over_classes(segment_logits, tracks):
    z, t = np.asarray(segment_logits), np.asarray(tracks)
    p = _softmax15(z)
    names = sorted(set(tracks))
    return names, np.array([p[t == n].mean() for n in names])


@mistake("15.2", "pooled across tracks")
def track_mixes_all_segments(segment_logits, tracks):
    p = _softmax15(np.asarray(segment_logits))
    names = sorted(set(tracks))
    return names, np.repeat(p.mean(axis=0, keepdims=True), len(names), axis=0)


@mistake("15.2", "consecutive runs of segments")
def track_groupby_unsorted(segment_logits, tracks):
    import itertools

    p = _softmax15(np.asarray(segment_logits))
    names, rows, start = [], [], 0
    for name, group in itertools.groupby(tracks):
        n = len(list(group))
        names.append(name)
        rows.append(p[start:start + n].mean(axis=0))
        start += n
    return names, np.stack(rows)


@mistake("15.2", "summed, not averaged")
def track_sum_posteriors(segment_logits, tracks):
    z, t = np.asarray(segment_logits), np.asarray(tracks)
    p = _softmax15(z)
    names = sorted(set(tracks))
    return names, np.stack([p[t == n].sum(axis=0) for n in names])


@mistake("15.2", "order of first appearance")
def track_first_seen_order(segment_logits, tracks):
    z, t = np.asarray(segment_logits), np.asarray(tracks)
    p = _softmax15(z)
    names = list(dict.fromkeys(tracks))
    return names, np.stack([p[t == n].mean(axis=0) for n in names])


# ================================================================================= 16 music generation
def _roll16(notes, step_s, n_steps, start, end, value=lambda n: 1.0):
    cols = n_steps if n_steps is not None else max(end(n) for n in notes)
    roll = np.zeros((128, cols), dtype=np.float32)
    for n in notes:
        roll[n.pitch, start(n):max(start(n) + 1, end(n))] = value(n)
    return roll


@mistake("16.1", "pitch on the rows")
def roll_time_first(notes, step_s, n_steps=None):
    r = lambda t: int(round(t / step_s))
    return _roll16(notes, step_s, n_steps, lambda n: r(n.start_s), lambda n: r(n.end_s)).T


@mistake("16.1", "NOT including, its end step")
def roll_end_inclusive(notes, step_s, n_steps=None):
    r = lambda t: int(round(t / step_s))
    return _roll16(notes, step_s, n_steps, lambda n: r(n.start_s), lambda n: r(n.end_s) + 1)


@mistake("16.1", "int() truncates")
def roll_truncates(notes, step_s, n_steps=None):
    return _roll16(notes, step_s, n_steps, lambda n: int(n.start_s / step_s), lambda n: int(n.end_s / step_s))


@mistake("16.1", "not its velocity")
def roll_of_velocities(notes, step_s, n_steps=None):
    r = lambda t: int(round(t / step_s))
    return _roll16(notes, step_s, n_steps, lambda n: r(n.start_s), lambda n: r(n.end_s), lambda n: n.velocity)


@mistake("16.1", "only the onset step")
def roll_onsets_only(notes, step_s, n_steps=None):
    r = lambda t: int(round(t / step_s))
    cols = n_steps if n_steps is not None else max(max(r(n.start_s) + 1, r(n.end_s)) for n in notes)
    return _roll16(notes, step_s, cols, lambda n: r(n.start_s), lambda n: r(n.start_s) + 1)


@mistake("16.1", "n_steps was ignored")
def roll_ignores_n_steps(notes, step_s, n_steps=None):
    r = lambda t: int(round(t / step_s))
    return _roll16(notes, step_s, None, lambda n: r(n.start_s), lambda n: r(n.end_s))


@mistake("16.1", "not implemented yet")
def roll_stub(notes, step_s, n_steps=None):
    _stub()


def _softmax16(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def _filters16(p, top_k, top_p, k_shift=0, crossing=True, renormalise=True):
    if top_k is not None:
        kept = np.zeros_like(p)
        idx = np.argsort(p)[::-1][:max(1, top_k + k_shift)]
        kept[idx] = p[idx]
        p = kept / kept.sum() if renormalise else kept
    if top_p is not None:
        order = np.argsort(p)[::-1]
        cum = np.cumsum(p[order])
        keep = (cum - p[order] < top_p) if crossing else (cum < top_p)
        keep[0] = True
        kept = np.zeros_like(p)
        kept[order[keep]] = p[order[keep]]
        p = kept / kept.sum() if renormalise else kept
    return p


@mistake("16.2", "before the softmax")
def temperature_after_softmax(logits, temperature=1.0, top_k=None, top_p=None):
    return _filters16(_softmax16(np.asarray(logits)) / temperature, top_k, top_p)


@mistake("16.2", "were multiplied by the temperature")
def temperature_multiplies(logits, temperature=1.0, top_k=None, top_p=None):
    return _filters16(_softmax16(np.asarray(logits) * temperature), top_k, top_p)


@mistake("16.2", "top-k kept k - 1 tokens")
def top_k_keeps_k_minus_1(logits, temperature=1.0, top_k=None, top_p=None):
    return _filters16(_softmax16(np.asarray(logits) / temperature), top_k, top_p, k_shift=-1)


@mistake("16.2", "top-k kept k + 1 tokens")
def top_k_keeps_k_plus_1(logits, temperature=1.0, top_k=None, top_p=None):
    return _filters16(_softmax16(np.asarray(logits) / temperature), top_k, top_p, k_shift=1)


@mistake("16.2", "INCLUDE the token whose probability crosses p")
def nucleus_without_crossing_token(logits, temperature=1.0, top_k=None, top_p=None):
    return _filters16(_softmax16(np.asarray(logits) / temperature), top_k, top_p, crossing=False)


@mistake("16.2", "renormalise")
def filters_not_renormalised(logits, temperature=1.0, top_k=None, top_p=None):
    return _filters16(_softmax16(np.asarray(logits) / temperature), top_k, top_p, renormalise=False)


@mistake("16.2", "not implemented yet")
def sampling_stub(logits, temperature=1.0, top_k=None, top_p=None):
    _stub()




# ================================================================================= 17 audio style transfer
@mistake("17.1", "Divide by n_frames")
def gram_not_normalised(features):
    return features @ features.transpose(-1, -2)


@mistake("17.1", "frames x frames")
def gram_time_by_time(features):
    return features.transpose(-1, -2) @ features / features.shape[-1]


@mistake("17.1", "centred")
def gram_centred(features):
    f = features - features.mean(-1, keepdim=True)
    return f @ f.transpose(-1, -2) / features.shape[-1]


@mistake("17.1", "channels x frames")
def gram_over_channels_and_frames(features):
    return features @ features.transpose(-1, -2) / (features.shape[-1] * features.shape[-2])


@mistake("17.1", "number of channels")
def gram_over_channels(features):
    return features @ features.transpose(-1, -2) / features.shape[-2]


@mistake("17.1", "n_frames - 1")
def gram_unbiased(features):
    return features @ features.transpose(-1, -2) / max(features.shape[-1] - 1, 1)


@mistake("17.1", "not implemented")
def gram_stub(features):
    _stub()


def _lsd(reference, estimate, factor=20.0, log=np.log10, floor=True, reduce="frames"):
    r, e = np.asarray(reference, float), np.asarray(estimate, float)
    if floor:
        r, e = np.maximum(r, 1e-5), np.maximum(e, 1e-5)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = factor * log(r) - factor * log(e)
    if reduce == "all":
        return float(np.sqrt(np.mean(d ** 2)))
    if reduce == "bins":
        return float(np.mean(np.sqrt(np.mean(d ** 2, axis=1))))
    if reduce == "abs":
        return float(np.mean(np.abs(d)))
    return float(np.mean(np.sqrt(np.mean(d ** 2, axis=0))))


@mistake("17.2", "20·log10")
def lsd_ten_log10(reference, estimate):
    return _lsd(reference, estimate, factor=10.0)


@mistake("17.2", "squaring doubles")
def lsd_of_squared_magnitudes(reference, estimate):
    return _lsd(np.asarray(reference) ** 2, np.asarray(estimate) ** 2)


@mistake("17.2", "natural logarithm")
def lsd_natural_log(reference, estimate):
    return _lsd(reference, estimate, factor=1.0, log=np.log)


@mistake("17.2", "Floor the magnitudes")
def lsd_no_floor(reference, estimate):
    return _lsd(reference, estimate, floor=False)


@mistake("17.2", "whole spectrogram")
def lsd_global_rms(reference, estimate):
    return _lsd(reference, estimate, reduce="all")


@mistake("17.2", "axes are swapped")
def lsd_rms_over_frames(reference, estimate):
    return _lsd(reference, estimate, reduce="bins")


@mistake("17.2", "mean absolute dB difference")
def lsd_mean_absolute(reference, estimate):
    return _lsd(reference, estimate, reduce="abs")


@mistake("17.2", "not implemented")
def lsd_stub(reference, estimate):
    _stub()



# ================================================================================= 18 vocoder
def _mr_stft(estimate, reference, resolutions, amin, *, single=False, squared=False, floor=True,
             complex_diff=False, power=False, log10=False, normalise=True, reduce="mean", window=True):
    total = 0.0
    used = resolutions[:1] if single else resolutions
    for n_fft, hop, win in used:
        w = torch.hann_window(win) if window else torch.ones(win)
        ec = torch.stft(estimate, n_fft, hop, win, w, return_complex=True)
        rc = torch.stft(reference, n_fft, hop, win, w, return_complex=True)
        e, r = ec.abs(), rc.abs()
        if power:
            e, r = e ** 2, r ** 2
        if floor:
            e, r = e.clamp_min(amin), r.clamp_min(amin)
        sc = torch.linalg.vector_norm((rc - ec).abs() if complex_diff else r - e)
        if normalise:
            sc = sc / torch.linalg.vector_norm(rc.abs() if complex_diff else r)
        d = (torch.log10 if log10 else torch.log)(r) - (torch.log10 if log10 else torch.log)(e)
        total = total + sc + (d ** 2 if squared else d.abs()).mean()
    return total / len(used) if reduce == "mean" else total


@mistake("18.1", "only one resolution")
def mr_stft_one_resolution(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, single=True)


@mistake("18.1", "squared error (L2)")
def mr_stft_l2_on_log(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, squared=True)


@mistake("18.1", "log(0) on digital silence")
def mr_stft_no_floor(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, floor=False)


@mistake("18.1", "complex STFTs were compared")
def mr_stft_complex_difference(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, complex_diff=True)


@mistake("18.1", "power |STFT|^2")
def mr_stft_power(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, power=True)


@mistake("18.1", "log10")
def mr_stft_log10(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, log10=True)


@mistake("18.1", "division is missing")
def mr_stft_unnormalised_sc(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, normalise=False)


@mistake("18.1", "summed over resolutions")
def mr_stft_summed(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, reduce="sum")


@mistake("18.1", "rectangular")
def mr_stft_no_window(estimate, reference, resolutions, amin):
    return _mr_stft(estimate, reference, resolutions, amin, window=False)


@mistake("18.1", "not implemented")
def mr_stft_stub(estimate, reference, resolutions, amin):
    _stub()


def _mu_law_y(x, mu, denominator=None):
    return torch.sign(x) * torch.log1p(mu * x.abs()) / (denominator or np.log1p(mu))


@mistake("18.2", "mu = quantization_channels")
def mu_law_mu_too_big(x, quantization_channels):
    mu = quantization_channels
    return torch.floor((_mu_law_y(x, mu) + 1) / 2 * mu + 0.5).long().clamp(max=quantization_channels - 1)


@mistake("18.2", "truncated")
def mu_law_truncates(x, quantization_channels):
    mu = quantization_channels - 1
    return ((_mu_law_y(x, mu) + 1) / 2 * mu).long()


@mistake("18.2", "sign was lost")
def mu_law_no_sign(x, quantization_channels):
    mu = quantization_channels - 1
    return torch.floor((torch.log1p(mu * x.abs()) / np.log1p(mu) + 1) / 2 * mu + 0.5).long()


@mistake("18.2", "returned: quantise it")
def mu_law_not_quantised(x, quantization_channels):
    return _mu_law_y(x, quantization_channels - 1)


@mistake("18.2", "log(mu) in the denominator")
def mu_law_log_mu(x, quantization_channels):
    mu = quantization_channels - 1
    return torch.floor((_mu_law_y(x, mu, np.log(mu)) + 1) / 2 * mu + 0.5).long()


@mistake("18.2", "linear quantisation")
def mu_law_linear(x, quantization_channels):
    mu = quantization_channels - 1
    return torch.floor((x + 1) / 2 * mu + 0.5).long()


@mistake("18.2", "not implemented")
def mu_law_stub(x, quantization_channels):
    _stub()


# ================================================================================= 19 deploy and scale
def _affine(x, n_bits, r_min, r_max, steps=None, rounding=np.rint, zp_sign=1.0, round_zp=True):
    q_max = 2 ** n_bits - 1
    scale = (r_max - r_min) / (steps or q_max) if r_max > r_min else 1.0
    zero_point = zp_sign * (-r_min / scale)
    zero_point = int(np.rint(zero_point)) if round_zp else zero_point
    return np.clip(rounding(np.asarray(x) / scale) + zero_point, 0, q_max), scale, zero_point


@mistake("19.1", "the range must contain 0")
def range_without_zero(x, n_bits=8):
    return _affine(x, n_bits, float(np.min(x)), float(np.max(x)))


@mistake("19.1", "not / 2^b")
def two_to_the_b_steps(x, n_bits=8):
    return _affine(x, n_bits, min(np.min(x), 0.0), max(np.max(x), 0.0), steps=2 ** n_bits)


@mistake("19.1", "truncated")
def truncated_codes(x, n_bits=8):
    return _affine(x, n_bits, min(np.min(x), 0.0), max(np.max(x), 0.0), rounding=np.floor)


@mistake("19.1", "zero point has the wrong sign")
def zero_point_sign(x, n_bits=8):
    return _affine(x, n_bits, min(np.min(x), 0.0), max(np.max(x), 0.0), zp_sign=-1.0)


@mistake("19.1", "zero point must be an integer")
def unrounded_zero_point(x, n_bits=8):
    return _affine(x, n_bits, min(np.min(x), 0.0), max(np.max(x), 0.0), round_zp=False)


@mistake("19.1", "a symmetric range")
def symmetric_range(x, n_bits=8):
    x = np.asarray(x, dtype=float)
    q_max = 2 ** n_bits - 1
    bound = np.abs(x).max()
    scale = 2 * bound / q_max if bound > 0 else 1.0
    zero_point = int(np.rint(q_max / 2))
    return np.clip(np.rint(x / scale) + zero_point, 0, q_max), scale, zero_point


@mistake("19.1", "then add the integer zero point")
def offset_rounding(x, n_bits=8):
    x = np.asarray(x, dtype=float)
    q_max = 2 ** n_bits - 1
    r_min, r_max = min(x.min(), 0.0), max(x.max(), 0.0)
    scale = (r_max - r_min) / q_max if r_max > r_min else 1.0
    return np.clip(np.rint((x - r_min) / scale), 0, q_max), scale, int(np.rint(-r_min / scale))


@mistake("19.1", "not implemented yet")
def quantize_stub(x, n_bits=8):
    _stub()


@mistake("19.2", "warm-up calls were timed too")
def warmup_timed(run, audio_seconds, n_warmup=3, n_repeats=20, clock=None):
    durations = []
    for _ in range(n_warmup + n_repeats):
        start = clock()
        run()
        durations.append(clock() - start)
    return float(np.median(durations)) / audio_seconds


@mistake("19.2", "report the median")
def mean_of_repeats(run, audio_seconds, n_warmup=3, n_repeats=20, clock=None):
    for _ in range(n_warmup):
        run()
    start = clock()
    for _ in range(n_repeats):
        run()
    return (clock() - start) / n_repeats / audio_seconds


@mistake("19.2", "the minimum is the luckiest call")
def minimum_of_repeats(run, audio_seconds, n_warmup=3, n_repeats=20, clock=None):
    for _ in range(n_warmup):
        run()
    durations = []
    for _ in range(n_repeats):
        start = clock()
        run()
        durations.append(clock() - start)
    return min(durations) / audio_seconds


@mistake("19.2", "divide by audio_seconds")
def seconds_per_call(run, audio_seconds, n_warmup=3, n_repeats=20, clock=None):
    for _ in range(n_warmup):
        run()
    durations = []
    for _ in range(n_repeats):
        start = clock()
        run()
        durations.append(clock() - start)
    return float(np.median(durations))


@mistake("19.2", "time with the `clock` argument")
def real_clock_instead_of_argument(run, audio_seconds, n_warmup=3, n_repeats=20, clock=None):
    import time as real_time

    for _ in range(n_warmup):
        run()
    durations = []
    for _ in range(n_repeats):
        start = real_time.perf_counter()
        run()
        durations.append(real_time.perf_counter() - start)
    return float(np.median(durations)) / audio_seconds


@mistake("19.2", "run was called")
def no_warmup_calls(run, audio_seconds, n_warmup=3, n_repeats=20, clock=None):
    durations = []
    for _ in range(n_repeats):
        start = clock()
        run()
        durations.append(clock() - start)
    return float(np.median(durations)) / audio_seconds


@mistake("19.2", "not implemented yet")
def latency_stub(run, audio_seconds, n_warmup=3, n_repeats=20, clock=None):
    _stub()



# ================================================================================= the tests
@pytest.mark.parametrize("exercise_id,wrong_answer,phrase", MISTAKES)
def test_check_rejects_the_mistake_and_names_it(exercise_id, wrong_answer, phrase):
    result = check.exercise(exercise_id, wrong_answer, quiet=True, strict=False)
    assert not result, f"{exercise_id}: the wrong answer {wrong_answer.__name__} passed"
    assert "Traceback" not in result.message
    assert phrase in result.message, result.message


def test_every_exercise_has_a_list_of_mistakes():
    listed: dict[str, int] = {}
    for param in MISTAKES:
        listed[param.values[0]] = listed.get(param.values[0], 0) + 1
    for exercise_id in check.registered_exercises():
        assert listed.get(exercise_id, 0) >= 4, f"exercise {exercise_id}: list its classic mistakes here"
