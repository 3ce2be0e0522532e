"""A compact keyword-spotting network: a depthwise-separable CNN over time.

The DS-CNN of "Hello Edge" (Zhang et al. 2017, arXiv:1711.07128) replaces full convolutions by
depthwise-separable ones: a depthwise convolution (one filter per channel) followed by a 1x1
pointwise convolution that mixes the channels. :class:`DSCNN` applies the idea in one dimension,
along time, with the mel bands as the input channels (the "time-channel separable" convolutions of
MatchboxNet, Majumdar & Ginsburg 2020, and the 1-D layout of TC-ResNet, Choi et al. 2019): on a CPU
a 1-D separable layer over 40 bands runs many times faster than the 2-D version over the same
spectrogram, and the accuracy of the published 1-D models is on par. A separable layer with ``C``
channels and kernel ``k`` costs ``C k + C^2`` weights instead of ``C^2 k`` for a full convolution.

The model takes log-mel frames in dB and standardises each band with statistics measured on training
data (:meth:`DSCNN.fit_normalization`), kept as buffers: a checkpoint carries them and the streaming
wrapper (``course_lib.kws.StreamingKWS``) needs nothing but the model.

Notebook: 12_keyword_spotting
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from course_lib.features import band_mean_std

__all__ = ["DSCNN", "separable_block_parameters"]


def separable_block_parameters(channels: int, kernel_size: int) -> int:
    """Trainable parameters of one :class:`DSCNN` block with ``channels`` in and out.

    Depthwise ``Conv1d(C, C, k, groups=C, bias=False)``: ``C k``; pointwise
    ``Conv1d(C, C, 1, bias=False)``: ``C^2``; batch norm: a scale and a shift per channel, ``2 C``
    (it makes the convolution biases redundant). Total ``C k + C^2 + 2 C``.

    Parameters
    ----------
    channels : int
        Channels ``C`` in and out of the block.
    kernel_size : int
        Length ``k`` of the depthwise kernel, in frames.

    Returns
    -------
    int

    Notebook: 12_keyword_spotting
    """
    c, k = int(channels), int(kernel_size)
    return c * k + c * c + 2 * c


class _SeparableBlock(nn.Module):
    """Depthwise conv -> pointwise conv -> batch norm -> ReLU, with a residual connection."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2,
                                   groups=channels, bias=False)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.relu(self.norm(self.pointwise(self.depthwise(x))))


class DSCNN(nn.Module):
    """Depthwise-separable CNN keyword classifier over log-mel frames (1-D, along time).

    Parameters
    ----------
    n_mels : int
        Mel bands of the input (the input channels).
    n_classes : int
        Output classes (keywords + unknown + silence in the standard protocol).
    channels : int
        Channels of every layer.
    n_blocks : int
        Separable blocks after the first convolution.
    kernel_size : int
        Depthwise kernel length in frames (odd).
    stem_kernel_size : int
        Kernel of the first (full) convolution, in frames; it has stride 2.
    dropout : float
        Dropout before the linear layer.

    Shapes: ``(batch, n_mels, n_frames)`` log-mel in dB -> ``(batch, n_classes)`` logits, from the
    average over time of the last block's output.

    Notebook: 12_keyword_spotting
    """

    norm_mean: Tensor
    norm_std: Tensor

    def __init__(self, n_mels: int, n_classes: int, channels: int = 64, n_blocks: int = 4,
                 kernel_size: int = 9, stem_kernel_size: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or stem_kernel_size % 2 == 0:
            raise ValueError(f"kernel sizes must be odd (same-length padding); got {kernel_size}, "
                             f"{stem_kernel_size}")
        self.n_mels = int(n_mels)
        self.register_buffer("norm_mean", torch.zeros(self.n_mels))
        self.register_buffer("norm_std", torch.ones(self.n_mels))
        self.stem = nn.Sequential(
            nn.Conv1d(self.n_mels, channels, stem_kernel_size, stride=2, padding=stem_kernel_size // 2,
                      bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(*[_SeparableBlock(channels, kernel_size) for _ in range(n_blocks)])
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, n_classes))

    @torch.no_grad()
    def fit_normalization(self, spectrogram_batches: Iterable[Tensor]) -> DSCNN:
        """Measure each band's mean and standard deviation (dB) over training spectrograms.

        Parameters
        ----------
        spectrogram_batches : iterable of Tensor, each (batch, n_mels, n_frames)
            Un-augmented log-mel of training clips.

        Returns
        -------
        self, with ``norm_mean`` and ``norm_std`` (shape ``(n_mels,)``) set.
        """
        mean, std = band_mean_std(
            (spec.cpu() for spec in spectrogram_batches),
            empty_message="DSCNN.fit_normalization got no spectrograms: pass the training log-mels.")
        self.norm_mean.copy_(mean.float())
        self.norm_std.copy_(std.float().clamp_min(1e-3))
        return self

    def forward(self, spec: Tensor) -> Tensor:
        if spec.ndim != 3 or spec.shape[1] != self.n_mels:
            raise ValueError(f"DSCNN expects log-mel (batch, {self.n_mels}, frames); got {tuple(spec.shape)}")
        x = (spec - self.norm_mean[:, None]) / self.norm_std[:, None]
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=-1))
