"""Checks of notebooks 05-07 accept right answers, including ones measured on real PyTorch layers.

The classic wrong answers and their hints are in test_checks_mistakes.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import checks as check
from course_lib import metrics, models


def receptive_field_measured(layers):
    """Build the stack as real Conv1d layers and see which inputs one output's gradient reaches."""
    stack = nn.Sequential(*[nn.Conv1d(1, 1, k, stride=s, dilation=d, bias=False) for k, s, d in layers])
    for conv in stack:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, 4096, requires_grad=True)
    stack(x)[0, 0, 0].backward()
    touched = torch.nonzero(x.grad[0, 0]).flatten()
    return int(touched.max() - touched.min() + 1)


def conv_output_length_from_docs(length, kernel, stride=1, padding=0, dilation=1):
    """The formula printed in the nn.Conv1d documentation (L_out)."""
    return int(np.floor((length + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1))


def fixed_article_cnn_solution():
    return nn.Sequential(
        nn.Conv1d(1, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(64, 64, kernel_size=3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool1d(2),
        nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10),
    )


class FunctionalArticleCNN(nn.Module):
    """The same model written with a forward() and F.relu: checks must not rely on nn.Sequential."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(1, 64, 3, padding=1), nn.Conv1d(64, 64, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(128, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = nn.functional.max_pool1d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.adaptive_max_pool1d(torch.relu(self.conv2(x)), 2).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


class FunctionalConvBlock(nn.Module):
    def __init__(self, in_ch, out_ch, dropout):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x):
        return self.drop(nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2))


def macro_f1_solution(y_true, y_pred, n_classes):
    f1 = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1))


def add_frequency_channel_solution(x):
    b, _, f, t = x.shape
    pos = torch.linspace(-1, 1, f, dtype=x.dtype).view(1, 1, f, 1).expand(b, 1, f, t)
    return torch.cat([x, pos], dim=1)


@pytest.mark.parametrize("exercise_id,fn", [
    ("05.1", conv_output_length_from_docs),
    ("05.1", models.conv_output_length),
    ("05.2", receptive_field_measured),
    ("05.3", fixed_article_cnn_solution),
    ("05.3", FunctionalArticleCNN),
    ("05.3", lambda: nn.Sequential(  # ReLU after pooling is the same function (max and ReLU commute)
        nn.Conv1d(1, 64, 3, padding=1), nn.MaxPool1d(2), nn.ReLU(), nn.Conv1d(64, 64, 3, padding=1),
        nn.AdaptiveMaxPool1d(2), nn.ReLU(), nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))),
    ("06.1", lambda i, o, p: models.ConvBlock2d(i, o, dropout=p)),
    ("06.1", FunctionalConvBlock),
    ("06.1", lambda i, o, p: nn.Sequential(  # pooling before ReLU: the same function
        nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.MaxPool2d(2), nn.ReLU(), nn.Dropout2d(p))),
    ("06.2", macro_f1_solution),
    ("06.2", lambda t, p, k: metrics.macro_f1(t, p, n_classes=k)),
    ("07.1", lambda i, o, kf, kt: models.TimeFrequencySeparableBlock(i, o, kf, kt)),
    ("07.2", add_frequency_channel_solution),
    ("07.2", lambda x: torch.cat([x, models.frequency_position(x)], dim=1)),
])
def test_right_answers_pass(exercise_id, fn):
    result = check.exercise(exercise_id, fn, quiet=True, strict=False)
    assert result, result.message


def test_the_measured_receptive_field_agrees_with_the_checks_cases():
    from course_lib.checks import nb05

    for _, layers in nb05._FIELD_CASES:
        assert nb05._field(layers) == receptive_field_measured(layers)


def test_registered():
    ids = check.registered_exercises()
    for eid in ("05.1", "05.2", "05.3", "06.1", "06.2", "07.1", "07.2"):
        assert eid in ids


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    with pytest.raises(check.ExerciseFailed):
        check.exercise("05.1", lambda *a: 0, quiet=True)
