"""Checks for 06_cnn_audio_classification: a conv block with batch norm and dropout, macro-F1.

Notebook: 06_cnn_audio_classification
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import Case, compare_scalar, exercise_check, record_calls

__all__: list[str] = []


def _randomise_batch_norm(bn, gen) -> None:
    """Give a batch norm statistics and an affine map that differ from the identity.

    A fresh BatchNorm2d in eval mode (running mean 0, variance 1, weight 1, bias 0) is the identity,
    so a block with the layers in the wrong order would behave exactly like the right one.
    """
    import torch

    with torch.no_grad():
        n = bn.num_features
        bn.running_mean.copy_(torch.randn(n, generator=gen))
        bn.running_var.copy_(0.2 + torch.rand(n, generator=gen))
        if bn.affine:
            bn.weight.copy_(0.5 + torch.rand(n, generator=gen))
            bn.bias.copy_(torch.randn(n, generator=gen))


@exercise_check("06.1", "a conv block with batch norm and dropout")
def _check_conv_bn_block(candidate):
    import torch
    import torch.nn.functional as F
    from torch import nn

    order_wanted = "Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d(2) -> Dropout2d"
    for in_ch, out_ch, p, shape in [(1, 8, 0.2, (40, 32)), (8, 16, 0.5, (21, 17)),
                                    (3, 4, 0.0, (8, 9))]:
        case = Case(f"conv_bn_block(in_ch={in_ch}, out_ch={out_ch}, dropout={p}) on a "
                    f"(4, {in_ch}, {shape[0]}, {shape[1]}) batch")
        block = case.call(candidate, in_ch, out_ch, p)
        if not isinstance(block, nn.Module):
            case.fail(f"return an nn.Module (e.g. nn.Sequential), got {type(block).__name__}")
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        if len(convs) != 1 or convs[0].kernel_size != (3, 3) or convs[0].padding != (1, 1):
            case.fail("use one nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)")
        if any(isinstance(m, nn.BatchNorm1d) for m in block.modules()):
            case.fail("nn.BatchNorm1d normalises (batch, channels, length) inputs; feature maps "
                      "(batch, channels, n_mels, frames) need nn.BatchNorm2d(out_ch)")
        bns = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
        if len(bns) != 1 or bns[0].num_features != out_ch:
            case.fail(f"add nn.BatchNorm2d({out_ch}) after the convolution (one per output "
                      "channel)")
        if any(isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)) for m in block.modules()):
            case.fail("average pooling: the exercise pools with nn.MaxPool2d(2) (keep the strongest "
                      "response in each 2x2 patch)")
        if p > 0 and any(type(m) is nn.Dropout for m in block.modules()) \
                and not any(isinstance(m, nn.Dropout2d) for m in block.modules()):
            case.fail("nn.Dropout zeroes single values; the exercise uses nn.Dropout2d, which zeroes "
                      "whole feature maps (neighbouring values of a map are strongly correlated, so "
                      "dropping single ones hardly regularises)")
        drops = [m for m in block.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
        if p > 0 and (not drops or abs(drops[0].p - p) > 1e-12):
            case.fail(f"add dropout with probability {p} (nn.Dropout2d(p) drops whole maps)")
        torch.manual_seed(0)
        x = torch.randn(4, in_ch, *shape)
        block.eval()
        kinds = [type(module) for module, _, _ in record_calls(block, x)[1]]
        if nn.ReLU in kinds and nn.BatchNorm2d in kinds and kinds.index(nn.ReLU) < kinds.index(nn.BatchNorm2d):
            case.fail(f"the ReLU runs before the batch norm ({' -> '.join(k.__name__ for k in kinds)}): "
                      f"the exercise's order is {order_wanted}. Batch norm normalises the conv's "
                      "output; the ReLU then keeps the positive part of a zero-mean, unit-variance map")
        if nn.BatchNorm2d in kinds and nn.Conv2d in kinds and kinds.index(nn.BatchNorm2d) < kinds.index(nn.Conv2d):
            case.fail("batch norm goes after the convolution (it normalises the conv's output)")
        if nn.MaxPool2d in kinds and nn.BatchNorm2d in kinds \
                and kinds.index(nn.MaxPool2d) < kinds.index(nn.BatchNorm2d):
            case.fail(f"the pooling runs before the batch norm: the exercise's order is {order_wanted}")
        # Batch norm with non-trivial statistics: only the right order gives the right numbers.
        gen = torch.Generator().manual_seed(1)
        for bn in bns:
            _randomise_batch_norm(bn, gen)
        with torch.no_grad():
            out = case.call(block, x)
        expected = (4, out_ch, shape[0] // 2, shape[1] // 2)
        rounded_up = (4, out_ch, -(-shape[0] // 2), -(-shape[1] // 2))  # ceil_mode=True is fine
        if not isinstance(out, torch.Tensor) or tuple(out.shape) not in (expected, rounded_up):
            got_shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            case.fail(f"output shape {got_shape}, expected {expected}: end with "
                      "nn.MaxPool2d(2), which halves both axes")
        with torch.no_grad():
            if not torch.equal(out, block(x)):
                case.fail("in eval mode the block must be deterministic (dropout off)")
        ceil_mode = tuple(out.shape) != expected
        with torch.no_grad():
            conv_out = convs[0](x)
            expected_out = F.max_pool2d(F.relu(bns[0](conv_out)), 2, ceil_mode=ceil_mode)
            relu_first = F.max_pool2d(bns[0](F.relu(conv_out)), 2, ceil_mode=ceil_mode)
            no_relu = F.max_pool2d(bns[0](conv_out), 2, ceil_mode=ceil_mode)
        if torch.allclose(out, no_relu, atol=1e-5):
            case.fail("no ReLU: add nn.ReLU() after the batch norm (without it, conv and batch norm "
                      "are one linear map)")
        if torch.allclose(out, relu_first, atol=1e-5) and not torch.allclose(out, expected_out, atol=1e-5):
            case.fail(f"the ReLU comes before the batch norm: the exercise's order is {order_wanted} "
                      "(with a trained batch norm the two orders give different maps)")
        if (out < 0).any():
            case.fail("negative outputs: the ReLU must come after the batch norm, before pooling")
        if not torch.allclose(out, expected_out, atol=1e-5):
            case.fail(f"in eval mode the block does not compute {order_wanted} of its own layers "
                      "(checked with a batch norm whose running statistics are not the identity)")
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


def _f1_variants(t: np.ndarray, p: np.ndarray, k: int) -> dict:
    """Plausible wrong macro-F1s, each with the hint that names its mistake (scikit-learn computes them)."""
    from sklearn import metrics as skm

    labels = list(range(k))
    present_true = sorted(set(t.tolist()))
    present_any = sorted(set(t.tolist()) | set(p.tolist()))

    def harmonic_of_means():
        precision = skm.precision_score(t, p, labels=labels, average="macro", zero_division=0)
        recall = skm.recall_score(t, p, labels=labels, average="macro", zero_division=0)
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    return {
        "is the accuracy (= micro-F1): average the per-class F1 scores instead, each class counting once":
            lambda: skm.accuracy_score(t, p),
        "is the support-weighted F1: macro-F1 weights every class equally (a plain mean over classes)":
            lambda: skm.f1_score(t, p, labels=labels, average="weighted", zero_division=0),
        "averages only the classes that occur in y_true or y_pred: average over *all* n_classes "
        "classes, a class that never occurs counting with F1 = 0":
            lambda: skm.f1_score(t, p, labels=present_any, average="macro", zero_division=0),
        "averages only the classes that occur in y_true: average over *all* n_classes classes "
        "(range(n_classes)), a class that is only predicted counts too":
            lambda: skm.f1_score(t, p, labels=present_true, average="macro", zero_division=0),
        "is the mean recall (balanced accuracy), TP / (TP + FN): F1 also counts false positives, "
        "2 TP / (2 TP + FP + FN)":
            lambda: skm.recall_score(t, p, labels=labels, average="macro", zero_division=0),
        "is the mean precision, TP / (TP + FP): F1 also counts false negatives, 2 TP / (2 TP + FP + FN)":
            lambda: skm.precision_score(t, p, labels=labels, average="macro", zero_division=0),
        "is the harmonic mean of macro-precision and macro-recall: compute F1 for each class "
        "first, then average the F1 scores":
            harmonic_of_means,
    }


@exercise_check("06.2", "macro-F1 from scratch")
def _check_macro_f1(candidate):
    from sklearn.metrics import f1_score

    cases = [_labels(0, 200, 5) + (5,), _labels(1, 50, 4) + (4,),
             (np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3),
             # class 3 is predicted but never true; class 4 never occurs at all (its F1 is 0/0 -> 0)
             (np.array([0, 0, 0, 1, 1, 2, 2, 2, 0]), np.array([0, 3, 0, 1, 2, 2, 2, 1, 0]), 5)]
    for i, (t, p, k) in enumerate(cases):
        case = Case(f"case {i}: {len(t)} labels, n_classes={k} (class counts in y_true "
                    f"{np.bincount(t, minlength=k).tolist()}, in y_pred {np.bincount(p, minlength=k).tolist()})")
        got = case.call(candidate, t.copy(), p.copy(), k)
        expected = float(f1_score(t, p, labels=list(range(k)), average="macro", zero_division=0))
        try:
            value = float(got)
        except (TypeError, ValueError):
            case.fail(f"return one number, got {type(got).__name__}")
        if np.isnan(value):
            case.fail("the result is NaN: a class with no true and no predicted samples has F1 = 0/0; "
                      "count it as 0 (the exercise's convention, scikit-learn's zero_division=0)")
        if abs(value - expected) > 1e-9:
            for hint, wrong in _f1_variants(t, p, k).items():
                if abs(value - float(wrong())) < 1e-9 and abs(float(wrong()) - expected) > 1e-9:
                    case.fail(f"{value:.4f} {hint}")
        compare_scalar(case, value, expected, atol=1e-9, rtol=1e-9, name="macro-F1")
        yield case
