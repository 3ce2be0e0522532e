"""One vocabulary across course_lib (docs/DEVELOPING.md, "Vocabulary"), checked on the signatures.

1. No public function or class of course_lib takes a parameter under a banned synonym
   (``sample_rate`` for ``sr``, ``f_min`` for ``fmin``, ...).
2. A mapping that exists in both ``course_lib.dsp`` (NumPy, from scratch) and
   ``course_lib.features`` (batched torch) takes its shared parameters in the same order with the
   same defaults, and so do the feature modules (``LogMel``, ``MFCC``) and their functions.
3. Same inputs, same numbers: every such pair is run on the same signals. float64 tensors are
   computed in float64, so dsp and features then differ only by rounding (FFT libraries and
   summation order: ~1e-15 relative, ~1e-13 dB); float32 tensors are held to what float32 can
   give, stated per test.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch

import course_lib
from course_lib import dsp
from course_lib import features as F

# canonical name -> synonyms that must not appear as parameter names
SYNONYMS = {
    "sr": ("sample_rate", "sampling_rate", "samplerate", "fs", "rate"),
    "fmin": ("f_min", "freq_min", "min_freq", "low_freq", "lowfreq"),
    "fmax": ("f_max", "freq_max", "max_freq", "high_freq", "highfreq"),
    "n_fft": ("nfft", "fft_size", "num_fft"),
    "hop_length": ("hop", "hop_size", "hopsize"),
    "win_length": ("win_size", "window_size", "window_length"),
    "n_mels": ("num_mels", "n_mel", "nmels", "mel_bins", "n_mel_bins"),
    "n_mfcc": ("num_mfcc", "n_cepstra"),
    "n_freqs": ("n_freq", "num_freqs"),
    "top_db": ("topdb", "dynamic_range_db"),
    "in_channels": ("in_ch", "in_chans", "n_inputs", "c_in"),
    "out_channels": ("out_ch", "out_chans", "c_out"),
    "kernel_size": ("kernel", "kernel_len", "ksize"),
    "n_classes": ("num_classes",),
}
BANNED = {synonym: canonical for canonical, synonyms in SYNONYMS.items() for synonym in synonyms}
# Exercise checks take the notebooks' exercise signatures (student code); they are reviewed with
# the notebooks, not here. __main__ modules are command lines.
SKIPPED_PACKAGES = ("course_lib.checks",)


def _public_callables():
    """(qualified name, signature) of every public function, class and public method."""
    seen = []
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        if info.name.endswith("__main__") or info.name.startswith(SKIPPED_PACKAGES):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                targets = [(f"{module.__name__}.{name}", obj)]
                if inspect.isclass(obj):
                    targets += [(f"{module.__name__}.{name}.{m}", f) for m, f in vars(obj).items()
                                if inspect.isfunction(f) and not m.startswith("_")]
                for qualname, target in targets:
                    try:
                        seen.append((qualname, inspect.signature(target)))
                    except (TypeError, ValueError):  # builtins without a signature
                        continue
    return seen


PUBLIC = _public_callables()


def test_the_scan_sees_the_library():
    names = {name for name, _ in PUBLIC}
    # A scan that silently found nothing would pass every check below.
    assert len(PUBLIC) > 200
    for expected in ("course_lib.dsp.mel.log_mel", "course_lib.features.LogMel", "course_lib.audio.load_audio",
                     "course_lib.data.datasets.load_dataset", "course_lib.models.cnn.ConvBlock2d",
                     "course_lib.graphs.frequency_graph", "course_lib.plot.plot_spectrogram"):
        assert expected in names


def test_no_banned_synonyms_in_public_signatures():
    offenders = [
        f"{name}({param}=...): call it {BANNED[param]!r}"
        for name, sig in PUBLIC
        for param in sig.parameters
        if param in BANNED
    ]
    assert not offenders, "parameters outside the vocabulary (docs/DEVELOPING.md):\n" + "\n".join(offenders)


SHARED = sorted(set(dsp.__all__) & set(F.__all__))


def test_shared_mappings_are_the_expected_ones():
    assert SHARED == ["add_noise", "log_mel", "mel_filterbank", "melspectrogram", "mfcc", "power_to_db"]


def _same_parameters(a, b):
    """Names shared by two signatures, in a's order; they must also be in the same order in b."""
    pa, pb = inspect.signature(a).parameters, inspect.signature(b).parameters
    shared = [name for name in pa if name in pb]
    assert shared == [name for name in pb if name in pa], (a, b, shared)
    return shared, pa, pb


def _default(param):
    return param.default


@pytest.mark.parametrize(
    "ours,theirs",
    [(getattr(dsp, name), getattr(F, name)) for name in SHARED]
    + [(F.log_mel, F.LogMel), (F.mfcc, F.MFCC), (F.log_mel, F.FeaturePipeline), (dsp.melspectrogram, F.log_mel)],
    ids=[*SHARED, "log_mel~LogMel", "mfcc~MFCC", "log_mel~FeaturePipeline", "melspectrogram~log_mel"],
)
def test_shared_parameters_have_equal_order_kind_and_defaults(ours, theirs):
    shared, pa, pb = _same_parameters(ours, theirs)
    assert len(shared) >= 2
    for i, name in enumerate(shared):
        a, b = pa[name], pb[name]
        assert _default(a) == _default(b), f"{name}: {ours.__qualname__}={a.default!r}, {theirs.__qualname__}={b.default!r}"
    # Positional parameters sit at the same positions, so positional calls mean the same in both.
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # (A leading input that only one side has, x vs waveforms or none in a module, is skipped.)
    pos_a = [n for n, p in pa.items() if p.kind in positional and n != "self"]
    pos_b = [n for n, p in pb.items() if p.kind in positional and n != "self"]
    pos_a = pos_a[1:] if pos_a and pos_a[0] not in pb else pos_a
    pos_b = pos_b[1:] if pos_b and pos_b[0] not in pa else pos_b
    # The source of randomness keeps each library's own name: NumPy's rng, torch's generator.
    pos_a = ["generator" if n == "rng" else n for n in pos_a]
    common = min(len(pos_a), len(pos_b))
    assert pos_a[:common] == pos_b[:common], (pos_a, pos_b)


# ----------------------------------------------------------------------------- same numbers


SR = 16000


@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    """Three clips of different levels: a harmonic glide, noise, and a tone that starts late."""
    rng = np.random.default_rng(0)
    t = np.arange(SR // 2) / SR
    glide = 0.3 * sum(np.sin(2 * np.pi * k * (150 * t + 100 * t**2)) / k for k in range(1, 8))
    noise = 0.01 * rng.standard_normal(t.size)
    late = np.where(t > 0.2, 0.5 * np.sin(2 * np.pi * 1234.5 * t), 0.0)
    return np.stack([glide, noise, late])


SETTINGS = [
    {},
    dict(n_fft=512, hop_length=160, n_mels=40),
    dict(n_fft=255, hop_length=64, n_mels=20, win_length=200, fmin=50.0, fmax=7000.0, htk=True, norm=None),
    dict(n_fft=400, n_mels=40, window="hamming", center=False),
    dict(n_fft=512, n_mels=40, pad_mode="reflect", ref=np.max, top_db=60.0),
]


@pytest.mark.parametrize("kw", SETTINGS, ids=lambda kw: ",".join(kw) or "defaults")
def test_log_mel_mfcc_melspectrogram_same_numbers(clips, kw):
    x64 = torch.from_numpy(clips)
    ref = dsp.log_mel(clips, SR, **kw)
    np.testing.assert_allclose(F.log_mel(x64, SR, **kw).numpy(), ref, rtol=0, atol=1e-10)  # dB
    # float32: see tests/test_features.py (a bin at the 80 dB floor keeps ~3 digits): 2e-3 dB.
    np.testing.assert_allclose(F.log_mel(x64.float(), SR, **kw).numpy(), ref, rtol=0, atol=2e-3)
    module = F.LogMel(SR, device="cpu", **kw)(x64.float()).numpy()
    np.testing.assert_allclose(module, ref, rtol=0, atol=2e-3)
    mel_kw = {k: v for k, v in kw.items() if k not in ("ref", "top_db")}
    mel = dsp.melspectrogram(clips, SR, **mel_kw)
    np.testing.assert_allclose(F.melspectrogram(x64, SR, **mel_kw).numpy(), mel, rtol=1e-12, atol=1e-12 * mel.max())
    for lifter in (0.0, 22.0):
        coeffs = dsp.mfcc(clips, SR, n_mfcc=13, lifter=lifter, **kw)
        scale = np.abs(coeffs).max()
        np.testing.assert_allclose(F.mfcc(x64, SR, n_mfcc=13, lifter=lifter, **kw).numpy(), coeffs,
                                   rtol=0, atol=1e-12 * scale)
        # float32: the DCT sums n_mels values each off by <= 2e-3 dB.
        np.testing.assert_allclose(F.MFCC(SR, 13, lifter=lifter, device="cpu", **kw)(x64.float()).numpy(), coeffs,
                                   rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("n_fft,n_mels,fmin,fmax,htk,norm", [(2048, 128, 0.0, None, False, "slaney"),
                                                            (511, 30, 80.0, 6000.0, True, None)])
def test_mel_filterbank_same_numbers(n_fft, n_mels, fmin, fmax, htk, norm):
    ref = dsp.mel_filterbank(SR, n_fft, n_mels, fmin, fmax, htk, norm)
    ours = F.mel_filterbank(SR, n_fft, n_mels, fmin, fmax, htk, norm, dtype=torch.float64).numpy()
    np.testing.assert_array_equal(ours, ref)  # the same float64 matrix
    np.testing.assert_array_equal(F.mel_filterbank(SR, n_fft, n_mels, fmin, fmax, htk, norm).numpy(),
                                  ref.astype(np.float32))


@pytest.mark.parametrize("ref", [1.0, 1e-3, np.max])
@pytest.mark.parametrize("top_db", [80.0, 30.0, None])
def test_power_to_db_same_numbers_per_example(clips, ref, top_db):
    S = np.abs(dsp.stft(clips, n_fft=512, hop_length=128)) ** 2
    expected = dsp.power_to_db(S, ref=ref, top_db=top_db)
    # per example: the batch gives each clip's own result (ref=np.max and top_db included)
    for i in range(len(S)):
        np.testing.assert_allclose(expected[i], dsp.power_to_db(S[i], ref=ref, top_db=top_db), rtol=0, atol=0)
    np.testing.assert_allclose(F.power_to_db(torch.from_numpy(S), ref=ref, top_db=top_db).numpy(), expected,
                               rtol=0, atol=1e-10)
    torch_ref = torch.amax if ref is np.max else ref
    np.testing.assert_allclose(F.power_to_db(torch.from_numpy(S), ref=torch_ref, top_db=top_db).numpy(), expected,
                               rtol=0, atol=1e-10)


def test_power_spectrogram_is_dsp_stft_squared(clips):
    for kw in (dict(n_fft=512, hop_length=128), dict(n_fft=255, hop_length=50, win_length=200, window="blackman"),
               dict(n_fft=400, center=False), dict(n_fft=256, pad_mode="reflect")):
        expected = np.abs(dsp.stft(clips, **kw)) ** 2
        hop = kw.pop("hop_length", None)
        ours = F.power_spectrogram(torch.from_numpy(clips), kw.pop("n_fft"), hop, **kw).numpy()
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12 * expected.max())


@pytest.mark.parametrize("snr", [-5.0, 0.0, 20.0])
def test_add_noise_same_numbers(clips, snr):
    noise = np.random.default_rng(1).standard_normal(clips.shape[-1])
    expected = np.stack([dsp.add_noise(c, noise, snr) for c in clips])
    ours = F.add_noise(torch.from_numpy(clips), torch.from_numpy(noise), snr).numpy()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    # A shorter noise clip is tiled the same way by both.
    short = noise[:3000]
    np.testing.assert_allclose(F.add_noise(torch.from_numpy(clips[:1]), torch.from_numpy(short), snr).numpy()[0],
                               dsp.add_noise(clips[0], short, snr), rtol=0, atol=1e-12)
