"""Sequence models over frames: RNNs, TCNs, Transformers, attention pooling, CTC and streaming.

Notebook: 09_temporal_models.

Conventions: every model takes features shaped like a batch of log-mel spectrograms,
``x`` (batch, n_features, n_frames) (a singleton channel axis, (batch, 1, n_features, n_frames),
is squeezed), plus optional ``lengths`` (batch,) = number of valid frames per item (the rest is
padding). Frame-level outputs are batch-first: (batch, n_frames, n_outputs).
Streaming models implement ``init_state(batch_size)`` and ``forward_stream(x, state)``;
:func:`stream_process` runs any of them chunk by chunk.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "lengths_to_mask",
    "AttentionPooling",
    "RNNClassifier",
    "CausalConv1d",
    "TCN",
    "TCNClassifier",
    "StreamingTCN",
    "stream_process",
    "PositionalEncoding",
    "TransformerClassifier",
    "CTCModel",
    "ctc_loss",
    "greedy_ctc_decode",
    "FrameTagger",
]


def _as_sequence(x: torch.Tensor, n_features: int, name: str = "x") -> torch.Tensor:
    """(batch, n_features, n_frames) view of x, squeezing a singleton channel axis."""
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1] != n_features:
        raise ValueError(
            f"{name} must be (batch, {n_features}, n_frames) log-mel-like features "
            f"(or (batch, 1, {n_features}, n_frames)); got {tuple(x.shape)}."
        )
    return x


def _check_lengths(lengths: torch.Tensor | None, batch: int, n_frames: int) -> torch.Tensor | None:
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},); got {tuple(lengths.shape)}.")
    if (lengths < 1).any() or (lengths > n_frames).any():
        raise ValueError(f"lengths must lie in [1, {n_frames}] frames; got {lengths.tolist()}.")
    return lengths


def lengths_to_mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Boolean mask of valid frames.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    lengths : torch.Tensor, shape (batch,)
        Valid frames per item.
    n_frames : int
        Padded length.

    Returns
    -------
    torch.Tensor, shape (batch, n_frames), bool
        True where the frame is real, False where it is padding.
    """
    return torch.arange(n_frames, device=lengths.device)[None, :] < lengths[:, None]


class AttentionPooling(nn.Module):
    """Learned weighted average over time: ``a_t = softmax_t(v^T tanh(W h_t))``, ``sum_t a_t h_t``.

    Padding frames get zero weight. Notebook: 09_temporal_models (reused in 14_speech_emotion).

    Parameters
    ----------
    dim : int
        Feature size of ``h``.
    hidden : int, optional
        Size of the scoring layer (default ``dim``).
    """

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or dim
        self.proj = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor | None = None, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Pool ``h`` (batch, n_frames, dim) to (batch, dim).

        Parameters
        ----------
        h : torch.Tensor, shape (batch, n_frames, dim)
        mask : torch.Tensor, shape (batch, n_frames), bool, optional
            True for real frames.
        return_weights : bool
            Also return the weights (batch, n_frames), summing to 1 over valid frames.
        """
        scores = self.score(torch.tanh(self.proj(h))).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        pooled = torch.einsum("bt,btd->bd", weights, h)
        return (pooled, weights) if return_weights else pooled


def _pool(h: torch.Tensor, mask: torch.Tensor | None, how: str, attention: nn.Module | None) -> torch.Tensor:
    """Pool (batch, n_frames, dim) to (batch, dim) by masked mean, masked max or attention."""
    if how == "attention":
        return attention(h, mask)
    if mask is None:
        return h.mean(1) if how == "mean" else h.amax(1)
    m = mask.unsqueeze(-1).to(h.dtype)
    if how == "mean":
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)
    return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)


_POOLINGS = ("mean", "max", "attention")


class RNNClassifier(nn.Module):
    """RNN / LSTM / GRU over log-mel frames -> clip logits.

    Variable lengths are handled with packed sequences, so padding never enters the recurrence
    and the "last" state is each clip's own last real frame.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    n_features : int
        Features per frame (e.g. n_mels).
    n_classes : int
    hidden : int
        Hidden size per direction.
    n_layers : int
    cell : {"rnn", "lstm", "gru"}
    bidirectional : bool
    dropout : float
        Between layers and before the head.
    pooling : {"last", "mean", "max", "attention"}
        How the frame outputs become one vector.
    """

    def __init__(self, n_features: int, n_classes: int, hidden: int = 64, n_layers: int = 1,
                 cell: str = "gru", bidirectional: bool = False, dropout: float = 0.1,
                 pooling: str = "last") -> None:
        super().__init__()
        cells = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
        if cell not in cells:
            raise ValueError(f"cell must be one of {sorted(cells)}; got {cell!r}.")
        if pooling not in ("last",) + _POOLINGS:
            raise ValueError(f"pooling must be 'last', 'mean', 'max' or 'attention'; got {pooling!r}.")
        self.n_features, self.cell, self.pooling = n_features, cell, pooling
        self.rnn = cells[cell](n_features, hidden, num_layers=n_layers, batch_first=True,
                               bidirectional=bidirectional, dropout=dropout if n_layers > 1 else 0.0)
        out_dim = hidden * (2 if bidirectional else 1)
        self.attention = AttentionPooling(out_dim) if pooling == "attention" else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(out_dim, n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, n_classes) for ``x`` (batch, n_features, n_frames)."""
        x = _as_sequence(x, self.n_features)
        batch, _, n_frames = x.shape
        lengths = _check_lengths(lengths, batch, n_frames)
        seq = x.transpose(1, 2)
        if lengths is None:
            out, state = self.rnn(seq)
        else:
            packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=n_frames)
        if self.pooling == "last":
            h_n = state[0] if self.cell == "lstm" else state
            n_dir = 2 if self.rnn.bidirectional else 1
            pooled = torch.cat(list(h_n[-n_dir:]), dim=-1)
        else:
            mask = None if lengths is None else lengths_to_mask(lengths.to(x.device), n_frames)
            pooled = _pool(out, mask, self.pooling, self.attention)
        return self.head(pooled)


class CausalConv1d(nn.Conv1d):
    """1-D convolution whose output at time t sees inputs t - (k-1)*dilation ... t only.

    Offline it pads ``left_context = (kernel_size - 1) * dilation`` zeros on the left; streaming it
    keeps the last ``left_context`` input frames of the previous chunk instead.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
    dilation : int
    bias : bool
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, padding=0, bias=bias)

    @property
    def left_context(self) -> int:
        """Past frames each output needs: ``(kernel_size - 1) * dilation``."""
        return (self.kernel_size[0] - 1) * self.dilation[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, n_frames) -> (batch, out_channels, n_frames)."""
        return super().forward(F.pad(x, (self.left_context, 0)))

    def init_state(self, batch_size: int, device: Any = None,
                   dtype: torch.dtype | None = None) -> torch.Tensor:
        """Zero buffer (batch, in_channels, left_context): the offline left padding."""
        return torch.zeros(batch_size, self.in_channels, self.left_context, device=device,
                           dtype=dtype or self.weight.dtype)

    def forward_stream(self, x: torch.Tensor, buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Process one chunk (batch, in_channels, t) given the previous left context.

        Returns the chunk's output (batch, out_channels, t) and the new buffer.
        """
        full = torch.cat([buffer, x], dim=-1)
        new_buffer = full[..., full.shape[-1] - self.left_context:]
        return super().forward(full), new_buffer


class _TCNBlock(nn.Module):
    """Two dilated causal convolutions with ReLU and dropout, plus a residual (1x1 if needed)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 dropout: float) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = CausalConv1d(out_channels, out_channels, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)
        self.residual = (nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(torch.relu(self.conv1(x)))
        y = self.dropout(torch.relu(self.conv2(y)))
        return torch.relu(y + self.residual(x))

    def forward_stream(self, x: torch.Tensor,
                       state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        y, b1 = self.conv1.forward_stream(x, state[0])
        y = self.dropout(torch.relu(y))
        y, b2 = self.conv2.forward_stream(y, state[1])
        y = self.dropout(torch.relu(y))
        return torch.relu(y + self.residual(x)), [b1, b2]


class TCN(nn.Module):
    """Temporal convolutional network: residual blocks of dilated causal convolutions.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    in_channels : int
        Input channels (e.g. n_mels).
    channels : sequence of int
        Output channels of each residual block.
    kernel_size : int
    dilations : sequence of int, optional
        One per block; default ``1, 2, 4, ...`` (the receptive field doubles per block).
    dropout : float
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (32, 32, 32, 32), kernel_size: int = 3,
                 dilations: Sequence[int] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        channels = list(channels)
        dilations = list(dilations) if dilations is not None else [2**i for i in range(len(channels))]
        if len(dilations) != len(channels):
            raise ValueError(f"Give one dilation per block: {len(channels)} blocks, "
                             f"{len(dilations)} dilations.")
        self.in_channels, self.out_channels = in_channels, channels[-1]
        ins = [in_channels] + channels[:-1]
        self.blocks = nn.ModuleList(
            _TCNBlock(i, o, kernel_size, d, dropout) for i, o, d in zip(ins, channels, dilations)
        )

    @property
    def receptive_field(self) -> int:
        """Frames of input that one output frame depends on: ``1 + sum over convs (k-1) * d``."""
        return 1 + sum(b.conv1.left_context + b.conv2.left_context for b in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, n_frames) -> (batch, channels[-1], n_frames), causal."""
        x = _as_sequence(x, self.in_channels)
        for block in self.blocks:
            x = block(x)
        return x

    stream_output_time_dim = -1

    def init_state(self, batch_size: int, device: Any = None,
                   dtype: torch.dtype | None = None) -> list[list[torch.Tensor]]:
        """Zero left-context buffers, two per block."""
        return [[b.conv1.init_state(batch_size, device, dtype), b.conv2.init_state(batch_size, device, dtype)]
                for b in self.blocks]

    def forward_stream(self, x: torch.Tensor, state: list[list[torch.Tensor]]) -> tuple[torch.Tensor, list]:
        """Process one chunk (batch, in_channels, t) -> ((batch, channels[-1], t), new state)."""
        x = _as_sequence(x, self.in_channels)
        new_state = []
        for block, s in zip(self.blocks, state):
            x, s = block.forward_stream(x, s)
            new_state.append(s)
        return x, new_state


class TCNClassifier(nn.Module):
    """TCN over log-mel frames, pooled over time, to clip logits.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    n_features, n_classes : int
    channels, kernel_size, dilations, dropout
        See :class:`TCN`.
    pooling : {"mean", "max", "attention"}
    """

    def __init__(self, n_features: int, n_classes: int, channels: Sequence[int] = (32, 32, 32, 32),
                 kernel_size: int = 3, dilations: Sequence[int] | None = None, dropout: float = 0.1,
                 pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}; got {pooling!r}.")
        self.pooling = pooling
        self.norm = nn.BatchNorm1d(n_features)
        self.tcn = TCN(n_features, channels, kernel_size, dilations, dropout)
        self.attention = AttentionPooling(self.tcn.out_channels) if pooling == "attention" else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.tcn.out_channels, n_classes))

    @property
    def receptive_field(self) -> int:
        return self.tcn.receptive_field

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, n_classes) for ``x`` (batch, n_features, n_frames)."""
        x = _as_sequence(x, self.tcn.in_channels)
        lengths = _check_lengths(lengths, x.shape[0], x.shape[-1])
        h = self.tcn(self.norm(x)).transpose(1, 2)
        mask = None if lengths is None else lengths_to_mask(lengths.to(x.device), x.shape[-1])
        return self.head(_pool(h, mask, self.pooling, self.attention))


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal position code ``PE[t, 2i] = sin(t / 10000^(2i/d))``, ``PE[t, 2i+1] = cos(...)``.

    Self-attention is permutation-equivariant; this is what tells it the order of the frames.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    d_model : int
        Feature size (even).
    max_len : int
        Longest sequence supported.
    dropout : float
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even for sin/cos pairs; got {d_model}.")
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)
        self.register_buffer("pe", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_frames, d_model) -> same shape with the position code added."""
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"Sequence of {x.shape[1]} frames exceeds max_len={self.pe.shape[0]}; "
                             "raise max_len.")
        return self.dropout(x + self.pe[: x.shape[1]].to(x.dtype))


class TransformerClassifier(nn.Module):
    """Small Transformer encoder over frames (positional encoding, key padding mask) -> logits.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    n_features, n_classes : int
    d_model, n_heads, n_layers, dim_feedforward : int
    dropout : float
    pooling : {"attention", "mean", "max"}
    max_len : int
    """

    def __init__(self, n_features: int, n_classes: int, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 2, dim_feedforward: int = 128, dropout: float = 0.1,
                 pooling: str = "attention", max_len: int = 5000) -> None:
        super().__init__()
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}; got {pooling!r}.")
        self.n_features, self.pooling = n_features, pooling
        self.norm = nn.BatchNorm1d(n_features)
        self.input = nn.Linear(n_features, d_model)
        self.position = PositionalEncoding(d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.attention = AttentionPooling(d_model) if pooling == "attention" else None
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, n_classes) for ``x`` (batch, n_features, n_frames)."""
        x = _as_sequence(x, self.n_features)
        lengths = _check_lengths(lengths, x.shape[0], x.shape[-1])
        h = self.position(self.input(self.norm(x).transpose(1, 2)))
        mask = None if lengths is None else lengths_to_mask(lengths.to(x.device), x.shape[-1])
        h = self.encoder(h, src_key_padding_mask=None if mask is None else ~mask)
        return self.head(_pool(h, mask, self.pooling, self.attention))


class CTCModel(nn.Module):
    """Conv front end (time stride 2) + BiGRU + linear to the vocabulary (index ``blank`` = blank).

    Notebook: 09_temporal_models (and 13_speech_recognition_ctc).

    Parameters
    ----------
    n_features : int
    vocab_size : int
        Output symbols including the blank.
    conv_channels, hidden, n_layers : int
    stride : int
        Time subsampling of the front end (1 or 2).
    dropout : float
    """

    def __init__(self, n_features: int, vocab_size: int, conv_channels: int = 64, hidden: int = 64,
                 n_layers: int = 2, stride: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2; got {stride}.")
        self.n_features, self.stride = n_features, stride
        self.front = nn.Sequential(
            nn.BatchNorm1d(n_features),
            nn.Conv1d(n_features, conv_channels, 5, stride=stride, padding=2),
            nn.BatchNorm1d(conv_channels),
            nn.ReLU(),
            nn.Conv1d(conv_channels, conv_channels, 3, padding=1),
            nn.ReLU(),
        )
        self.rnn = nn.GRU(conv_channels, hidden, num_layers=n_layers, batch_first=True, bidirectional=True,
                          dropout=dropout if n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, vocab_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for input lengths (batch,): ``ceil(lengths / stride)``."""
        return (torch.as_tensor(lengths) - 1) // self.stride + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities (batch, ceil(n_frames / stride), vocab_size).

        ``x`` is (batch, n_features, n_frames); ``lengths`` (batch,) valid input frames.
        """
        x = _as_sequence(x, self.n_features)
        lengths = _check_lengths(lengths, x.shape[0], x.shape[-1])
        h = self.front(x).transpose(1, 2)
        n_out = h.shape[1]
        if lengths is None:
            h, _ = self.rnn(h)
        else:
            out_len = self.output_lengths(lengths)
            packed = pack_padded_sequence(h, out_len.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = self.rnn(packed)
            h, _ = pad_packed_sequence(h, batch_first=True, total_length=n_out)
        return torch.log_softmax(self.out(self.dropout(h)), dim=-1)


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor | Sequence[Sequence[int]],
             input_lengths: torch.Tensor, target_lengths: torch.Tensor | None = None,
             blank: int = 0) -> torch.Tensor:
    """Mean CTC loss for batch-first log-probabilities (wraps :func:`torch.nn.functional.ctc_loss`).

    Notebook: 09_temporal_models.

    Parameters
    ----------
    log_probs : torch.Tensor, shape (batch, n_frames, vocab)
        From :class:`CTCModel`.
    targets : torch.Tensor (batch, max_target_len) padded, or a list of label lists
        Label indices, never the blank.
    input_lengths : torch.Tensor, shape (batch,)
        Valid output frames (``model.output_lengths(lengths)``).
    target_lengths : torch.Tensor, shape (batch,), optional
        Required with padded tensor targets.
    blank : int

    Returns
    -------
    torch.Tensor, scalar
    """
    if not isinstance(targets, torch.Tensor):
        target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
        targets = torch.tensor([s for t in targets for s in t], dtype=torch.long)
    elif target_lengths is None:
        raise ValueError("Pass target_lengths with padded tensor targets "
                         "(or give targets as a list of lists).")
    return F.ctc_loss(log_probs.transpose(0, 1), targets.to(log_probs.device), input_lengths, target_lengths,
                      blank=blank, zero_infinity=True)


def greedy_ctc_decode(log_probs: torch.Tensor, blank: int = 0,
                      lengths: torch.Tensor | None = None) -> list[int] | list[list[int]]:
    """Best path decoding: argmax per frame, collapse repeats, drop blanks.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    log_probs : tensor or array, shape (n_frames, vocab) or (batch, n_frames, vocab)
    blank : int
    lengths : tensor, shape (batch,), optional
        Valid frames per item; the rest is ignored.

    Returns
    -------
    list of int for 2-D input, list of lists of int for 3-D input.

    Examples
    --------
    Frame argmax ``[1, 1, 0, 1, 2, 2, 0]`` decodes to ``[1, 1, 2]``: the blank separates the
    two 1s, repeated 2s collapse.
    """
    lp = torch.as_tensor(log_probs)
    if lp.ndim not in (2, 3):
        raise ValueError("log_probs must be (n_frames, vocab) or (batch, n_frames, vocab); "
                         f"got {tuple(lp.shape)}.")
    single = lp.ndim == 2
    best = lp.argmax(-1)
    if single:
        best = best[None]
    out = []
    for b, path in enumerate(best.tolist()):
        if lengths is not None:
            path = path[: int(lengths[b])]
        decoded, prev = [], None
        for s in path:
            if s != prev and s != blank:
                decoded.append(s)
            prev = s
        out.append(decoded)
    return out[0] if single else out


class FrameTagger(nn.Module):
    """Causal frame-level tagger (voice activity, onsets): one logit vector per frame.

    Both backbones are causal, so the model can run in streaming mode with
    :func:`stream_process` and give the same output as offline.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    n_features : int
    n_outputs : int
        Logits per frame (1 for a binary tag).
    backbone : {"gru", "tcn"}
    hidden : int
        GRU size or TCN channels.
    n_layers : int
        GRU layers or TCN blocks.
    kernel_size : int
        TCN kernel.
    """

    stream_output_time_dim = 1

    def __init__(self, n_features: int, n_outputs: int = 1, backbone: str = "gru", hidden: int = 32,
                 n_layers: int = 2, kernel_size: int = 3) -> None:
        super().__init__()
        if backbone not in ("gru", "tcn"):
            raise ValueError(f"backbone must be 'gru' or 'tcn'; got {backbone!r}.")
        self.n_features, self.backbone = n_features, backbone
        if backbone == "gru":
            self.body = nn.GRU(n_features, hidden, num_layers=n_layers, batch_first=True)
        else:
            self.body = TCN(n_features, [hidden] * n_layers, kernel_size)
        self.out = nn.Linear(hidden, n_outputs)

    @property
    def receptive_field(self) -> float:
        """Past frames an output can see: the TCN's receptive field, unbounded (inf) for the GRU."""
        return self.body.receptive_field if self.backbone == "tcn" else math.inf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_frames, n_outputs) for ``x`` (batch, n_features, n_frames)."""
        x = _as_sequence(x, self.n_features)
        if self.backbone == "gru":
            h, _ = self.body(x.transpose(1, 2))
        else:
            h = self.body(x).transpose(1, 2)
        return self.out(h)

    def init_state(self, batch_size: int, device: Any = None, dtype: torch.dtype | None = None) -> Any:
        """Zero GRU hidden state (n_layers, batch, hidden) or the TCN's zero buffers."""
        if self.backbone == "gru":
            return torch.zeros(self.body.num_layers, batch_size, self.body.hidden_size, device=device,
                               dtype=dtype or self.out.weight.dtype)
        return self.body.init_state(batch_size, device, dtype)

    def forward_stream(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One chunk (batch, n_features, t) -> (logits (batch, t, n_outputs), new state)."""
        x = _as_sequence(x, self.n_features)
        if self.backbone == "gru":
            h, state = self.body(x.transpose(1, 2), state)
        else:
            h, state = self.body.forward_stream(x, state)
            h = h.transpose(1, 2)
        return self.out(h), state


class StreamingTCN:
    """Runs a :class:`TCN` (or any model with ``init_state``/``forward_stream``) chunk by chunk.

    It carries each causal convolution's last ``left_context`` input frames between chunks, so the
    concatenated outputs equal the offline output.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    model : nn.Module
        A TCN, FrameTagger, or any module implementing the streaming protocol.
    """

    def __init__(self, model: nn.Module) -> None:
        if not (hasattr(model, "init_state") and hasattr(model, "forward_stream")):
            raise TypeError(f"{type(model).__name__} has no init_state/forward_stream: it cannot stream.")
        self.model = model
        self.state: Any = None

    def reset(self) -> None:
        """Forget the carried context (start a new stream)."""
        self.state = None

    @torch.no_grad()
    def process(self, chunk: torch.Tensor) -> torch.Tensor:
        """Output for the next chunk (batch, n_features, t) of the stream."""
        if self.state is None:
            p = next(self.model.parameters())
            self.state = self.model.init_state(chunk.shape[0], p.device, p.dtype)
        out, self.state = self.model.forward_stream(chunk, self.state)
        return out

    def state_frames(self) -> int:
        """Input-side frames held in buffers (0 for a recurrent state or before the first chunk)."""
        if self.state is None or isinstance(self.state, torch.Tensor):
            return 0
        flat = [b for block in self.state for b in block]
        return sum(b.shape[-1] for b in flat)


@torch.no_grad()
def stream_process(model: nn.Module, signal: torch.Tensor, chunk: int) -> torch.Tensor:
    """Run a causal model over ``signal`` in chunks of ``chunk`` frames, carrying its state.

    The model is put in eval mode for the call (dropout off) and restored afterwards.

    Notebook: 09_temporal_models.

    Parameters
    ----------
    model : nn.Module
        :class:`TCN` or :class:`FrameTagger` (anything with ``init_state``/``forward_stream``).
    signal : torch.Tensor, shape (batch, n_features, n_frames)
    chunk : int
        Frames per chunk (the last chunk may be shorter).

    Returns
    -------
    torch.Tensor
        The concatenated outputs, shaped like ``model(signal)``.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 frame; got {chunk}.")
    was_training = model.training
    model.eval()
    try:
        streamer = StreamingTCN(model)
        outs = [streamer.process(signal[..., s:s + chunk]) for s in range(0, signal.shape[-1], chunk)]
    finally:
        model.train(was_training)
    return torch.cat(outs, dim=getattr(model, "stream_output_time_dim", -1))
