"""Checks of notebooks 03 and 04 accept right answers computed by librosa (an independent library).

The classic wrong answers and their hints are in test_checks_mistakes.py.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from course_lib import checks as check


def spectral_subtraction_with_librosa(noisy, sr, noise_duration=0.25, n_fft=512, hop_length=128,
                                      over_subtraction=2.0, floor=0.02):
    """Boll's power subtraction on librosa's STFT and inverse STFT (zero padding, periodic Hann)."""
    Y = librosa.stft(noisy, n_fft=n_fft, hop_length=hop_length, window="hann", center=True,
                     pad_mode="constant")
    power = np.abs(Y) ** 2
    n_noise = max(1, int(noise_duration * sr) // hop_length)
    noise = power[:, :n_noise].mean(axis=1, keepdims=True)
    clean = np.maximum(power - over_subtraction * noise, floor * power)
    gain = np.sqrt(clean / np.maximum(power, np.finfo(float).tiny))
    return librosa.istft(gain * Y, hop_length=hop_length, window="hann", center=True, length=len(noisy))


@pytest.mark.parametrize("exercise_id,oracle", [
    ("03.1", lambda x, fl, hop: librosa.util.frame(x, frame_length=fl, hop_length=hop)),
    ("03.2", lambda x, n_fft, hop: librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann",
                                                center=True, pad_mode="constant")),
    ("04.1", lambda sr, n_fft, n_mels, fmin, fmax: librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney", dtype=np.float64)),
    ("04.2", spectral_subtraction_with_librosa),
])
def test_librosa_answers_pass(exercise_id, oracle):
    result = check.exercise(exercise_id, oracle, quiet=True, strict=True)
    assert result and result.n_cases >= 3


def test_registered_titles():
    ids = check.registered_exercises()
    assert {"03.1", "03.2", "04.1", "04.2"} <= set(ids)


def test_a_torch_stft_passes():
    import torch

    def stft_torch(x, n_fft, hop):
        return torch.stft(torch.from_numpy(x), n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                          center=True, pad_mode="constant", return_complex=True)

    assert check.exercise("03.2", stft_torch, quiet=True, strict=True)


def test_a_scipy_dct_matrix_passes():
    """04.3: the orthonormal DCT-II matrix is scipy's dct(norm="ortho") applied to the identity."""
    import scipy.fft

    def dct_matrix_with_scipy(n_out, n_in):
        return scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]

    result = check.exercise("04.3", dct_matrix_with_scipy, quiet=True, strict=True)
    assert result and result.n_cases >= 3


def test_the_dct_check_rejects_a_wrong_scale_outside_the_listed_mistakes():
    """A wrong answer that is no listed mistake still fails, and the comparison names the factor."""
    import scipy.fft

    def three_times_the_dct(n_out, n_in):
        return 3.0 * scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]

    result = check.exercise("04.3", three_times_the_dct, quiet=True, strict=False)
    assert not result
    assert "3 times the expected" in result.message, result.message
