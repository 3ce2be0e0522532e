"""A convolutional autoencoder: a learned mapping to a small code and back.

Notebook: 05_from_filters_to_cnns (bottleneck visualised, reconstruction heard),
10_self_supervised (the autoencoder as a pretext task).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from course_lib.models.cnn import _as_image

__all__ = ["ConvAutoencoder"]


class ConvAutoencoder(nn.Module):
    """Strided-conv encoder to a bottleneck, transposed-conv decoder back to the input shape.

    Each encoder stage halves both axes (3x3, stride 2); the bottleneck is a 1x1-projected
    feature map of ``code_channels`` channels at ``1 / 2**len(channels)`` of the input's
    resolution. The decoder mirrors the encoder (4x4 transposed convs, stride 2) and crops to
    the input's shape, so any ``(n_mels, frames)`` works.

    Parameters
    ----------
    channels : sequence of int
        Channels of the encoder stages (the decoder uses them in reverse).
    code_channels : int
        Channels of the bottleneck.

    Input ``(batch, n_mels, frames)`` or ``(batch, 1, n_mels, frames)``; ``forward`` returns the
    reconstruction ``(batch, 1, n_mels, frames)``; ``encode`` the code
    ``(batch, code_channels, ceil(n_mels / 2**s), ceil(frames / 2**s))`` with ``s = len(channels)``.

    Notebook: 05_from_filters_to_cnns
    """

    def __init__(self, channels: Sequence[int] = (16, 32), code_channels: int = 8) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one encoder stage")
        enc: list[nn.Module] = []
        c_in = 1
        for c in channels:
            enc += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(True)]
            c_in = c
        enc.append(nn.Conv2d(c_in, code_channels, 1))
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.Conv2d(code_channels, c_in, 1), nn.ReLU(True)]
        rev = list(channels)[::-1]
        for c, c_next in zip(rev, rev[1:] + [rev[-1]]):
            dec += [nn.ConvTranspose2d(c, c_next, 4, stride=2, padding=1), nn.BatchNorm2d(c_next),
                    nn.ReLU(True)]
        # A linear output layer: log-mel values are unbounded in both directions.
        dec.append(nn.Conv2d(rev[-1], 1, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck code, shape ``(batch, code_channels, n_mels', frames')``."""
        return self.encoder(_as_image(x))

    def decode(self, code: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
        """Reconstruct from a code; ``shape`` = (n_mels, frames) crops to the original size."""
        out = self.decoder(code)
        return out if shape is None else out[..., : shape[0], : shape[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_image(x)
        return self.decode(self.encode(x), shape=(x.shape[-2], x.shape[-1]))
