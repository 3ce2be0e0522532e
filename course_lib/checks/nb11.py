"""Checks for 11_explainability: integrated gradients and occlusion, built from scratch.

Both run the student's function on small float64 models (a tanh MLP, a small conv net, a linear
model) whose wrong answers differ from the right one, and name the classic slips: for integrated
gradients the missing ``(x - baseline)`` factor, the gradient at ``x`` only, the left Riemann sum
(off by one step), ``linspace`` end points, a sum instead of a mean; for occlusion the fill value,
the sign, windows that step by the wrong amount or miss the last position.

Notebook: 11_explainability
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from course_lib.checks import Case, as_numpy, compare_arrays, exercise_check, matches, reject_known_mistakes
from course_lib.explain import integrated_gradients, occlusion

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _mlp(shape: tuple[int, ...], n_classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    size = int(np.prod(shape))
    return nn.Sequential(nn.Flatten(), nn.Linear(size, 7), nn.Tanh(), nn.Linear(7, n_classes)).double().eval()


class _SmallConvNet(nn.Module):
    """conv 3x3 -> softplus -> global mean -> linear: smooth, so every path point has its own gradient."""

    def __init__(self, n_classes: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.head = nn.Linear(3, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(nn.functional.softplus(self.conv(x)).mean(dim=(2, 3)))


def _linear(shape: tuple[int, ...], n_classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), n_classes)).double().eval()


def _grad(model: nn.Module, points: torch.Tensor, target: int, score: str = "logit") -> torch.Tensor:
    """Gradients at each point (points, ...) of the target's logit (or of another score)."""
    points = points.detach().requires_grad_(True)
    out = model(points)
    value = {"logit": lambda: out[:, target], "probability": lambda: out.softmax(dim=1)[:, target],
             "all classes": lambda: out.sum(dim=1)}[score]()
    (grad,) = torch.autograd.grad(value.sum(), points)
    return grad


def _ig_variant(model, x, baseline, target, alphas, *, weight=None, factor="delta", score="logit"):
    """(factor) * sum_k weight_k grad(baseline + alpha_k (x - baseline)): right and wrong IGs alike."""
    alphas = torch.as_tensor(alphas, dtype=x.dtype)
    weight = torch.full_like(alphas, 1.0 / len(alphas)) if weight is None else torch.as_tensor(weight, dtype=x.dtype)
    path = baseline + alphas.view(-1, *([1] * (x.dim() - 1))) * (x - baseline)
    grads = _grad(model, path, target, score)
    mean_grad = (weight.view(-1, *([1] * (x.dim() - 1))) * grads).sum(dim=0, keepdim=True)
    return {"delta": (x - baseline) * mean_grad, "x": x * mean_grad, "none": mean_grad}[factor]


@exercise_check("11.1", "integrated gradients")
def _check_integrated_gradients(candidate):
    gen = torch.Generator().manual_seed(11)
    cases = [
        ("tanh MLP", _mlp((1, 1, 4, 5), 3, 0), (1, 1, 4, 5), 2, "constant -2", 6),
        ("small conv net", _SmallConvNet(4, 1).double().eval(), (1, 1, 6, 5), 1, "random", 10),
        ("tanh MLP", _mlp((1, 1, 3, 7), 5, 2), (1, 1, 3, 7), 4, "constant 0.5", 16),
        ("linear model (IG is exact for any sum)", _linear((1, 1, 3, 3), 2, 3), (1, 1, 3, 3), 0, "random", 4),
    ]
    for name, model, shape, target, baseline_kind, steps in cases:
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        if baseline_kind == "random":
            baseline = 0.5 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            baseline = torch.full(shape, float(baseline_kind.split()[-1]), dtype=torch.float64)
        case = Case(f"{name}, x {tuple(shape)}, baseline {baseline_kind}, target {target}, steps={steps}")
        got = case.call(candidate, model, x.clone(), target, baseline.clone(), steps)
        expected = integrated_gradients(model, x, target, baseline, steps)
        if got is None:
            case.fail("nothing returned: did you forget to `return` the attributions?")
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.shape == tuple(shape) and np.isnan(got_arr).any():
            case.fail("the attributions contain NaN")
        k = torch.arange(1, steps + 1, dtype=torch.float64)
        right = k / steps
        reject_known_mistakes(case, got, expected, {
            "no (x - baseline) factor: that is the path's mean gradient; integrated gradients multiply "
            "it by (x - baseline), elementwise": lambda: _ig_variant(model, x, baseline, target, right, factor="none"),
            "the mean gradient was multiplied by x, not by (x - baseline): the baseline is where the "
            "path starts, so the factor is the distance travelled, x - baseline":
                lambda: _ig_variant(model, x, baseline, target, right, factor="x"),
            "the gradient at x only, times (x - baseline) (gradient x input): integrated gradients "
            "average the gradient over the points baseline + (k / steps)(x - baseline), k = 1..steps":
                lambda: _ig_variant(model, x, baseline, target, [1.0]),
            "the left Riemann sum (alphas 0, 1/steps, ..., (steps-1)/steps): off by one step, it "
            "uses the baseline and never x itself; use alphas k / steps for k = 1..steps":
                lambda: _ig_variant(model, x, baseline, target, (k - 1) / steps),
            "np.linspace(0, 1, steps) / torch.linspace(0, 1, steps): its steps points include both "
            "ends, so the spacing is 1/(steps - 1); use alphas k / steps for k = 1..steps":
                lambda: _ig_variant(model, x, baseline, target, torch.linspace(0, 1, steps, dtype=torch.float64)),
            "midpoint alphas (k + 0.5) / steps: a fine rule, but this exercise (and the paper) uses "
            "the right Riemann sum, alphas k / steps for k = 1..steps":
                lambda: _ig_variant(model, x, baseline, target, (k - 0.5) / steps),
            f"the gradients were summed, not averaged: every value is {steps} (= steps) times too "
            "large; divide the sum by steps (each step is 1/steps of the path)":
                lambda: _ig_variant(model, x, baseline, target, right, weight=torch.ones(steps)),
            "the sum was divided by steps + 1 instead of steps: there are exactly steps points, each "
            "worth 1/steps of the path":
                lambda: _ig_variant(model, x, baseline, target, right, weight=torch.full((steps,), 1 / (steps + 1))),
            "the gradient of the sum of all classes' logits, not of the target's: pick out "
            "model(points)[:, target] before calling backward / autograd.grad":
                lambda: _ig_variant(model, x, baseline, target, right, score="all classes"),
            "the gradient of the softmax probability, not of the logit: explain the model's output as it "
            "is (the logits), so the attributions add up to f(x) - f(baseline) in logits":
                lambda: _ig_variant(model, x, baseline, target, right, score="probability"),
        }, atol=1e-8, rtol=1e-6)
        if got_arr is not None and got_arr.shape == tuple(shape):
            averaged_everything = _ig_variant(model, x, baseline, target, right, factor="none").mean()
            if matches(got, (x - baseline) * averaged_everything, atol=1e-8) and not matches(expected, got, atol=1e-8):
                case.fail("the gradients were averaged over every axis (one number): average over the "
                          "path points only (dim=0), keeping one gradient per input value")
        compare_arrays(case, got, expected, atol=1e-8, rtol=1e-6, name="attributions")
        yield case


def _reference_occlusion(model, x, target, window, stride, fill, sign=1.0):
    return sign * occlusion(model, x, target, window, stride, fill)


def _occlusion_loop(model, x, target, window, stride, fill, *, starts="right", mean=True, sign=1.0):
    """Plain-loop occlusion with a chosen slip, for the hints (aligned inputs only)."""
    n_f, n_t = x.shape[-2:]

    def positions(n, w, s):
        if starts == "stop early":
            return range(0, n - w, s)
        if starts == "by window":
            return range(0, n - w + 1, w)
        return range(0, n - w + 1, s)

    with torch.no_grad():
        reference = model(x)[0, target]
        total = torch.zeros(n_f, n_t, dtype=x.dtype)
        count = torch.zeros(n_f, n_t, dtype=x.dtype)
        for r in positions(n_f, window[0], stride[0]):
            for c in positions(n_t, window[1], stride[1]):
                occluded = x.clone()
                occluded[..., r:r + window[0], c:c + window[1]] = fill
                total[r:r + window[0], c:c + window[1]] += reference - model(occluded)[0, target]
                count[r:r + window[0], c:c + window[1]] += 1
    result = total / count if mean else total
    return (sign * result).expand_as(x)


@exercise_check("11.2", "occlusion")
def _check_occlusion(candidate):
    gen = torch.Generator().manual_seed(12)
    cases = [
        ((1, 1, 6, 8), (2, 2), (2, 2), -3.0, 1, "non-overlapping 2x2 windows"),
        ((1, 1, 6, 8), (3, 4), (1, 2), -3.0, 0, "overlapping 3x4 windows, stride (1, 2)"),
        ((1, 1, 5, 9), (3, 3), (2, 3), -2.0, 2, "3x3 windows, stride (2, 3)"),
        ((1, 1, 4, 10), (2, 4), (2, 2), 1.5, 1, "2x4 windows, stride (2, 2), fill above the data"),
    ]
    for k, (shape, window, stride, fill, target, what) in enumerate(cases):
        model = _mlp(shape, 3, 20 + k)
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        case = Case(f"x {tuple(shape)}, window_shape={window}, stride={stride}, fill={fill}, target {target} ({what})")
        got = case.call(candidate, model, x.clone(), target, window, stride, fill)
        expected = occlusion(model, x, target, window, stride, fill)
        if got is None:
            case.fail("nothing returned: did you forget to `return` the map?")
        got_arr = as_numpy(got)
        if got_arr is not None and got_arr.shape == tuple(shape) and not np.isfinite(got_arr).all():
            case.fail("the map has NaN or inf where no window covered a bin (0 / 0): the last window starts at "
                      "n - window, so loop over range(0, n - window + 1, stride)")
        if got_arr is not None and got_arr.shape == tuple(shape[-2:]):
            case.fail(f"the map has shape {got_arr.shape}: return one value per input value, shape "
                      f"{tuple(shape)} like x")
        reject_known_mistakes(case, got, expected, {
            "the occluded bins were set to 0, not to the stated fill value: 0 is a value like any other "
            "(on a log-mel in dB, a loud one); use x[..., window] = fill":
                lambda: occlusion(model, x, target, window, stride, 0.0),
            "the sign is flipped: f(occluded) - f(x); occlusion measures the drop, f(x) - f(occluded), so "
            "bins the class needs come out positive":
                lambda: _reference_occlusion(model, x, target, window, stride, fill, sign=-1.0),
            "the windows stepped by the window size, not by the stride: use range(0, n - window + 1, stride)":
                lambda: _occlusion_loop(model, x, target, window, stride, fill, starts="by window"),
            "the window's axes are swapped: window[0] runs along frequency (rows, axis -2) and window[1] "
            "along time (axis -1)":
                lambda: occlusion(model, x, target, window[::-1], stride[::-1], fill),
            "each bin got the sum of the drops of the windows covering it: divide by how many windows "
            "cover it (the mean), so overlapping windows do not count twice":
                lambda: _occlusion_loop(model, x, target, window, stride, fill, mean=False),
            "the drop of the sum of all classes' logits, not of the target's: use model(...)[0, target]":
                lambda: _class_sum_occlusion(model, x, window, stride, fill),
        }, atol=1e-9, rtol=1e-7)
        compare_arrays(case, got, expected, atol=1e-9, rtol=1e-7, name="map")
        yield case


def _class_sum_occlusion(model, x, window, stride, fill):
    class Summed(nn.Module):
        def forward(self, inputs):
            return model(inputs).sum(dim=1, keepdim=True)

    return occlusion(Summed().eval(), x, 0, window, stride, fill)
