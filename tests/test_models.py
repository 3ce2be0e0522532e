"""Shapes, parameter counts and variable-length behaviour of course_lib.models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models import (
    ConvAutoencoder,
    ConvBlock2d,
    FrequencyAwareConv,
    FullyConvClassifier,
    LogMelCNN,
    MultiScaleBlock,
    RawWaveformCNN,
    TimeFrequencySeparableBlock,
    conv_output_length,
    count_parameters,
    frequency_position,
    receptive_field,
)


@pytest.mark.parametrize("length, kernel, stride, padding, dilation", [
    (8, 3, 1, 1, 1), (16000, 80, 4, 40, 1), (100, 5, 2, 0, 1), (50, 3, 1, 0, 4), (7, 2, 2, 0, 1),
])
def test_conv_output_length_matches_torch(length, kernel, stride, padding, dilation):
    conv = nn.Conv1d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    assert conv(torch.zeros(1, 1, length)).shape[-1] == conv_output_length(
        length, kernel, stride, padding, dilation)
    pool = nn.MaxPool1d(kernel, stride=stride, padding=min(padding, kernel // 2),
                        dilation=dilation)
    assert pool(torch.zeros(1, 1, length)).shape[-1] == conv_output_length(
        length, kernel, stride, min(padding, kernel // 2), dilation)


@pytest.mark.parametrize("length", [1, 2, 3, 7, 50, 51, 101, 16000, 16001])
@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (4, 4, 0), (3, 2, 1), (5, 3, 2)])
def test_conv_output_length_ceil_mode_matches_torch_pooling(length, kernel, stride, padding):
    pool = nn.MaxPool1d(kernel, stride=stride, padding=padding, ceil_mode=True)
    assert pool(torch.zeros(1, 1, length)).shape[-1] == conv_output_length(
        length, kernel, stride, padding, ceil_mode=True)


@pytest.mark.parametrize("frames", [1, 25, 51, 101, 431])
def test_stack_output_length_is_what_the_course_blocks_give(frames):
    """One truth: the helper predicts the frame count the real ceil_mode blocks produce."""
    from course_lib.models import ConvBlock1d, ConvBlock2d, stack_output_length

    blocks2d = nn.Sequential(ConvBlock2d(1, 4), ConvBlock2d(4, 4), ConvBlock2d(4, 4)).eval()
    out = blocks2d(torch.zeros(1, 1, 8, frames))
    assert out.shape[-1] == stack_output_length(blocks2d, frames)
    blocks1d = nn.Sequential(ConvBlock1d(1, 4, kernel_size=9, stride=2), ConvBlock1d(4, 4)).eval()
    out = blocks1d(torch.zeros(1, 1, frames * 10))
    assert out.shape[-1] == stack_output_length(blocks1d, frames * 10)


def test_ceil_mode_counts_the_partial_window():
    assert conv_output_length(51, 2, 2) == 25
    assert conv_output_length(51, 2, 2, ceil_mode=True) == 26


def test_conv_output_length_errors():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_length(3, 5)
    with pytest.raises(ValueError, match="stride"):
        conv_output_length(10, 3, stride=0)


def empirical_receptive_field(net: nn.Module, length: int = 257) -> int:
    """Width of the input region that influences the centre output (by gradients)."""
    x = torch.zeros(1, 1, length, requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[-1] // 2].backward()
    idx = (x.grad[0, 0] != 0).nonzero()
    return int(idx.max() - idx.min() + 1)


@pytest.mark.parametrize("layers", [
    # Average pooling: max pooling would pass gradient to one input only and hide the field.
    [nn.Conv1d(1, 1, 3, padding=1), nn.AvgPool1d(2), nn.Conv1d(1, 1, 3, padding=1)],
    [nn.Conv1d(1, 1, 5, stride=2), nn.Conv1d(1, 1, 3, dilation=2), nn.Conv1d(1, 1, 3)],
    [nn.Conv1d(1, 1, 3, dilation=d, padding=d) for d in (1, 2, 4, 8)],
])
def test_receptive_field_matches_gradients(layers):
    torch.manual_seed(0)
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv1d):
                m.weight.fill_(1.0)  # no accidental zero weights hide part of the field
    assert receptive_field(net) == empirical_receptive_field(net)
    assert receptive_field(layers) == receptive_field(net)


def test_receptive_field_tuples():
    assert receptive_field([(3,), (2, 2), (3,), (2, 2)]) == 10
    assert receptive_field([(3, 1, d) for d in (1, 2, 4, 8)]) == 31
    with pytest.raises(ValueError, match="kernel"):
        receptive_field([(1, 2, 3, 4)])


def test_count_parameters():
    lin = nn.Linear(10, 4)
    assert count_parameters(lin) == 44
    lin.bias.requires_grad_(False)
    assert count_parameters(lin) == 40 and count_parameters(lin, trainable_only=False) == 44


def test_raw_waveform_cnn_any_length():
    model = RawWaveformCNN(10).eval()
    for n in (4000, 16000, 23456):
        assert model(torch.randn(2, 1, n)).shape == (2, 10)
    assert model(torch.randn(3, 8000)).shape == (3, 10)
    with pytest.raises(ValueError, match="batch, 1, samples"):
        model(torch.randn(2, 2, 100))


def test_logmel_cnn_shapes_and_params():
    model = LogMelCNN(10, channels=(8, 16)).eval()
    assert model(torch.randn(4, 64, 101)).shape == (4, 10)
    assert model(torch.randn(4, 1, 40, 33)).shape == (4, 10)
    # conv 1->8 (3x3, no bias) + BN(8) + conv 8->16 + BN(16) + linear 16->10
    expected = 9 * 8 + 2 * 8 + 9 * 8 * 16 + 2 * 16 + 16 * 10 + 10
    assert count_parameters(model) == expected
    with pytest.raises(ValueError, match="n_mels, frames"):
        model(torch.randn(64, 101))


def test_conv_block2d_halves_axes():
    block = ConvBlock2d(1, 4, dropout=0.1)
    assert block(torch.randn(2, 1, 64, 51)).shape == (2, 4, 32, 26)


def test_separable_block_shape_and_fewer_params():
    sep = TimeFrequencySeparableBlock(8, 16, k_freq=7, k_time=7)
    assert sep(torch.randn(2, 8, 40, 30)).shape == (2, 16, 40, 30)
    full = nn.Conv2d(8, 16, 7, padding=3, bias=False)
    assert count_parameters(sep) < count_parameters(full)
    assert count_parameters(sep) == 8 * 16 * 7 + 16 * 16 * 7 + 2 * 16 * 2
    with pytest.raises(ValueError, match="odd"):
        TimeFrequencySeparableBlock(1, 1, k_freq=4)


def test_multiscale_block_concatenates():
    block = MultiScaleBlock(4, 6, kernels=((3, 3), (9, 1), (1, 9)))
    out = block(torch.randn(2, 4, 32, 20))
    assert out.shape == (2, 18, 32, 20) and block.out_channels == 18


def test_frequency_aware_conv_sees_position():
    pos = frequency_position(torch.zeros(2, 3, 5, 4))
    assert pos.shape == (2, 1, 5, 4)
    assert torch.allclose(pos[0, 0, :, 0], torch.linspace(-1, 1, 5))
    conv = FrequencyAwareConv(1, 4).eval()
    out = conv(torch.zeros(1, 1, 16, 10))
    assert out.shape == (1, 4, 16, 10)
    # A constant input gives different outputs in different bands: the position is used.
    assert not torch.allclose(out[0, :, 2], out[0, :, 12])
    plain = nn.Conv2d(1, 4, 3, padding=1)(torch.zeros(1, 1, 16, 10))
    assert torch.allclose(plain[0, :, 2], plain[0, :, 12])


@pytest.mark.parametrize("block", FullyConvClassifier.BLOCKS)
def test_fully_conv_classifier_variable_length(block):
    model = FullyConvClassifier(5, channels=(6, 12), block=block).eval()
    for frames in (1, 17, 64, 250):
        assert model(torch.randn(2, 40, frames)).shape == (2, 5)
    maps = model.class_maps(torch.randn(1, 40, 64))
    assert maps.shape[:2] == (1, 5)
    # Global pooling: the logits are the mean of the class maps.
    x = torch.randn(1, 40, 64)
    assert torch.allclose(model(x), model.class_maps(x).mean(dim=(2, 3)))


def test_fully_conv_classifier_rejects_unknown_block():
    with pytest.raises(ValueError, match="block must be one of"):
        FullyConvClassifier(3, block="inception")


@pytest.mark.parametrize("shape", [(64, 32), (40, 101), (13, 7)])
def test_autoencoder_shapes_and_bottleneck(shape):
    ae = ConvAutoencoder(channels=(8, 16), code_channels=4).eval()
    x = torch.randn(2, 1, *shape)
    code = ae.encode(x)
    assert code.shape == (2, 4, -(-shape[0] // 4), -(-shape[1] // 4))
    assert ae(x).shape == x.shape
    assert ae(x[:, 0]).shape == x.shape  # (batch, n_mels, frames) also accepted
    assert code.numel() < x.numel()


def test_article_cnn_fixed_takes_any_length_and_passes_its_exercise_check():
    import torch

    from course_lib import checks as check
    from course_lib.models import article_cnn_fixed

    model = article_cnn_fixed().eval()
    for length in (8, 32, 50):
        assert model(torch.zeros(3, 1, length)).shape == (3, 10)
    assert check.exercise("05.3", article_cnn_fixed, quiet=True)


def test_graph_models_load_lazily_and_match_their_module():
    import importlib
    import subprocess
    import sys

    code = ("import sys, course_lib.models as m; assert 'torch_geometric' not in sys.modules; "
            "m.GCNClassifier; assert 'torch_geometric' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    gnn = importlib.import_module("course_lib.models.gnn")
    models_pkg = importlib.import_module("course_lib.models")
    assert set(gnn.__all__) <= set(models_pkg.__all__)
    assert all(getattr(models_pkg, name) is getattr(gnn, name) for name in gnn.__all__)
