"""Tests for course_lib.models.temporal (notebook 09_temporal_models)."""

from __future__ import annotations

import pytest
import torch

from course_lib.models.temporal import (
    AttentionPooling,
    CausalConv1d,
    CTCModel,
    FrameTagger,
    PositionalEncoding,
    RNNClassifier,
    StreamingTCN,
    TCN,
    TCNClassifier,
    TransformerClassifier,
    ctc_loss,
    greedy_ctc_decode,
    lengths_to_mask,
    stream_process,
)

N_FEAT = 6


def _impulse_response_support(model: torch.nn.Module, n_frames: int, t0: int) -> torch.Tensor:
    """Output frames that change when input frame t0 is perturbed (bool, n_frames)."""
    torch.manual_seed(0)
    x = torch.randn(1, N_FEAT, n_frames)
    x2 = x.clone()
    x2[0, :, t0] += 10.0
    with torch.no_grad():
        diff = (model(x2) - model(x)).abs().sum(1)[0]
    return diff > 1e-6


def test_causal_conv_has_no_lookahead_and_exact_context():
    conv = CausalConv1d(N_FEAT, 4, kernel_size=3, dilation=4)
    assert conv.left_context == 8
    changed = _impulse_response_support(conv, 40, t0=20)
    assert not changed[:20].any()  # nothing before the impulse (no look-ahead)
    assert changed.nonzero().flatten().tolist() == [20, 24, 28]  # taps at t0 + 0, d, 2d


@pytest.mark.parametrize("kernel_size,channels", [(3, (8, 8, 8)), (2, (8, 8, 8, 8)), (5, (4, 8))])
def test_tcn_receptive_field_by_impulse(kernel_size, channels):
    torch.manual_seed(1)
    tcn = TCN(N_FEAT, channels, kernel_size=kernel_size).eval()
    expected = 1 + 2 * (kernel_size - 1) * sum(2**i for i in range(len(channels)))
    assert tcn.receptive_field == expected
    n, t0 = expected + 40, 20
    changed = _impulse_response_support(tcn, n, t0)
    assert not changed[:t0].any()  # causal
    influenced = changed.nonzero().flatten()
    # The last output that "hears" frame t0 is exactly receptive_field - 1 frames later.
    assert int(influenced.max()) - t0 == tcn.receptive_field - 1


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_stream_process_tcn_equals_offline(chunk):
    torch.manual_seed(2)
    tcn = TCN(N_FEAT, (8, 8, 8), kernel_size=3, dropout=0.3)
    x = torch.randn(2, N_FEAT, 123)
    tcn.eval()
    with torch.no_grad():
        offline = tcn(x)
    tcn.train()
    streamed = stream_process(tcn, x, chunk)
    assert tcn.training  # restored
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() < 1e-5


@pytest.mark.parametrize("backbone", ["gru", "tcn"])
def test_stream_process_frame_tagger_equals_offline(backbone):
    torch.manual_seed(3)
    tagger = FrameTagger(N_FEAT, n_outputs=2, backbone=backbone, hidden=8).eval()
    x = torch.randn(3, N_FEAT, 90)
    with torch.no_grad():
        offline = tagger(x)
    streamed = stream_process(tagger, x, chunk=16)
    assert offline.shape == (3, 90, 2) and streamed.shape == offline.shape
    assert (streamed - offline).abs().max() < 1e-5


def test_streaming_tcn_carries_left_context():
    tcn = TCN(N_FEAT, (4, 4), kernel_size=3).eval()
    streamer = StreamingTCN(tcn)
    streamer.process(torch.randn(1, N_FEAT, 5))
    assert streamer.state_frames() == tcn.receptive_field - 1
    streamer.reset()
    assert streamer.state is None
    with pytest.raises(TypeError, match="stream"):
        StreamingTCN(torch.nn.Linear(2, 2))


def test_greedy_ctc_decode_cases():
    def one_hot(path, vocab=4):
        return torch.nn.functional.one_hot(torch.tensor(path), vocab).float().log_softmax(-1)

    assert greedy_ctc_decode(one_hot([1, 1, 0, 1, 2, 2, 0])) == [1, 1, 2]
    assert greedy_ctc_decode(one_hot([0, 0, 0])) == []
    assert greedy_ctc_decode(one_hot([3, 3, 3])) == [3]
    assert greedy_ctc_decode(one_hot([1, 2, 1, 2])) == [1, 2, 1, 2]
    assert greedy_ctc_decode(one_hot([2, 2, 1, 1]), blank=1) == [2]
    batch = torch.stack([one_hot([1, 0, 1, 3]), one_hot([2, 2, 0, 0])])
    assert greedy_ctc_decode(batch) == [[1, 1, 3], [2]]
    assert greedy_ctc_decode(batch, lengths=torch.tensor([2, 4])) == [[1], [2]]
    with pytest.raises(ValueError, match="log_probs"):
        greedy_ctc_decode(torch.zeros(4))


def test_ctc_loss_decreases_on_tiny_sequence_task():
    # Each symbol s in 1..3 is 6 frames of a feature pattern; a sequence is 2-3 symbols.
    torch.manual_seed(4)
    patterns = torch.randn(4, N_FEAT) * 2
    xs, targets, lengths = [], [], []
    for _ in range(16):
        labels = torch.randint(1, 4, (int(torch.randint(2, 4, ())),)).tolist()
        frames = [patterns[s].repeat(6, 1) for s in labels]
        frames = [f for pair in zip(frames, [patterns[0].repeat(2, 1)] * len(frames)) for f in pair]
        seq = torch.cat(frames).T + 0.1 * torch.randn(N_FEAT, sum(len(f) for f in frames))
        xs.append(seq)
        targets.append(labels)
        lengths.append(seq.shape[1])
    n_max = max(lengths)
    x = torch.stack([torch.nn.functional.pad(s, (0, n_max - s.shape[1])) for s in xs])
    lengths = torch.tensor(lengths)
    model = CTCModel(N_FEAT, vocab_size=4, conv_channels=16, hidden=16, n_layers=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(50):
        log_probs = model(x, lengths)
        assert log_probs.shape == (16, (n_max - 1) // 2 + 1, 4)
        loss = ctc_loss(log_probs, targets, model.output_lengths(lengths))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    model.eval()
    with torch.no_grad():
        decoded = greedy_ctc_decode(model(x, lengths), lengths=model.output_lengths(lengths))
    assert sum(d == t for d, t in zip(decoded, targets)) >= 10


@pytest.mark.parametrize(
    "model",
    [
        RNNClassifier(N_FEAT, 3, hidden=8, cell="lstm", pooling="last"),
        RNNClassifier(N_FEAT, 3, hidden=8, cell="gru", bidirectional=True, pooling="attention"),
        RNNClassifier(N_FEAT, 3, hidden=8, cell="rnn", pooling="mean"),
        TCNClassifier(N_FEAT, 3, channels=(8, 8), pooling="attention"),
        TransformerClassifier(N_FEAT, 3, d_model=16, n_heads=2, n_layers=1, dim_feedforward=32),
    ],
    ids=["lstm", "bigru-attn", "rnn-mean", "tcn", "transformer"],
)
def test_classifiers_ignore_padding(model):
    torch.manual_seed(5)
    model.eval()
    x = torch.randn(2, N_FEAT, 20)
    lengths = torch.tensor([20, 12])
    with torch.no_grad():
        out = model(x, lengths)
        padded = x.clone()
        padded[1, :, 12:] = 100.0  # garbage in the padding must not change the output
        out_garbage = model(padded, lengths)
        alone = model(x[1:, :, :12])
        four_d = model(x.unsqueeze(1), lengths)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, out_garbage, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1:], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, four_d)
    with pytest.raises(ValueError, match="n_frames"):
        model(torch.randn(2, N_FEAT + 1, 20))


def test_attention_pooling_masks_and_normalises():
    torch.manual_seed(6)
    pool = AttentionPooling(4)
    h = torch.randn(2, 5, 4)
    mask = lengths_to_mask(torch.tensor([5, 3]), 5)
    pooled, weights = pool(h, mask, return_weights=True)
    assert pooled.shape == (2, 4)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert (weights[1, 3:] == 0).all()
    torch.testing.assert_close(pooled, torch.einsum("bt,btd->bd", weights, h))


def test_positional_encoding_values():
    pe = PositionalEncoding(8, max_len=50)
    out = pe(torch.zeros(1, 10, 8))[0]
    t = torch.arange(10.0)
    torch.testing.assert_close(out[:, 0], torch.sin(t))
    torch.testing.assert_close(out[:, 1], torch.cos(t))
    torch.testing.assert_close(out[:, 2], torch.sin(t / 10000 ** (2 / 8)))
    with pytest.raises(ValueError, match="max_len"):
        pe(torch.zeros(1, 51, 8))


def test_transformer_self_attention_divides_scores_by_sqrt_head_dim():
    # Notebook 09 teaches scaled dot-product attention, softmax(q.k / sqrt(d_k)): the course's
    # Transformer must compute exactly that (and not the unscaled softmax(q.k)).
    torch.manual_seed(7)
    d_model, n_heads, batch, n_frames = 16, 2, 2, 9
    attn = TransformerClassifier(N_FEAT, 3, d_model=d_model, n_heads=n_heads).encoder.layers[0].self_attn.eval()
    h = torch.randn(batch, n_frames, d_model) * 3.0      # large enough that the scaling changes the weights
    d_k = d_model // n_heads
    with torch.no_grad():
        _, torch_weights = attn(h, h, h, need_weights=True, average_attn_weights=False)
        q, k, _ = torch.nn.functional.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k = (t.reshape(batch, n_frames, n_heads, d_k).transpose(1, 2) for t in (q, k))
        scores = q @ k.transpose(-1, -2)
    torch.testing.assert_close(torch_weights, torch.softmax(scores / d_k**0.5, dim=-1), atol=1e-6, rtol=1e-5)
    assert (torch_weights - torch.softmax(scores, dim=-1)).abs().max() > 1e-2
