"""Convolutional networks for audio, and the shape arithmetic that goes with them.

A convolution layer is a bank of learned FIR filters; pooling and striding trade time
resolution for context. The helpers ``conv_output_length``, ``receptive_field`` and
``count_parameters`` compute what a network does to shapes, so that a notebook prints the
numbers instead of asserting them.

Notebook: 05_from_filters_to_cnns (shapes, receptive field, RawWaveformCNN vs LogMelCNN),
06_cnn_audio_classification (ConvBlock2d, LogMelCNN with batch norm and dropout).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Union

import torch
from torch import nn

__all__ = [
    "conv_output_length",
    "stack_output_length",
    "receptive_field",
    "count_parameters",
    "ConvBlock1d",
    "ConvBlock2d",
    "RawWaveformCNN",
    "LogMelCNN",
]

LayerSpec = Union[nn.Module, Sequence[int]]


def conv_output_length(
    length: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a 1-D convolution or pooling layer along one axis.

    ``floor((length + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``, the formula
    behind ``nn.Conv1d``, ``nn.Conv2d`` (per axis) and ``nn.MaxPool1d``. With ``ceil_mode=True``
    (how the course's blocks pool, so a short clip keeps a frame) the division rounds up, and,
    as in PyTorch, a last window that would start beyond the input (in the right padding) is
    dropped.

    Parameters
    ----------
    length : int
        Input length in samples (or frames, or mel bands).
    kernel_size, stride, padding, dilation : int
    ceil_mode : bool
        Round up (a partial last window counts), as ``nn.MaxPool1d(..., ceil_mode=True)``.

    Returns
    -------
    int
        Output length; raises ``ValueError`` when the kernel does not fit.

    Notebook: 05_from_filters_to_cnns
    """
    for name, value, low in (("length", length, 0), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    span = dilation * (kernel_size - 1) + 1
    if ceil_mode and length >= 1:  # a partial window counts, even one shorter than the kernel
        out = -(-(length + 2 * padding - span) // stride) + 1
        if (out - 1) * stride >= length + padding:  # it would start in the right padding
            out -= 1
        return out
    if length + 2 * padding < span:
        raise ValueError(
            f"a kernel spanning {span} samples does not fit an input of length {length} "
            f"with padding {padding}: shorten the kernel or pad the input"
        )
    return (length + 2 * padding - span) // stride + 1


def stack_output_length(layers: nn.Module, length: int) -> int:
    """Length of the last (time) axis after ``layers`` (a layer, block or ``nn.Sequential``).

    Walks the modules in order and applies :func:`conv_output_length` with each layer's own
    kernel, stride, padding, dilation and ``ceil_mode``, so it agrees with running the block.
    Layers without a ``kernel_size`` (ReLU, BatchNorm, Dropout) keep the length.

    Notebook: 05_from_filters_to_cnns
    """
    def last(v: Any) -> int:
        return int(v[-1]) if isinstance(v, (tuple, list)) else int(v)

    for layer in layers.modules():
        if not hasattr(layer, "kernel_size") or isinstance(layer, nn.Sequential):
            continue
        if isinstance(getattr(layer, "padding", 0), str):
            raise ValueError(f"{type(layer).__name__} uses padding={layer.padding!r}; give numbers")
        stride = layer.stride if layer.stride is not None else layer.kernel_size
        length = conv_output_length(length, last(layer.kernel_size), last(stride),
                                    last(getattr(layer, "padding", 0)),
                                    last(getattr(layer, "dilation", 1)),
                                    ceil_mode=bool(getattr(layer, "ceil_mode", False)))
    return length


def _layer_geometry(layer: LayerSpec) -> list[tuple[int, int, int]]:
    """(kernel, stride, dilation) of the layers in ``layer`` that change the time axis."""
    if isinstance(layer, nn.Module):
        if isinstance(layer, (nn.Sequential, nn.ModuleList)):
            return [g for sub in layer for g in _layer_geometry(sub)]
        if hasattr(layer, "kernel_size"):

            def first(v: int | tuple[int, ...]) -> int:
                # The last axis is time for Conv1d and for (freq, time) Conv2d kernels.
                return int(v[-1]) if isinstance(v, tuple) else int(v)

            stride = layer.stride if layer.stride is not None else layer.kernel_size
            dilation = getattr(layer, "dilation", 1)
            return [(first(layer.kernel_size), first(stride), first(dilation))]
        return []  # activations, batch norm, dropout: no change to the receptive field
    spec = tuple(int(v) for v in layer)
    if not 1 <= len(spec) <= 3:
        raise ValueError(
            f"a layer is (kernel,), (kernel, stride) or (kernel, stride, dilation); got {layer!r}"
        )
    kernel, stride, dilation = (spec + (1, 1))[:3]
    return [(kernel, stride, dilation)]


def receptive_field(layers: Iterable[LayerSpec] | nn.Module) -> int:
    """Receptive field (in input samples) of one output of a stack of conv/pool layers.

    ``r = 1 + sum_i (k_i - 1) * d_i * prod_{j < i} s_j``: each layer widens the view by its
    kernel span, measured in steps of all the strides before it.

    Parameters
    ----------
    layers : iterable of (kernel, stride, dilation) tuples or nn.Modules, or an nn.Sequential
        Modules without a ``kernel_size`` (ReLU, BatchNorm) are skipped; for 2-D layers the
        last (time) axis is used.

    Returns
    -------
    int

    Notebook: 05_from_filters_to_cnns
    """
    if isinstance(layers, nn.Module):
        layers = [layers]
    geometry = [g for layer in layers for g in _layer_geometry(layer)]
    field, jump = 1, 1
    for kernel, stride, dilation in geometry:
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``. Notebook: 05_from_filters_to_cnns"""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def article_cnn_fixed(n_classes: int = 10) -> nn.Sequential:
    """The CNN of the article this course grew from, with its shape bugs fixed.

    Conv1d(1→64, k=3, pad 1) → ReLU → MaxPool(2) → Conv1d(64→64, k=3, pad 1) → ReLU →
    AdaptiveMaxPool(2) → flatten → Linear(128→64) → ReLU → Linear(64→n_classes). The adaptive
    pooling makes the 128 features the head expects (64 channels × 2 positions) for any input
    length; the ReLUs stop the two linear layers collapsing into one.

    Input ``(batch, 1, time)``, output ``(batch, n_classes)``.

    Notebook: 05_from_filters_to_cnns
    """
    return nn.Sequential(
        nn.Conv1d(1, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(64, 64, kernel_size=3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool1d(2),
        nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, n_classes),
    )


class ConvBlock1d(nn.Sequential):
    """Conv1d -> BatchNorm1d -> ReLU -> MaxPool1d: one stage of a raw-waveform CNN.

    Input ``(batch, in_channels, samples)``, output ``(batch, out_channels, samples // pool)``.

    Notebook: 05_from_filters_to_cnns
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, pool: int = 4,
                 batch_norm: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                      bias=not batch_norm)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm1d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        if pool > 1:
            # ceil_mode: a short clip keeps at least one frame instead of pooling to nothing.
            layers.append(nn.MaxPool1d(pool, ceil_mode=True))
        super().__init__(*layers)


class ConvBlock2d(nn.Sequential):
    """Conv2d 3x3 -> [BatchNorm2d] -> ReLU -> [MaxPool2d] -> [Dropout]: one stage of a 2-D CNN.

    Input ``(batch, in_channels, n_mels, frames)``; the pool halves both axes.

    Parameters
    ----------
    batch_norm : bool
        Normalise each channel over the batch (faster, more stable training).
    dropout : float
        Probability of zeroing a whole feature map (``Dropout2d``) during training.

    Notebook: 06_cnn_audio_classification
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3,
                 pool: int | tuple[int, int] = 2, batch_norm: bool = True,
                 dropout: float = 0.0) -> None:
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, k, padding=(k[0] // 2, k[1] // 2), bias=not batch_norm)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        if pool not in (1, (1, 1)):
            # ceil_mode keeps a one-frame input alive instead of pooling it to nothing.
            layers.append(nn.MaxPool2d(pool, ceil_mode=True))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


def _as_image(x: torch.Tensor) -> torch.Tensor:
    """Accept (batch, n_mels, frames) or (batch, 1, n_mels, frames)."""
    if x.dim() == 3:
        return x.unsqueeze(1)
    if x.dim() != 4:
        raise ValueError(
            f"expected a log-mel batch (batch, n_mels, frames) or (batch, 1, n_mels, frames), "
            f"got shape {tuple(x.shape)}"
        )
    return x


class RawWaveformCNN(nn.Module):
    """A 1-D CNN on raw audio: a strided learned filterbank, then conv blocks, global pooling.

    In the spirit of Dai et al. (2017), "Very deep convolutional neural networks for raw
    waveforms" (M5): the first layer's long kernel and its stride play the role of an STFT's
    window and hop (defaults: 160 samples = 10 ms at 16 kHz, hop 16 samples = 1 ms; a hop of 4
    as in M5 is ~8x slower to train on a CPU).

    Parameters
    ----------
    n_classes : int
    channels : sequence of int
        Output channels of each block; the first is the learned filterbank.
    first_kernel, first_stride : int
        Samples spanned by, and hop of, the first convolution.
    dropout : float

    Input ``(batch, 1, samples)`` or ``(batch, samples)``, any length;
    output logits ``(batch, n_classes)``.

    Notebook: 05_from_filters_to_cnns
    """

    def __init__(self, n_classes: int, channels: Sequence[int] = (32, 32, 64),
                 first_kernel: int = 160, first_stride: int = 16, pool: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one block")
        blocks = [ConvBlock1d(1, channels[0], first_kernel, stride=first_stride, pool=pool)]
        blocks += [ConvBlock1d(c_in, c_out, kernel_size=3, pool=pool)
                   for c_in, c_out in zip(channels[:-1], channels[1:])]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(
                f"RawWaveformCNN expects waveforms (batch, 1, samples); got {tuple(x.shape)}"
            )
        h = self.features(x)
        return self.head(h.mean(dim=-1))


class LogMelCNN(nn.Module):
    """A 2-D CNN on log-mel spectrograms: ``ConvBlock2d`` stages, global pooling, a linear head.

    Global average pooling over frequency and time makes the head independent of clip length.

    Parameters
    ----------
    n_classes : int
    channels : sequence of int
        Output channels of each 3x3 conv block (each halves both axes).
    batch_norm : bool
    dropout : float
        ``Dropout2d`` after each block and ``Dropout`` before the head.

    Input ``(batch, n_mels, frames)`` or ``(batch, 1, n_mels, frames)``; output logits
    ``(batch, n_classes)``.

    Notebook: 05_from_filters_to_cnns, 06_cnn_audio_classification
    """

    def __init__(self, n_classes: int, channels: Sequence[int] = (16, 32, 64),
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one block")
        chans = [1, *channels]
        self.features = nn.Sequential(*[
            ConvBlock2d(c_in, c_out, batch_norm=batch_norm, dropout=dropout)
            for c_in, c_out in zip(chans[:-1], chans[1:])
        ])
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(chans[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(_as_image(x))
        return self.head(h.mean(dim=(2, 3)))
