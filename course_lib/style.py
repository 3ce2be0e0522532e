"""Audio style transfer on spectrograms, and the measures that judge it against a real target.

The method of Ulyanov & Lebedev (2016, "Audio texture synthesis and style transfer"), itself Gatys
et al.'s image style transfer moved to audio: the log-magnitude STFT is read as a 1-D signal over
time whose *channels are the frequency bins*; one convolution with random, fixed weights and a ReLU
turns it into feature maps. The **content** of a clip is its feature maps themselves (what happens
when); its **style** is their Gram matrix, a time average of which features fire together (the
timbre, with the timing averaged away). Gradient descent on the log-magnitude of a new clip moves its
features towards the content clip's and its Gram matrix towards the style clip's; Griffin-Lim
(:func:`course_lib.dsp.griffin_lim`) turns the result back into audio.

Conventions (stated once, used everywhere here):

- Log-magnitude: ``log(1 + |STFT| / ref)`` (Ulyanov's ``log(1 + |STFT|)`` at ``ref = 1``: 0 for
  silence, no floor to pick), shape ``(..., n_freqs, n_frames)``.
- Gram matrix of features ``F`` of shape ``(channels, n_frames)``: ``F @ F.T / n_frames``, a
  ``(channels, channels)`` matrix, **normalised by the number of frames** (so clips of different
  lengths compare) and **not centred** (the mean activation of a feature is part of the style), as
  in Gatys et al. and Ulyanov & Lebedev.
- Losses are relative, so one style weight means the same for every clip: content loss
  ``||F(x) - F(c)||^2 / ||F(c)||^2``, Gram style loss ``||G(x) - G(s)||^2 / ||G(s)||^2``.
- The graph variant (notebook 08) replaces the Gram matrix of random CNN features by the **graph
  power spectrum** of the frames on the frequency-bin graph (neighbour and harmonic edges): the mean
  over frames of each squared graph Fourier coefficient, i.e. the diagonal of the frames' Gram matrix
  written in the graph Fourier basis, compared in log units.

Notebook: 17_audio_style_transfer
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from course_lib import dsp

__all__ = [
    "log_magnitude",
    "invert",
    "RandomSpectrogramCNN",
    "gram_matrix",
    "content_loss",
    "style_loss",
    "frequency_graph_basis",
    "graph_power_spectrum",
    "graph_style_loss",
    "TransferResult",
    "transfer",
    "log_spectral_distance",
    "mfcc_statistics",
    "timbre_distance",
    "chroma",
    "chroma_agreement",
]


# --------------------------------------------------------------------------------------------
# Spectrogram in, audio out
# --------------------------------------------------------------------------------------------
def log_magnitude(x: np.ndarray, n_fft: int = 2048, hop_length: int | None = None,
                  ref: float = 1.0) -> np.ndarray:
    """``log(1 + |STFT(x)| / ref)``: the representation the style transfer optimises.

    Parameters
    ----------
    x : np.ndarray, shape (..., n_samples)
        Signal(s), full scale.
    n_fft, hop_length
        STFT settings (Hann window, centred frames; see :func:`course_lib.dsp.stft`).
    ref : float
        Magnitude where the curve bends: well below ``ref`` the value is about ``|S| / ref``
        (nearly 0, so quiet bins hardly count in a loss), well above it ``log(|S| / ref)``.
        1.0 is Ulyanov & Lebedev's ``log(1 + |S|)``; a smaller ``ref`` puts quieter detail (the
        upper harmonics, the spectral envelope) on the log scale too.

    Returns
    -------
    np.ndarray, shape (..., 1 + n_fft // 2, n_frames), float32
        Non-negative; 0 where the STFT is 0.
    """
    if ref <= 0:
        raise ValueError(f"ref must be > 0 (a magnitude); got {ref}")
    return np.log1p(np.abs(dsp.stft(np.asarray(x, dtype=np.float64), n_fft=n_fft,
                                    hop_length=hop_length)) / ref).astype(np.float32)


def invert(log_mag: np.ndarray | Tensor, n_fft: int = 2048, hop_length: int | None = None,
           ref: float = 1.0, n_iter: int = 32, length: int | None = None,
           rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Audio from a log-magnitude (:func:`log_magnitude`) by Griffin-Lim phase retrieval.

    Parameters
    ----------
    log_mag : array or tensor, shape (1 + n_fft // 2, n_frames)
        ``log(1 + |STFT| / ref)``; negative values (an optimiser may step below 0) count as 0.
    n_fft, hop_length, ref
        The settings of :func:`log_magnitude` that made it.
    n_iter : int
        Griffin-Lim iterations (fast Griffin-Lim, momentum 0.99).
    length : int, optional
        Output length in samples.
    rng : Generator, int or None
        The random initial phases.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    if hasattr(log_mag, "detach"):
        log_mag = log_mag.detach().float().cpu().numpy()
    log_mag = np.asarray(log_mag, dtype=np.float64)
    if log_mag.ndim != 2 or log_mag.shape[0] != 1 + n_fft // 2:
        raise ValueError(f"invert expects one log-magnitude of shape (1 + n_fft // 2, n_frames) = "
                         f"({1 + n_fft // 2}, n_frames); got {log_mag.shape} (pass the n_fft that made it, "
                         "and one clip at a time)")
    magnitude = np.expm1(np.clip(log_mag, 0.0, None)) * ref
    y = dsp.griffin_lim(magnitude, n_iter=n_iter, hop_length=hop_length, length=length, rng=rng,
                        n_fft=n_fft)
    return y.astype(np.float32)


# --------------------------------------------------------------------------------------------
# The random network, content and style
# --------------------------------------------------------------------------------------------
class RandomSpectrogramCNN(nn.Module):
    """One 1-D convolution over time, frequency bins as input channels, random fixed weights, ReLU.

    Ulyanov & Lebedev's network: weights drawn once from N(0, std^2) with
    ``std = sqrt(2) * sqrt(2 / ((n_freqs + out_channels) * kernel_size))`` and never trained (a
    random projection already separates timbres; training would make the features specific to
    a task). The time axis is padded circularly, so a clip's Gram matrix does not depend on where
    in a loop it starts (the edge frames see the other end of the clip).

    Parameters
    ----------
    n_freqs : int
        Frequency bins of the input (``1 + n_fft // 2``): the input channels.
    out_channels : int
        Random filters (Ulyanov & Lebedev used 4096; fewer are cheaper and coarser).
    kernel_size : int
        Frames each filter spans (odd).
    generator : torch.Generator, optional
        Draws the weights (default: a generator seeded with 0).
    """

    def __init__(self, n_freqs: int, out_channels: int = 512, kernel_size: int = 11,
                 generator: torch.Generator | None = None):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1 (same-length output); got {kernel_size}")
        self.conv = nn.Conv1d(n_freqs, out_channels, kernel_size, padding=kernel_size // 2,
                              padding_mode="circular", bias=False)
        std = np.sqrt(2.0) * np.sqrt(2.0 / ((n_freqs + out_channels) * kernel_size))
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) * std)
        self.requires_grad_(False)

    def forward(self, log_mag: Tensor) -> Tensor:
        """Features ``[batch, out_channels, n_frames]`` of ``log_mag`` ``[batch, n_freqs, n_frames]``."""
        if log_mag.ndim == 2:
            log_mag = log_mag.unsqueeze(0)
        if log_mag.ndim != 3 or log_mag.shape[1] != self.conv.in_channels:
            raise ValueError(f"expected a log-magnitude [batch, {self.conv.in_channels}, n_frames]; got "
                             f"{tuple(log_mag.shape)} (frequency bins are the channels: transpose a "
                             "[batch, frames, bins] input)")
        return torch.relu(self.conv(log_mag))


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix ``F @ F.T / n_frames`` of feature maps, per example.

    Parameters
    ----------
    features : Tensor, shape (..., channels, n_frames)

    Returns
    -------
    Tensor, shape (..., channels, channels)
        Entry ``(i, j)``: the mean over frames of feature i times feature j (not centred).
    """
    return features @ features.transpose(-1, -2) / features.shape[-1]


def content_loss(features: Tensor, content_features: Tensor) -> Tensor:
    """Relative content loss ``||F(x) - F(c)||^2 / ||F(c)||^2`` per example.

    Parameters
    ----------
    features, content_features : Tensor, shape (batch, channels, n_frames)

    Returns
    -------
    Tensor, shape (batch,)
        0 when the features are equal.
    """
    dims = tuple(range(1, features.ndim))
    return ((features - content_features) ** 2).sum(dims) / (content_features ** 2).sum(dims).clamp_min(1e-12)


def style_loss(gram: Tensor, style_gram: Tensor) -> Tensor:
    """Relative Gram style loss ``||G(x) - G(s)||^2 / ||G(s)||^2`` per example.

    Parameters
    ----------
    gram, style_gram : Tensor, shape (batch, channels, channels)

    Returns
    -------
    Tensor, shape (batch,)
    """
    return ((gram - style_gram) ** 2).sum((-2, -1)) / (style_gram ** 2).sum((-2, -1)).clamp_min(1e-12)


def frequency_graph_basis(n_fft: int, sr: int, harmonics: tuple[int, ...] = (2, 3, 4),
                          kind: str = "normalized") -> tuple[np.ndarray, np.ndarray]:
    """Graph Fourier basis of notebook 08's frequency-bin graph (neighbour and harmonic edges).

    Parameters
    ----------
    n_fft : int
        FFT length: the graph has ``1 + n_fft // 2`` nodes, one per STFT bin.
    sr : int
        Sample rate in Hz.
    harmonics : tuple of int
        Bin f is linked to bins h*f (:func:`course_lib.graphs.frequency_graph`).
    kind : {"normalized", "combinatorial"}
        Laplacian (:func:`course_lib.graphs.laplacian`).

    Returns
    -------
    eigenvalues : np.ndarray, shape (n_freqs,)
        Graph frequencies, ascending.
    basis : np.ndarray, shape (n_freqs, n_freqs)
        Columns are the graph Fourier modes (orthonormal).
    """
    from torch_geometric.utils import to_dense_adj

    from course_lib import graphs

    n_freqs = 1 + n_fft // 2
    graph = graphs.frequency_graph(np.zeros((n_freqs, 2), dtype=np.float32), sr, n_fft, harmonics=harmonics)
    adjacency = to_dense_adj(graph.edge_index, max_num_nodes=n_freqs)[0].numpy()
    return graphs.graph_fourier_basis(graphs.laplacian(adjacency, kind))


def graph_power_spectrum(log_mag: Tensor, basis: Tensor) -> Tensor:
    """Mean over frames of each squared graph Fourier coefficient of the frames.

    Each frame is a signal on the frequency-bin graph; ``basis.T @ frame`` is its graph Fourier
    transform. The result equals ``diag(basis.T @ gram_matrix(log_mag) @ basis)``: the Gram matrix
    of the frames in the graph Fourier basis, diagonal only (``n_freqs`` numbers instead of
    ``n_freqs^2``).

    Parameters
    ----------
    log_mag : Tensor, shape (batch, n_freqs, n_frames)
    basis : Tensor, shape (n_freqs, n_freqs)
        From :func:`frequency_graph_basis`.

    Returns
    -------
    Tensor, shape (batch, n_freqs)
    """
    coefficients = basis.transpose(0, 1).to(log_mag.dtype) @ log_mag
    return (coefficients ** 2).mean(-1)


def graph_style_loss(power: Tensor, style_power: Tensor, amin: float = 1e-4) -> Tensor:
    """Mean squared difference of log graph power spectra, per example (natural-log units squared).

    Parameters
    ----------
    power, style_power : Tensor, shape (batch, n_freqs)
        :func:`graph_power_spectrum` of the result and of the style clip.
    amin : float
        Floor inside the logarithm.

    Returns
    -------
    Tensor, shape (batch,)
    """
    return ((torch.log(power + amin) - torch.log(style_power + amin)) ** 2).mean(-1)


@dataclass
class TransferResult:
    """What :func:`transfer` returns.

    Attributes
    ----------
    log_mag : Tensor, shape (batch, n_freqs, n_frames)
        The optimised log-magnitudes (CPU, float32, >= 0).
    content_loss, style_loss : np.ndarray, shape (n_steps + 1, batch)
        Both losses before the first step and after every step.
    seconds : float
        Wall time of the optimisation.
    """

    log_mag: Tensor
    content_loss: np.ndarray
    style_loss: np.ndarray
    seconds: float


def transfer(content: Tensor, style: Tensor, network: RandomSpectrogramCNN, style_weight: float | Tensor,
             n_steps: int, lr: float = 0.05, graph_basis: Tensor | None = None) -> TransferResult:
    """Minimise ``content_loss + style_weight * style_loss`` over a log-magnitude, from the content.

    Every example of the batch is its own problem: the losses are summed over the batch and Adam
    updates each value on its own gradient history, so a batch of B pairs (or of one pair at B
    style weights) gives the B results one optimisation each would give.

    Parameters
    ----------
    content : Tensor, shape (batch, n_freqs, n_frames)
        Log-magnitudes whose content is kept; also the starting point (style weight 0 returns it).
    style : Tensor, shape (batch, n_freqs, n_style_frames)
        Log-magnitudes whose style is imposed; any length.
    network : RandomSpectrogramCNN
        The feature map; its device is used.
    style_weight : float or Tensor of shape (batch,)
        Weight of the style loss (one per example for a sweep).
    n_steps : int
        Adam steps.
    lr : float
        Adam step size, in log-magnitude units.
    graph_basis : Tensor, optional, shape (n_freqs, n_freqs)
        Use the graph style loss (:func:`graph_style_loss` on :func:`graph_power_spectrum`) with this
        basis instead of the Gram style loss.

    Returns
    -------
    TransferResult
    """
    import time

    device = next(network.parameters()).device
    content, style = content.to(device, torch.float32), style.to(device, torch.float32)
    if content.ndim != 3 or style.ndim != 3 or content.shape[:2] != style.shape[:2]:
        raise ValueError(f"content and style must be [batch, n_freqs, frames] with the same batch and bins; "
                         f"got {tuple(content.shape)} and {tuple(style.shape)}")
    weight = torch.as_tensor(style_weight, dtype=torch.float32, device=device).expand(content.shape[0])
    basis = graph_basis.to(device, torch.float32) if graph_basis is not None else None
    with torch.no_grad():
        content_features = network(content)
        target = graph_power_spectrum(style, basis) if basis is not None else gram_matrix(network(style))

    def losses(x: Tensor) -> tuple[Tensor, Tensor]:
        features = network(x)
        if basis is not None:
            s = graph_style_loss(graph_power_spectrum(x, basis), target)
        else:
            s = style_loss(gram_matrix(features), target)
        return content_loss(features, content_features), s

    x = content.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    history_c, history_s = [], []
    start = time.perf_counter()
    for _ in range(n_steps):
        optimiser.zero_grad(set_to_none=True)
        c, s = losses(x)
        history_c.append(c.detach().cpu().numpy())
        history_s.append(s.detach().cpu().numpy())
        (c + weight * s).sum().backward()
        optimiser.step()
        with torch.no_grad():
            x.clamp_(min=0.0)  # log(1 + |S|) >= 0
    with torch.no_grad():
        c, s = losses(x)
    history_c.append(c.cpu().numpy())
    history_s.append(s.cpu().numpy())
    return TransferResult(x.detach().float().cpu(), np.stack(history_c), np.stack(history_s),
                          time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Measures against a real target
# --------------------------------------------------------------------------------------------
def log_spectral_distance(reference_mag: np.ndarray, estimate_mag: np.ndarray, amin: float = 1e-5) -> float:
    """Log-spectral distance in dB: per frame, the RMS over bins of the dB difference; then the mean.

    ``mean_t sqrt(mean_f (20 log10 max(amin, |R|) - 20 log10 max(amin, |E|))^2)``

    Parameters
    ----------
    reference_mag, estimate_mag : np.ndarray, shape (n_freqs, n_frames)
        STFT magnitudes (amplitude, not power) made with the same settings.
    amin : float
        Amplitude floor (-100 dB at 1e-5), so silent bins do not give infinities.

    Returns
    -------
    float
        dB; 0 for equal magnitudes.
    """
    reference = np.asarray(reference_mag, dtype=np.float64)
    estimate = np.asarray(estimate_mag, dtype=np.float64)
    if reference.shape != estimate.shape or reference.ndim != 2:
        raise ValueError(f"log_spectral_distance needs two (n_freqs, n_frames) magnitudes of one shape; got "
                         f"{reference.shape} and {estimate.shape} (same n_fft, hop_length, signal length)")
    diff = 20 * np.log10(np.maximum(reference, amin)) - 20 * np.log10(np.maximum(estimate, amin))
    return float(np.mean(np.sqrt(np.mean(diff ** 2, axis=0))))


def mfcc_statistics(x: np.ndarray, sr: int, n_mfcc: int = 20, n_fft: int = 2048,
                    hop_length: int | None = None) -> np.ndarray:
    """Timbre summary of a clip: mean and standard deviation over frames of MFCCs 1 .. n_mfcc - 1.

    Coefficient 0 (the overall level) is left out, so the summary does not change with loudness.

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
    sr : int
        Sample rate in Hz.
    n_mfcc, n_fft, hop_length
        As :func:`course_lib.dsp.mfcc` (Slaney mel, 128 bands, dB with an 80 dB floor).

    Returns
    -------
    np.ndarray, shape (2 * (n_mfcc - 1),)
        Means, then standard deviations (dB-scaled cepstral units).
    """
    coefficients = dsp.mfcc(np.asarray(x, dtype=np.float64), sr, n_mfcc=n_mfcc, n_fft=n_fft,
                            hop_length=hop_length)[1:]
    return np.concatenate([coefficients.mean(axis=1), coefficients.std(axis=1)])


def timbre_distance(x: np.ndarray, y: np.ndarray, sr: int, n_mfcc: int = 20, n_fft: int = 2048,
                    hop_length: int | None = None) -> float:
    """Euclidean distance between the :func:`mfcc_statistics` of two clips (0: same timbre summary)."""
    return float(np.linalg.norm(mfcc_statistics(x, sr, n_mfcc, n_fft, hop_length)
                                - mfcc_statistics(y, sr, n_mfcc, n_fft, hop_length)))


def chroma(x: np.ndarray, sr: int, n_fft: int = 2048, hop_length: int | None = None,
           fmin: float = 55.0, fmax: float = 2000.0) -> np.ndarray:
    """Pitch-class energy per frame: STFT power of the bins in ``[fmin, fmax]`` folded onto 12 classes.

    Each bin goes to the pitch class of its nearest equal-tempered note (A4 = 440 Hz; class 0 = C).

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
    sr : int
        Sample rate in Hz.
    n_fft, hop_length
        STFT settings.
    fmin, fmax : float
        Band used, Hz (below ``fmin`` bins are too coarse to name a note).

    Returns
    -------
    np.ndarray, shape (12, n_frames)
        Power per pitch class.
    """
    power = np.abs(dsp.stft(np.asarray(x, dtype=np.float64), n_fft=n_fft, hop_length=hop_length)) ** 2
    freqs = np.arange(power.shape[0]) * sr / n_fft
    keep = (freqs >= fmin) & (freqs <= min(fmax, sr / 2))
    pitch_class = (np.round(12 * np.log2(freqs[keep] / 440.0)).astype(int) + 9) % 12
    folded = np.zeros((12, power.shape[1]))
    np.add.at(folded, pitch_class, power[keep])
    return folded


def chroma_agreement(x: np.ndarray, y: np.ndarray, sr: int, n_fft: int = 2048,
                     hop_length: int | None = None, min_share: float = 1e-3) -> float:
    """Mean cosine similarity of the :func:`chroma` vectors of two clips, frame by frame.

    Parameters
    ----------
    x, y : np.ndarray, shape (n_samples,)
        Clips of the same length.
    min_share : float
        Frames where either clip has less than this share of its mean frame energy (silence) are
        left out.

    Returns
    -------
    float
        1 when every frame has the same pitch-class profile (power is non-negative: never below 0).
    """
    a, b = chroma(x, sr, n_fft, hop_length), chroma(y, sr, n_fft, hop_length)
    n = min(a.shape[1], b.shape[1])
    a, b = a[:, :n], b[:, :n]
    energy_a, energy_b = a.sum(0), b.sum(0)
    voiced = (energy_a > min_share * energy_a.mean()) & (energy_b > min_share * energy_b.mean())
    if not voiced.any():
        raise ValueError("chroma_agreement: no frame has energy in both clips (silence?)")
    cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-30)
    return float(cos[voiced].mean())
