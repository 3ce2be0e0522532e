"""Tests for course_lib.features: parity with librosa, shapes, augmentation invariants, determinism.

Parity with course_lib.dsp (same names, same defaults, same numbers) is in tests/test_vocabulary.py.
Tolerances: float64 inputs compute in float64, so they meet librosa's float64 path up to librosa's
float32 mel filterbank (~1e-7 relative in power, i.e. < 1e-6 dB). float32 inputs compute in float32:
a bin at the 80 dB floor holds 1e-8 of the peak power, so the FFT's rounding (~1e-7 of the peak
amplitude) is ~1e-3 of that bin's amplitude: up to ~1e-3 dB there (measured: 6e-4 dB).
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
import torchaudio.functional as taF

from course_lib import features as F
from course_lib import runtime

SR = 16000


def _speech_like(seconds: float = 0.75, seed: int = 0, sr: int = SR) -> np.ndarray:
    """A voiced glide with harmonics, vibrato, an amplitude envelope and a noisy burst (float32)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 80 * t / seconds + 5 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(np.pi * t / seconds), 0, None) ** 0.5
    burst = rng.standard_normal(t.size) * ((t > 0.6 * seconds) & (t < 0.7 * seconds))
    return (0.3 * envelope * voiced + 0.05 * burst).astype(np.float32)


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.from_numpy(np.stack([_speech_like(seed=s) * g for s, g in [(0, 1.0), (1, 0.1), (2, 0.5)]]))


# ---------------------------------------------------------------------------------------------
# Parity with librosa
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_fft,n_mels,fmin,fmax", [(512, 40, 0.0, None), (1024, 64, 50.0, 7600.0), (255, 20, 0.0, None)])
def test_mel_filterbank_matches_librosa(n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> None:
    ours = F.mel_filterbank(SR, n_fft, n_mels, fmin, fmax, dtype=torch.float64).numpy()
    ref = librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float64)
    assert ours.shape == ref.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * ref.max())  # both float64, same formula
    # The float32 buffer is that matrix rounded once (2**-24 relative).
    ours32 = F.mel_filterbank(SR, n_fft, n_mels, fmin, fmax).numpy()
    np.testing.assert_allclose(ours32, ref, rtol=2**-24, atol=1e-12)


@pytest.mark.parametrize("n_fft,hop,n_mels", [(1024, 256, 64), (512, 160, 40)])
def test_log_mel_matches_librosa(batch: torch.Tensor, n_fft: int, hop: int, n_mels: int) -> None:
    ours32 = F.log_mel(batch, SR, n_fft=n_fft, hop_length=hop, n_mels=n_mels, top_db=80.0).numpy()
    ours64 = F.log_mel(batch.double(), SR, n_fft=n_fft, hop_length=hop, n_mels=n_mels, top_db=80.0).numpy()
    assert ours32.dtype == np.float32 and ours64.dtype == np.float64
    assert ours32.shape == (batch.shape[0], n_mels, 1 + batch.shape[-1] // hop)
    for i, y in enumerate(batch.double().numpy()):
        mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
        ref = librosa.power_to_db(mel, ref=1.0, top_db=80.0)
        np.testing.assert_allclose(ours64[i], ref, rtol=0, atol=1e-6)  # see the module docstring
        np.testing.assert_allclose(ours32[i], ref, rtol=0, atol=2e-3)


def test_log_mel_ref_max_matches_librosa(batch: torch.Tensor) -> None:
    ours = F.log_mel(batch[1].double(), SR, 512, 128, 40, ref=np.max, top_db=60.0).numpy()
    mel = librosa.feature.melspectrogram(y=batch[1].double().numpy(), sr=SR, n_fft=512, hop_length=128, n_mels=40)
    ref = librosa.power_to_db(mel, ref=np.max, top_db=60.0)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    assert ours.max() == 0.0 and ours.min() == -60.0
    # torch.amax and np.max both mean "each example's maximum"; a batch gives its clips' results.
    batched = F.log_mel(batch.double(), SR, 512, 128, 40, ref=torch.amax, top_db=60.0).numpy()
    np.testing.assert_allclose(batched[1], ours, rtol=0, atol=1e-12)


@pytest.mark.parametrize("lifter", [0.0, 22.0])
def test_mfcc_matches_librosa(batch: torch.Tensor, lifter: float) -> None:
    module = F.MFCC(SR, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40, lifter=lifter, device="cpu")(batch)
    funct64 = F.mfcc(batch.double(), SR, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40, lifter=lifter)
    for i, y in enumerate(batch.double().numpy()):
        ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=512, hop_length=160, n_mels=40, lifter=lifter)
        scale = np.abs(ref).max()  # coefficients are sums of 40 dB values: hundreds of units
        np.testing.assert_allclose(funct64[i].numpy(), ref, rtol=0, atol=1e-8 * scale)
        # float32: 40 bands of up to 2e-3 dB error each, through an orthonormal DCT.
        np.testing.assert_allclose(module[i].numpy(), ref, rtol=0, atol=1e-5 * scale)


def test_logmel_module_equals_function_and_shapes(batch: torch.Tensor) -> None:
    module = F.LogMel(SR, n_fft=512, hop_length=128, n_mels=40, device="cpu")
    out3 = module(batch[:, None, :])
    out2 = module(batch)
    out1 = module(batch[0])
    n_frames = 1 + batch.shape[-1] // 128
    assert out3.shape == (3, 40, n_frames) and out1.shape == (40, n_frames)
    torch.testing.assert_close(out3, out2, rtol=0, atol=0)
    torch.testing.assert_close(out1, out2[0], rtol=0, atol=1e-4)  # batched vs single FFT plan
    torch.testing.assert_close(out2, F.log_mel(batch, SR, 512, 128, 40), rtol=0, atol=0)
    # top_db is applied per example: each one spans exactly 80 dB below its own maximum.
    span = out2.amax(dim=(1, 2)) - out2.amin(dim=(1, 2))
    torch.testing.assert_close(span, torch.full((3,), 80.0), rtol=0, atol=1e-4)


def test_stft_in_float32_under_autocast(batch: torch.Tensor) -> None:
    reference = F.log_mel(batch, SR, 512, 128, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_amp = F.LogMel(SR, 512, 128, 40, device="cpu")(batch)
    assert under_amp.dtype == torch.float32
    torch.testing.assert_close(under_amp, reference, rtol=0, atol=0)


def test_bad_inputs_raise_clear_errors(batch: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="mono"):
        F.log_mel(torch.zeros(2, 2, 1000), SR)
    with pytest.raises(TypeError, match="torch.from_numpy"):
        F.log_mel(np.zeros(1000), SR)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fmax"):
        F.mel_filterbank(SR, 512, 40, fmax=SR)
    with pytest.raises(ValueError, match="n_mfcc"):
        F.mfcc(batch, SR, n_mfcc=50, n_mels=40)
    with pytest.raises(ValueError, match="n_fft must be a positive integer"):
        F.LogMel(SR, 0, device="cpu")
    with pytest.raises(ValueError, match="n_fft=512 is longer than the signal"):
        F.log_mel(batch[:, :100], SR, n_fft=512, center=False)


# ---------------------------------------------------------------------------------------------
# Device handling
# ---------------------------------------------------------------------------------------------
def test_device_argument_respected(monkeypatch: pytest.MonkeyPatch, batch: torch.Tensor) -> None:
    # "meta" tensors carry shapes but no data: a module built there proves the device argument is used.
    meta = F.LogMel(SR, 512, 128, 40, device="meta")
    assert meta.filterbank.device.type == "meta" and meta.window.device.type == "meta"
    pipe = F.FeaturePipeline(SR, 512, 128, 40, device="meta")
    assert all(b.device.type == "meta" for b in pipe.buffers())
    # device=None asks the runtime.
    monkeypatch.setattr(runtime, "torch_device", lambda device=None: torch.device("meta" if device is None else device))
    assert F.MFCC(SR, 13, 512, 128, 40).dct.device.type == "meta"
    cpu = F.FeaturePipeline(SR, 512, 128, 40, device="cpu")
    assert all(b.device.type == "cpu" for b in cpu.buffers())
    assert cpu(batch).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(batch: torch.Tensor) -> None:
    gen = torch.Generator().manual_seed(0)
    pipe = F.FeaturePipeline(SR, 512, 128, 40, spec_augment=F.SpecAugment(), device="cpu").train()
    cpu = pipe(batch, generator=gen)
    gpu = pipe.to("cuda")(batch.cuda(), generator=torch.Generator().manual_seed(0))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# SpecAugment
# ---------------------------------------------------------------------------------------------
def _runs(mask_row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    runs, length = [], 0
    for value in mask_row.tolist() + [False]:
        if value:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs


def test_spec_augment_mask_count_and_width_bounds() -> None:
    gen = torch.Generator().manual_seed(1)
    fmask, tmask = F.spec_augment_masks(256, 64, 100, freq_mask_param=7, time_mask_param=12,
                                        n_freq_masks=2, n_time_masks=3, generator=gen)
    assert fmask.shape == (256, 64) and tmask.shape == (256, 100)
    for mask, param, count in [(fmask, 7, 2), (tmask, 12, 3)]:
        for row in mask:
            runs = _runs(row)
            assert len(runs) <= count  # overlapping bands merge, never split
            assert sum(runs) <= count * (param - 1)  # torchaudio: each width < mask_param
        widths = mask.sum(dim=1)
        assert widths.max() > param - 1  # several masks do add up somewhere in 256 draws
        assert len(set(widths.tolist())) > 5  # masks differ between examples
    # A single mask per axis: every run is one band, and every width 0..param-1 occurs.
    fmask, _ = F.spec_augment_masks(512, 64, 10, 5, 0, 1, 0, generator=gen)
    assert set(fmask.sum(dim=1).tolist()) == set(range(5))
    assert all(len(_runs(r)) <= 1 for r in fmask)


def test_spec_augment_masks_are_torchaudios_and_leave_the_global_rng_alone() -> None:
    gen = torch.Generator().manual_seed(4)
    before = torch.random.get_rng_state()
    fmask, tmask = F.spec_augment_masks(8, 40, 50, 6, 9, 2, 1, generator=gen)
    assert torch.equal(torch.random.get_rng_state(), before)
    # The same draws by hand: a seed from the generator, then torchaudio's iid masking.
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(4)))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        canvas = torch.zeros(8, 1, 40, 50)
        for axis, param, count in [(2, 6, 2), (3, 9, 1)]:
            for _ in range(count):
                canvas = taF.mask_along_axis_iid(canvas, param, 1.0, axis=axis)
    torch.testing.assert_close((fmask[:, :, None] | tmask[:, None, :]).float(), canvas[:, 0], rtol=0, atol=0)


def test_spec_augment_applies_masks_and_is_train_only() -> None:
    spec = torch.randn(4, 1, 40, 50) + 5.0
    out = F.spec_augment(spec, 8, 10, 2, 2, generator=torch.Generator().manual_seed(0), mask_value=0.0)
    assert out.shape == spec.shape
    changed = out != spec
    assert bool((out[changed] == 0).all())
    fmask, tmask = F.spec_augment_masks(4, 40, 50, 8, 10, 2, 2, generator=torch.Generator().manual_seed(0))
    expected = fmask[:, None, :, None] | tmask[:, None, None, :]
    assert torch.equal(changed, expected) and bool(expected.any())
    module = F.SpecAugment(8, 10, 2, 2).eval()
    assert module(spec) is spec
    mean_filled = F.spec_augment(spec[:, 0], 8, 10, 2, 2, generator=torch.Generator().manual_seed(0),
                                 mask_value="mean")
    # Every masked cell holds its own example's mean; the others are untouched.
    example_mean = spec[:, 0].mean(dim=(1, 2), keepdim=True).expand_as(spec[:, 0])
    torch.testing.assert_close(mean_filled[expected[:, 0]], example_mean[expected[:, 0]], rtol=0, atol=0)
    torch.testing.assert_close(mean_filled[~expected[:, 0]], spec[:, 0][~expected[:, 0]], rtol=0, atol=0)


def test_augmentations_deterministic_with_seeded_generator(batch: torch.Tensor) -> None:
    def run(seed: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 3).float()
        return [
            F.spec_augment(torch.randn(3, 40, 50, generator=torch.Generator().manual_seed(9)), generator=g),
            *F.mixup(batch, y, alpha=0.4, generator=g),
            F.random_shift(batch, 800, generator=g),
            F.speed_perturb(batch, (0.9, 1.1), generator=g),
            F.add_noise(batch, torch.randn(1, 20000, generator=torch.Generator().manual_seed(3)), 10.0,
                            generator=g),
        ]

    first, again, other = run(0), run(0), run(1)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(first, other))


# ---------------------------------------------------------------------------------------------
# Mixup, noise, shift, speed
# ---------------------------------------------------------------------------------------------
def test_mixup_is_convex() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 40, 20)
    labels = torch.arange(64) % 5
    y = torch.nn.functional.one_hot(labels, 5).float()
    xm, ym, lam, perm = F.mixup(x, y, alpha=0.4, generator=gen, return_params=True)
    assert xm.shape == x.shape and ym.shape == y.shape and lam.shape == (64,)
    assert bool(((lam >= 0) & (lam <= 1)).all())
    assert sorted(perm.tolist()) == list(range(64))
    lam_x = lam[:, None, None, None]
    torch.testing.assert_close(xm, lam_x * x + (1 - lam_x) * x[perm])
    torch.testing.assert_close(ym.sum(dim=1), torch.ones(64))
    assert bool((ym >= 0).all()) and bool(((ym > 0).sum(dim=1) <= 2).all())
    # Each mixed example lies between its two sources, elementwise.
    lo, hi = torch.minimum(x, x[perm]), torch.maximum(x, x[perm])
    assert bool(((xm >= lo - 1e-6) & (xm <= hi + 1e-6)).all())
    # Beta(0.4, 0.4) is U-shaped: most weights sit near 0 or 1, yet they vary.
    assert lam.std() > 0.2
    with pytest.raises(ValueError, match="one_hot"):
        F.mixup(x, labels, 0.4)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_add_noise_is_exact(batch: torch.Tensor, snr_db: float) -> None:
    noise = torch.randn(3, batch.shape[-1] + 500, generator=torch.Generator().manual_seed(0))
    noisy = F.add_noise(batch[:, None, :], noise, snr_db, generator=torch.Generator().manual_seed(1))
    assert noisy.shape == (3, 1, batch.shape[-1])
    added = (noisy[:, 0] - batch).double()
    measured = 10 * torch.log10(batch.double().square().sum(-1) / added.square().sum(-1))
    torch.testing.assert_close(measured, torch.full((3,), snr_db, dtype=torch.float64), atol=1e-3, rtol=0)


def test_add_noise_per_example_and_tiled_noise(batch: torch.Tensor) -> None:
    snrs = torch.tensor([0.0, 6.0, 20.0])
    noise = torch.randn(1000, generator=torch.Generator().manual_seed(0))  # shorter: tiled
    noisy = F.add_noise(batch, noise, snrs)
    added = (noisy - batch).double()
    measured = 10 * torch.log10(batch.double().square().sum(-1) / added.square().sum(-1))
    torch.testing.assert_close(measured, snrs.double(), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="one noise clip per example"):
        F.add_noise(batch, torch.randn(2, 100), 0.0)
    # A silent example stays silent (the one-clip dsp.add_noise raises instead: its SNR is undefined).
    silent = torch.cat([batch[:1], torch.zeros(1, batch.shape[-1])])
    out = F.add_noise(silent, noise, 10.0)
    assert torch.equal(out[1], silent[1]) and bool(torch.isfinite(out).all())


def test_random_shift() -> None:
    x = torch.arange(1, 101, dtype=torch.float32).repeat(16, 1)
    out = F.random_shift(x, 10, generator=torch.Generator().manual_seed(0), mode="zero")
    rolled = F.random_shift(x, 10, generator=torch.Generator().manual_seed(0), mode="roll")
    shifts = []
    for row, rrow in zip(out, rolled):
        # Value 1 starts at index 0, so its new position is the shift (mod n).
        where = int(torch.nonzero(rrow == 1)[0])
        s = where if where <= 10 else where - 100
        shifts.append(s)
        assert torch.equal(rrow, torch.roll(x[0], s))
        expected = torch.roll(x[0], s)
        if s > 0:
            expected[:s] = 0
        elif s < 0:
            expected[s:] = 0
        assert torch.equal(row, expected)
    assert all(-10 <= s <= 10 for s in shifts) and len(set(shifts)) > 3


def test_speed_perturb_changes_duration_and_pitch() -> None:
    t = torch.arange(SR) / SR
    tone = torch.sin(2 * torch.pi * 440 * t)[None].repeat(2, 1)
    faster = F.speed_perturb(tone, 1.25, keep_length=False)
    assert abs(faster[0].shape[-1] - SR / 1.25) <= 1
    spectrum = torch.fft.rfft(faster[0] * torch.hann_window(faster[0].shape[-1]))
    peak_hz = int(spectrum.abs().argmax()) * SR / faster[0].shape[-1]
    assert peak_hz == pytest.approx(440 * 1.25, abs=1.0)  # 1 Hz bins
    # 1.15 is 1150/1000 (torchaudio.functional.speed would truncate it to 1149/1000).
    assert F.speed_perturb(tone, 1.15, keep_length=False)[0].shape[-1] == -(-SR * 1000 // 1150)
    kept = F.speed_perturb(tone[:, None], (0.8, 1.0, 1.25), generator=torch.Generator().manual_seed(0))
    assert kept.shape == (2, 1, SR)
    assert torch.equal(F.speed_perturb(tone, 1.0), tone)
    # One factor: nothing is drawn, torch's global generator is left alone.
    before = torch.random.get_rng_state()
    F.speed_perturb(tone, 0.9)
    assert torch.equal(torch.random.get_rng_state(), before)
    with pytest.raises(ValueError, match="speed factors"):
        F.speed_perturb(tone, 10.0)


# ---------------------------------------------------------------------------------------------
# FeaturePipeline
# ---------------------------------------------------------------------------------------------
def test_pipeline_utterance_normalisation_and_train_only_augment(batch: torch.Tensor) -> None:
    pipe = F.FeaturePipeline(
        SR, 512, 128, 40,
        waveform_augment=torch.nn.Sequential(F.RandomShift(400), F.SpeedPerturb((0.9, 1.1))),
        spec_augment=F.SpecAugment(5, 5, 1, 1),
        device="cpu",
    )
    pipe.eval()
    out = pipe(batch)
    assert out.shape == (3, 1, 40, 1 + batch.shape[-1] // 128)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(1, 2, 3), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    # Gain does not change utterance-normalised features (until the top_db floor moves with it).
    torch.testing.assert_close(pipe(batch * 0.5), out, atol=1e-3, rtol=0)
    torch.testing.assert_close(pipe(batch), out)  # eval: deterministic, no augmentation
    pipe.train()
    g = torch.Generator().manual_seed(0)
    aug = pipe(batch, generator=g)
    assert aug.shape == out.shape and not torch.equal(aug, out)


def test_pipeline_global_normalisation(batch: torch.Tensor) -> None:
    pipe = F.FeaturePipeline(SR, 512, 128, 40, normalize="global", add_channel=False, device="cpu").eval()
    with pytest.raises(RuntimeError, match="fit_normalization"):
        pipe(batch)
    pipe.fit_normalization([batch[:2], batch[2:]])
    out = pipe(batch)
    assert out.shape == (3, 40, 1 + batch.shape[-1] // 128)
    # Over the data it was fitted on, every band has mean 0 and std 1.
    torch.testing.assert_close(out.mean(dim=(0, 2)), torch.zeros(40), atol=1e-3, rtol=0)
    flat = out.permute(1, 0, 2).reshape(40, -1)
    torch.testing.assert_close(flat.std(dim=1, unbiased=False), torch.ones(40), atol=1e-3, rtol=0)
    # The statistics travel in the state dict (checkpoints); the fixed mel bank does not.
    state = pipe.state_dict()
    assert set(state) == {"norm_mean", "norm_std", "norm_fitted"}
    fresh = F.FeaturePipeline(SR, 512, 128, 40, normalize="global", add_channel=False, device="cpu").eval()
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(batch), out)


def test_add_noise_module_snr_range(batch: torch.Tensor) -> None:
    bank = torch.randn(4, 30000, generator=torch.Generator().manual_seed(0))
    module = F.AddNoise(bank, snr_db=(10.0, 20.0)).train()
    noisy = module(batch, generator=torch.Generator().manual_seed(0))
    added = (noisy - batch).double()
    measured = 10 * torch.log10(batch.double().square().sum(-1) / added.square().sum(-1))
    assert bool(((measured > 10 - 1e-3) & (measured < 20 + 1e-3)).all())
    assert module.eval()(batch) is batch


def test_band_mean_std_streams_batches_like_numpy_over_everything():
    rng = np.random.default_rng(5)
    spec = rng.normal(-40.0, 12.0, size=(7, 5, 33))
    mean, std = F.band_mean_std([torch.from_numpy(spec[:3]), torch.from_numpy(spec[3:]),
                                         torch.from_numpy(spec[6])])   # a (bands, frames) item too
    whole = np.concatenate([spec, spec[6:7]]).transpose(1, 0, 2).reshape(5, -1)
    np.testing.assert_allclose(mean.numpy(), whole.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(std.numpy(), whole.std(axis=1), rtol=1e-9)
    with pytest.raises(ValueError, match="nothing here"):
        F.band_mean_std([], empty_message="nothing here")
