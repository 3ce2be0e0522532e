"""Checks for 18_speech_generation_vocoder: the multi-resolution STFT loss and mu-law encoding.

18.1 compares the student's loss with ``course_lib.vocoder.mr_stft_loss`` on pairs of signals
(noise, tones, a pair with digital silence, a batch) and names the classic slips: one resolution
only, a squared error on the log magnitudes, no floor before the log (NaN/inf on silence), the
difference of the complex STFTs (phase counted), power instead of magnitude, log10 instead of the
natural log, spectral convergence without its normalisation, a sum instead of a mean over the
resolutions, and a missing window. 18.2 compares ``mu_law_encode`` with
``torchaudio.functional.mu_law_encoding`` and names: ``mu = quantization_channels`` (one too many),
truncation instead of rounding, a lost sign, the companded value returned unquantised, ``log(mu)``
in place of ``log(1 + mu)``, and linear quantisation without companding.

Notebook: 18_speech_generation_vocoder
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio

from course_lib.checks import Case, as_numpy, compare_arrays, compare_scalar, exercise_check, reject_known_mistakes
from course_lib.vocoder import mr_stft_loss

__all__: list[str] = []  # checks register themselves; nothing to import from here

_RESOLUTIONS = ((128, 32, 128), (256, 64, 256), (512, 128, 512))


def _pairs() -> list[tuple[str, torch.Tensor, torch.Tensor, tuple]]:
    g = torch.Generator().manual_seed(18)
    n = 4000
    t = torch.arange(n) / 16000
    tone = 0.4 * torch.sin(2 * math.pi * 300 * t)
    noise = 0.1 * torch.randn(1, n, generator=g)
    silent_gap = tone.clone()
    silent_gap[1500:3000] = 0.0                            # digital silence in both signals
    quieter = 0.5 * silent_gap
    batch_ref = torch.stack([tone, 0.2 * torch.randn(n, generator=g)])
    batch_est = batch_ref + 0.05 * torch.randn(2, n, generator=g)
    return [
        ("a tone vs the tone plus noise", (tone + noise[0])[None], tone[None], _RESOLUTIONS),
        ("a tone vs a phase-shifted tone (same magnitudes, other phases)",
         (0.4 * torch.cos(2 * math.pi * 300 * t))[None], tone[None], _RESOLUTIONS),
        ("two signals with the same stretch of digital silence", quieter[None], silent_gap[None], _RESOLUTIONS),
        ("a batch of two pairs, two resolutions", batch_est, batch_ref, _RESOLUTIONS[1:]),
    ]


def _variant(estimate, reference, resolutions, amin=1e-5, *, single=False, squared=False, floor=True,
             complex_diff=False, power=False, log10=False, normalise=True, reduce="mean", window=True):
    total = 0.0
    used = resolutions[:1] if single else resolutions
    for n_fft, hop, win in used:
        w = torch.hann_window(win) if window else torch.ones(win)
        spec = lambda x: torch.stft(x.float(), n_fft, hop, win, w, return_complex=True)
        e_c, r_c = spec(estimate), spec(reference)
        e, r = e_c.abs(), r_c.abs()
        if power:
            e, r = e ** 2, r ** 2
        if floor:
            e, r = e.clamp_min(amin), r.clamp_min(amin)
        diff = (r_c - e_c).abs() if complex_diff else (r - e)
        sc = torch.linalg.vector_norm(diff)
        if normalise:
            sc = sc / torch.linalg.vector_norm(r_c.abs() if complex_diff else r)
        log = torch.log10 if log10 else torch.log
        d = log(r) - log(e)
        total = total + sc + (d ** 2 if squared else d.abs()).mean()
    return float(total / len(used)) if reduce == "mean" else float(total)


@exercise_check("18.1", "multi-resolution STFT loss")
def _check_mr_stft(candidate):
    for description, estimate, reference, resolutions in _pairs():
        case = Case(description)
        got = case.call(candidate, estimate.clone(), reference.clone(), resolutions, 1e-5)
        value = as_numpy(got)
        if value is None or value.size != 1:
            case.fail(f"return one number (a scalar tensor); got {type(got).__name__} "
                      f"{'' if value is None else value.shape}")
        value = float(value.reshape(()))
        expected = float(mr_stft_loss(estimate, reference, resolutions, 1e-5))
        if not math.isfinite(value):
            case.fail(f"the loss is {value}: log(0) on digital silence. Clamp the magnitudes at amin "
                      "(.clamp_min(amin)) BEFORE the log: that floor is what keeps the loss finite")
        args = (estimate, reference, resolutions)
        reject_known_mistakes(case, value, expected, {
            "only one resolution was used: average spectral convergence + log-magnitude L1 over ALL the "
            "(n_fft, hop_length, win_length) resolutions, not just the first": lambda: _variant(*args, single=True),
            "a squared error (L2) on the log magnitudes: the loss uses the mean ABSOLUTE difference (L1) "
            "of log |STFT|, which does not let a few large errors dominate": lambda: _variant(*args, squared=True),
            "no floor before the log (log(0) on digital silence, and near-silent bins dominate): clamp "
            "|STFT| at amin (clamp_min) before the log": lambda: _variant(*args, floor=False),
            "the complex STFTs were compared (|X - Y|): that counts the phase, which many waveforms with "
            "the same sound differ in. Compare the MAGNITUDES |X| and |Y|": lambda: _variant(*args, complex_diff=True),
            "power |STFT|^2 was used: the loss compares magnitudes |STFT|": lambda: _variant(*args, power=True),
            "log10 was used: the log-magnitude term uses the natural log (torch.log)":
                lambda: _variant(*args, log10=True),
            "spectral convergence divides the Frobenius norm of the difference by the norm of the "
            "REFERENCE's magnitudes; that division is missing": lambda: _variant(*args, normalise=False),
            "the terms were summed over resolutions: take the mean over the resolutions":
                lambda: _variant(*args, reduce="sum"),
            "no window (a rectangular one): pass window=torch.hann_window(win_length) to torch.stft":
                lambda: _variant(*args, window=False),
        }, atol=2e-4, rtol=1e-4)
        compare_scalar(case, value, expected, atol=2e-4, rtol=1e-4, name="loss")
        yield case
    same = _pairs()[0][1]
    case = Case("identical signals")
    got = case.call(candidate, same.clone(), same.clone(), _RESOLUTIONS, 1e-5)
    compare_scalar(case, float(as_numpy(got).reshape(())), 0.0, atol=1e-7, name="loss of identical signals")
    yield case


def _mu_law_mistakes(x: torch.Tensor, channels: int) -> dict[str, object]:
    mu = channels - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return {
        "mu = quantization_channels: mu is quantization_channels - 1 (255 for 256 classes), so the top "
        "class is 255": lambda: torchaudio.functional.mu_law_encoding(x, channels + 1).clamp(max=channels - 1),
        "the companded value was truncated (floor or .long()) instead of rounded: add 0.5 before the floor":
            lambda: torch.floor((y + 1) / 2 * mu).long(),
        "the sign was lost: y = sign(x) * log(1 + mu |x|) / log(1 + mu), so negative samples get the "
        "low classes": lambda: torch.floor((torch.log1p(mu * x.abs()) / math.log1p(mu) + 1) / 2 * mu + 0.5).long(),
        "the companded value in [-1, 1] was returned: quantise it to integer classes "
        "floor((y + 1) / 2 * mu + 0.5)": lambda: y,
        "log(mu) in the denominator: the curve is log(1 + mu |x|) / log(1 + mu)":
            lambda: torch.floor((torch.sign(x) * torch.log1p(mu * x.abs()) / math.log(mu) + 1) / 2 * mu + 0.5).long(),
        "linear quantisation: mu-law first compands with log(1 + mu |x|) / log(1 + mu), giving quiet samples "
        "finer steps": lambda: torch.floor((x + 1) / 2 * mu + 0.5).long(),
    }


@exercise_check("18.2", "mu-law encoding")
def _check_mu_law(candidate):
    g = torch.Generator().manual_seed(18)
    cases = [
        ("a ramp over [-1, 1], 256 classes", torch.linspace(-1, 1, 1001), 256),
        ("quiet samples (|x| < 0.01), 256 classes", 0.01 * (2 * torch.rand(500, generator=g) - 1), 256),
        ("speech-like samples, 16 classes", 0.3 * torch.randn(2, 300, generator=g).clamp(-3, 3) / 3, 16),
    ]
    for description, x, channels in cases:
        case = Case(description)
        got = case.call(candidate, x.clone(), channels)
        expected = torchaudio.functional.mu_law_encoding(x, channels)
        arr = as_numpy(got)
        if arr is not None and arr.shape == tuple(expected.shape) and np.issubdtype(arr.dtype, np.floating) \
                and np.all(np.abs(arr) <= 1.0 + 1e-6) and not np.allclose(arr, np.round(arr)):
            case.fail("the companded value in [-1, 1] was returned: quantise it to integer classes "
                      "floor((y + 1) / 2 * mu + 0.5)")
        reject_known_mistakes(case, got, expected, _mu_law_mistakes(x, channels), atol=0.5, rtol=0)
        compare_arrays(case, got, expected, atol=0.5)
        yield case
