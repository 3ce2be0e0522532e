"""Checks of notebooks 03 and 04: the reference solutions pass; typical mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks as check
from course_lib import dsp


def _hint(exercise_id: str, fn) -> str:
    result = check.exercise(exercise_id, fn, quiet=True, strict=False)
    assert not result, f"a wrong answer passed {exercise_id}"
    return result.message


# ---------------------------------------------------------------------------- solutions as written
# The same code as the solution cells of the notebooks (students write these from scratch).
def frame_solution(x, frame_length, hop_length):
    n_frames = 1 + (len(x) - frame_length) // hop_length
    starts = hop_length * np.arange(n_frames)
    return x[starts[None, :] + np.arange(frame_length)[:, None]]


def stft_solution(x, n_fft, hop_length):
    padded = np.pad(x, n_fft // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = frame_solution(padded, n_fft, hop_length)
    return np.fft.rfft(frames * window[:, None], axis=0)


def mel_filterbank_solution(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    fmax = sr / 2 if fmax is None else fmax
    edges = dsp.mel_to_hz(np.linspace(dsp.hz_to_mel(fmin), dsp.hz_to_mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / sr)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    triangles = np.maximum(0, np.minimum(rising, falling))
    return triangles * (2 / (upper - lower))


def spectral_subtraction_solution(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128,
                                  over_subtraction=2.0, floor=0.02):
    Y = dsp.stft(noisy, n_fft=n_fft, hop_length=hop_length)
    power = np.abs(Y) ** 2
    n_noise = max(1, int(noise_duration * sr) // hop_length)
    noise = power[:, :n_noise].mean(axis=1, keepdims=True)
    clean = np.maximum(power - over_subtraction * noise, floor * power)
    gain = np.sqrt(clean / np.maximum(power, 1e-300))
    return dsp.istft(gain * Y, hop_length=hop_length, length=len(noisy))


@pytest.mark.parametrize("exercise_id,fn", [
    ("03.1", frame_solution),
    ("03.1", dsp.frame),
    ("03.2", stft_solution),
    ("03.2", lambda x, n_fft, hop: dsp.stft(x, n_fft=n_fft, hop_length=hop)),
    ("04.1", mel_filterbank_solution),
    ("04.1", lambda sr, n_fft, n_mels, fmin, fmax: dsp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)),
    ("04.2", spectral_subtraction_solution),
    ("04.2", dsp.spectral_subtraction),
])
def test_reference_solutions_pass(exercise_id, fn):
    result = check.exercise(exercise_id, fn, quiet=True, strict=True)
    assert result and result.n_cases >= 3


def test_librosa_versions_pass():
    librosa = pytest.importorskip("librosa")
    assert check.exercise("03.1", lambda x, fl, hop: librosa.util.frame(x, frame_length=fl, hop_length=hop),
                          quiet=True, strict=True)
    assert check.exercise("03.2", lambda x, n_fft, hop: librosa.stft(x, n_fft=n_fft, hop_length=hop),
                          quiet=True, strict=True)
    assert check.exercise("04.1", lambda sr, n_fft, n_mels, fmin, fmax: librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float64), quiet=True, strict=True)


def test_registered_titles():
    ids = check.registered_exercises()
    assert {"03.1", "03.2", "04.1", "04.2"} <= set(ids)


# ---------------------------------------------------------------------------- 03.1 frame
def test_frame_rows_instead_of_columns():
    assert "transpose" in _hint("03.1", lambda x, fl, hop: frame_solution(x, fl, hop).T)


def test_frame_off_by_one():
    def missing_last(x, fl, hop):
        return frame_solution(x, fl, hop)[:, :-1] if (len(x) - fl) % hop == 0 else frame_solution(x, fl, hop)

    def one_short(x, fl, hop):
        n_frames = (len(x) - fl) // hop  # forgot the 1 +
        return np.stack([x[t * hop:t * hop + fl] for t in range(n_frames)], axis=1)

    assert "off by one" in _hint("03.1", missing_last)
    assert "off by one" in _hint("03.1", one_short)


def test_frame_padding_and_wrong_hop():
    def padded(x, fl, hop):
        return frame_solution(np.pad(x, (0, fl)), fl, hop)

    assert "fit entirely" in _hint("03.1", padded)
    message = _hint("03.1", lambda x, fl, hop: frame_solution(x, fl, max(1, hop - 1))[:, : 1 + (len(x) - fl) // hop])
    assert "frames[" in message and "len(x)=" in message


# ---------------------------------------------------------------------------- 03.2 stft
def test_stft_specific_hints():
    def no_window(x, n_fft, hop):
        return np.fft.rfft(frame_solution(np.pad(x, n_fft // 2), n_fft, hop), axis=0)

    def symmetric(x, n_fft, hop):
        w = np.hanning(n_fft)
        return np.fft.rfft(frame_solution(np.pad(x, n_fft // 2), n_fft, hop) * w[:, None], axis=0)

    def uncentred(x, n_fft, hop):
        w = dsp.get_window("hann", n_fft)
        return np.fft.rfft(frame_solution(x, n_fft, hop) * w[:, None], axis=0)

    def full_fft(x, n_fft, hop):
        w = dsp.get_window("hann", n_fft)
        return np.fft.fft(frame_solution(np.pad(x, n_fft // 2), n_fft, hop) * w[:, None], axis=0)

    def reflect(x, n_fft, hop):
        return dsp.stft(np.pad(x, n_fft // 2, mode="reflect"), n_fft=n_fft, hop_length=hop, center=False)

    def stub(x, n_fft, hop):
        raise NotImplementedError("Exercise 03.2: compute the STFT")

    assert "no window" in _hint("03.2", no_window)
    assert "periodic" in _hint("03.2", symmetric)
    assert "centring" in _hint("03.2", uncentred)
    assert "rfft" in _hint("03.2", full_fft)
    assert "pad with zeros" in _hint("03.2", reflect)
    assert "complex STFT" in _hint("03.2", lambda x, n_fft, hop: np.abs(stft_solution(x, n_fft, hop)))
    assert "axis 0" in _hint("03.2", lambda x, n_fft, hop: stft_solution(x, n_fft, hop).T)
    assert "not implemented" in _hint("03.2", stub)


# ---------------------------------------------------------------------------- 04.1 mel filterbank
def test_mel_filterbank_specific_hints():
    def transposed(sr, n_fft, n_mels, fmin=0.0, fmax=None):
        return mel_filterbank_solution(sr, n_fft, n_mels, fmin, fmax).T

    def peak_one(sr, n_fft, n_mels, fmin=0.0, fmax=None):
        return dsp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, norm=None)

    def htk(sr, n_fft, n_mels, fmin=0.0, fmax=None):
        return dsp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk=True)

    def linear_edges(sr, n_fft, n_mels, fmin=0.0, fmax=None):
        fmax = sr / 2 if fmax is None else fmax
        edges = np.linspace(fmin, fmax, n_mels + 2)  # Hz, not mel
        bins = np.fft.rfftfreq(n_fft, 1 / sr)
        lo, c, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        tri = np.maximum(0, np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)))
        return tri * (2 / (hi - lo))

    assert "transposed" in _hint("04.1", transposed)
    assert "area normalisation" in _hint("04.1", peak_one)
    assert "HTK" in _hint("04.1", htk)
    message = _hint("04.1", linear_edges)
    assert "sr=16000, n_fft=512" in message and "expected" in message


# ---------------------------------------------------------------------------- 04.2 spectral subtraction
def _variant(**changes):
    def wrong(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128, over_subtraction=2.0, floor=0.02):
        Y = dsp.stft(noisy, n_fft=n_fft, hop_length=hop_length)
        power = np.abs(Y) ** 2
        n_noise = max(1, int(noise_duration * sr) // hop_length)
        noise = power.mean(axis=1, keepdims=True) if changes.get("whole") else \
            power[:, :n_noise].mean(axis=1, keepdims=True)
        alpha = 1.0 if changes.get("no_alpha") else over_subtraction
        beta = 0.0 if changes.get("no_floor") else floor
        clean = np.maximum(power - alpha * noise, beta * power)
        gain = np.sqrt(clean / np.maximum(power, 1e-300))
        length = None if changes.get("no_length") else len(noisy)
        return dsp.istft(gain * Y, hop_length=hop_length, length=length)
    return wrong


def test_spectral_subtraction_specific_hints():
    assert "spectral floor" in _hint("04.2", _variant(no_floor=True))
    assert "over_subtraction is ignored" in _hint("04.2", _variant(no_alpha=True))
    assert "whole signal" in _hint("04.2", _variant(whole=True))
    assert "length=len(noisy)" in _hint("04.2", _variant(no_length=True))

    def magnitudes(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128, over_subtraction=2.0, floor=0.02):
        Y = dsp.stft(noisy, n_fft=n_fft, hop_length=hop_length)
        mag = np.abs(Y)
        n_noise = max(1, int(noise_duration * sr) // hop_length)
        clean = np.maximum(mag - over_subtraction * mag[:, :n_noise].mean(axis=1, keepdims=True),
                           np.sqrt(floor) * mag)
        return dsp.istft(clean * np.exp(1j * np.angle(Y)), hop_length=hop_length, length=len(noisy))

    assert "subtracted magnitudes" in _hint("04.2", magnitudes)
    assert "complex" in _hint("04.2", lambda noisy, sr, **kw: dsp.stft(noisy))
