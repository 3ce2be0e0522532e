"""Checks of notebooks 05-07: the reference solutions pass; typical mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import checks as check
from course_lib import metrics, models


def _hint(exercise_id: str, fn) -> str:
    result = check.exercise(exercise_id, fn, quiet=True, strict=False)
    assert not result, f"a wrong answer passed {exercise_id}"
    return result.message


# ---------------------------------------------------------------------------- solutions as written
# The same code as the solution cells of the notebooks.
def conv_output_length_solution(length, kernel, stride=1, padding=0, dilation=1):
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def receptive_field_solution(layers):
    field, jump = 1, 1
    for kernel, stride, dilation in layers:
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field


def fixed_article_cnn_solution():
    return nn.Sequential(
        nn.Conv1d(1, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(64, 64, kernel_size=3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool1d(2),
        nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def conv_bn_block_solution(in_ch, out_ch, dropout):
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(dropout))


def macro_f1_solution(y_true, y_pred, n_classes):
    f1 = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1))


def separable_block_solution(in_ch, out_ch, k_freq, k_time):
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, (k_freq, 1), padding=(k_freq // 2, 0)), nn.BatchNorm2d(out_ch),
        nn.ReLU(),
        nn.Conv2d(out_ch, out_ch, (1, k_time), padding=(0, k_time // 2)), nn.BatchNorm2d(out_ch),
        nn.ReLU(),
    )


def add_frequency_channel_solution(x):
    b, _, f, t = x.shape
    pos = torch.linspace(-1, 1, f).view(1, 1, f, 1).expand(b, 1, f, t)
    return torch.cat([x, pos], dim=1)


@pytest.mark.parametrize("exercise_id,fn", [
    ("05.1", conv_output_length_solution),
    ("05.1", models.conv_output_length),
    ("05.2", receptive_field_solution),
    ("05.2", models.receptive_field),
    ("05.3", fixed_article_cnn_solution),
    ("06.1", conv_bn_block_solution),
    ("06.1", lambda i, o, p: models.ConvBlock2d(i, o, dropout=p)),
    ("06.2", macro_f1_solution),
    ("06.2", lambda t, p, k: metrics.macro_f1(t, p, n_classes=k)),
    ("07.1", separable_block_solution),
    ("07.1", lambda i, o, kf, kt: models.TimeFrequencySeparableBlock(i, o, kf, kt)),
    ("07.2", add_frequency_channel_solution),
    ("07.2", lambda x: torch.cat([x, models.frequency_position(x)], dim=1)),
])
def test_solutions_pass(exercise_id, fn):
    result = check.exercise(exercise_id, fn, quiet=True, strict=False)
    assert result, result.message


def test_registered():
    ids = check.registered_exercises()
    for eid in ("05.1", "05.2", "05.3", "06.1", "06.2", "07.1", "07.2"):
        assert eid in ids


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    with pytest.raises(check.ExerciseFailed):
        check.exercise("05.1", lambda *a: 0, quiet=True)


# ---------------------------------------------------------------------------- typical mistakes
def test_conv_length_hints():
    assert "+ 1" in _hint("05.1", lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * (k - 1) - 1) // s)
    assert "dilat" in _hint("05.1", lambda n, k, s=1, p=0, d=1: (n + 2 * p - k) // s + 1)
    assert "floor" in _hint("05.1", lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * (k - 1) - 1) / s + 1)
    assert "not implemented" in _hint("05.1", lambda *a: (_ for _ in ()).throw(NotImplementedError("x")))


def test_receptive_field_hints():
    assert "product of all earlier strides" in _hint(
        "05.2", lambda layers: 1 + sum((k - 1) * d for k, _, d in layers))
    assert "kernels do not simply add" in _hint("05.2", lambda layers: sum(k for k, _, _ in layers))


def test_article_cnn_hints():
    article = lambda: nn.Sequential(  # noqa: E731 - the article's model, unfixed
        nn.Conv1d(1, 64, 3, padding=1), nn.MaxPool1d(2), nn.Conv1d(64, 64, 3, padding=1),
        nn.MaxPool1d(2), nn.Flatten(), nn.Linear(128, 64), nn.Linear(64, 10))
    assert "AdaptiveMaxPool1d" in _hint("05.3", article)
    changed_head = lambda: nn.Sequential(  # noqa: E731
        nn.Conv1d(1, 64, 3, padding=1), nn.Conv1d(64, 64, 3, padding=1), nn.AdaptiveMaxPool1d(1),
        nn.Flatten(), nn.Linear(64, 64), nn.Linear(64, 10))
    assert "Linear(128, 64)" in _hint("05.3", changed_head)


def test_conv_bn_block_hints():
    no_bn = lambda i, o, p: nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(),  # noqa: E731
                                          nn.MaxPool2d(2), nn.Dropout2d(p))
    assert "BatchNorm2d" in _hint("06.1", no_bn)
    no_pool = lambda i, o, p: nn.Sequential(nn.Conv2d(i, o, 3, padding=1),  # noqa: E731
                                            nn.BatchNorm2d(o), nn.ReLU(), nn.Dropout2d(p))
    assert "MaxPool2d(2)" in _hint("06.1", no_pool)
    no_drop = lambda i, o, p: nn.Sequential(nn.Conv2d(i, o, 3, padding=1),  # noqa: E731
                                            nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
    assert "dropout" in _hint("06.1", no_drop)


def test_macro_f1_hints():
    assert "accuracy" in _hint("06.2", lambda t, p, k: float(np.mean(t == p)))

    def weighted(t, p, k):
        f1 = metrics.per_class_f1(t, p, k)
        return float(np.sum(f1 * np.bincount(t, minlength=k)) / len(t))

    assert "support-weighted" in _hint("06.2", weighted)


def test_separable_block_hints():
    square = lambda i, o, kf, kt: nn.Conv2d(i, o, (kf, kt), padding=(kf // 2, kt // 2))  # noqa: E731
    assert "vertical" in _hint("07.1", square)
    parallel = lambda i, o, kf, kt: models.MultiScaleBlock(  # noqa: E731
        i, o, kernels=((kf, 1), (1, kt)))
    message = _hint("07.1", parallel)
    assert "output shape" in message or "patch" in message


def test_frequency_channel_hints():
    def along_time(x):
        b, _, f, t = x.shape
        return torch.cat([x, torch.linspace(-1, 1, t).expand(b, 1, f, t)], dim=1)

    assert "along time" in _hint("07.2", along_time)

    def zero_one(x):
        b, _, f, t = x.shape
        return torch.cat([x, torch.linspace(0, 1, f).view(1, 1, f, 1).expand(b, 1, f, t)], dim=1)

    assert "-1" in _hint("07.2", zero_one)

    def first(x):
        return torch.cat([models.frequency_position(x), x], dim=1)

    assert "after the input channels" in _hint("07.2", first)
