"""Checks for 06_cnn_audio_classification: a conv block with batch norm and dropout, macro-F1.

Notebook: 06_cnn_audio_classification
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import Case, compare_scalar, exercise_check

__all__: list[str] = []


@exercise_check("06.1", "a conv block with batch norm and dropout")
def _check_conv_bn_block(candidate):
    import torch
    from torch import nn

    for in_ch, out_ch, p, shape in [(1, 8, 0.2, (40, 32)), (8, 16, 0.5, (21, 17)),
                                    (3, 4, 0.0, (8, 9))]:
        case = Case(f"conv_bn_block(in_ch={in_ch}, out_ch={out_ch}, dropout={p}) on a "
                    f"(4, {in_ch}, {shape[0]}, {shape[1]}) batch")
        block = case.call(candidate, in_ch, out_ch, p)
        if not isinstance(block, nn.Module):
            case.fail(f"return an nn.Module (e.g. nn.Sequential), got {type(block).__name__}")
        kinds = [type(m) for m in block.modules()]
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        if len(convs) != 1 or convs[0].kernel_size != (3, 3) or convs[0].padding != (1, 1):
            case.fail("use one nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)")
        bns = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
        if len(bns) != 1 or bns[0].num_features != out_ch:
            case.fail(f"add nn.BatchNorm2d({out_ch}) after the convolution (one per output "
                      "channel)")
        if nn.ReLU not in kinds:
            case.fail("add a nn.ReLU after the batch norm")
        drops = [m for m in block.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
        if p > 0 and (not drops or abs(drops[0].p - p) > 1e-12):
            case.fail(f"add dropout with probability {p} (nn.Dropout2d(p) drops whole maps)")
        if kinds.index(nn.BatchNorm2d) < kinds.index(nn.Conv2d):
            case.fail("batch norm goes after the convolution (it normalises the conv's output)")
        torch.manual_seed(0)
        x = torch.randn(4, in_ch, *shape)
        block.eval()
        with torch.no_grad():
            out = case.call(block, x)
        expected = (4, out_ch, shape[0] // 2, shape[1] // 2)
        rounded_up = (4, out_ch, -(-shape[0] // 2), -(-shape[1] // 2))  # ceil_mode=True is fine
        if tuple(out.shape) not in (expected, rounded_up):
            case.fail(f"output shape {tuple(out.shape)}, expected {expected}: end with "
                      "nn.MaxPool2d(2), which halves both axes")
        if (out < 0).any():
            case.fail("negative outputs: the ReLU must come after the batch norm, before pooling")
        with torch.no_grad():
            if not torch.equal(out, block(x)):
                case.fail("in eval mode the block must be deterministic (dropout off)")
        if p > 0:
            block.train()
            with torch.no_grad():
                a, b = block(x), block(x)
            if torch.equal(a, b):
                case.fail("in train mode two calls gave identical outputs: is dropout applied?")
        yield case


def _labels(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Imbalanced: class 0 is common, so macro-F1, weighted F1 and accuracy all differ.
    y_true = np.minimum(rng.geometric(0.35, n) - 1, k - 1)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, n))
    return y_true, y_pred


@exercise_check("06.2", "macro-F1 from scratch")
def _check_macro_f1(candidate):
    from course_lib import metrics

    cases = [_labels(0, 200, 5), _labels(1, 50, 4), (np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]))]
    for i, (t, p) in enumerate(cases):
        k = int(max(t.max(), p.max())) + 1
        case = Case(f"case {i}: {len(t)} labels, {k} classes (class counts "
                    f"{np.bincount(t, minlength=k).tolist()})")
        got = case.call(candidate, t.copy(), p.copy(), k)
        expected = metrics.macro_f1(t, p, n_classes=k)
        f1 = metrics.per_class_f1(t, p, k)
        support = np.bincount(t, minlength=k)
        try:
            value = float(got)
        except (TypeError, ValueError):
            case.fail(f"return one number, got {type(got).__name__}")
        if abs(value - metrics.accuracy(t, p)) < 1e-9 and abs(expected - value) > 1e-9:
            case.fail(f"{value:.4f} is the accuracy (= micro-F1): average the per-class F1 "
                      "scores instead, each class counting once")
        if abs(value - float(np.sum(f1 * support) / support.sum())) < 1e-9 \
                and abs(expected - value) > 1e-9:
            case.fail(f"{value:.4f} is the support-weighted F1: macro-F1 weights every class "
                      "equally (a plain mean over classes)")
        compare_scalar(case, value, expected, atol=1e-9, rtol=1e-9, name="macro-F1")
        yield case
