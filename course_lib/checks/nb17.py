"""Checks for 17_audio_style_transfer: the Gram matrix of feature maps, and the log-spectral distance.

The Gram check starts from a case small enough to do by hand (2 channels, 4 frames) and names the
classic slips: no division by the number of frames, a frames x frames matrix (the transpose on the
wrong side), centred features (a covariance), a division by channels x frames, by the channels, or
by frames - 1. The log-spectral-distance check names 10·log10 on magnitudes, a missing floor, a
natural logarithm, the root mean square over the whole spectrogram instead of per frame, the two
axes swapped, and the mean absolute difference.

Notebook: 17_audio_style_transfer
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib.checks import Case, as_numpy, compare_arrays, compare_scalar, exercise_check, reject_known_mistakes
from course_lib.style import gram_matrix, log_spectral_distance

__all__: list[str] = []  # checks register themselves; nothing to import from here


def _gram_cases() -> list[tuple[str, torch.Tensor]]:
    rng = np.random.default_rng(17)
    hand = torch.tensor([[[1.0, 2.0, 0.0, 1.0], [0.0, 1.0, 3.0, 0.0]]], dtype=torch.float64)
    return [
        ("the hand-computed case features [[1, 2, 0, 1], [0, 1, 3, 0]] (1 example, 2 channels, 4 frames): "
         "expected [[6, 2], [2, 10]] / 4", hand),
        ("2 examples, 4 channels, 7 frames (ReLU outputs)",
         torch.from_numpy(np.maximum(rng.normal(size=(2, 4, 7)), 0.0))),
        ("1 example, 3 channels, 1 frame", torch.from_numpy(rng.uniform(0, 2, size=(1, 3, 1)))),
        ("3 examples, 5 channels, 12 frames", torch.from_numpy(rng.uniform(0, 1, size=(3, 5, 12)))),
    ]


def _gram_mistakes(features: torch.Tensor) -> dict[str, object]:
    f = features
    n_channels, n_frames = f.shape[-2], f.shape[-1]
    outer = f @ f.transpose(-1, -2)
    centred = f - f.mean(-1, keepdim=True)
    return {
        "not divided by the number of frames: F F^T grows with the clip's length, so a long and a "
        "short clip of the same sound would have different styles. Divide by n_frames":
            lambda: outer,
        "the features were centred (a covariance matrix): the Gram matrix of style transfer is not "
        "centred, the mean activation of a feature is part of the style": lambda: centred @ centred.transpose(-1, -2) / n_frames,
        "divided by channels x frames: normalise by the number of frames only (the convention stated "
        "above)": lambda: outer / (n_channels * n_frames),
        "divided by the number of channels: the average runs over frames, so divide by n_frames":
            lambda: outer / n_channels,
        "divided by n_frames - 1 (a sample-covariance habit): the Gram matrix is a plain mean over the "
        "frames, divide by n_frames": lambda: outer / (n_frames - 1),
    }


@exercise_check("17.1", "Gram matrix of feature maps")
def _check_gram(candidate):
    for description, features in _gram_cases():
        case = Case(description)
        got = case.call(candidate, features.clone())
        expected = gram_matrix(features)
        arr = as_numpy(got)
        n_channels, n_frames = features.shape[-2], features.shape[-1]
        if arr is not None and arr.shape == (features.shape[0], n_frames, n_frames) and n_frames != n_channels:
            case.fail(f"the result is frames x frames {arr.shape[1:]}: that is F^T F, which compares moments "
                      f"in time (it depends on the timing, not the timbre). The Gram matrix is channels x "
                      f"channels: F @ F.transpose(-1, -2) for F of shape [batch, channels, n_frames]")
        if arr is not None and arr.shape == expected.shape:
            reject_known_mistakes(case, got, expected, _gram_mistakes(features), atol=1e-9)
        compare_arrays(case, got, expected, atol=1e-9, name="gram",
                       factors={"n_frames": n_frames, "1/n_channels": 1 / n_channels})
        yield case


def _lsd_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1717)
    est = np.ones((2, 2))
    est[0, 0] = 10.0
    with_zeros = rng.uniform(0.01, 1, size=(5, 4))
    with_zeros[2, 1] = 0.0
    return [
        ("the hand-computed case reference ones((2, 2)), estimate [[10, 1], [1, 1]]: frame 0 differs by "
         "20 dB in one of 2 bins -> sqrt(400 / 2) = 14.14 dB, frame 1 by 0 dB; mean 7.07 dB",
         np.ones((2, 2)), est),
        ("6 bins x 3 frames of random magnitudes", rng.uniform(0.01, 2, size=(6, 3)),
         rng.uniform(0.01, 2, size=(6, 3))),
        ("a zero magnitude in the estimate (the floor amin=1e-5 applies)", rng.uniform(0.01, 1, size=(5, 4)),
         with_zeros),
        ("4 bins x 9 frames, estimate 10 times the reference in frame 0 only",
         np.full((4, 9), 0.5), np.concatenate([np.full((4, 1), 5.0), np.full((4, 8), 0.5)], axis=1)),
    ]


def _lsd_mistakes(r: np.ndarray, e: np.ndarray) -> dict[str, object]:
    floor = lambda m: np.maximum(m, 1e-5)  # noqa: E731
    db = 20 * np.log10(floor(r)) - 20 * np.log10(floor(e))
    return {
        "10·log10 on magnitudes: that is the power formula. Magnitudes (amplitudes) take 20·log10":
            lambda: float(np.mean(np.sqrt(np.mean((db / 2) ** 2, axis=0)))),
        "20·log10 of squared magnitudes: the inputs are magnitudes already; squaring doubles every dB value":
            lambda: float(np.mean(np.sqrt(np.mean((2 * db) ** 2, axis=0)))),
        "natural logarithm: the distance is in dB, 20·log10(|X|)":
            lambda: float(np.mean(np.sqrt(np.mean((np.log(floor(r)) - np.log(floor(e))) ** 2, axis=0)))),
        "the root mean square over the whole spectrogram: take the RMS over the bins of each frame, then "
        "the mean over frames": lambda: float(np.sqrt(np.mean(db ** 2))),
        "the axes are swapped (RMS over frames for each bin, then the mean over bins): a spectrogram is "
        "(n_freqs, n_frames), the RMS runs over axis 0": lambda: float(np.mean(np.sqrt(np.mean(db ** 2, axis=1)))),
        "the mean absolute dB difference: the log-spectral distance is a root mean square over the bins":
            lambda: float(np.mean(np.mean(np.abs(db), axis=0))),
    }


@exercise_check("17.2", "log-spectral distance")
def _check_lsd(candidate):
    for description, reference, estimate in _lsd_cases():
        case = Case(description)
        got = case.call(candidate, reference.copy(), estimate.copy())
        expected = log_spectral_distance(reference, estimate)
        try:
            value = float(got)
        except (TypeError, ValueError):
            case.fail(f"return one number (dB); got {type(got).__name__}")
        if not np.isfinite(value):
            case.fail(f"the distance is {value}: log10(0) is -inf. Floor the magnitudes first, "
                      "np.maximum(magnitude, amin) with amin = 1e-5 (-100 dB)")
        reject_known_mistakes(case, value, expected, _lsd_mistakes(reference, estimate), atol=1e-9)
        compare_scalar(case, value, expected, atol=1e-9, name="log-spectral distance (dB)")
        yield case
