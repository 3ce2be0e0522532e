"""Time-frequency CNN blocks: a spectrogram is not an image.

The two axes of a log-mel spectrogram mean different things: a shift along time is the same
sound later, a shift along frequency is a different sound. These blocks build that in:
separate frequency (vertical, ``k x 1``) and time (horizontal, ``1 x k``) filters, parallel
kernels of several shapes, an explicit frequency-position channel, and a fully-convolutional
classifier that pools globally and so accepts clips of any length.

All blocks take ``(batch, channels, n_mels, frames)``.

Notebook: 07_time_frequency_cnns
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from course_lib.models.cnn import _as_image

__all__ = [
    "TimeFrequencySeparableBlock",
    "MultiScaleBlock",
    "FrequencyAwareConv",
    "FullyConvClassifier",
    "frequency_position",
]


def _norm_act(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class TimeFrequencySeparableBlock(nn.Module):
    """A vertical ``(k_freq x 1)`` frequency filter followed by a horizontal ``(1 x k_time)`` one.

    The first conv sees a spectral shape (timbre, formants) at one instant; the second follows
    it over time (onsets, rhythm). Together they cover a ``k_freq x k_time`` patch with
    ``k_freq + k_time`` weights per channel pair instead of ``k_freq * k_time``.

    Parameters
    ----------
    in_channels, out_channels : int
    k_freq, k_time : int
        Kernel heights (mel bands) and widths (frames); odd, so that padding keeps the shape.

    Input ``(batch, in_channels, n_mels, frames)``, output ``(batch, out_channels, n_mels, frames)``.

    Notebook: 07_time_frequency_cnns
    """

    def __init__(self, in_channels: int, out_channels: int, k_freq: int = 7, k_time: int = 7) -> None:
        super().__init__()
        if k_freq % 2 == 0 or k_time % 2 == 0:
            raise ValueError(f"k_freq and k_time must be odd to keep the shape, got {k_freq}, {k_time}")
        self.freq = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (k_freq, 1), padding=(k_freq // 2, 0), bias=False),
            *_norm_act(out_channels),
        )
        self.time = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, (1, k_time), padding=(0, k_time // 2), bias=False),
            *_norm_act(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.time(self.freq(x))


class MultiScaleBlock(nn.Module):
    """Parallel convolutions with differently shaped kernels, concatenated along channels.

    Default kernels: a square 3x3 (local patches), a tall 9x1 (spectral envelope) and a wide
    1x9 (temporal pattern) — the Pons et al. (2016) idea of musically motivated filter shapes.

    Parameters
    ----------
    in_channels : int
    branch_channels : int
        Channels of each branch; the output has ``branch_channels * len(kernels)`` channels.
    kernels : sequence of (k_freq, k_time), each odd

    Input ``(batch, in_channels, n_mels, frames)``, output
    ``(batch, branch_channels * len(kernels), n_mels, frames)``.

    Notebook: 07_time_frequency_cnns
    """

    def __init__(self, in_channels: int, branch_channels: int,
                 kernels: Sequence[tuple[int, int]] = ((3, 3), (9, 1), (1, 9))) -> None:
        super().__init__()
        if not kernels:
            raise ValueError("kernels must name at least one (k_freq, k_time) shape")
        for kf, kt in kernels:
            if kf % 2 == 0 or kt % 2 == 0:
                raise ValueError(f"kernel {(kf, kt)} must have odd sides to keep the shape")
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, branch_channels, (kf, kt), padding=(kf // 2, kt // 2),
                                    bias=False), *_norm_act(branch_channels))
            for kf, kt in kernels
        )
        self.out_channels = branch_channels * len(kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def frequency_position(x: torch.Tensor) -> torch.Tensor:
    """A channel holding each bin's frequency position, from -1 (lowest band) to +1 (highest).

    Parameters
    ----------
    x : torch.Tensor, shape (batch, channels, n_mels, frames)

    Returns
    -------
    torch.Tensor, shape (batch, 1, n_mels, frames), same dtype and device as ``x``

    Notebook: 07_time_frequency_cnns
    """
    b, _, f, t = x.shape
    pos = torch.linspace(-1.0, 1.0, f, device=x.device, dtype=x.dtype)
    return pos.view(1, 1, f, 1).expand(b, 1, f, t)


class FrequencyAwareConv(nn.Module):
    """A conv layer that knows where in frequency it is (CoordConv along the mel axis).

    A plain convolution is shift-equivariant in frequency: the same filter responds the same way
    to a pattern at 200 Hz and at 2 kHz. Appending the frequency position as an extra input
    channel (Liu et al. 2018, "CoordConv"; Koutini et al. 2019, frequency-aware CNNs) lets the
    filter's response depend on the band.

    Input ``(batch, in_channels, n_mels, frames)``, output ``(batch, out_channels, n_mels, frames)``.

    Notebook: 07_time_frequency_cnns
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.post = nn.Sequential(*_norm_act(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.conv(torch.cat([x, frequency_position(x)], dim=1)))


class FullyConvClassifier(nn.Module):
    """A fully-convolutional classifier: conv stages, a 1x1 conv to class maps, global pooling.

    No layer has a size tied to the input length, so one model classifies clips of any
    duration: it predicts class scores per time-frequency region and averages them.

    Parameters
    ----------
    n_classes : int
    channels : sequence of int
        Channels of each stage; each stage but the last halves both axes (max-pool 2x2).
    block : {"standard", "separable", "multiscale", "frequency_aware"}
        What each stage is: 3x3 conv, ``TimeFrequencySeparableBlock``, ``MultiScaleBlock``, or a
        ``FrequencyAwareConv`` first stage followed by 3x3 convs.
    dropout : float
        ``Dropout2d`` before the 1x1 classifier conv.

    Input ``(batch, n_mels, frames)`` or ``(batch, 1, n_mels, frames)``, any frames >= 1;
    output logits ``(batch, n_classes)``.

    Notebook: 07_time_frequency_cnns
    """

    BLOCKS = ("standard", "separable", "multiscale", "frequency_aware")

    def __init__(self, n_classes: int, channels: Sequence[int] = (16, 32, 64),
                 block: str = "standard", dropout: float = 0.1) -> None:
        super().__init__()
        if block not in self.BLOCKS:
            raise ValueError(f"block must be one of {self.BLOCKS}, got {block!r}")
        if not channels:
            raise ValueError("channels must name at least one stage")
        stages: list[nn.Module] = []
        c_in = 1
        for i, c_out in enumerate(channels):
            if block == "separable":
                stage: nn.Module = TimeFrequencySeparableBlock(c_in, c_out, k_freq=5, k_time=5)
            elif block == "multiscale":
                n_branches = 3
                stage = MultiScaleBlock(c_in, max(1, c_out // n_branches))
                c_out = stage.out_channels
            elif block == "frequency_aware" and i == 0:
                stage = FrequencyAwareConv(c_in, c_out)
            else:
                stage = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                                      *_norm_act(c_out))
            stages.append(stage)
            if i < len(channels) - 1:
                stages.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = c_out
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(c_in, n_classes, 1))

    def class_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores per region, shape ``(batch, n_classes, n_mels', frames')``."""
        return self.classifier(self.features(_as_image(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_maps(x).mean(dim=(2, 3))
