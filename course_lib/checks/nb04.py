"""Checks for 04_features_and_preprocessing: a mel filterbank and spectral subtraction from scratch.

Each check compares the student's function with ``course_lib.dsp`` on several inputs and, before
the generic value comparison, recognises the usual mistakes (HTK instead of Slaney mels, no area
normalisation, subtracting magnitudes instead of powers, no spectral floor, a wrong output length)
to name them in the hint.

Notebook: 04_features_and_preprocessing
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import Case, compare_arrays, exercise_check

__all__: list[str] = []


def _as_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else value


def _close(a, b, atol: float) -> bool:
    a = _as_numpy(a)
    return isinstance(a, np.ndarray) and a.shape == np.shape(b) and bool(np.allclose(a, b, atol=atol, rtol=1e-5))


@exercise_check("04.1", "a mel filterbank from scratch")
def _check_mel_filterbank(candidate):
    from course_lib import dsp

    for sr, n_fft, n_mels, fmin, fmax in [(16000, 512, 40, 0.0, None), (8000, 256, 20, 100.0, 3800.0),
                                          (22050, 2048, 128, 0.0, 8000.0), (16000, 1024, 64, 50.0, 7600.0)]:
        case = Case(f"sr={sr}, n_fft={n_fft}, n_mels={n_mels}, fmin={fmin}, fmax={fmax}")
        got = _as_numpy(case.call(candidate, sr, n_fft, n_mels, fmin, fmax))
        expected = dsp.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax)
        tol = 1e-6 * float(expected.max())
        if _close(got, expected.T, tol):
            case.fail("the bank is transposed: return shape (n_mels, 1 + n_fft // 2), one filter per row, "
                      "so that fb @ power_spectrogram maps bins to bands")
        if _close(got, dsp.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax, norm=None), tol):
            case.fail("the triangles peak at 1: apply Slaney's area normalisation, dividing filter i by "
                      "half its width in Hz, i.e. multiply by 2 / (f[i + 2] - f[i])")
        if _close(got, dsp.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax, htk=True), tol):
            case.fail("these are HTK mels (2595 log10(1 + f/700)); use Slaney's scale "
                      "(dsp.hz_to_mel / dsp.mel_to_hz with htk=False), as librosa does by default")
        if isinstance(got, np.ndarray) and got.shape == expected.shape:
            sums = np.count_nonzero(got, axis=1)
            if np.any(sums == 0) and not np.any(np.count_nonzero(expected, axis=1) == 0):
                case.fail(f"filter {int(np.argmax(sums == 0))} is all zeros: the n_mels + 2 edge frequencies "
                          "must be equally spaced in mel between fmin and fmax (np.linspace in mel, then to Hz)")
        compare_arrays(case, got, expected, atol=tol, rtol=1e-5, name="filterbank")
        yield case


def _noisy_example(sr: int, seed: int, snr_db: float) -> np.ndarray:
    """0.3 s of noise only, then a harmonic tone burst in the same noise."""
    from course_lib import dsp

    rng = np.random.default_rng(seed)
    lead = int(0.3 * sr)
    # An odd length: a result that drops the samples after the last full hop is then caught.
    t = np.arange(int(0.5 * sr) + 37) / sr
    voiced = sum(np.sin(2 * np.pi * k * 180 * t) / k for k in range(1, 6)) * np.hanning(t.size)
    clean = np.concatenate([np.zeros(lead), 0.3 * voiced])
    noise = rng.standard_normal(clean.size)
    return dsp.add_noise(clean, noise, snr_db, rng=rng) if snr_db is not None else clean + noise


def _subtraction_variants(noisy, sr, duration, n_fft, hop, alpha, floor) -> dict[str, np.ndarray]:
    """Plausible mistakes, each with the hint that names it."""
    from course_lib import dsp

    Y = dsp.stft(noisy, n_fft=n_fft, hop_length=hop)
    power = np.abs(Y) ** 2
    n_frames = max(1, int(duration * sr) // hop)
    noise = power[:, :n_frames].mean(axis=1, keepdims=True)
    tiny = np.finfo(np.float64).tiny

    def rebuild(clean_power: np.ndarray) -> np.ndarray:
        gain = np.sqrt(clean_power / np.maximum(power, tiny))
        return dsp.istft(gain * Y, hop_length=hop, length=noisy.size)

    magnitude = np.abs(Y)
    noise_mag = magnitude[:, :n_frames].mean(axis=1, keepdims=True)
    mag_clean = np.maximum(magnitude - alpha * noise_mag, np.sqrt(floor) * magnitude)
    return {
        "no spectral floor: keep max(|Y|^2 - alpha N, floor |Y|^2), not max(..., 0)":
            rebuild(np.maximum(power - alpha * noise, 0.0)),
        "over_subtraction is ignored: subtract alpha times the noise power":
            rebuild(np.maximum(power - noise, floor * power)),
        "you subtracted magnitudes: subtract noise *power* from |Y|^2 (Boll's power subtraction)":
            dsp.istft(mag_clean * np.exp(1j * np.angle(Y)), hop_length=hop, length=noisy.size),
        "the noise was averaged over the whole signal: use only the first "
        "int(noise_duration * sr) // hop_length frames (assumed speech-free)":
            rebuild(np.maximum(power - alpha * power.mean(axis=1, keepdims=True), floor * power)),
    }


@exercise_check("04.2", "spectral subtraction")
def _check_spectral_subtraction(candidate):
    from course_lib import dsp

    for sr, snr, duration, n_fft, hop, alpha, floor in [(8000, 5.0, 0.25, 256, 64, 2.0, 0.02),
                                                        (16000, 0.0, 0.2, 512, 128, 1.5, 0.05),
                                                        (16000, 15.0, 0.25, 512, 160, 3.0, 0.01)]:
        noisy = _noisy_example(sr, seed=int(snr) + n_fft, snr_db=snr)
        kwargs = dict(noise_duration=duration, n_fft=n_fft, hop_length=hop, over_subtraction=alpha, floor=floor)
        case = Case(f"sr={sr}, input SNR {snr} dB, " + ", ".join(f"{k}={v}" for k, v in kwargs.items()))
        got = _as_numpy(case.call(candidate, noisy.copy(), sr, **kwargs))
        expected = dsp.spectral_subtraction(noisy, sr, **kwargs)
        if isinstance(got, np.ndarray) and got.ndim == 1 and got.size != noisy.size:
            case.fail(f"{got.size} samples, expected len(noisy) = {noisy.size}: pass length=len(noisy) "
                      "to the inverse STFT")
        if isinstance(got, np.ndarray) and np.iscomplexobj(got):
            case.fail("the result is complex: return the time-domain signal (inverse STFT), not the spectrum")
        for hint, wrong in _subtraction_variants(noisy, sr, duration, n_fft, hop, alpha, floor).items():
            if _close(got, wrong, 1e-6) and not _close(wrong, expected, 1e-6):
                case.fail(hint)
        compare_arrays(case, got, expected, atol=1e-6, rtol=1e-5, name="denoised signal")
        yield case
