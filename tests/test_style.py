"""course_lib.style: Gram matrices, losses, the graph style statistic, the transfer loop and the measures.

References are independent: hand-computed cases, NumPy einsum, invariances that must hold exactly,
and known signals (a sine's pitch class, a level change that the timbre summary must ignore).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import dsp, style

SR = 16000
N_FFT = 256
HOP = 64


def _sine(freq_hz: float, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * SR)) / SR)


# --------------------------------------------------------------------------- Gram matrix and losses
def test_gram_matches_the_hand_computed_case():
    features = torch.tensor([[[1.0, 2.0, 0.0, 1.0], [0.0, 1.0, 3.0, 0.0]]])
    expected = torch.tensor([[[6.0, 2.0], [2.0, 10.0]]]) / 4   # F F^T by hand, over 4 frames
    assert torch.allclose(style.gram_matrix(features), expected)


def test_gram_matches_einsum_and_is_symmetric():
    f = torch.rand(3, 5, 11, dtype=torch.float64)
    g = style.gram_matrix(f)
    assert g.shape == (3, 5, 5)
    assert torch.allclose(g, torch.einsum("bct,bdt->bcd", f, f) / 11)
    assert torch.allclose(g, g.transpose(-1, -2))


def test_gram_ignores_the_order_of_frames_and_the_clip_length():
    f = torch.rand(2, 4, 9, dtype=torch.float64)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(style.gram_matrix(f), style.gram_matrix(f[..., perm]))
    assert torch.allclose(style.gram_matrix(f), style.gram_matrix(torch.cat([f, f], dim=-1)))


def test_content_loss_is_zero_for_identical_input_and_positive_otherwise():
    net = style.RandomSpectrogramCNN(N_FFT // 2 + 1, out_channels=32, kernel_size=5)
    x = torch.rand(2, N_FFT // 2 + 1, 20)
    feats = net(x)
    assert torch.equal(style.content_loss(feats, feats), torch.zeros(2))
    assert (style.content_loss(net(x + 0.1), feats) > 0).all()
    assert torch.equal(style.style_loss(style.gram_matrix(feats), style.gram_matrix(feats)), torch.zeros(2))


def test_style_statistic_is_invariant_to_a_circular_time_shift_and_to_looping():
    # circular padding: shifting the clip shifts the feature maps, and the Gram matrix averages over time
    net = style.RandomSpectrogramCNN(N_FFT // 2 + 1, out_channels=24, kernel_size=7)
    x = torch.rand(1, N_FFT // 2 + 1, 30, dtype=torch.float32)
    g = style.gram_matrix(net(x))
    shifted = style.gram_matrix(net(torch.roll(x, 11, dims=-1)))
    looped = style.gram_matrix(net(torch.cat([x, x], dim=-1)))
    assert torch.allclose(g, shifted, rtol=1e-4, atol=1e-6)
    assert torch.allclose(g, looped, rtol=1e-4, atol=1e-6)
    assert float(style.style_loss(shifted, g)) < 1e-8


def test_random_network_is_reproducible_frozen_and_scaled_as_stated():
    a = style.RandomSpectrogramCNN(129, 64, 11, generator=torch.Generator().manual_seed(3))
    b = style.RandomSpectrogramCNN(129, 64, 11, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.conv.weight, b.conv.weight)
    assert not any(p.requires_grad for p in a.parameters())
    std = np.sqrt(2) * np.sqrt(2 / ((129 + 64) * 11))
    assert a.conv.weight.std().item() == pytest.approx(std, rel=0.05)
    assert (a(torch.rand(2, 129, 15)) >= 0).all()   # ReLU features


def test_random_network_says_which_axis_is_which():
    net = style.RandomSpectrogramCNN(129, 8, 3)
    with pytest.raises(ValueError, match="frequency bins are the channels"):
        net(torch.rand(1, 15, 129))
    with pytest.raises(ValueError, match="odd"):
        style.RandomSpectrogramCNN(129, 8, 4)


# --------------------------------------------------------------------------- graph style statistic
def test_frequency_graph_basis_is_orthonormal_with_a_zero_graph_frequency():
    eigenvalues, basis = style.frequency_graph_basis(N_FFT, SR)
    n = N_FFT // 2 + 1
    assert basis.shape == (n, n)
    assert np.allclose(basis.T @ basis, np.eye(n), atol=1e-8)
    assert abs(eigenvalues[0]) < 1e-8 and np.all(np.diff(eigenvalues) >= -1e-10)


def test_graph_power_spectrum_is_the_diagonal_of_the_gram_matrix_in_the_graph_basis():
    _, basis = style.frequency_graph_basis(N_FFT, SR)
    u = torch.from_numpy(basis)
    x = torch.rand(2, N_FFT // 2 + 1, 13, dtype=torch.float64)
    p = style.graph_power_spectrum(x, u)
    expected = torch.diagonal(u.T @ style.gram_matrix(x) @ u, dim1=-2, dim2=-1)
    assert torch.allclose(p, expected)
    perm = torch.randperm(13, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(p, style.graph_power_spectrum(x[..., perm], u))
    assert torch.equal(style.graph_style_loss(p, p), torch.zeros(2, dtype=torch.float64))


# --------------------------------------------------------------------------- the optimisation
def _pair(frames: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    content = torch.from_numpy(style.log_magnitude(_sine(440.0, 0.4) + _sine(660.0, 0.4), N_FFT, HOP, ref=1e-3))
    noisy = np.random.default_rng(0).normal(scale=0.1, size=int(0.4 * SR))
    style_clip = torch.from_numpy(style.log_magnitude(noisy, N_FFT, HOP, ref=1e-3))
    return content[None, :, :frames], style_clip[None, :, :frames]


def test_transfer_with_style_weight_zero_returns_the_content():
    content, style_clip = _pair()
    net = style.RandomSpectrogramCNN(N_FFT // 2 + 1, 32, 5)
    result = style.transfer(content, style_clip, net, 0.0, n_steps=5, lr=0.1)
    assert torch.allclose(result.log_mag, content)
    assert result.content_loss.shape == (6, 1) and np.all(result.content_loss == 0)


def test_transfer_lowers_the_style_loss_and_a_batch_equals_separate_runs():
    content, style_clip = _pair()
    net = style.RandomSpectrogramCNN(N_FFT // 2 + 1, 32, 5)
    both = style.transfer(content.repeat(2, 1, 1), style_clip.repeat(2, 1, 1), net,
                          torch.tensor([1.0, 100.0]), n_steps=30, lr=0.1)
    assert both.style_loss[-1, 1] < 0.5 * both.style_loss[0, 1]
    assert both.style_loss[-1, 1] < both.style_loss[-1, 0]       # more weight, less style loss
    assert both.content_loss[-1, 1] > both.content_loss[-1, 0]   # ... and more content lost
    alone = style.transfer(content, style_clip, net, 100.0, n_steps=30, lr=0.1)
    assert torch.allclose(alone.log_mag[0], both.log_mag[1], atol=1e-4)
    _, basis = style.frequency_graph_basis(N_FFT, SR)
    graph = style.transfer(content, style_clip, net, 1.0, n_steps=30, lr=0.1, graph_basis=torch.from_numpy(basis))
    assert graph.style_loss[-1, 0] < 0.5 * graph.style_loss[0, 0]
    assert (graph.log_mag >= 0).all()


def test_log_magnitude_inverts_to_the_stft_magnitude_before_phase_retrieval():
    x = _sine(500.0) + 0.01 * _sine(3000.0)
    for ref in (1.0, 1e-3):
        log_mag = style.log_magnitude(x, N_FFT, HOP, ref=ref)
        assert np.allclose(np.expm1(log_mag.astype(np.float64)) * ref, np.abs(dsp.stft(x, N_FFT, HOP)), rtol=1e-5,
                           atol=1e-6 * ref)
    y = style.invert(style.log_magnitude(x, N_FFT, HOP, ref=1e-3), N_FFT, HOP, ref=1e-3, n_iter=32, length=len(x))
    assert y.shape == x.shape
    # the magnitudes come back close (the phase does not have to)
    assert dsp.spectral_convergence(np.abs(dsp.stft(x, N_FFT, HOP)), np.abs(dsp.stft(y, N_FFT, HOP))) < 0.2
    with pytest.raises(ValueError, match="n_fft"):
        style.invert(np.zeros((100, 10)), N_FFT, HOP)


# --------------------------------------------------------------------------- measures
def test_log_spectral_distance_hand_cases():
    assert style.log_spectral_distance(np.ones((2, 2)), np.array([[10.0, 1.0], [1.0, 1.0]])) == pytest.approx(
        np.sqrt(200) / 2)
    m = np.random.default_rng(0).uniform(0.1, 1, size=(5, 7))
    assert style.log_spectral_distance(m, m) == 0.0
    assert style.log_spectral_distance(m, 10 * m) == pytest.approx(20.0)   # x10 in amplitude = 20 dB everywhere
    assert np.isfinite(style.log_spectral_distance(m, np.zeros_like(m)))
    with pytest.raises(ValueError, match="same n_fft"):
        style.log_spectral_distance(m, m[:, :3])


def test_timbre_summary_ignores_the_level_and_tells_timbres_apart():
    rng = np.random.default_rng(0)
    tone = _sine(220.0, 1.0) + 0.3 * _sine(440.0, 1.0) + 1e-3 * rng.normal(size=SR)
    assert style.mfcc_statistics(tone, SR).shape == (38,)
    assert style.timbre_distance(tone, 0.25 * tone, SR) < 1e-6 * np.linalg.norm(style.mfcc_statistics(tone, SR))
    bright = _sine(220.0, 1.0) + 0.8 * _sine(1760.0, 1.0) + 0.8 * _sine(3520.0, 1.0) + 1e-3 * rng.normal(size=SR)
    assert style.timbre_distance(tone, bright, SR) > 1.0


def test_chroma_names_the_pitch_class_and_agreement_compares_pitch_not_level():
    a4 = _sine(440.0, 1.0)
    c4 = _sine(261.63, 1.0)
    assert int(np.argmax(style.chroma(a4, SR, n_fft=4096).sum(1))) == 9    # A
    assert int(np.argmax(style.chroma(c4, SR, n_fft=4096).sum(1))) == 0    # C
    assert style.chroma_agreement(a4, 0.1 * a4, SR, n_fft=4096) == pytest.approx(1.0)
    assert style.chroma_agreement(a4, c4, SR, n_fft=4096) < 0.2
    with pytest.raises(ValueError, match="silence"):
        style.chroma_agreement(np.zeros(SR), a4, SR)
