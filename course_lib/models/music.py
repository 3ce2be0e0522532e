"""Language models over event tokens: an LSTM and a small causal Transformer.

Both map ``tokens [batch, length]`` (int64; position 0 holds the condition token) to next-token
logits ``[batch, length, vocab]``. The condition conditions every step: besides being the first
token, its own embedding (``condition_embedding``) is added to the input at every position, so
the LSTM does not have to carry it through hundreds of steps of memory.

``stream(tokens, state) -> (logits of the next token [batch, vocab], state)`` continues a sequence
for sampling (:func:`course_lib.music.sample_tokens`): the LSTM carries its hidden state, the
Transformer keeps each block's keys and values (a KV cache).

Notebook: 16_music_generation
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["LSTMLanguageModel", "TransformerLanguageModel", "next_token_loss"]


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats per token. ``logits [batch, length, vocab]``, ``targets [batch, length]``."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


class LSTMLanguageModel(nn.Module):
    """Embedding -> LSTM -> linear read-out to the vocabulary.

    Parameters
    ----------
    vocab_size : int
    embed_dim : int
    hidden_size : int
    num_layers : int
    dropout : float
        On the embeddings and between LSTM layers.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden_size: int = 256, num_layers: int = 1,
                 dropout: float = 0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.condition_embedding = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.readout = nn.Linear(hidden_size, vocab_size)

    def _inputs(self, tokens: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embedding(tokens) + self.condition_embedding(condition)[:, None])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [batch, length]`` -> logits ``[batch, length, vocab]``."""
        h, _ = self.lstm(self._inputs(tokens, tokens[:, 0]))
        return self.readout(h)

    def stream(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed ``tokens [batch, n]`` after ``state`` (None: they start a sequence)."""
        if state is None:
            condition, hidden = tokens[:, 0], None
        else:
            condition, hidden = state
        h, hidden = self.lstm(self._inputs(tokens, condition), hidden)
        return self.readout(h[:, -1]), (condition, hidden)


class _CausalBlock(nn.Module):
    """Pre-norm Transformer block (causal self-attention, then a GELU feed-forward) with a key/value
    cache for generation one token at a time."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model={d_model} must be a multiple of nhead={nhead}")
        self.nhead = nhead
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(dim_feedforward, d_model))
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x [batch, n, d_model]`` after the cached keys/values of earlier positions."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.nhead, d // self.nhead).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        past = k.shape[2] - n
        if past == 0:
            mask, causal = None, True
        else:  # new positions see every cached one and the new ones up to themselves
            mask = torch.ones(n, k.shape[2], dtype=torch.bool, device=x.device).tril(past)
            causal = False
        a = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.attn_dropout if self.training else 0.0)
        x = x + self.dropout(self.out(a.transpose(1, 2).reshape(b, n, d)))
        x = x + self.dropout(self.ff(self.norm2(x)))
        return x, (k, v)


class TransformerLanguageModel(nn.Module):
    """Token + learned position embeddings -> causal pre-norm Transformer blocks -> read-out.

    Parameters
    ----------
    vocab_size : int
    d_model : int
    nhead : int
    num_layers : int
    dim_feedforward : int
    dropout : float
    max_len : int
        Longest context in tokens (sampling stops being possible beyond it).
    """

    def __init__(self, vocab_size: int, d_model: int = 128, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int = 256, dropout: float = 0.1, max_len: int = 512):
        super().__init__()
        self.max_len = int(max_len)
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.condition_embedding = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(self.max_len, d_model)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_CausalBlock(d_model, nhead, dim_feedforward, dropout)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, vocab_size)

    def _run(self, tokens: torch.Tensor, condition: torch.Tensor, caches: list | None
             ) -> tuple[torch.Tensor, list]:
        past = 0 if caches is None else caches[0][0].shape[2]
        n = tokens.shape[1]
        if past + n > self.max_len:
            raise ValueError(f"{past + n} tokens exceed max_len={self.max_len}")
        pos = torch.arange(past, past + n, device=tokens.device)
        x = self.dropout(self.embedding(tokens) + self.position(pos)[None]
                         + self.condition_embedding(condition)[:, None])
        new = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if caches is None else caches[i])
            new.append(kv)
        return self.readout(self.norm(x)), new

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [batch, length]`` -> logits ``[batch, length, vocab]`` (causal)."""
        return self._run(tokens, tokens[:, 0], None)[0]

    def stream(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed ``tokens [batch, n]`` after ``state`` (the condition and each block's key/value cache)."""
        condition, caches = (tokens[:, 0], None) if state is None else state
        logits, caches = self._run(tokens, condition, caches)
        return logits[:, -1], (condition, caches)
