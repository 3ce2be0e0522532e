"""Graphs for audio: Laplacians, the graph Fourier transform, Chebyshev filters and builders.

Notebook: 08_spectral_graph_networks.

The first half is the spectral theory in NumPy (dense matrices: the graphs of the notebook have at
most a few hundred nodes): the Laplacian, its eigenbasis (the graph Fourier basis), the ring graph
whose eigenbasis is the DFT basis, and spectral filters (on the ring they are the circular
convolutions of ``course_lib.dsp.circular_convolve``). Dense adjacency from an ``edge_index`` is
``torch_geometric.utils.to_dense_adj``. ``chebyshev_filter`` is the from-scratch
version of what :class:`torch_geometric.nn.ChebConv` computes. The second half turns audio into
:class:`torch_geometric.data.Data` graphs: frames as nodes, frequency bins as nodes, notes as nodes.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch_geometric import utils as pyg_utils
from torch_geometric.data import Data

__all__ = [
    "laplacian",
    "graph_fourier_basis",
    "gft",
    "igft",
    "ring_graph",
    "ring_eigenvalues",
    "dft_basis",
    "eigenspace_projection_error",
    "spectral_filter",
    "ring_filter_kernel",
    "chebyshev_filter",
    "chebyshev_response",
    "frame_graph",
    "frequency_graph",
    "note_graph",
    "EDGE_TYPES",
]

# Names of the integer ``edge_type`` values the builders store, per builder.
EDGE_TYPES = {
    "frame": ("temporal", "similarity"),
    "frequency": ("adjacent", "harmonic"),
    "note": ("onset", "overlap", "succession"),
}


# --------------------------------------------------------------------------------------------
# Spectral graph theory (NumPy)
# --------------------------------------------------------------------------------------------
def _as_dense_adjacency(adjacency: object, name: str = "adjacency") -> np.ndarray:
    if isinstance(adjacency, torch.Tensor):
        adjacency = adjacency.detach().cpu().numpy()
    elif hasattr(adjacency, "toarray"):  # scipy.sparse
        adjacency = adjacency.toarray()
    a = np.asarray(adjacency, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got shape {a.shape}.")
    if not np.allclose(a, a.T, atol=1e-10):
        raise ValueError(
            f"{name} is not symmetric: the Laplacians here are for undirected graphs. "
            "Symmetrise it first, e.g. A = np.maximum(A, A.T)."
        )
    if (a < 0).any():
        raise ValueError(f"{name} has negative weights; edge weights must be >= 0.")
    return a


def laplacian(adjacency: np.ndarray, kind: str = "combinatorial") -> np.ndarray:
    """Graph Laplacian of an undirected weighted graph.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    adjacency : array-like, shape (n, n)
        Symmetric non-negative weights (NumPy, SciPy sparse or torch).
    kind : {"combinatorial", "normalized"}
        ``"combinatorial"``: ``L = D - A``. ``"normalized"`` (alias ``"sym"``):
        ``L = I - D^-1/2 A D^-1/2``; an isolated node gets ``L_ii = 1`` (as in torch_geometric).

    Returns
    -------
    np.ndarray, shape (n, n), float64
        Symmetric positive semi-definite Laplacian.
    """
    a = _as_dense_adjacency(adjacency)
    degree = a.sum(axis=1)
    if kind == "combinatorial":
        return np.diag(degree) - a
    if kind in ("normalized", "sym"):
        with np.errstate(divide="ignore"):
            inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0)
        return np.eye(len(a)) - inv_sqrt[:, None] * a * inv_sqrt[None, :]
    raise ValueError(f"kind must be 'combinatorial' or 'normalized'; got {kind!r}.")


def graph_fourier_basis(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric Laplacian: the graph Fourier basis.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    L : np.ndarray, shape (n, n)
        Symmetric Laplacian.

    Returns
    -------
    eigenvalues : np.ndarray, shape (n,)
        Ascending "graph frequencies" (>= 0 for a Laplacian).
    eigenvectors : np.ndarray, shape (n, n)
        Orthonormal columns ``U[:, k]``: the k-th graph Fourier mode.
    """
    L = np.asarray(L, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"L must be a square (n, n) matrix; got shape {L.shape}.")
    eigenvalues, eigenvectors = np.linalg.eigh(L)
    return eigenvalues, eigenvectors


def gft(x: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Graph Fourier transform ``x_hat = U^H x``.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    x : np.ndarray, shape (n,) or (n, c)
        Signal on the n nodes (c channels).
    U : np.ndarray, shape (n, n)
        Orthonormal (or unitary) basis from :func:`graph_fourier_basis`.

    Returns
    -------
    np.ndarray, shape like ``x``
        Coefficients of ``x`` in the basis.
    """
    x = np.asarray(x)
    if x.shape[0] != U.shape[0]:
        raise ValueError(f"x has {x.shape[0]} nodes but U is {U.shape[0]} x {U.shape[1]}.")
    return U.conj().T @ x


def igft(x_hat: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Inverse graph Fourier transform ``x = U x_hat``.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    x_hat : np.ndarray, shape (n,) or (n, c)
        Graph Fourier coefficients.
    U : np.ndarray, shape (n, n)
        The basis used by :func:`gft`.

    Returns
    -------
    np.ndarray, shape like ``x_hat``
    """
    x_hat = np.asarray(x_hat)
    if x_hat.shape[0] != U.shape[1]:
        raise ValueError(f"x_hat has {x_hat.shape[0]} coefficients but U has {U.shape[1]} columns.")
    return U @ x_hat


def ring_graph(n: int, as_data: bool = False) -> np.ndarray | Data:
    """The cycle graph on ``n`` nodes: node m is linked to m-1 and m+1 (mod n).

    Notebook: 08_spectral_graph_networks (a sampled periodic signal lives on a ring).

    Parameters
    ----------
    n : int
        Number of nodes, >= 3.
    as_data : bool
        If True return a :class:`~torch_geometric.data.Data` with ``edge_index`` (2, 2n) and
        ``num_nodes`` instead of the adjacency matrix.

    Returns
    -------
    np.ndarray, shape (n, n), or Data
    """
    if int(n) != n or n < 3:
        raise ValueError(f"A ring needs n >= 3 nodes; got n={n}.")
    n = int(n)
    src = np.arange(n)
    dst = (src + 1) % n
    if as_data:
        edge_index = torch.as_tensor(
            np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]), dtype=torch.long
        )
        return Data(edge_index=edge_index, num_nodes=n)
    a = np.zeros((n, n))
    a[src, dst] = 1.0
    a[dst, src] = 1.0
    return a


def ring_eigenvalues(n: int) -> np.ndarray:
    """Closed-form Laplacian eigenvalues of the ring: ``2 - 2 cos(2 pi k / n)``, k = 0..n-1.

    Notebook: 08_spectral_graph_networks.

    Returns
    -------
    np.ndarray, shape (n,)
        In DFT order (k = 0, 1, ..., n-1), not sorted: ``lambda_k = lambda_{n-k}``.
    """
    k = np.arange(n)
    return 2.0 - 2.0 * np.cos(2.0 * np.pi * k / n)


def dft_basis(n: int) -> np.ndarray:
    """Unitary DFT basis: column k is ``f_k[m] = exp(2j pi k m / n) / sqrt(n)``.

    Notebook: 08_spectral_graph_networks (compare with 02_fourier_and_convolution's DFT matrix).

    Returns
    -------
    np.ndarray, shape (n, n), complex128
        ``F.conj().T @ x`` equals ``np.fft.fft(x, norm="ortho")``.
    """
    m = np.arange(n)
    return np.exp(2j * np.pi * np.outer(m, m) / n) / np.sqrt(n)


def eigenspace_projection_error(
    v: np.ndarray, eigenvalues: np.ndarray, eigenvectors: np.ndarray, lam: float, tol: float = 1e-8
) -> float:
    """Relative distance of ``v`` from the eigenspace of eigenvalue ``lam``.

    Eigenvalues of the ring come in pairs (``lambda_k = lambda_{n-k}``), so its eigenvectors are
    only defined up to a rotation inside each 2-D eigenspace: compare spaces, not vectors.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    v : np.ndarray, shape (n,)
        Candidate eigenvector (may be complex).
    eigenvalues, eigenvectors : np.ndarray, shapes (n,), (n, n)
        From :func:`graph_fourier_basis`.
    lam : float
        The eigenvalue whose eigenspace to project on.
    tol : float
        Eigenvalues within ``tol`` of ``lam`` span the eigenspace.

    Returns
    -------
    float
        ``||v - P v|| / ||v||`` with P the orthogonal projector (0 when v is in the eigenspace,
        1 when no eigenvalue is within ``tol``).
    """
    basis = eigenvectors[:, np.abs(eigenvalues - lam) <= tol]
    v = np.asarray(v)
    projection = basis @ (basis.conj().T @ v)
    return float(np.linalg.norm(v - projection) / np.linalg.norm(v))


def spectral_filter(
    x: np.ndarray, L: np.ndarray, response: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Filter a graph signal in the graph Fourier domain: ``U h(Lambda) U^T x``.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    x : np.ndarray, shape (n,) or (n, c)
    L : np.ndarray, shape (n, n)
        Symmetric Laplacian.
    response : callable
        Frequency response ``h(lambda)`` applied elementwise to the eigenvalues.

    Returns
    -------
    np.ndarray, shape like ``x``
    """
    eigenvalues, U = graph_fourier_basis(L)
    h = np.asarray(response(eigenvalues))
    if h.shape != eigenvalues.shape:
        raise ValueError(
            f"response(eigenvalues) must return shape {eigenvalues.shape}; got {h.shape}."
        )
    x_hat = gft(x, U)
    x_hat = h[:, None] * x_hat if x_hat.ndim == 2 else h * x_hat
    return igft(x_hat, U)


def ring_filter_kernel(n: int, response: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The circular-convolution kernel equivalent to the spectral filter ``h`` on the n-ring.

    On the ring, DFT bin k sits at Laplacian eigenvalue ``2 - 2 cos(2 pi k / n)``, so the filter
    multiplies bin k by ``H_k = h(lambda_k)``; the kernel is the inverse DFT of ``H``. ``H`` is
    real and even (``H_k = H_{n-k}``), so the kernel is real and symmetric.

    Notebook: 08_spectral_graph_networks.

    Returns
    -------
    np.ndarray, shape (n,)
        Kernel g with ``spectral_filter(x, L_ring, h) == course_lib.dsp.circular_convolve(x, g)``.
    """
    H = np.asarray(response(ring_eigenvalues(n)), dtype=np.float64)
    return np.fft.ifft(H).real


def chebyshev_filter(
    x: torch.Tensor | np.ndarray,
    L: torch.Tensor | np.ndarray,
    theta: torch.Tensor | np.ndarray,
    lambda_max: float = 2.0,
    bias: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Chebyshev polynomial graph filter, as computed by ``torch_geometric.nn.ChebConv``.

    ``out = sum_k T_k(L_hat) x theta_k (+ bias)`` with ``L_hat = 2 L / lambda_max - I`` and the
    recursion ``T_0 = x``, ``T_1 = L_hat x``, ``T_k = 2 L_hat T_{k-1} - T_{k-2}``. No eigenvectors
    are needed: a degree-(K-1) polynomial in L only mixes nodes up to K-1 hops apart.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    x : tensor or array, shape (n,) or (n, c_in)
        Node features.
    L : tensor or array, shape (n, n)
        Laplacian (``laplacian(A, "normalized")`` matches ChebConv's default ``"sym"``).
    theta : tensor or array, shape (K,) or (K, c_in, c_out)
        Filter coefficients. For ChebConv, ``theta[k] = conv.lins[k].weight.T``.
    lambda_max : float
        Largest eigenvalue used for scaling (ChebConv's default for "sym" is 2).
    bias : tensor or array, shape (c_out,), optional

    Returns
    -------
    torch.Tensor, shape (n,) for 1-D theta, else (n, c_out)
    """
    x_t = torch.as_tensor(x)
    dtype = x_t.dtype if x_t.is_floating_point() else torch.float32
    x_t = x_t.to(dtype)
    L_t = torch.as_tensor(L, dtype=dtype, device=x_t.device)
    theta_t = torch.as_tensor(theta, dtype=dtype, device=x_t.device)
    n = x_t.shape[0]
    if L_t.shape != (n, n):
        raise ValueError(f"L must be ({n}, {n}) for x with {n} nodes; got {tuple(L_t.shape)}.")
    if theta_t.ndim not in (1, 3) or theta_t.shape[0] < 1:
        raise ValueError(f"theta must have shape (K,) or (K, c_in, c_out); got {tuple(theta_t.shape)}.")
    if theta_t.ndim == 3 and (x_t.ndim != 2 or x_t.shape[1] != theta_t.shape[1]):
        raise ValueError(
            f"x must be (n, {theta_t.shape[1]}) for theta of shape {tuple(theta_t.shape)}; "
            f"got {tuple(x_t.shape)}."
        )
    L_hat = 2.0 * L_t / lambda_max - torch.eye(n, dtype=dtype, device=x_t.device)

    def apply(k: int, t: torch.Tensor) -> torch.Tensor:
        return theta_t[k] * t if theta_t.ndim == 1 else t @ theta_t[k]

    t_prev, t_cur = x_t, None
    out = apply(0, t_prev)
    if theta_t.shape[0] > 1:
        t_cur = L_hat @ x_t
        out = out + apply(1, t_cur)
    for k in range(2, theta_t.shape[0]):
        t_next = 2.0 * (L_hat @ t_cur) - t_prev
        out = out + apply(k, t_next)
        t_prev, t_cur = t_cur, t_next
    if bias is not None:
        out = out + torch.as_tensor(bias, dtype=dtype, device=x_t.device)
    return out


def chebyshev_response(
    lam: np.ndarray, theta: Sequence[float] | np.ndarray, lambda_max: float = 2.0
) -> np.ndarray:
    """Frequency response ``h(lambda) = sum_k theta_k T_k(2 lambda / lambda_max - 1)``.

    Notebook: 08_spectral_graph_networks (plot what a ChebConv filter does to each graph frequency).

    Parameters
    ----------
    lam : np.ndarray, shape (m,)
        Eigenvalues at which to evaluate.
    theta : sequence of float, length K

    Returns
    -------
    np.ndarray, shape (m,)
    """
    s = 2.0 * np.asarray(lam, dtype=np.float64) / lambda_max - 1.0
    return np.polynomial.chebyshev.chebval(s, np.asarray(theta, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# Audio -> graph builders
# --------------------------------------------------------------------------------------------
def _undirected_edges(
    pairs: list[np.ndarray], types: list[int], num_nodes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Union of edge sets given as (2, E_i) arrays, symmetrised, self-loops dropped, deduplicated.

    torch_geometric's ``remove_self_loops`` and ``to_undirected`` do the work; where the same edge
    comes from several sets, the first set's type wins (types are numbered in set order, so that
    is the smallest type: ``reduce="min"``). Edges come out sorted by (source, target).
    """
    if not pairs:
        return torch.zeros((2, 0), dtype=torch.long), torch.zeros(0, dtype=torch.long)
    edge_index = torch.cat([torch.as_tensor(np.asarray(p, dtype=np.int64).reshape(2, -1)) for p in pairs], dim=1)
    edge_type = torch.cat([torch.full((np.asarray(p).reshape(2, -1).shape[1],), t, dtype=torch.long)
                           for p, t in zip(pairs, types)])
    if sorted(types) != list(types):
        raise ValueError(f"edge types must be listed in increasing order; got {types}.")
    edge_index, edge_type = pyg_utils.remove_self_loops(edge_index, edge_type)
    return pyg_utils.to_undirected(edge_index, edge_type, num_nodes=num_nodes, reduce="min")


def _as_2d_float(array: object, name: str, axes: str) -> torch.Tensor:
    if isinstance(array, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(array))
    else:
        t = torch.as_tensor(array)
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array {axes}; got shape {tuple(t.shape)}.")
    t = t.detach().to("cpu", torch.float32)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf; compute it in dB with a floor (e.g. top_db=80).")
    return t


def frame_graph(logmel: np.ndarray | torch.Tensor, k: int = 8, temporal: bool = True) -> Data:
    """Frames as nodes: temporal edges t <-> t+1 plus k-nearest-neighbour similarity edges.

    Similarity is the cosine between frames after subtracting each mel band's mean over time
    (raw dB frames are all negative and would all look alike). Each frame's k most similar other
    frames become neighbours; all edges are undirected.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    logmel : array or tensor, shape (n_mels, n_frames) (or (1, n_mels, n_frames))
        Log-mel spectrogram (dB or log units).
    k : int
        Similarity neighbours per frame (0 for none; capped at n_frames - 1).
    temporal : bool
        Add the chain edges t <-> t+1.

    Returns
    -------
    Data
        ``x`` (n_frames, n_mels) frames as node features, ``edge_index`` (2, E) with both directions
        of every edge, ``edge_type`` (E,) 0 = temporal, 1 = similarity (see ``EDGE_TYPES``),
        ``frame`` (n_frames,) frame indices.
    """
    spec = _as_2d_float(logmel, "logmel", "(n_mels, n_frames)")
    if k < 0:
        raise ValueError(f"k must be >= 0; got {k}.")
    x = spec.T.contiguous()
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"logmel has {n} frame(s); a frame graph needs at least 2.")
    pairs, types = [], []
    if temporal:
        t = np.arange(n - 1)
        pairs.append(np.stack([t, t + 1]))
        types.append(0)
    k_eff = min(int(k), n - 1)
    if k_eff > 0:
        centred = x - x.mean(dim=0, keepdim=True)
        unit = torch.nn.functional.normalize(centred, dim=1, eps=1e-8)
        sim = unit @ unit.T
        sim.fill_diagonal_(-float("inf"))
        nbrs = sim.topk(k_eff, dim=1).indices.numpy()
        centre = np.repeat(np.arange(n), k_eff)
        pairs.append(np.stack([nbrs.reshape(-1), centre]))
        types.append(1)
    edge_index, edge_type = _undirected_edges(pairs, types, n)
    return Data(x=x, edge_index=edge_index, edge_type=edge_type, frame=torch.arange(n), num_nodes=n)


def frequency_graph(
    spec: np.ndarray | torch.Tensor,
    sr: int,
    n_fft: int,
    harmonics: Iterable[int] = (2, 3, 4),
    adjacent: bool = True,
    features: str = "series",
) -> Data:
    """STFT bins as nodes, with harmonic edges f <-> h*f and (optionally) neighbour edges f <-> f+1.

    On a linear STFT grid bin f sits at ``f * sr / n_fft`` Hz, so its h-th harmonic is exactly bin
    ``h * f``. The DC bin (f = 0) has no harmonics and gets only neighbour edges.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    spec : array or tensor, shape (F, n_frames)
        Magnitude or log-magnitude STFT; F <= n_fft // 2 + 1 (the lowest F bins may be cropped).
    sr : int
        Sample rate in Hz.
    n_fft : int
        FFT size that produced ``spec``.
    harmonics : iterable of int
        Harmonic numbers (>= 2) to link.
    adjacent : bool
        Link neighbouring bins too.
    features : {"series", "summary"}
        Node features: the bin's values over time (n_frames,) or a summary over time
        (mean, std, max, min: 4 values).

    Returns
    -------
    Data
        ``x`` (F, n_frames or 4), ``edge_index`` (2, E), ``edge_type`` (E,) 0 = adjacent,
        1 = harmonic, ``freq_hz`` (F,) bin centre frequencies.
    """
    s = _as_2d_float(spec, "spec", "(n_bins, n_frames)")
    n_bins = s.shape[0]
    if sr <= 0 or n_fft <= 0:
        raise ValueError(f"sr and n_fft must be positive; got sr={sr}, n_fft={n_fft}.")
    if n_bins > n_fft // 2 + 1:
        raise ValueError(
            f"spec has {n_bins} bins but an n_fft={n_fft} STFT has only {n_fft // 2 + 1}: pass the "
            "n_fft that produced it (harmonic edges need a linear-frequency STFT, not a mel spectrogram)."
        )
    harmonics = [int(h) for h in harmonics]
    if any(h < 2 for h in harmonics):
        raise ValueError(f"harmonics must be integers >= 2; got {harmonics}.")
    pairs, types = [], []
    if adjacent:
        f = np.arange(n_bins - 1)
        pairs.append(np.stack([f, f + 1]))
        types.append(0)
    for h in harmonics:
        f = np.arange(1, (n_bins - 1) // h + 1)
        pairs.append(np.stack([f, h * f]))
        types.append(1)
    edge_index, edge_type = _undirected_edges(pairs, types, n_bins)
    if features == "series":
        x = s.clone()
    elif features == "summary":
        x = torch.stack([s.mean(1), s.std(1, unbiased=False), s.amax(1), s.amin(1)], dim=1)
    else:
        raise ValueError(f"features must be 'series' or 'summary'; got {features!r}.")
    freq_hz = torch.arange(n_bins, dtype=torch.float32) * sr / n_fft
    return Data(x=x, edge_index=edge_index, edge_type=edge_type, freq_hz=freq_hz, num_nodes=n_bins)


def _notes_array(notes: object) -> np.ndarray:
    """(n, 5) float array [start_s, end_s, pitch, velocity, voice] from the accepted inputs."""
    rows = []
    if hasattr(notes, "instruments"):  # pretty_midi.PrettyMIDI
        for voice, inst in enumerate(notes.instruments):
            if inst.is_drum:
                continue  # drum "pitches" are instruments, not notes
            rows += [(n.start, n.end, n.pitch, n.velocity, voice) for n in inst.notes]
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    else:
        seq = list(notes) if not isinstance(notes, np.ndarray) else notes
        if len(seq) and hasattr(seq[0], "pitch"):  # pretty_midi.Note objects
            arr = np.asarray([(n.start, n.end, n.pitch, n.velocity, 0) for n in seq], dtype=np.float64)
        else:
            arr = np.asarray(seq, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] not in (4, 5):
                raise ValueError(
                    "notes must be a pretty_midi.PrettyMIDI, a list of pretty_midi.Note, or an array "
                    f"(n, 4|5) of [start_s, end_s, pitch, velocity(, voice)]; got shape {arr.shape}."
                )
            if arr.shape[1] == 4:
                arr = np.concatenate([arr, np.zeros((len(arr), 1))], axis=1)
    if len(arr) == 0:
        raise ValueError("note_graph got no (non-drum) notes: check the MIDI file has pitched instruments.")
    if (arr[:, 1] < arr[:, 0]).any():
        raise ValueError("Some notes end before they start (end_s < start_s): fix the note list.")
    return arr


def note_graph(notes: object, tol: float = 1e-3) -> Data:
    """Notes as nodes, linked when they start together, sound together, or follow each other.

    Edge types (``EDGE_TYPES["note"]``): 0 ``onset`` - same onset (within ``tol`` s, a chord);
    1 ``overlap`` - sounding at the same time with different onsets; 2 ``succession`` - one note
    starts when the other ends (within ``tol``) in the same voice (MIDI instrument). All undirected.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    notes : pretty_midi.PrettyMIDI, list of pretty_midi.Note, or array (n, 4|5)
        Rows ``[start_s, end_s, pitch, velocity(, voice)]``. Drum tracks are skipped.
    tol : float
        Time tolerance in seconds.

    Returns
    -------
    Data
        ``x`` (n, 16): pitch/127, velocity/127, duration (s), onset (s), then a 12-dim pitch-class
        one-hot; ``edge_index`` (2, E); ``edge_type`` (E,); ``pitch``, ``start``, ``end`` (n,).
        Nodes are sorted by (onset, pitch).
    """
    arr = _notes_array(notes)
    arr = arr[np.lexsort((arr[:, 2], arr[:, 0]))]
    start, end, pitch, velocity, voice = arr.T
    n = len(arr)
    i, j = np.triu_indices(n, k=1)
    same_onset = np.abs(start[i] - start[j]) <= tol
    overlap = (start[i] < end[j] - tol) & (start[j] < end[i] - tol) & ~same_onset
    follows = (voice[i] == voice[j]) & (
        (np.abs(start[j] - end[i]) <= tol) | (np.abs(start[i] - end[j]) <= tol)
    ) & ~same_onset
    pairs = [np.stack([i[m], j[m]]) for m in (same_onset, overlap, follows)]
    edge_index, edge_type = _undirected_edges(pairs, [0, 1, 2], n)
    pc = np.zeros((n, 12))
    pc[np.arange(n), pitch.astype(int) % 12] = 1.0
    x = np.concatenate(
        [np.stack([pitch / 127.0, velocity / 127.0, end - start, start], axis=1), pc], axis=1
    )
    return Data(
        x=torch.as_tensor(x, dtype=torch.float32),
        edge_index=edge_index,
        edge_type=edge_type,
        pitch=torch.as_tensor(pitch, dtype=torch.long),
        start=torch.as_tensor(start, dtype=torch.float32),
        end=torch.as_tensor(end, dtype=torch.float32),
        num_nodes=n,
    )
