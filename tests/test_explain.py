"""course_lib.explain: attribution maps against exact answers, Captum, and the sanity checks' controls.

Independent references: a linear model (integrated gradients and occlusion have closed forms on it),
a model that reads one known time-frequency patch, plain loops, and Captum's implementations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion, Saliency
from torch import nn

from course_lib import checks as check
from course_lib import dsp, explain
from course_lib.models.cnn import LogMelCNN

N_MELS, N_FRAMES = 12, 10


def small_cnn(seed: int = 0, n_classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return LogMelCNN(n_classes, channels=(4, 6, 8)).double().eval()


def log_mel_like(batch: int, seed: int = 0) -> torch.Tensor:
    """dB-like inputs: -80 .. 0 with structure (a 'formant' band and an onset)."""
    gen = torch.Generator().manual_seed(seed)
    x = -60.0 + 8.0 * torch.randn(batch, 1, N_MELS, N_FRAMES, generator=gen, dtype=torch.float64)
    x[:, :, 3:6, 4:] += 40.0
    return x


class PatchReader(nn.Module):
    """Logit 0 = sum over one time-frequency patch of w * x; logit 1 = 0. Nothing else is read."""

    def __init__(self, rows: slice, cols: slice, weight: float = 0.5) -> None:
        super().__init__()
        self.rows, self.cols, self.weight = rows, cols, weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = self.weight * x[:, 0, self.rows, self.cols].sum(dim=(1, 2))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


# ----------------------------------------------------------------------------- integrated gradients
def test_integrated_gradients_is_exact_on_a_linear_model():
    torch.manual_seed(1)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(N_MELS * N_FRAMES, 3)).double().eval()
    x, baseline = log_mel_like(2), torch.full((2, 1, N_MELS, N_FRAMES), -80.0, dtype=torch.float64)
    for steps in (1, 5):
        ig = explain.integrated_gradients(linear, x, [2, 0], baseline, steps)
        for i, t in enumerate((2, 0)):
            expected = linear[1].weight[t].view(1, N_MELS, N_FRAMES) * (x[i] - baseline[i])
            torch.testing.assert_close(ig[i], expected.detach(), rtol=1e-12, atol=1e-12)


def test_integrated_gradients_completeness_on_a_relu_cnn():
    """sum IG = f(x) - f(baseline), with an error that shrinks as the path sum gets finer."""
    net = small_cnn()
    x = log_mel_like(3)
    baseline = x.amin(dim=(1, 2, 3), keepdim=True)          # each clip's floor: silence
    target = [0, 1, 3]
    gaps = []
    for steps in (8, 64, 512):
        ig = explain.integrated_gradients(net, x, target, baseline, steps)
        total, difference = explain.completeness(net, x, target, baseline, ig)
        gaps.append(((total - difference).abs() / difference.abs()).max().item())
    assert gaps[-1] < 0.01, gaps                                # the stated tolerance: 1 %
    assert gaps[-1] < gaps[0], gaps


def test_integrated_gradients_completeness_is_tight_on_a_smooth_model():
    torch.manual_seed(2)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(N_MELS * N_FRAMES, 16), nn.Tanh(), nn.Linear(16, 3)).double().eval()
    x = log_mel_like(2) / 40
    ig = explain.integrated_gradients(mlp, x, 1, 0.0, 2000)
    total, difference = explain.completeness(mlp, x, 1, 0.0, ig)
    torch.testing.assert_close(total, difference, rtol=2e-3, atol=1e-6)


def test_integrated_gradients_does_not_depend_on_the_batch_split():
    net = small_cnn()
    x = log_mel_like(2)
    a = explain.integrated_gradients(net, x, 2, -80.0, 20, batch_size=3)
    b = explain.integrated_gradients(net, x, 2, -80.0, 20, batch_size=128)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- occlusion
def loop_occlusion(model, x, target, window, stride, fill):
    """Every window position by hand (aligned inputs), each bin the mean drop of its windows."""
    n_f, n_t = x.shape[-2:]
    total, count = torch.zeros(n_f, n_t, dtype=x.dtype), torch.zeros(n_f, n_t, dtype=x.dtype)
    reference = model(x)[0, target]
    for r in range(0, n_f - window[0] + 1, stride[0]):
        for c in range(0, n_t - window[1] + 1, stride[1]):
            hidden = x.clone()
            hidden[..., r:r + window[0], c:c + window[1]] = fill
            total[r:r + window[0], c:c + window[1]] += reference - model(hidden)[0, target]
            count[r:r + window[0], c:c + window[1]] += 1
    return (total / count).expand_as(x)


def test_occlusion_finds_the_one_patch_a_model_reads():
    rows, cols = slice(7, 9), slice(2, 5)
    model = PatchReader(rows, cols).eval()
    x = log_mel_like(1)
    fill = -80.0
    # 1 x 1 windows: the drop of each bin is exactly w * (x - fill) inside the patch and 0 outside
    single = explain.occlusion(model, x, 0, (1, 1), (1, 1), fill)
    expected = torch.zeros_like(x)
    expected[..., rows, cols] = 0.5 * (x[..., rows, cols] - fill)
    torch.testing.assert_close(single, expected, rtol=1e-12, atol=1e-12)
    # larger overlapping windows: the map is zero wherever no window reaching the patch covers the bin,
    # its maximum lies in the patch, and it equals the plain loop
    window, stride = (3, 2), (1, 2)
    coarse = explain.occlusion(model, x, 0, window, stride, fill)
    torch.testing.assert_close(coarse, loop_occlusion(model, x, 0, window, stride, fill), rtol=1e-12, atol=1e-12)
    peak = np.unravel_index(int(coarse[0, 0].argmax()), coarse.shape[-2:])
    assert rows.start <= peak[0] < rows.stop and cols.start <= peak[1] < cols.stop
    assert torch.all(coarse[..., :rows.start - window[0] + 1, :] == 0)
    assert torch.all(coarse[..., rows.stop + window[0] - 1:, :] == 0)
    # the fill value is part of the answer: filling with the patch's own values removes nothing
    assert torch.all(explain.occlusion(model, x, 0, (1, 1), (1, 1), x) == 0)


def test_occlusion_refuses_windows_that_leave_bins_uncovered():
    with pytest.raises(ValueError, match="stride"):
        explain.occlusion(small_cnn(), log_mel_like(1), 0, (2, 2), (3, 1), -80.0)
    with pytest.raises(ValueError, match="window"):
        explain.occlusion(small_cnn(), log_mel_like(1), 0, (N_MELS + 1, 2), (1, 1), -80.0)


# ----------------------------------------------------------------------------- Captum parity
@pytest.fixture(scope="module")
def parity_setup():
    net = small_cnn(3)
    x = log_mel_like(3, seed=4)
    target = torch.tensor([0, 2, 1])
    return net, x, target


def test_saliency_and_integrated_gradients_equal_captums(parity_setup):
    net, x, target = parity_setup
    torch.testing.assert_close(explain.saliency(net, x, target),
                               Saliency(net).attribute(x.clone().requires_grad_(), target=target, abs=True))
    baseline = x.amin(dim=(1, 2, 3), keepdim=True).expand_as(x)
    ours = explain.integrated_gradients(net, x, target, baseline, 24)
    theirs = IntegratedGradients(net).attribute(x, baselines=baseline, target=target, n_steps=24,
                                                method="riemann_right")
    # Captum builds its path coefficients with float32 linspace: agreement to ~3e-8 relative
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("window,stride", [((3, 2), (1, 2)), ((4, 3), (2, 2)), ((5, 4), (3, 3)), ((N_MELS, 1), (1, 1))],
                         ids=["aligned", "last-window-cut", "both-cut", "whole-bands"])
def test_occlusion_equals_captums(parity_setup, window, stride):
    net, x, target = parity_setup
    ours = explain.occlusion(net, x, target, window, stride, -75.0)
    theirs = Occlusion(net).attribute(x, sliding_window_shapes=(1, *window), strides=(1, *stride),
                                      baselines=-75.0, target=target)
    # Captum divides by the window counts in float32 (format_result: attrib.float() / count)
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-6, atol=1e-6 * ours.abs().max().item())


def test_grad_cam_equals_captums(parity_setup):
    net, x, target = parity_setup
    layer = net.features[1]
    theirs = LayerGradCam(net, layer).attribute(x, target=target, relu_attributions=True).detach()
    torch.testing.assert_close(explain.grad_cam(net, x, target, layer, upsample=False), theirs)
    torch.testing.assert_close(explain.grad_cam(net, x, target, layer),
                               LayerAttribution.interpolate(theirs, (N_MELS, N_FRAMES), "bilinear"))
    assert explain.grad_cam(net, x, target, net.features[2], upsample=False).shape[-2:] == (2, 2)  # 12x10 pooled 3 times


def test_smoothgrad_is_the_mean_saliency_of_noisy_copies(parity_setup):
    """Same noise, same answer: our SmoothGrad against Captum's Saliency averaged over our noisy copies."""
    net, x, target = parity_setup
    n_samples, level = 5, 0.1
    ours = explain.smoothgrad(net, x, target, n_samples=n_samples, noise_level=level,
                              generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    sigma = level * (x.amax(dim=(1, 2, 3), keepdim=True) - x.amin(dim=(1, 2, 3), keepdim=True))
    copies = [x + sigma * torch.randn(x.shape, generator=gen, dtype=x.dtype) for _ in range(n_samples)]
    expected = torch.stack([Saliency(net).attribute(c.requires_grad_(), target=target) for c in copies]).mean(0)
    torch.testing.assert_close(ours, expected)
    # and it is a NoiseTunnel-style average: with zero noise it is plain saliency
    # with zero noise it is plain saliency
    torch.testing.assert_close(explain.smoothgrad(net, x, target, n_samples=3, noise_level=0.0),
                               explain.saliency(net, x, target))
    # Captum's NoiseTunnel draws its noise from the global generator: same shape, not the same numbers
    tunnel = NoiseTunnel(Saliency(net)).attribute(x.clone().requires_grad_(), nt_type="smoothgrad", nt_samples=3,
                                                 stdevs=0.1, target=target)
    assert tunnel.shape == ours.shape


# ----------------------------------------------------------------------------- sanity checks
def test_randomization_fails_the_edge_detector_and_passes_gradients():
    net = small_cnn(5)
    x = log_mel_like(4, seed=6)
    target = [0, 1, 2, 3]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    layers = ["head", "features.2", "features.1", "features.0"]
    edges = explain.cascading_randomization(net, explain.edge_detector, x, target, layers)
    # the control: its map never changes, so every correlation is exactly 1 -- the check must fail it
    assert [step.layer for step in edges] == layers
    assert all(np.allclose(step.signed, 1.0) and np.allclose(step.absolute, 1.0) for step in edges)
    gradients = explain.cascading_randomization(net, lambda m, b, t: explain.saliency(m, b, t), x, target, layers,
                                                generator=torch.Generator().manual_seed(0))
    assert np.nanmean(gradients[-1].signed) < 0.5
    # the model given is left as it was (a copy is randomised)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_randomization_names_unknown_layers():
    with pytest.raises(ValueError, match="no modules named"):
        explain.cascading_randomization(small_cnn(), explain.edge_detector, log_mel_like(1), 0, ["classifier"])


def test_edge_detector_ignores_the_model():
    x = log_mel_like(2)
    torch.testing.assert_close(explain.edge_detector(small_cnn(0), x, 0), explain.edge_detector(None, x, 3))
    flat = torch.full_like(x, -40.0)
    assert torch.all(explain.edge_detector(None, flat, 0) == 0)


def test_deletion_and_insertion_on_the_patch_model():
    rows, cols = slice(2, 4), slice(3, 5)
    model = PatchReader(rows, cols, weight=0.05).eval()
    x = log_mel_like(1)
    x[..., rows, cols] = 0.0                                   # the loudest bins, read by the model
    fill = -80.0
    perfect = torch.zeros_like(x)
    perfect[..., rows, cols] = 1.0                             # the map that names the patch
    curves = explain.deletion_insertion(model, x, 0, perfect, fill, n_steps=10)
    p_x = torch.softmax(model(x), 1)[0, 0].item()
    p_fill = torch.softmax(model(torch.full_like(x, fill)), 1)[0, 0].item()
    assert curves.fractions[0] == 0 and curves.fractions[-1] == 1 and curves.deletion.shape == (1, 11)
    assert curves.deletion[0, 0] == pytest.approx(p_x) and curves.deletion[0, -1] == pytest.approx(p_fill)
    assert curves.insertion[0, 0] == pytest.approx(p_fill) and curves.insertion[0, -1] == pytest.approx(p_x)
    # the patch is 4 of 120 bins: after the first step (12 bins) deletion has removed all of it
    assert curves.deletion[0, 1] == pytest.approx(p_fill) and curves.insertion[0, 1] == pytest.approx(p_x)
    reversed_map = explain.deletion_insertion(model, x, 0, -perfect, fill, n_steps=10)
    assert curves.deletion_auc[0] < reversed_map.deletion_auc[0]
    assert curves.insertion_auc[0] > reversed_map.insertion_auc[0]
    trapezoid = ((curves.deletion[0, 1:] + curves.deletion[0, :-1]) / 2 * np.diff(curves.fractions)).sum()
    assert curves.deletion_auc[0] == pytest.approx(trapezoid)


def test_rank_correlation():
    a = np.arange(10.0)
    assert explain.rank_correlation(a, a**3) == pytest.approx(1.0)
    assert explain.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert np.isnan(explain.rank_correlation(a, np.ones(10)))


# ----------------------------------------------------------------------------- back to STFT bins
def test_mel_to_stft_averages_the_bands_of_each_bin():
    sr, n_fft, n_mels = 16000, 512, 20
    fb = dsp.mel_filterbank(sr, n_fft, n_mels, fmin=100.0, fmax=6000.0)
    covered = fb.sum(axis=0) > 0
    constant = explain.mel_to_stft(np.full((n_mels, 7), 3.0), fb)
    assert constant.shape == (1 + n_fft // 2, 7)
    np.testing.assert_allclose(constant[covered], 3.0)
    assert np.all(constant[~covered] == 0)                     # below fmin and above fmax: no band
    one_band = np.zeros((n_mels, 7))
    one_band[5] = 1.0
    spread = explain.mel_to_stft(torch.from_numpy(one_band), fb)
    np.testing.assert_array_equal(spread[:, 0] > 0, fb[5] > 0)  # exactly that band's support


def test_top_fraction_mask():
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.7, 0.2]])
    np.testing.assert_array_equal(explain.top_fraction_mask(scores, 0.5), [[False, True, True], [False, True, False]])
    assert explain.top_fraction_mask(scores, 0.0).sum() == 0 and explain.top_fraction_mask(scores, 1.0).all()
    with pytest.raises(ValueError):
        explain.top_fraction_mask(scores, 1.5)


# ----------------------------------------------------------------------------- eval mode and errors
def test_attribution_refuses_a_model_in_training_mode():
    net = small_cnn().train()
    with pytest.raises(ValueError, match=r"model.eval\(\)"):
        explain.saliency(net, log_mel_like(1), 0)
    with pytest.raises(ValueError, match=r"model.eval\(\)"):
        explain.occlusion(net, log_mel_like(1), 0, (2, 2), (2, 2), -80.0)


def test_bad_targets_and_layers_are_explained():
    net = small_cnn()
    with pytest.raises(ValueError, match="one per example"):
        explain.saliency(net, log_mel_like(3), [0, 1])
    unused = nn.Conv2d(1, 1, 3).double()
    with pytest.raises(ValueError, match="not called"):
        explain.grad_cam(net, log_mel_like(1), 0, unused)


# ----------------------------------------------------------------------------- the exercises' checks
def ig_one_point_at_a_time(model, x, target, baseline, steps):
    """A right answer written differently: a loop over path points, backward() on each."""
    total = torch.zeros_like(x)
    for k in range(1, steps + 1):
        point = (baseline + k / steps * (x - baseline)).detach().requires_grad_(True)
        model(point)[0, target].backward()
        total += point.grad
    return (x - baseline) * total / steps


def ig_with_captum(model, x, target, baseline, steps):
    return IntegratedGradients(model).attribute(x, baselines=baseline, target=target, n_steps=steps,
                                                method="riemann_right")


def occlusion_with_captum(model, x, target, window, stride, fill):
    return Occlusion(model).attribute(x, sliding_window_shapes=(1, *window), strides=(1, *stride),
                                      baselines=fill, target=target)


@pytest.mark.parametrize("exercise_id,fn", [("11.1", ig_one_point_at_a_time), ("11.1", ig_with_captum),
                                            ("11.2", loop_occlusion), ("11.2", occlusion_with_captum)],
                         ids=["11.1-loop", "11.1-captum", "11.2-loop", "11.2-captum"])
def test_right_answers_pass(exercise_id, fn):
    result = check.exercise(exercise_id, fn, quiet=True, strict=False)
    assert result, result.message
