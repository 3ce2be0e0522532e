"""Checks for 08_spectral_graph_networks: the ring Laplacian, kNN frame neighbours, Chebyshev filters.

Notebook: 08_spectral_graph_networks
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib import graphs
from course_lib.checks import Case, as_numpy, compare_arrays, exercise_check, matches, reject_known_mistakes

__all__: list[str] = []  # checks register themselves; nothing to import from here


def reference_knn_neighbours(frames: np.ndarray, k: int) -> np.ndarray:
    """(n_frames, k) indices of each frame's k most cosine-similar other frames (centred frames)."""
    centred = frames - frames.mean(axis=0, keepdims=True)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-8)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1)[:, :k]


@exercise_check("08.1", "ring Laplacian")
def _check_ring_laplacian(candidate):
    for n in (3, 4, 8, 13):
        case = Case(f"n={n}")
        got = case.call(candidate, n)
        expected = graphs.laplacian(graphs.ring_graph(n))
        if got is not None:
            if matches(got, -expected):
                case.fail("the signs are flipped: L = D - A has the degrees (+2) on the diagonal "
                          "and -1 for each neighbour.")
            if matches(got, graphs.ring_graph(n)):
                case.fail("that is the adjacency matrix A; the Laplacian is D - A.")
            if matches(got, graphs.laplacian(graphs.ring_graph(n), "normalized")):
                case.fail("that is the normalised Laplacian I - D^-1/2 A D^-1/2; this exercise "
                          "asks for the combinatorial one, D - A (here the same up to a factor 2).")
            path = np.diag(np.r_[1.0, 2 * np.ones(n - 2), 1.0]) - (np.eye(n, k=1) + np.eye(n, k=-1))
            got_arr = as_numpy(got)
            inner_ok = got_arr is not None and got_arr.shape == (n, n) and \
                matches(got_arr[1:-1, 1:-1], expected[1:-1, 1:-1])
            if matches(got, path) or (inner_ok and not matches(got, expected)):
                case.fail("the ends are not joined: node 0 and node n-1 are neighbours on a ring "
                          "(indices wrap around, use % n), and every node has degree 2.")
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.shape == (n, n) and got_arr.dtype.kind in "biuf":
            if not np.allclose(got_arr, got_arr.T):
                case.fail("L is not symmetric: the ring is undirected, so link m to m+1 *and* m+1 to m "
                          "(A[m, (m+1) % n] = A[(m+1) % n, m] = 1)")
            off = ~np.eye(n, dtype=bool)
            if np.allclose(got_arr[off], expected[off]) and not np.allclose(np.diag(got_arr), 2):
                case.fail(f"the off-diagonal entries are right but the diagonal holds "
                          f"{np.unique(np.diag(got_arr)).tolist()}: D is the degree matrix, and every "
                          "node of a ring has 2 neighbours (D = diag(A.sum(axis=1)))")
        compare_arrays(case, got, expected, atol=1e-12, rtol=0, name="L")
        yield case
    case = Case("n=16: L @ f_k = lambda_k f_k for every DFT vector f_k")
    L = np.asarray(case.call(candidate, 16), dtype=np.float64)
    F = graphs.dft_basis(16)
    compare_arrays(case, L @ F, F * graphs.ring_eigenvalues(16)[None, :], atol=1e-9, rtol=0, name="L @ F")
    yield case


@exercise_check("08.3", "kNN neighbours of frames")
def _check_knn_neighbours(candidate):
    rng = np.random.default_rng(8)
    for n_frames, n_mels, k in ((10, 4, 1), (30, 16, 3), (50, 8, 8)):
        frames = rng.standard_normal((n_frames, n_mels)) - 20.0  # dB-like offset
        case = Case(f"frames of shape ({n_frames}, {n_mels}), k={k}")
        got = case.call(candidate, frames.copy(), k)
        expected = np.sort(reference_knn_neighbours(frames, k), axis=1)
        if got is None:
            case.fail("nothing returned: did you forget to `return` the (n_frames, k) indices?")
        got = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got)
        if got.shape != expected.shape:
            case.fail(f"the result has shape {got.shape}, expected (n_frames, k) = {expected.shape}")
        got = np.sort(got, axis=1)
        if (got == np.arange(n_frames)[:, None]).any():
            case.fail("a frame lists itself as a neighbour: exclude the diagonal (e.g. set it to -inf "
                      "before taking the largest similarities).")
        raw = frames / np.linalg.norm(frames, axis=1, keepdims=True)
        sim_raw = raw @ raw.T
        np.fill_diagonal(sim_raw, -np.inf)
        if np.array_equal(got, np.sort(np.argsort(-sim_raw, axis=1)[:, :k], axis=1)) \
                and not np.array_equal(got, expected):
            case.fail("the frames were not centred: subtract each band's mean over time first "
                      "(dB frames all point the same way, so raw cosines are all close to 1).")
        centred = frames - frames.mean(0)
        sim = centred @ centred.T / np.outer(*(2 * [np.linalg.norm(centred, axis=1)]))
        np.fill_diagonal(sim, np.inf)
        if np.array_equal(got, np.sort(np.argsort(sim, axis=1)[:, :k], axis=1)):
            case.fail("these are the LEAST similar frames: sort by decreasing similarity (or use "
                      "topk / argsort of -similarity).")
        def neighbours(similarity: np.ndarray) -> np.ndarray:
            similarity = similarity.copy()
            np.fill_diagonal(similarity, -np.inf)
            return np.sort(np.argsort(-similarity, axis=1)[:, :k], axis=1)

        def euclidean() -> np.ndarray:
            return neighbours(-np.linalg.norm(centred[:, None, :] - centred[None, :, :], axis=-1))

        def frame_centred() -> np.ndarray:
            per_frame = frames - frames.mean(axis=1, keepdims=True)
            unit = per_frame / np.linalg.norm(per_frame, axis=1, keepdims=True)
            return neighbours(unit @ unit.T)

        reject_known_mistakes(case, got, expected, {
            "the frames were centred along the wrong axis: subtract each *band's* mean over time, "
            "frames.mean(axis=0), not each frame's mean over bands (axis=1)": frame_centred,
            "these are the nearest frames in Euclidean distance: cosine similarity compares "
            "directions, so divide each centred frame by its norm before the dot products": euclidean,
            "the dot products are not normalised: a plain centred @ centred.T favours loud frames; "
            "divide each centred frame by its norm first (cosine similarity)":
                lambda: neighbours(centred @ centred.T),
        }, atol=0, rtol=0)
        compare_arrays(case, got, expected, atol=0, rtol=0, name="sorted neighbour indices")
        yield case


@exercise_check("08.2", "Chebyshev filter")
def _check_chebyshev_filter(candidate):
    rng = np.random.default_rng(9)
    for n, c_in, c_out, K in ((6, 1, 1, 1), (12, 3, 2, 2), (20, 4, 5, 4)):
        A = np.triu((rng.random((n, n)) < 0.3).astype(float), 1)
        A = A + A.T
        L = graphs.laplacian(A, "normalized")
        x = torch.as_tensor(rng.standard_normal((n, c_in)), dtype=torch.float64)
        theta = torch.as_tensor(rng.standard_normal((K, c_in, c_out)), dtype=torch.float64)
        case = Case(f"a random graph with {n} nodes, x ({n}, {c_in}), theta ({K}, {c_in}, {c_out})")
        got = case.call(candidate, x.clone(), torch.as_tensor(L), theta.clone())
        expected = graphs.chebyshev_filter(x, L, theta)
        if got is not None and K > 1:
            L_t = torch.as_tensor(L)
            no_scale = graphs.chebyshev_filter(x, (L_t + torch.eye(n, dtype=L_t.dtype)).numpy(), theta)
            if matches(got, no_scale.numpy(), atol=1e-8):
                case.fail("use the scaled Laplacian L_hat = 2 L / lambda_max - I (lambda_max = 2), "
                          "not L itself: Chebyshev polynomials live on [-1, 1].")
            L_hat = L_t - torch.eye(n, dtype=L_t.dtype)
            powers = sum(torch.linalg.matrix_power(L_hat, k) @ x @ theta[k] for k in range(K))
            if K > 2 and matches(got, powers.numpy(), atol=1e-8):
                case.fail("that is a plain power series sum_k L_hat^k x theta_k; Chebyshev terms follow "
                          "T_k = 2 L_hat T_(k-1) - T_(k-2).")
        if got is not None:
            L_t = torch.as_tensor(L)
            identity = torch.eye(n, dtype=L_t.dtype)
            lam = float(np.linalg.eigvalsh(L).max())

            def chebyshev(L_hat: torch.Tensor, factor: float = 2.0) -> np.ndarray:
                t_prev, out = x, x @ theta[0]
                if K > 1:
                    t_cur = L_hat @ x
                    out = out + t_cur @ theta[1]
                    for k in range(2, K):
                        t_prev, t_cur = t_cur, factor * L_hat @ t_cur - t_prev
                        out = out + t_cur @ theta[k]
                return out.numpy()

            reject_known_mistakes(case, got, expected.numpy(), {
                "the recursion is missing its factor 2: T_k = 2 L_hat T_(k-1) - T_(k-2)":
                    lambda: chebyshev(L_t - identity, factor=1.0),
                "L_hat has the wrong sign: L_hat = 2 L / lambda_max - I = L - I (here lambda_max = 2), "
                "not I - L": lambda: chebyshev(identity - L_t),
                f"lambda_max is fixed at 2 in this exercise (the bound of every normalised Laplacian's "
                f"spectrum), not this graph's largest eigenvalue ({lam:.3f}): L_hat = L - I":
                    lambda: chebyshev(2 * L_t / lam - identity),
            }, atol=1e-8, rtol=1e-8)
        compare_arrays(case, got, expected, atol=1e-8, rtol=1e-8, name="output")
        yield case
