"""course_lib.dsp against the public references: numpy.fft, scipy, librosa, torch/torchaudio.

Tolerances are stated per test. librosa's first call JIT-compiles (numba caches to disk), so
the librosa tests share module-scoped signals and stay few.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import scipy.signal
import torch
import torchaudio

from course_lib import dsp

SR = 16000


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _speechlike(sr: int = SR, seconds: float = 1.5, silence_s: float = 0.3) -> np.ndarray:
    """A harmonic tone (180 Hz and 4 overtones) with a 3 Hz syllable-rate envelope after silence."""
    t = np.arange(int(seconds * sr)) / sr
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    voiced = envelope * sum(np.sin(2 * np.pi * k * 180 * t) / k for k in range(1, 6))
    return np.where(t >= silence_s, 0.3 * voiced, 0.0)


# ---------------------------------------------------------------- DFT and convolution (nb 02)


@pytest.mark.parametrize("n", [1, 7, 8, 100, 257])
def test_dft_matrix_and_dft_match_numpy_fft(rng, n):
    x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    W = dsp.dft_matrix(n)
    assert W.shape == (n, n)
    np.testing.assert_allclose(W @ x, np.fft.fft(x), atol=1e-10 * n)
    batch = rng.standard_normal((3, n))
    np.testing.assert_allclose(dsp.dft(batch), np.fft.fft(batch, axis=-1), atol=1e-10 * n)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("n_x,n_h", [(101, 9), (64, 64), (10, 31), (1, 1)])
def test_fft_convolve_and_toeplitz_match_np_convolve(rng, mode, n_x, n_h):
    x, h = rng.standard_normal(n_x), rng.standard_normal(n_h)
    expected = np.convolve(x, h, mode=mode)
    np.testing.assert_allclose(dsp.fft_convolve(x, h, mode), expected, atol=1e-12)
    T = dsp.convolution_matrix(h, n_x, mode)
    np.testing.assert_array_equal(T, scipy.linalg.convolution_matrix(h, n_x, mode))
    np.testing.assert_allclose(T @ x, expected, atol=1e-12)


def test_circular_convolve_matches_definition_and_differs_from_linear(rng):
    n = 16
    x, h = rng.standard_normal(n), rng.standard_normal(5)
    direct = np.array([sum(h[m] * x[(k - m) % n] for m in range(h.size)) for k in range(n)])
    np.testing.assert_allclose(dsp.circular_convolve(x, h), direct, atol=1e-12)
    # Wrap-around: the circular result is the linear one with its tail folded onto the start.
    linear = np.convolve(x, h)
    folded = linear[:n].copy()
    folded[: h.size - 1] += linear[n:]
    np.testing.assert_allclose(dsp.circular_convolve(x, h), folded, atol=1e-12)
    assert np.abs(dsp.circular_convolve(x, h) - linear[:n]).max() > 1e-3


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "boxcar"])
@pytest.mark.parametrize("n", [1, 2, 9, 512])
@pytest.mark.parametrize("fftbins", [True, False])
def test_get_window_matches_scipy(name, n, fftbins):
    expected = scipy.signal.get_window(name, n, fftbins=fftbins)
    np.testing.assert_allclose(dsp.get_window(name, n, fftbins), expected, atol=1e-14)


@pytest.mark.parametrize("num_taps,cutoff,sr,window", [(31, 1000, 16000, "hamming"),
                                                       (64, 3000, 22050, "hann"),
                                                       (101, 200, 8000, "blackman")])
def test_fir_lowpass_matches_firwin_and_filters(num_taps, cutoff, sr, window):
    h = dsp.fir_lowpass(cutoff, sr, num_taps, window=window)
    np.testing.assert_allclose(
        h, scipy.signal.firwin(num_taps, cutoff, window=window, fs=sr), atol=1e-12
    )
    freqs, response = scipy.signal.freqz(h, worN=4096, fs=sr)
    assert abs(abs(response[0]) - 1) < 1e-9  # unit DC gain
    assert np.abs(response[freqs > 2.5 * cutoff + 4 * sr / num_taps]).max() < 0.05


# ---------------------------------------------------------------- sound as signal (nb 01)


def test_quantize_snr_follows_6_02n_plus_1_76(rng):
    t = np.arange(SR) / SR
    sine = np.sin(2 * np.pi * 997.3 * t + 0.1)  # full scale, not locked to the sample grid
    for bits in range(8, 17):
        q = dsp.quantize(sine, bits)
        assert np.unique(q).size <= 2**bits
        assert abs(dsp.snr_db(sine, q) - (6.02 * bits + 1.76)) < 0.5, bits
    # Mid-rise: levels are odd multiples of delta/2, no level at 0; clipping beyond full scale.
    np.testing.assert_allclose(dsp.quantize(np.array([0.0, -1e-9, 2.0, -2.0]), 3),
                               [0.125, -0.125, 0.875, -0.875])


def test_aliased_frequency_predicts_measured_peak():
    sr = 8000
    for f in [1000.0, 5000.0, 7900.0, 12345.0]:
        n = sr  # 1 s: 1 Hz bins
        x = np.sin(2 * np.pi * f * np.arange(n) / sr)
        measured = np.argmax(np.abs(np.fft.rfft(x))) * sr / n
        assert abs(dsp.aliased_frequency(f, sr) - measured) <= 1.0
    np.testing.assert_allclose(dsp.aliased_frequency(np.array([0, 4000, 8000, 9000]), sr),
                               [0, 4000, 0, 1000])


@pytest.mark.parametrize("target", [-5.0, 0.0, 10.0, 30.0])
@pytest.mark.parametrize("noise_len", [700, 16000, 40000])
def test_add_noise_hits_the_requested_snr(rng, target, noise_len):
    x = np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    y = dsp.add_noise(x, rng.standard_normal(noise_len), target, rng=0)
    assert y.shape == x.shape
    assert abs(dsp.snr_db(x, y) - target) < 0.01


def test_levels_match_librosa(rng):
    y = 0.1 * rng.standard_normal(5000)
    np.testing.assert_allclose(dsp.rms(y, 2048, 512), librosa.feature.rms(y=y)[0], atol=1e-7)
    np.testing.assert_allclose(dsp.rms(y, 400, 160, center=False),
                               librosa.feature.rms(y=y, frame_length=400, hop_length=160,
                                                   center=False)[0], atol=1e-7)
    assert abs(dsp.rms(np.full(100, -0.5)) - 0.5) < 1e-12
    a = np.abs(y)
    np.testing.assert_allclose(dsp.amplitude_to_db(a, ref=np.max),
                               librosa.amplitude_to_db(a, ref=np.max), atol=1e-9)
    np.testing.assert_allclose(dsp.power_to_db(a**2, top_db=None),
                               librosa.power_to_db(a**2, top_db=None), atol=1e-9)


# ---------------------------------------------------------------- STFT family (nb 03)


def test_frame_matches_librosa(rng):
    x = rng.standard_normal(1001)
    for fl, hop in [(400, 160), (1001, 1), (7, 3)]:
        np.testing.assert_array_equal(dsp.frame(x, fl, hop),
                                      librosa.util.frame(x, frame_length=fl, hop_length=hop))
    with pytest.raises(ValueError, match="shorter than frame_length"):
        dsp.frame(x[:10], 20, 5)


STFT_CASES = [  # (n_samples, n_fft, hop_length, win_length)
    (4001, 512, None, None),
    (4000, 500, 125, None),
    (3001, 1000, 200, 800),
    (1000, 255, 64, 200),  # odd n_fft
    (300, 1000, 250, None),  # short signal: shorter than n_fft, only valid centred
]


@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("n,n_fft,hop,win", STFT_CASES)
def test_stft_matches_librosa_and_torch_and_inverts(rng, center, n, n_fft, hop, win):
    if not center and n < n_fft:
        with pytest.raises(ValueError, match="n_fft"):
            dsp.stft(rng.standard_normal(n), n_fft, hop, win, center=False)
        return
    x = rng.standard_normal(n)
    S = dsp.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, center=center)
    ref = librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, center=center,
                       pad_mode="constant")
    assert S.shape == ref.shape
    # All three are float64 FFTs of the same frames: they differ by rounding, a few ulps of the
    # peak (measured <= 7e-16 x peak for these sizes); 1e-13 leaves a 100x margin.
    peak = np.abs(ref).max()
    assert np.abs(S - ref).max() < 1e-13 * peak
    window = torch.hann_window(win or n_fft, dtype=torch.float64)
    ref_torch = torch.stft(torch.from_numpy(x), n_fft, hop_length=hop, win_length=win,
                           window=window, center=center, pad_mode="constant",
                           return_complex=True).numpy()
    assert np.abs(S - ref_torch).max() < 1e-13 * peak

    y = dsp.istft(S, hop_length=hop, win_length=win, center=center, n_fft=n_fft,
                  length=n if center else None)
    y_ref = librosa.istft(ref, hop_length=hop, win_length=win, center=center, n_fft=n_fft,
                          length=n if center else None)
    # Uncentred, the edges are seen only through the window's zero/near-zero ends and the tail
    # after the last frame not at all: check where at least one frame covers the sample fully.
    # There both inverses agree to rounding; at the edges they divide by a near-zero sum of
    # squared windows, which magnifies the same rounding (measured 3e-12): 1e-9 there.
    lo, hi = (0, n) if center else (n_fft // 2, y.size - n_fft // 2)
    np.testing.assert_allclose(y[lo:hi], y_ref[lo:hi], rtol=0, atol=1e-12)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(y[lo:hi], x[lo:hi], rtol=0, atol=1e-12)


def test_stft_reflect_padding_matches_librosa(rng):
    x = rng.standard_normal(3000)
    S = dsp.stft(x, n_fft=512, hop_length=128, pad_mode="reflect")
    ref = librosa.stft(x, n_fft=512, hop_length=128, pad_mode="reflect")
    assert np.abs(S - ref).max() < 1e-13 * np.abs(ref).max()
    assert np.abs(S[:, 0] - dsp.stft(x, n_fft=512, hop_length=128)[:, 0]).max() > 1e-3


def test_stft_batched_and_float32(rng):
    x = rng.standard_normal((2, 3000)).astype(np.float32)
    S = dsp.stft(x, n_fft=512, hop_length=128)
    assert S.shape == (2, 257, 1 + 3000 // 128)
    # The reference computes in float64 whatever the input (the window is float64): each batch
    # row is librosa's float64 STFT of that row, to rounding.
    assert S.dtype == np.complex128
    ref = librosa.stft(x[1].astype(np.float64), n_fft=512, hop_length=128)
    assert np.abs(S[1] - ref).max() < 1e-13 * np.abs(ref).max()
    np.testing.assert_allclose(dsp.istft(S, 128, length=3000), x, atol=1e-5)


def test_cola_error():
    assert dsp.cola_error("hann", 256, 1024) < 1e-12  # periodic Hann at 75 % overlap
    assert dsp.cola_error("hann", 512, 1024) < 1e-12
    assert dsp.cola_error("hann", 256, 1024, power=2) < 1e-12
    assert dsp.cola_error("hann", 300, 1024) > 0.01
    assert dsp.cola_error("boxcar", 1024, 1024) < 1e-12
    for hop in [256, 300, 512]:
        w = scipy.signal.get_window("hann", 1024)
        ok = scipy.signal.check_COLA(w, 1024, 1024 - hop)
        assert ok == (dsp.cola_error(w, hop) < 1e-10)


def test_griffin_lim_matches_librosa_and_converges(rng):
    x = _speechlike(seconds=0.6, silence_s=0.0)
    S = np.abs(dsp.stft(x, n_fft=512, hop_length=128))
    ours = dsp.griffin_lim(S, n_iter=5, hop_length=128, rng=np.random.default_rng(3),
                           length=x.size)
    ref = librosa.griffinlim(S, n_iter=5, hop_length=128, length=x.size,
                             random_state=np.random.default_rng(3))
    np.testing.assert_allclose(ours, ref, atol=1e-8)
    y, history = dsp.griffin_lim(S, n_iter=32, hop_length=128, rng=0, return_history=True)
    assert len(history) == 32
    assert history[-1] < 0.5 * history[0]
    final = dsp.spectral_convergence(S, np.abs(dsp.stft(y, 512, 128)))
    assert final < history[0]


def test_morlet_scalogram_peaks_at_the_tone():
    t = np.arange(SR) / SR
    freqs = np.array([110.0, 220.0, 440.0, 880.0, 1760.0])
    C = dsp.morlet_scalogram(0.7 * np.sin(2 * np.pi * 440 * t), SR, freqs)
    assert C.shape == (5, SR)
    middle = np.abs(C[:, SR // 2])
    assert np.argmax(middle) == 2
    assert abs(middle[2] - 0.7) < 1e-3  # amplitude-normalised wavelets
    assert middle[[0, 1, 3, 4]].max() < 0.01


# ---------------------------------------------------------------- mel, MFCC, denoising (nb 04)


def test_mel_scale_roundtrip_and_librosa():
    f = np.array([0.0, 100.0, 999.0, 1000.0, 4000.0, 11025.0])
    for htk in [False, True]:
        np.testing.assert_allclose(dsp.hz_to_mel(f, htk=htk), librosa.hz_to_mel(f, htk=htk),
                                   rtol=1e-12)
        np.testing.assert_allclose(dsp.mel_to_hz(dsp.hz_to_mel(f, htk=htk), htk=htk), f,
                                   atol=1e-9)
    assert isinstance(dsp.hz_to_mel(440.0), float)


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(16000, 512, 40, 20.0, 7000.0),
                                                       (22050, 2048, 128, 0.0, None),
                                                       (16000, 1000, 64, 0.0, None)])
@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None])
def test_mel_filterbank_matches_librosa_and_torchaudio(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    fb = dsp.mel_filterbank(sr, n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
                              norm=norm)
    assert fb.shape == (n_mels, 1 + n_fft // 2)
    assert np.abs(fb - ref).max() < 1e-6
    # torchaudio computes in float32 with its own linspace: compare at float32 accuracy.
    ta = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, fmin, fmax if fmax is not None else sr / 2, n_mels, sr, norm=norm,
        mel_scale="htk" if htk else "slaney").numpy().T
    assert np.abs(fb - ta).max() < 1e-4 * np.abs(fb).max()


def test_dct_matrix_is_orthonormal_dct2(rng):
    D = dsp.dct_matrix(40, 40)
    np.testing.assert_allclose(D @ D.T, np.eye(40), atol=1e-12)
    v = rng.standard_normal(64)
    np.testing.assert_allclose(dsp.dct_matrix(13, 64) @ v,
                               scipy.fft.dct(v, type=2, norm="ortho")[:13], atol=1e-12)


@pytest.mark.parametrize("kw", [{}, dict(n_mfcc=13, n_fft=400, hop_length=160, n_mels=40),
                                dict(n_mfcc=13, n_fft=512, hop_length=128, n_mels=40, lifter=22.0,
                                     fmin=60.0, fmax=7600.0, htk=True, win_length=400)])
def test_mfcc_and_log_mel_match_librosa(rng, kw):
    y = 0.1 * rng.standard_normal(SR)
    ref = librosa.feature.mfcc(y=y, sr=SR, **kw)
    ours = dsp.mfcc(y, SR, **kw)
    assert ours.shape == ref.shape
    # librosa's filterbank is float32: ~1e-7 relative in power, ~5e-7 dB after the log, and the
    # DCT sums n_mels of those (measured <= 3e-6 on coefficients of a few hundred).
    assert np.abs(ours - ref).max() < 1e-5
    mel_kw = {k: v for k, v in kw.items() if k not in ("n_mfcc", "lifter")}
    ref_mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, **mel_kw))
    assert np.abs(dsp.log_mel(y, SR, **mel_kw) - ref_mel).max() < 1e-6


def test_db_conversions_act_per_example(rng):
    """ref=np.max and top_db work on each spectrogram of a batch as on the clip alone (librosa)."""
    S = rng.random((3, 20, 30)) ** 8 * np.array([1.0, 1e-3, 1e-6])[:, None, None]
    batched = dsp.power_to_db(S, ref=np.max, top_db=40.0)
    for i in range(3):
        np.testing.assert_allclose(batched[i], librosa.power_to_db(S[i], ref=np.max, top_db=40.0),
                                   rtol=0, atol=1e-12)
    amp = dsp.amplitude_to_db(np.sqrt(S), ref=np.max, top_db=40.0)
    np.testing.assert_allclose(amp[2], librosa.amplitude_to_db(np.sqrt(S[2]), ref=np.max, top_db=40.0),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("input_snr", [0.0, 10.0])
def test_denoisers_improve_snr(rng, input_snr):
    clean = _speechlike()
    noisy = dsp.add_noise(clean, rng.standard_normal(clean.size), input_snr)
    assert abs(dsp.snr_db(clean, noisy) - input_snr) < 0.01
    for denoise in (dsp.spectral_subtraction, dsp.wiener_denoise):
        enhanced = denoise(noisy, SR)
        assert enhanced.shape == clean.shape
        assert dsp.snr_db(clean, enhanced) > input_snr + 3.0, denoise.__name__
    # A separate noise recording works as the estimate too.
    enhanced = dsp.spectral_subtraction(noisy, SR, noise_estimate=rng.standard_normal(4000)
                                        * np.std(noisy[: int(0.3 * SR)]))
    assert dsp.snr_db(clean, enhanced) > input_snr + 3.0


# ---------------------------------------------------------------- errors that say what to do


def test_bad_inputs_give_actionable_errors():
    with pytest.raises(ValueError, match="positive integer"):
        dsp.dft_matrix(0)
    with pytest.raises(ValueError, match="mode must be"):
        dsp.fft_convolve(np.ones(4), np.ones(2), mode="circular")
    with pytest.raises(ValueError, match="Nyquist"):
        dsp.fir_lowpass(9000, 16000, 31)
    with pytest.raises(ValueError, match="Unknown window"):
        dsp.get_window("kaiser-ish", 16)
    with pytest.raises(ValueError, match="same shape"):
        dsp.snr_db(np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        dsp.stft(np.array([0.0, np.nan] * 600), n_fft=256)
    with pytest.raises(ValueError, match="frequency bins"):
        dsp.istft(np.zeros((257, 4), complex), n_fft=1024)
    with pytest.raises(ValueError, match="non-silent"):
        dsp.add_noise(np.zeros(10), np.ones(10), 0.0)
    with pytest.raises(ValueError, match="fmax <= sr/2"):
        dsp.mel_filterbank(16000, 512, 40, fmax=9000.0)
    with pytest.raises(ValueError, match="n_mfcc=50 cannot exceed n_mels=40"):
        dsp.mfcc(np.ones(4000), 16000, n_mfcc=50, n_mels=40)
