"""Attribution maps for audio classifiers, and the sanity checks that tell them from edge detectors.

An attribution map gives every input value (here: every time-frequency bin of a log-mel spectrogram)
a share of one output, the ``target`` logit of a classifier. The methods, from the cheapest:

* :func:`saliency` -- the input gradient, ``|df/dx|``: how sensitive the logit is to each bin.
* :func:`smoothgrad` -- saliency averaged over noisy copies of the input (Smilkov et al., 2017).
* :func:`integrated_gradients` -- ``(x - x') * mean over the path of df/dx`` from a *baseline*
  ``x'`` to ``x`` (Sundararajan et al., 2017). Its attributions sum to ``f(x) - f(x')``
  (completeness, :func:`completeness`), so the baseline says what "absent" means: on a log-mel in
  dB, 0 dB is a loud full-scale band, not silence.
* :func:`grad_cam` -- a layer's feature maps weighted by their mean gradient (Selvaraju et al.,
  2017), as coarse as that layer: every pooling before it divides its time *and* frequency
  resolution.
* :func:`occlusion` -- the drop of the logit when a window of bins is replaced by a fill value
  (Zeiler & Fergus, 2014): forward passes only, and the fill value is part of the answer.

Two checks say whether a map explains the *model*:

* :func:`cascading_randomization` (Adebayo et al., 2018): re-initialise the layers from the top
  down and measure the rank correlation between the trained and the randomised model's maps. A
  map that stays the same (an edge detector such as :func:`edge_detector`) does not depend on
  what the model learned.
* :func:`deletion_insertion` (Petsiuk et al., 2018): remove (or insert) bins in the map's order of
  importance and follow the class probability; a faithful map beats a random order.

:func:`mel_to_stft` and :func:`top_fraction_mask` carry a map from the log-mel back to STFT bins,
so the most (or least) important bins can be resynthesised with the original phase and heard.

Conventions: ``model`` maps a batch ``x`` of shape ``(batch, ...)`` (here ``(batch, 1, n_mels,
n_frames)``) to logits ``(batch, n_classes)`` and is in ``eval()`` mode (batch norm must use its
running statistics: in training mode one clip's explanation would depend on the others in its
batch); ``target`` is one class index for every example or one per example. Maps have ``x``'s shape.
Captum (``captum.attr``) implements the same methods; ``tests/test_explain.py`` checks that both
give the same numbers.

Notebook: 11_explainability
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "completeness",
    "grad_cam",
    "occlusion",
    "edge_detector",
    "rank_correlation",
    "RandomizedLayer",
    "cascading_randomization",
    "FaithfulnessCurves",
    "deletion_insertion",
    "mel_to_stft",
    "top_fraction_mask",
]

# explain(model, x, target) -> map of x's shape: what cascading_randomization re-runs
Explainer = Callable[[Callable[[Tensor], Tensor], Tensor, Any], Tensor]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _require_eval(model: Any) -> None:
    if isinstance(model, nn.Module) and any(m.training for m in model.modules()):
        raise ValueError(
            "the model is in training mode: batch norm would normalise with the statistics of the "
            "batch of inputs an attribution method builds (noisy copies, path points, occluded copies), "
            "so the explanation of one clip would depend on the others, and dropout would make it "
            "random. Call model.eval() first."
        )


def _targets(target: Any, batch: int, device: torch.device) -> Tensor:
    """``target`` as a long tensor of shape (batch,)."""
    t = torch.as_tensor(target, device=device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"target has {t.numel()} entries for a batch of {batch}: give one class "
                         "index, or one per example")
    return t


def _target_logits(model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor) -> Tensor:
    """The target logit of each example, shape (batch,)."""
    out = model(x)
    if out.dim() != 2:
        raise ValueError(f"the model should return logits (batch, n_classes); got shape {tuple(out.shape)}")
    return out.gather(1, target[:, None]).squeeze(1)


def _input_gradient(model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(_target_logits(model, x, target).sum(), x)
    return grad


def _as_baseline(baseline: float | Tensor, x: Tensor) -> Tensor:
    return torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)


# --------------------------------------------------------------------------------------------
# Gradient methods
# --------------------------------------------------------------------------------------------
def saliency(model: Callable[[Tensor], Tensor], x: Tensor, target: Any, *, absolute: bool = True) -> Tensor:
    """Input gradient of the target logit: ``|d f_target / d x|`` (or signed).

    Parameters
    ----------
    model : callable
        ``(batch, ...) -> (batch, n_classes)`` logits, in eval mode.
    x : Tensor, shape (batch, ...)
        Inputs, e.g. log-mels ``(batch, 1, n_mels, n_frames)`` in dB.
    target : int or sequence of int
        Class explained, for all examples or one per example.
    absolute : bool
        Return the magnitude (Captum's ``Saliency(abs=True)``).

    Returns
    -------
    Tensor, shape of ``x``
        Logit units per input unit (per dB for a log-mel).
    """
    _require_eval(model)
    grad = _input_gradient(model, x, _targets(target, x.shape[0], x.device))
    return grad.abs() if absolute else grad


def smoothgrad(model: Callable[[Tensor], Tensor], x: Tensor, target: Any, *, n_samples: int = 25,
               noise_level: float = 0.15, absolute: bool = True,
               generator: torch.Generator | None = None) -> Tensor:
    """SmoothGrad: the mean of :func:`saliency` over ``n_samples`` noisy copies of each input.

    The noise is Gaussian with standard deviation ``noise_level * (max(x_i) - min(x_i))`` per
    example (Smilkov et al. suggest 10-20 % of the input's range). Gradients of ReLU networks jump
    from bin to bin; the average keeps what is stable under small changes of the input.

    Parameters
    ----------
    model, x, target, absolute
        As :func:`saliency` (``absolute`` applies to each copy's gradient before the mean, as
        Captum's ``NoiseTunnel(Saliency(abs=True))``).
    n_samples : int
        Noisy copies per example.
    noise_level : float
        Noise standard deviation as a fraction of each example's value range.
    generator : torch.Generator, optional
        Source of the noise (on ``x``'s device).

    Returns
    -------
    Tensor, shape of ``x``
    """
    _require_eval(model)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    dims = tuple(range(1, x.dim()))
    sigma = noise_level * (x.amax(dim=dims, keepdim=True) - x.amin(dim=dims, keepdim=True))
    t = _targets(target, x.shape[0], x.device)
    total = torch.zeros_like(x)
    for _ in range(n_samples):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        grad = _input_gradient(model, x + sigma * noise, t)
        total += grad.abs() if absolute else grad
    return total / n_samples


def integrated_gradients(model: Callable[[Tensor], Tensor], x: Tensor, target: Any,
                         baseline: float | Tensor, steps: int = 32, *, batch_size: int = 128) -> Tensor:
    """Integrated gradients with the right Riemann sum of the original paper.

    ``IG_i(x) = (x_i - x'_i) * (1 / m) * sum_{k=1..m} df/dx_i (x' + (k / m) (x - x'))``: the
    gradient averaged over ``m = steps`` points of the straight path from the baseline ``x'`` to
    ``x`` (the last point is ``x`` itself). The attributions sum to ``f(x) - f(x')`` up to the
    error of the sum (it shrinks as ``1 / steps`` for a piecewise-linear ReLU network):
    :func:`completeness` measures it. Captum's ``IntegratedGradients`` with
    ``method="riemann_right"`` computes the same numbers.

    Parameters
    ----------
    model, x, target
        As :func:`saliency`.
    baseline : float or Tensor broadcastable to ``x``
        The input that means "nothing here". For a log-mel in dB, silence is the clip's floor
        (its minimum dB), not 0 dB.
    steps : int
        Points on the path (``m``).
    batch_size : int
        Path points per forward/backward pass.

    Returns
    -------
    Tensor, shape of ``x``
        Logit units: the share of ``f(x) - f(x')`` of each input value.
    """
    _require_eval(model)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    base = _as_baseline(baseline, x)
    t = _targets(target, x.shape[0], x.device)
    alphas = torch.arange(1, steps + 1, dtype=x.dtype, device=x.device) / steps
    attributions = torch.empty_like(x)
    shape = (1,) * (x.dim() - 1)
    for i in range(x.shape[0]):
        delta = x[i] - base[i]
        grad_sum = torch.zeros_like(x[i])
        for chunk in alphas.split(batch_size):
            path = base[i] + chunk.view(-1, *shape) * delta            # (points, ...) on the line
            grad_sum += _input_gradient(model, path, t[i].expand(len(chunk))).sum(dim=0)
        attributions[i] = delta * grad_sum / steps
    return attributions


def completeness(model: Callable[[Tensor], Tensor], x: Tensor, target: Any, baseline: float | Tensor,
                 attributions: Tensor) -> tuple[Tensor, Tensor]:
    """The two sides of integrated gradients' completeness: ``sum_i IG_i`` and ``f(x) - f(x')``.

    Returns
    -------
    attribution_sum, logit_difference : Tensor, shape (batch,)
        Equal up to the error of the path sum.
    """
    _require_eval(model)
    t = _targets(target, x.shape[0], x.device)
    with torch.no_grad():
        difference = _target_logits(model, x, t) - _target_logits(model, _as_baseline(baseline, x), t)
    return attributions.flatten(1).sum(dim=1), difference


def grad_cam(model: Callable[[Tensor], Tensor], x: Tensor, target: Any, layer: nn.Module, *,
             upsample: bool = True) -> Tensor:
    """Grad-CAM: ``ReLU(sum_c w_c A_c)`` with ``w_c`` the mean gradient of the logit over map ``c``.

    ``A`` is ``layer``'s output ``(batch, channels, F', T')``. The map has that layer's grid: after
    ``p`` poolings by 2 each cell covers ``2^p`` mel bands and ``2^p`` frames, so the frequency
    detail of a deep layer's Grad-CAM is gone before any upsampling.

    Parameters
    ----------
    model, x, target
        As :func:`saliency`.
    layer : nn.Module
        A module of ``model`` whose output is a 4-D feature map.
    upsample : bool
        Interpolate the map bilinearly to ``x``'s last two axes (Captum:
        ``LayerAttribution.interpolate(cam, size, "bilinear")``); otherwise return the layer's grid.

    Returns
    -------
    Tensor, shape (batch, 1, F', T') or (batch, 1, n_mels, n_frames)
        Non-negative, in logit units (Captum's ``LayerGradCam`` with ``relu_attributions=True``).
    """
    _require_eval(model)
    t = _targets(target, x.shape[0], x.device)
    saved: list[Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: saved.append(output))
    try:
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)   # so the graph reaches the layer even if frozen
            score = _target_logits(model, x_in, t).sum()
            if not saved:
                raise ValueError("the layer given to grad_cam was not called by the model's forward")
            activations = saved[-1]
            if activations.dim() != 4:
                raise ValueError(f"grad_cam needs a layer with 4-D output (batch, channels, F, T); this one "
                                 f"returns {tuple(activations.shape)}")
            (grad,) = torch.autograd.grad(score, activations)
    finally:
        handle.remove()
    weights = grad.mean(dim=(2, 3), keepdim=True)                    # (batch, channels, 1, 1)
    cam = F.relu((weights * activations.detach()).sum(dim=1, keepdim=True))
    if upsample:
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam


# --------------------------------------------------------------------------------------------
# Perturbation methods
# --------------------------------------------------------------------------------------------
def _window_starts(n: int, window: int, stride: int, axis: str) -> list[int]:
    if not 1 <= window <= n:
        raise ValueError(f"the occlusion window along {axis} ({window}) must be between 1 and the input's "
                         f"{n} {axis}")
    if not 1 <= stride <= window:
        raise ValueError(f"the stride along {axis} ({stride}) must be between 1 and the window ({window}): "
                         "a larger stride leaves bins that no window covers")
    # Windows at 0, stride, 2 stride, ... until one reaches the end; a last window that sticks out is
    # cut at the edge (Captum's convention).
    return [k * stride for k in range(math.ceil((n - window) / stride) + 1)]


def occlusion(model: Callable[[Tensor], Tensor], x: Tensor, target: Any, window_shape: tuple[int, int],
              stride: tuple[int, int], fill: float | Tensor, *, batch_size: int = 256) -> Tensor:
    """Occlusion: the drop ``f(x) - f(x with a window set to fill)``, averaged over covering windows.

    A window of ``window_shape`` (mel bands, frames) slides over the last two axes of ``x`` (all
    channels at once) by ``stride``; each bin gets the mean drop of the windows that cover it.
    Windows start at ``0, stride, 2 stride, ...`` until one reaches the end; a last window that
    sticks out is cut at the edge. Captum's ``Occlusion(model).attribute(x, sliding_window_shapes=(C, *window_shape),
    strides=(C, *stride), baselines=fill, target=target)`` computes the same numbers.

    Parameters
    ----------
    model, x, target
        As :func:`saliency`; ``x`` is ``(batch, channels, n_mels, n_frames)``.
    window_shape, stride : (int, int)
        Window size and step along (mel bands, frames); ``1 <= stride <= window_shape``.
    fill : float or Tensor broadcastable to ``x``
        What an occluded bin is set to. For a log-mel in dB, the clip's minimum (silence); 0 dB
        would be a loud band.
    batch_size : int
        Occluded copies per forward pass.

    Returns
    -------
    Tensor, shape of ``x``
        Logit units: positive where hiding the bins lowers the target logit.
    """
    _require_eval(model)
    if x.dim() < 3:
        raise ValueError(f"occlusion slides over the last two axes: x needs (batch, ..., F, T); got {tuple(x.shape)}")
    n_f, n_t = x.shape[-2:]
    rows = _window_starts(n_f, window_shape[0], stride[0], "frequency")
    cols = _window_starts(n_t, window_shape[1], stride[1], "time")
    fill_values = _as_baseline(fill, x)
    t = _targets(target, x.shape[0], x.device)
    masks = torch.zeros(len(rows) * len(cols), n_f, n_t, dtype=x.dtype, device=x.device)
    for k, (r, c) in enumerate((r, c) for r in rows for c in cols):
        masks[k, r:r + window_shape[0], c:c + window_shape[1]] = 1.0
    coverage = masks.sum(dim=0)                                         # windows covering each bin
    result = torch.empty_like(x)
    with torch.no_grad():
        for i in range(x.shape[0]):
            reference = _target_logits(model, x[i:i + 1], t[i:i + 1])
            total = torch.zeros(n_f, n_t, dtype=x.dtype, device=x.device)
            for chunk in masks.split(batch_size):
                m = chunk[:, None]                                      # broadcast over channels
                occluded = x[i] * (1 - m) + fill_values[i] * m
                drops = reference - _target_logits(model, occluded, t[i].expand(len(chunk)))
                total += (drops[:, None, None] * chunk).sum(dim=0)
            result[i] = (total / coverage).expand_as(x[i])
    return result


def edge_detector(model: Any, x: Tensor, target: Any) -> Tensor:
    """A model-blind "explanation": the magnitude of the input's local gradient (3x3 Sobel).

    It ignores ``model`` and ``target`` on purpose: it is the negative control of the sanity
    checks. Like many saliency maps it highlights onsets and formant edges, and it cannot pass
    :func:`cascading_randomization` (randomising the model leaves it unchanged).

    Returns
    -------
    Tensor, shape of ``x`` (batch, channels, F, T)
    """
    del model, target
    sobel = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=x.dtype, device=x.device)
    flat = x.detach().reshape(-1, 1, *x.shape[-2:])
    padded = F.pad(flat, (1, 1, 1, 1), mode="replicate")
    along_time = F.conv2d(padded, sobel.view(1, 1, 3, 3))
    along_freq = F.conv2d(padded, sobel.T.contiguous().view(1, 1, 3, 3))
    return torch.sqrt(along_time**2 + along_freq**2).reshape(x.shape)


# --------------------------------------------------------------------------------------------
# Sanity checks
# --------------------------------------------------------------------------------------------
def rank_correlation(a: Any, b: Any) -> float:
    """Spearman rank correlation of two maps (flattened; ties get their mean rank).

    Returns NaN when either map is constant (no ranking to compare).
    """
    from scipy import stats

    a_arr = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64).ravel()
    b_arr = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64).ravel()
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"maps of different sizes: {a_arr.size} and {b_arr.size} values")
    if np.ptp(a_arr) == 0 or np.ptp(b_arr) == 0:
        return float("nan")
    return float(stats.spearmanr(a_arr, b_arr).statistic)


@dataclass
class RandomizedLayer:
    """One step of :func:`cascading_randomization`: this layer and every one before it re-initialised.

    Attributes
    ----------
    layer : str
        The module name just re-initialised.
    signed : np.ndarray, shape (batch,)
        Rank correlation per example between the trained and the randomised model's maps, as the
        method returns them (signed where the method is signed).
    absolute : np.ndarray, shape (batch,)
        The same for ``|map|``: the ranking of magnitudes, whatever the sign (Adebayo et al. report
        both; methods with an input factor such as ``x - baseline`` keep much of it).
    """

    layer: str
    signed: np.ndarray
    absolute: np.ndarray


def cascading_randomization(model: nn.Module, explain: Explainer, x: Tensor, target: Any,
                            layers: Sequence[str], *,
                            generator: torch.Generator | None = None) -> list[RandomizedLayer]:
    """Re-initialise ``layers`` one after the other (top first) and compare the maps each time.

    The model-parameter randomisation test of Adebayo et al. (2018), cascading version: a copy of
    ``model`` has its layers re-initialised (each module's own ``reset_parameters``, which also
    resets batch-norm statistics) from the output downwards; after each layer the map of the same
    inputs, for the same target classes, is compared with the trained model's map by rank
    correlation. A method that explains the model loses the correlation as the learned weights go;
    an edge detector keeps it at 1.

    Parameters
    ----------
    model : nn.Module
        The trained model, in eval mode (left unchanged: a deep copy is randomised).
    explain : callable
        ``explain(model, x, target) -> map``; called with the copy, so a method that needs a layer
        (Grad-CAM) must look it up on the model it is given.
    x : Tensor, shape (batch, ...)
    target : int or sequence of int
    layers : sequence of str
        Names from ``model.named_modules()``, in the order to randomise (top layer first).
    generator : torch.Generator, optional
        Seeds the re-initialisation (default: a fixed seed, so runs repeat).

    Returns
    -------
    list of RandomizedLayer
        One per entry of ``layers``, cumulative.
    """
    _require_eval(model)
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"no modules named {missing} in the model; its names are "
                         f"{[n for n in modules if n][:20]}...")
    t = _targets(target, x.shape[0], x.device)
    reference = explain(model, x, t).detach()
    randomized = copy.deepcopy(model).eval()
    copies = dict(randomized.named_modules())
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else 0
    # re-initialising seeds every device's generator: restore them all afterwards
    cuda_devices = sorted({p.device.index or 0 for p in randomized.parameters() if p.is_cuda})
    results = []
    for k, name in enumerate(layers):
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed + k)
            for module in copies[name].modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        maps = explain(randomized, x, t).detach()
        results.append(RandomizedLayer(
            name,
            np.array([rank_correlation(a, b) for a, b in zip(reference, maps)]),
            np.array([rank_correlation(a.abs(), b.abs()) for a, b in zip(reference, maps)]),
        ))
    return results


@dataclass
class FaithfulnessCurves:
    """Deletion and insertion curves of :func:`deletion_insertion`.

    Attributes
    ----------
    fractions : np.ndarray, shape (n_points,)
        Fraction of the bins removed (deletion) or inserted (insertion), from 0 to 1.
    deletion, insertion : np.ndarray, shape (batch, n_points)
        Probability of the target class along each curve.
    deletion_auc, insertion_auc : np.ndarray, shape (batch,)
        Areas under the curves (trapezoid rule over ``fractions``): low deletion and high
        insertion areas mean the map put the decisive bins first.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray


def deletion_insertion(model: Callable[[Tensor], Tensor], x: Tensor, target: Any, scores: Tensor,
                       fill: float | Tensor, *, n_steps: int = 20, batch_size: int = 256) -> FaithfulnessCurves:
    """Deletion and insertion curves: bins in order of ``scores``, most important first.

    Deletion sets a growing fraction of the bins of ``x`` to ``fill``; insertion starts from
    ``fill`` everywhere and puts the bins of ``x`` back. After each step the softmax probability of
    the target class is recorded. A random order (``scores = torch.rand(...)``) is the baseline a
    map must beat.

    Parameters
    ----------
    model, x, target
        As :func:`saliency`.
    scores : Tensor, shape of ``x``
        Importance of each bin (an attribution map; higher = more important). Ties keep index order.
    fill : float or Tensor broadcastable to ``x``
        The value of a removed bin (for a log-mel in dB: the clip's minimum, silence).
    n_steps : int
        Steps from 0 to all bins (``n_steps + 1`` points per curve).
    batch_size : int
        Inputs per forward pass.

    Returns
    -------
    FaithfulnessCurves
    """
    _require_eval(model)
    if scores.shape != x.shape:
        raise ValueError(f"scores {tuple(scores.shape)} must have the shape of x {tuple(x.shape)}")
    t = _targets(target, x.shape[0], x.device)
    fill_values = _as_baseline(fill, x)
    n_bins = x[0].numel()
    fractions = np.linspace(0.0, 1.0, n_steps + 1)
    counts = np.round(fractions * n_bins).astype(int)
    deletion = np.empty((x.shape[0], len(fractions)))
    insertion = np.empty_like(deletion)
    with torch.no_grad():
        for i in range(x.shape[0]):
            order = torch.argsort(scores[i].reshape(-1), descending=True, stable=True)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(n_bins, device=order.device)
            first = (rank[None, :] < torch.as_tensor(counts, device=x.device)[:, None]).to(x.dtype)
            first = first.view(len(counts), *x.shape[1:])               # 1 where a bin is among the first k
            flat_x, flat_fill = x[i:i + 1], fill_values[i:i + 1]
            for curve, inputs in ((deletion, flat_x * (1 - first) + flat_fill * first),
                                  (insertion, flat_fill * (1 - first) + flat_x * first)):
                probs = [model(chunk).softmax(dim=1)[:, t[i]] for chunk in inputs.split(batch_size)]
                curve[i] = torch.cat(probs).float().cpu().numpy()
    return FaithfulnessCurves(fractions, deletion, insertion, _trapezoid(deletion, fractions),
                              _trapezoid(insertion, fractions))


def _trapezoid(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    # np.trapezoid is NumPy >= 2 only; the course also runs on 1.26
    return ((curves[:, 1:] + curves[:, :-1]) / 2 * np.diff(fractions)).sum(axis=1)


# --------------------------------------------------------------------------------------------
# From the log-mel back to STFT bins (explanations you can hear)
# --------------------------------------------------------------------------------------------
def mel_to_stft(scores: Any, filterbank: Any) -> np.ndarray:
    """Carry a map over mel bands to the STFT bins they are made of.

    Each STFT bin gets the average of the bands that contain it, weighted by the filterbank
    (the normalised transpose ``W^T s / W^T 1``); bins that no band contains (outside
    ``fmin``..``fmax``) get 0.

    Parameters
    ----------
    scores : array_like, shape (..., n_mels, n_frames)
        A map over the log-mel (the frames are the STFT's frames).
    filterbank : array_like, shape (n_mels, n_freqs)
        The mel filterbank of the log-mel (``dsp.mel_filterbank(sr, n_fft, n_mels, ...)``).

    Returns
    -------
    np.ndarray, shape (..., n_freqs, n_frames)
    """
    s = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64)
    w = np.asarray(filterbank.detach().cpu() if hasattr(filterbank, "detach") else filterbank, dtype=np.float64)
    if w.ndim != 2 or s.ndim < 2 or s.shape[-2] != w.shape[0]:
        raise ValueError(f"scores (..., n_mels, n_frames) {s.shape} and filterbank (n_mels, n_freqs) {w.shape} "
                         "must agree on n_mels")
    weight = w.sum(axis=0)                                               # (n_freqs,)
    spread = np.einsum("mf,...mt->...ft", w, s)
    return np.divide(spread, weight[:, None], out=np.zeros_like(spread), where=weight[:, None] > 0)


def top_fraction_mask(scores: Any, fraction: float) -> np.ndarray:
    """Boolean mask of the ``round(fraction * size)`` highest ``scores`` (ties: first in index order)."""
    s = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    k = int(round(fraction * s.size))
    mask = np.zeros(s.size, dtype=bool)
    mask[np.argsort(-s.ravel(), kind="stable")[:k]] = True
    return mask.reshape(s.shape)
