"""Tests for course_lib.graphs and course_lib.models.gnn (notebook 08_spectral_graph_networks)."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import torch
from torch_geometric.loader import DataLoader
from torch_geometric.nn import ChebConv

from course_lib import dsp, graphs
from course_lib.models.gnn import ChebNetClassifier, GATClassifier, GCNClassifier


@pytest.mark.parametrize("n", [8, 13, 32])
def test_ring_eigenvalues_match_formula(n):
    lam, _ = graphs.graph_fourier_basis(graphs.laplacian(graphs.ring_graph(n)))
    np.testing.assert_allclose(lam, np.sort(graphs.ring_eigenvalues(n)), atol=1e-10)


@pytest.mark.parametrize("n", [8, 13, 32])
def test_ring_eigenvectors_span_dft_basis(n):
    L = graphs.laplacian(graphs.ring_graph(n))
    lam, U = graphs.graph_fourier_basis(L)
    F = graphs.dft_basis(n)
    expected = graphs.ring_eigenvalues(n)
    # Each DFT vector is an eigenvector with the formula's eigenvalue ...
    assert np.abs(L @ F - F * expected[None, :]).max() < 1e-10
    # ... and lies in the numerically computed eigenspace (paired eigenvalues: compare spaces).
    errors = [graphs.eigenspace_projection_error(F[:, k], lam, U, expected[k]) for k in range(n)]
    assert max(errors) < 1e-10
    # The GFT in the DFT basis is the orthonormal FFT.
    x = np.random.default_rng(0).standard_normal(n)
    np.testing.assert_allclose(graphs.gft(x, F), np.fft.fft(x, norm="ortho"), atol=1e-10)
    np.testing.assert_allclose(graphs.igft(graphs.gft(x, U), U), x, atol=1e-10)


def test_projection_error_detects_a_non_eigenvector():
    n = 10
    lam, U = graphs.graph_fourier_basis(graphs.laplacian(graphs.ring_graph(n)))
    wrong = graphs.dft_basis(n)[:, 1] + graphs.dft_basis(n)[:, 2]
    assert graphs.eigenspace_projection_error(wrong, lam, U, graphs.ring_eigenvalues(n)[1]) > 0.5


@pytest.mark.parametrize("response", [lambda l: np.exp(-2 * l), lambda l: 1 - 0.25 * l, lambda l: (l < 1.1).astype(float)])
def test_ring_spectral_filter_is_circular_convolution(response):
    n = 24
    L = graphs.laplacian(graphs.ring_graph(n))
    x = np.random.default_rng(1).standard_normal(n)
    kernel = graphs.ring_filter_kernel(n, response)
    np.testing.assert_allclose(kernel, np.roll(kernel[::-1], 1), atol=1e-12)  # symmetric kernel
    y_spectral = graphs.spectral_filter(x, L, response)
    y_conv = dsp.circular_convolve(x, kernel)
    assert np.abs(y_spectral - y_conv).max() < 1e-10


def test_three_tap_symmetric_conv_is_a_polynomial_in_L():
    # [b, a, b] circular convolution == (a + 2b) I - b L on the ring.
    n, a, b = 12, 0.5, 0.25
    L = graphs.laplacian(graphs.ring_graph(n))
    x = np.random.default_rng(2).standard_normal(n)
    kernel = np.zeros(n)
    kernel[[0, 1, -1]] = a, b, b
    np.testing.assert_allclose(dsp.circular_convolve(x, kernel), ((a + 2 * b) * np.eye(n) - b * L) @ x, atol=1e-12)


def test_laplacian_kinds_and_errors():
    A = np.array([[0, 1, 0], [1, 0, 2], [0, 2, 0]], dtype=float)
    L = graphs.laplacian(A)
    np.testing.assert_allclose(L.sum(1), 0, atol=1e-12)
    Ln = graphs.laplacian(A, "normalized")
    lam = np.linalg.eigvalsh(Ln)
    assert lam.min() > -1e-12 and lam.max() <= 2 + 1e-12
    with pytest.raises(ValueError, match="symmetric"):
        graphs.laplacian(np.triu(A))
    with pytest.raises(ValueError, match="kind"):
        graphs.laplacian(A, "bogus")


@pytest.mark.parametrize("K", [1, 2, 4])
def test_chebyshev_filter_matches_chebconv(K):
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    n = 20
    A = np.triu((rng.random((n, n)) < 0.25).astype(float), 1)
    A = A + A.T
    edge_index = torch.as_tensor(np.array(np.nonzero(A)), dtype=torch.long)
    conv = ChebConv(5, 7, K=K)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(n, 5)
    ref = conv(x, edge_index).detach()
    theta = torch.stack([lin.weight.detach().T for lin in conv.lins])
    ours = graphs.chebyshev_filter(x, graphs.laplacian(A, "normalized"), theta, bias=conv.bias.detach())
    assert (ours - ref).abs().max() < 1e-5


def test_chebyshev_response_matches_spectral_filter():
    n = 16
    L = graphs.laplacian(graphs.ring_graph(n), "normalized")
    theta = np.array([0.3, -0.5, 0.2])
    x = np.random.default_rng(4).standard_normal(n)
    y_cheb = graphs.chebyshev_filter(torch.as_tensor(x), L, torch.as_tensor(theta)).numpy()
    y_spec = graphs.spectral_filter(x, L, lambda lam: graphs.chebyshev_response(lam, theta))
    np.testing.assert_allclose(y_cheb, y_spec, atol=1e-10)


def _edges(data):
    return set(map(tuple, data.edge_index.T.tolist()))


def test_frame_graph_edges_and_shapes():
    rng = np.random.default_rng(5)
    n_mels, T = 16, 30
    logmel = rng.standard_normal((n_mels, T)).astype(np.float32)
    only_time = graphs.frame_graph(logmel, k=0)
    assert only_time.x.shape == (T, n_mels) and only_time.edge_index.shape == (2, 2 * (T - 1))
    torch.testing.assert_close(only_time.x, torch.as_tensor(logmel.T))
    g = graphs.frame_graph(logmel, k=3)
    edges = _edges(g)
    assert all((j, i) in edges for i, j in edges) and all(i != j for i, j in edges)
    assert len(edges) == g.edge_index.shape[1]  # no duplicates
    assert all((t, t + 1) in edges for t in range(T - 1))
    n_sim = int((g.edge_type == 1).sum())
    assert T * 3 - 2 * (T - 1) <= n_sim <= 2 * T * 3
    # Two groups of identical frames: each frame's nearest neighbours are its own group.
    a, b = rng.standard_normal(n_mels), rng.standard_normal(n_mels)
    blocky = np.stack([a] * 5 + [b] * 5, axis=1)
    gb = graphs.frame_graph(blocky, k=4, temporal=False)
    groups = [set(range(5)), set(range(5, 10))]
    assert all(any({i, j} <= grp for grp in groups) for i, j in _edges(gb))
    assert gb.edge_index.shape[1] == 2 * 2 * 10  # two complete graphs K5: 10 edges each, both directions


def test_frame_graph_rejects_bad_input():
    with pytest.raises(ValueError, match="logmel"):
        graphs.frame_graph(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        graphs.frame_graph(np.full((4, 5), np.nan))


def test_frequency_graph_harmonic_edges():
    sr, n_fft, T = 16000, 64, 7
    F = n_fft // 2 + 1
    spec = np.abs(np.random.default_rng(6).standard_normal((F, T)))
    g = graphs.frequency_graph(spec, sr, n_fft, harmonics=(2, 3), adjacent=False)
    expected = {(f, h * f) for h in (2, 3) for f in range(1, F) if h * f < F}
    assert _edges(g) == expected | {(j, i) for i, j in expected}
    assert g.x.shape == (F, T) and g.freq_hz[1] == pytest.approx(sr / n_fft)
    g2 = graphs.frequency_graph(spec, sr, n_fft, harmonics=(2, 3, 4), features="summary")
    n_harm = sum((F - 1) // h for h in (2, 3, 4))
    assert g2.x.shape == (F, 4)
    assert g2.edge_index.shape[1] == 2 * ((F - 1) + n_harm - 1)  # bin 1 <-> 2 is adjacent and harmonic
    with pytest.raises(ValueError, match="n_fft"):
        graphs.frequency_graph(np.ones((80, 5)), sr, n_fft)


def test_note_graph_from_pretty_midi():
    pm = pretty_midi.PrettyMIDI()
    soprano, bass = pretty_midi.Instrument(0), pretty_midi.Instrument(0)
    soprano.notes += [pretty_midi.Note(90, 72, 0.0, 1.0), pretty_midi.Note(90, 74, 1.0, 2.0)]
    bass.notes += [pretty_midi.Note(90, 48, 0.0, 2.0)]
    pm.instruments += [soprano, bass]
    g = graphs.note_graph(pm)
    assert g.x.shape == (3, 16) and g.pitch.tolist() == [48, 72, 74]
    names = graphs.EDGE_TYPES["note"]
    typed = {(i, j): names[t] for (i, j), t in zip(g.edge_index.T.tolist(), g.edge_type.tolist())}
    assert typed[(0, 1)] == "onset"  # bass and first soprano note start together
    assert typed[(0, 2)] == "overlap"  # bass still sounds when the second soprano note starts
    assert typed[(1, 2)] == "succession"
    assert len(typed) == 6
    with pytest.raises(ValueError, match="notes"):
        graphs.note_graph(np.zeros((3, 2)))


@pytest.mark.parametrize("model_cls", [ChebNetClassifier, GCNClassifier, GATClassifier])
def test_gnn_classifiers_forward_and_learn_on_a_batch(model_cls):
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    data = []
    for i in range(16):
        label = i % 2
        logmel = rng.standard_normal((8, 12)).astype(np.float32) + (2.0 if label else -2.0)
        g = graphs.frame_graph(logmel, k=2)
        g.y = torch.tensor(label)
        data.append(g)
    batch = next(iter(DataLoader(data, batch_size=16)))
    model = model_cls(8, 2, hidden=16)
    assert model(batch).shape == (16, 2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(batch), batch.y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    assert (model(batch).argmax(1) == batch.y).float().mean() == 1.0
    # Tensor-style call gives the same answer as the Batch call.
    torch.testing.assert_close(model(batch.x, batch.edge_index, batch.batch), model(batch))
    with pytest.raises(ValueError, match="Node features"):
        model(torch.zeros(3, 5), batch.edge_index[:, :0])


def test_frame_graphs_feed_the_course_trainer_through_the_pyg_loader():
    """Notebook 08's path: torch-geometric's DataLoader batches frame graphs, fit/evaluate take them."""
    from course_lib.train import evaluate, fit

    torch.manual_seed(0)
    rng = np.random.default_rng(8)

    def make(n):
        out = []
        for i in range(n):
            g = graphs.frame_graph(rng.standard_normal((8, 12)).astype(np.float32) + (1.0 if i % 2 else -1.0), k=2)
            g.y = torch.tensor(i % 2)
            out.append(g)
        return out

    train_graphs, val_graphs = make(48), make(16)
    batch = next(iter(DataLoader(val_graphs, batch_size=2)))
    assert batch.num_graphs == 2 and batch.y.tolist() == [0, 1]
    model = GCNClassifier(8, 2, hidden=16)
    fit(model, DataLoader(train_graphs, batch_size=16, shuffle=True), DataLoader(val_graphs, batch_size=16),
        epochs=4, lr=3e-3, device="cpu", progress=False, amp=False)
    result = evaluate(model, DataLoader(val_graphs, batch_size=16), device="cpu")
    assert result.n == 16 and result.accuracy >= 0.9
