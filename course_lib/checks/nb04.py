"""Checks for 04_features_and_preprocessing: a mel filterbank and spectral subtraction from scratch.

Each check compares the student's function with ``course_lib.dsp`` on several inputs and, before
the generic value comparison, recognises the usual mistakes (HTK instead of Slaney mels, edges
spaced in Hz, no or the wrong normalisation; a scalar noise estimate, subtracting magnitudes
instead of powers, a power gain applied to amplitudes, no spectral floor, a wrong output length)
to name them in the hint.

Notebook: 04_features_and_preprocessing
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import (Case, as_numpy, compare_arrays, exercise_check, matches,
                               reject_known_mistakes)

__all__: list[str] = []


def _triangles(edges_hz: np.ndarray, bins_hz: np.ndarray) -> np.ndarray:
    """Unit-peak triangles between consecutive edge triples, shape (len(edges) - 2, len(bins))."""
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    return np.maximum(0.0, np.minimum((bins_hz - lower) / (centre - lower), (upper - bins_hz) / (upper - centre)))


def _filterbank_mistakes(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> dict:
    """Plausible wrong filterbanks, each with the hint that names its mistake (computed lazily)."""
    from course_lib import dsp

    mel_edges = np.linspace(dsp.hz_to_mel(fmin), dsp.hz_to_mel(fmax), n_mels + 2)
    edges = dsp.mel_to_hz(mel_edges)
    bins = np.fft.rfftfreq(n_fft, 1 / sr)
    area = 2.0 / (edges[2:] - edges[:-2])[:, None]

    def full_band():
        full = dsp.mel_to_hz(np.linspace(dsp.hz_to_mel(0.0), dsp.hz_to_mel(sr / 2), n_mels + 2))
        return _triangles(full, bins) * 2.0 / (full[2:] - full[:-2])[:, None]

    def unclipped():
        lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        return np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)) * area

    return {
        "the triangles peak at 1: apply Slaney's area normalisation, dividing filter i by "
        "half its width in Hz, i.e. multiply by 2 / (f[i + 2] - f[i])":
            lambda: _triangles(edges, bins),
        "these are HTK mels (2595 log10(1 + f/700)); use Slaney's scale "
        "(dsp.hz_to_mel / dsp.mel_to_hz with htk=False), as librosa does by default":
            lambda: dsp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk=True),
        "the edges are equally spaced in Hz: space the n_mels + 2 edges equally in *mel* "
        "(np.linspace between hz_to_mel(fmin) and hz_to_mel(fmax)), then convert them back to Hz":
            lambda: (lambda e: _triangles(e, bins) * 2.0 / (e[2:] - e[:-2])[:, None])(
                np.linspace(fmin, fmax, n_mels + 2)),
        "the area normalisation uses widths in mel: Slaney's factor 2 / (f[i + 2] - f[i]) takes "
        "the edge frequencies in Hz":
            lambda: _triangles(edges, bins) * 2.0 / (mel_edges[2:] - mel_edges[:-2])[:, None],
        "each filter is scaled to sum to 1: Slaney's normalisation divides by half the width in "
        "Hz, 2 / (f[i + 2] - f[i]), which is not the same as the sum over FFT bins":
            lambda: (lambda t: t / np.maximum(t.sum(axis=1, keepdims=True), 1e-300))(_triangles(edges, bins)),
        "the FFT bin frequencies go up to sr: bin k of an n_fft-point FFT is at k * sr / n_fft Hz, "
        "so the 1 + n_fft // 2 bins span 0 .. sr/2 (np.fft.rfftfreq(n_fft, 1 / sr))":
            lambda: _triangles(edges, np.linspace(0, sr, 1 + n_fft // 2)) * area,
        "fmin and fmax are ignored: the edges run from fmin to fmax (fmax = sr / 2 when None)":
            full_band,
        "negative values outside the triangles: clip with np.maximum(0, ...) so each filter is "
        "zero outside its three edges":
            unclipped,
    }


@exercise_check("04.1", "a mel filterbank from scratch")
def _check_mel_filterbank(candidate):
    from course_lib import dsp

    for sr, n_fft, n_mels, fmin, fmax in [(16000, 512, 40, 0.0, None), (8000, 256, 20, 100.0, 3800.0),
                                          (22050, 2048, 128, 0.0, 8000.0), (16000, 1024, 64, 50.0, 7600.0)]:
        case = Case(f"sr={sr}, n_fft={n_fft}, n_mels={n_mels}, fmin={fmin}, fmax={fmax}")
        got = as_numpy(case.call(candidate, sr, n_fft, n_mels, fmin, fmax))
        expected = dsp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        tol = 1e-6 * float(expected.max())
        if matches(got, expected.T, atol=tol, rtol=1e-5):
            case.fail("the bank is transposed: return shape (n_mels, 1 + n_fft // 2), one filter per row, "
                      "so that fb @ power_spectrogram maps bins to bands")
        if got is not None and got.ndim == 2 and got.shape[1] == expected.shape[1]:
            if got.shape[0] == n_mels - 2:
                case.fail(f"{got.shape[0]} filters, expected n_mels = {n_mels}: each triangle needs three "
                          "edges (lower, centre, upper), so n_mels filters need n_mels + 2 edge frequencies")
            if got.shape[1] == n_fft and got.shape[0] == n_mels:
                case.fail(f"{got.shape[1]} columns: the real FFT has 1 + n_fft // 2 = {1 + n_fft // 2} bins")
        if got is not None and got.ndim == 2 and got.shape == (n_mels, n_fft):
            case.fail(f"{n_fft} columns, expected 1 + n_fft // 2 = {1 + n_fft // 2}: the filterbank "
                      "applies to the non-negative frequency bins of np.fft.rfft")
        reject_known_mistakes(case, got, expected,
                              _filterbank_mistakes(sr, n_fft, n_mels, fmin, sr / 2 if fmax is None else fmax),
                              atol=tol, rtol=1e-5)
        if got is not None and got.shape == expected.shape:
            nonzero = np.count_nonzero(got, axis=1)
            if np.any(nonzero == 0) and not np.any(np.count_nonzero(expected, axis=1) == 0):
                case.fail(f"filter {int(np.argmax(nonzero == 0))} is all zeros: the n_mels + 2 edge frequencies "
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
    # Coloured noise (a first-order low-pass of white noise): its power differs from bin to bin,
    # so a single noise number for all frequencies is caught.
    white = rng.standard_normal(clean.size)
    noise = np.convolve(white, [1.0, 0.9])[: clean.size]
    return dsp.add_noise(clean, noise, snr_db)


def _subtraction_mistakes(noisy, sr, duration, n_fft, hop, alpha, floor) -> dict:
    """Plausible mistakes, each with the hint that names it (computed lazily)."""
    from course_lib import dsp

    Y = dsp.stft(noisy, n_fft=n_fft, hop_length=hop)
    power = np.abs(Y) ** 2
    n_frames = max(1, int(duration * sr) // hop)
    noise = power[:, :n_frames].mean(axis=1, keepdims=True)
    tiny = np.finfo(np.float64).tiny

    def rebuild(clean_power: np.ndarray) -> np.ndarray:
        gain = np.sqrt(clean_power / np.maximum(power, tiny))
        return dsp.istft(gain * Y, hop_length=hop, length=noisy.size)

    def magnitudes():
        magnitude = np.abs(Y)
        noise_mag = magnitude[:, :n_frames].mean(axis=1, keepdims=True)
        mag_clean = np.maximum(magnitude - alpha * noise_mag, np.sqrt(floor) * magnitude)
        return dsp.istft(mag_clean * np.exp(1j * np.angle(Y)), hop_length=hop, length=noisy.size)

    def default_settings():
        return dsp.spectral_subtraction(noisy, sr, noise_duration=duration, n_fft=512, hop_length=128,
                                        over_subtraction=alpha, floor=floor)

    clean = np.maximum(power - alpha * noise, floor * power)
    return {
        "no spectral floor: keep max(|Y|^2 - alpha N, floor |Y|^2), not max(..., 0)":
            lambda: rebuild(np.maximum(power - alpha * noise, 0.0)),
        "over_subtraction is ignored: subtract alpha times the noise power":
            lambda: rebuild(np.maximum(power - noise, floor * power)),
        "you subtracted magnitudes: subtract noise *power* from |Y|^2 (Boll's power subtraction)":
            magnitudes,
        "the noise was averaged over the whole signal (or over int(noise_duration * sr) frames, "
        "which counts samples, not frames): use only the first int(noise_duration * sr) // "
        "hop_length frames (assumed speech-free)":
            lambda: rebuild(np.maximum(power - alpha * power.mean(axis=1, keepdims=True), floor * power)),
        "the noise estimate is one number for all frequencies: noise is coloured, so estimate its "
        "power *per frequency bin*, averaging only over time (axis=1, keepdims=True), one value per row":
            lambda: rebuild(np.maximum(power - alpha * power[:, :n_frames].mean(), floor * power)),
        "the floor is an absolute power: the exercise's floor is relative, max(|Y|^2 - alpha N, "
        "floor * |Y|^2)":
            lambda: rebuild(np.maximum(power - alpha * noise, floor)),
        "the floor is taken relative to the noise estimate (floor * N): the exercise's floor is "
        "relative to the noisy power, floor * |Y|^2":
            lambda: rebuild(np.maximum(power - alpha * noise, floor * noise)),
        "the gain clean / |Y|^2 is a *power* ratio but Y holds amplitudes: multiply Y by its "
        "square root, sqrt(clean / |Y|^2)":
            lambda: dsp.istft(clean / np.maximum(power, tiny) * Y, hop_length=hop, length=noisy.size),
        "the phase was dropped (an inverse STFT of real magnitudes): keep the noisy phase, e.g. "
        "multiply Y itself by the real gain sqrt(clean / |Y|^2)":
            lambda: dsp.istft(np.sqrt(clean), hop_length=hop, length=noisy.size),
        "n_fft and hop_length are not the ones passed in: use the function's arguments, not "
        "the defaults 512 and 128":
            default_settings,
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
        got = as_numpy(case.call(candidate, noisy.copy(), sr, **kwargs))
        expected = dsp.spectral_subtraction(noisy, sr, **kwargs)
        if got is not None and got.ndim == 1 and got.size != noisy.size:
            case.fail(f"{got.size} samples, expected len(noisy) = {noisy.size}: pass length=len(noisy) "
                      "to the inverse STFT")
        if got is not None and np.iscomplexobj(got):
            case.fail("the result is complex: return the time-domain signal (inverse STFT), not the spectrum")
        if got is not None and got.ndim == 2:
            case.fail(f"the result has shape {got.shape}: return the time-domain signal (inverse STFT, "
                      f"{noisy.size} samples), not the spectrogram")
        reject_known_mistakes(case, got, expected,
                              _subtraction_mistakes(noisy, sr, duration, n_fft, hop, alpha, floor),
                              atol=1e-6, rtol=1e-5)
        compare_arrays(case, got, expected, atol=1e-6, rtol=1e-5, name="denoised signal")
        yield case


def _dct_mistakes(n_out: int, n_in: int) -> dict:
    """Plausible wrong DCT-II matrices for (n_out, n_in), each with the hint that names its mistake."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    kernel = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    scale = np.full((n_out, 1), np.sqrt(2.0 / n_in))
    scale[0] = np.sqrt(1.0 / n_in)

    def full_orthonormal(size: int) -> np.ndarray:
        rows = np.arange(size)[:, None]
        D = np.sqrt(2.0 / size) * np.cos(np.pi * rows * (2 * np.arange(size)[None, :] + 1) / (2 * size))
        D[0] /= np.sqrt(2.0)
        return D

    def scaled_by_n_out():
        s = np.full((n_out, 1), np.sqrt(2.0 / n_out))
        s[0] = np.sqrt(1.0 / n_out)
        return s * kernel

    return {
        "no scale factors (plain cosines): multiply row 0 by sqrt(1/n_in) and every other row by "
        "sqrt(2/n_in), which makes the rows orthonormal (D @ D.T = I)":
            lambda: kernel,
        "this is scipy's unnormalised DCT-II (norm=None, 2 cos(...)): the orthonormal DCT (norm='ortho', "
        "what librosa's MFCC uses) scales row 0 by sqrt(1/n_in) and the others by sqrt(2/n_in)":
            lambda: 2.0 * kernel,
        "row 0 is too large by sqrt(2): the constant row (k = 0) takes s_0 = sqrt(1/n_in), the other rows "
        "sqrt(2/n_in)":
            lambda: np.sqrt(2.0 / n_in) * kernel,
        "every row is scaled by sqrt(1/n_in): only the constant row (k = 0) uses sqrt(1/n_in); rows k >= 1 "
        "need sqrt(2/n_in)":
            lambda: np.sqrt(1.0 / n_in) * kernel,
        "the cosine has no half-sample shift: the DCT-II kernel is cos(pi k (2n + 1) / (2 n_in)), "
        "not cos(pi k n / n_in)":
            lambda: scale * np.cos(np.pi * k * n / n_in),
        "the scale factors use n_out: s_0 = sqrt(1/n_in) and s_k = sqrt(2/n_in) depend on the input "
        "length n_in (the number of mel bands), not on the number of coefficients kept":
            scaled_by_n_out,
        "k and n are swapped (that is the DCT-III, the inverse DCT): row k is coefficient k, "
        "D[k, n] = s_k cos(pi k (2n + 1) / (2 n_in)), with the scale s_k chosen by the row":
            lambda: full_orthonormal(n_in).T[:n_out],
        "the rows start at k = 1: the first coefficient is the constant row k = 0 (the frame's mean "
        "level), so k runs over 0 .. n_out - 1":
            lambda: full_orthonormal(n_in)[1:n_out + 1],
    }


@exercise_check("04.3", "the DCT-II matrix of MFCCs")
def _check_dct_matrix(candidate):
    from course_lib import dsp

    for n_out, n_in in [(13, 40), (40, 40), (5, 7), (20, 128), (1, 8)]:
        case = Case(f"n_out={n_out}, n_in={n_in}")
        got = as_numpy(case.call(candidate, n_out, n_in))
        expected = dsp.dct_matrix(n_out, n_in)
        if n_out != n_in and matches(got, expected.T, atol=1e-10, rtol=1e-8):
            case.fail("the matrix is transposed: return shape (n_out, n_in), one row per coefficient, so "
                      "that D @ log_mel maps the n_in mel bands of each frame to n_out coefficients")
        if got is not None and got.ndim == 2 and got.shape == (n_in, n_in) and n_out < n_in:
            case.fail(f"{n_in} rows, expected n_out = {n_out}: keep only the first n_out coefficients "
                      "(rows k = 0 .. n_out - 1)")
        reject_known_mistakes(case, got, expected, _dct_mistakes(n_out, n_in), atol=1e-10, rtol=1e-8)
        compare_arrays(case, got, expected, atol=1e-10, rtol=1e-8, name="DCT matrix")
        yield case
