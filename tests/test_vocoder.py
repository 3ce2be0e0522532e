"""course_lib.vocoder and course_lib.models.vocoder: the loss, mu-law, causality, mel settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio

from course_lib import vocoder as voc
from course_lib.models.vocoder import ConvVocoder, FourierVocoder, MuLawWaveNet


def _signals(seed: int = 0, batch: int = 2, n: int = 4000) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    tone = 0.5 * torch.sin(2 * math.pi * 440 * t) * torch.hann_window(n, periodic=False)
    return tone + 0.05 * torch.randn(batch, n, generator=g)


# ----------------------------------------------------------------------------- MR-STFT loss
def test_mr_stft_loss_is_zero_for_identical_signals_and_positive_otherwise():
    x = _signals()
    assert float(voc.mr_stft_loss(x, x.clone())) == 0.0
    silent = torch.zeros(1, 3000)
    assert float(voc.mr_stft_loss(silent, silent)) == 0.0          # the floor keeps log(0) out
    for other in (0.5 * x, x + 0.01 * _signals(1), torch.roll(x, 100, dims=-1), torch.zeros_like(x)):
        loss = float(voc.mr_stft_loss(other, x))
        assert math.isfinite(loss) and loss > 0.0


def test_mr_stft_loss_against_an_independent_numpy_computation():
    x, y = _signals(0, 1)[0].double().numpy(), _signals(1, 1)[0].double().numpy()
    total = 0.0
    for n_fft, hop, win in voc.DEFAULT_RESOLUTIONS:
        window = np.zeros(n_fft)
        offset = (n_fft - win) // 2
        window[offset:offset + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)   # periodic Hann
        def mag(s):
            padded = np.pad(s, n_fft // 2, mode="reflect")
            frames = np.stack([padded[i:i + n_fft] for i in range(0, len(padded) - n_fft + 1, hop)])
            return np.maximum(np.abs(np.fft.rfft(frames * window, axis=-1)), 1e-5)
        est, ref = mag(x), mag(y)
        total += np.linalg.norm(ref - est) / np.linalg.norm(ref) + np.mean(np.abs(np.log(ref) - np.log(est)))
    expected = total / len(voc.DEFAULT_RESOLUTIONS)
    got = float(voc.mr_stft_loss(torch.from_numpy(x).float()[None], torch.from_numpy(y).float()[None]))
    assert got == pytest.approx(expected, rel=1e-4)


def test_mr_stft_loss_refuses_different_lengths_with_a_clear_message():
    with pytest.raises(ValueError, match="crop both"):
        voc.mr_stft_loss(torch.zeros(1, 1000), torch.zeros(1, 1001))


def test_mr_stft_loss_has_finite_gradients_on_silence():
    est = torch.zeros(1, 2048, requires_grad=True)
    voc.mr_stft_loss(est, _signals(0, 1, 2048)).backward()
    assert torch.isfinite(est.grad).all()


# ----------------------------------------------------------------------------- mu-law
def test_mu_law_encode_equals_torchaudio_and_round_trips():
    x = torch.linspace(-1, 1, 20001)
    for channels in (256, 16):
        classes = voc.mu_law_encode(x, channels)
        assert torch.equal(classes, torchaudio.functional.mu_law_encoding(x, channels))
        assert classes.dtype == torch.int64 and int(classes.min()) == 0 and int(classes.max()) == channels - 1
        decoded = voc.mu_law_decode(classes, channels)
        assert torch.allclose(decoded, torchaudio.functional.mu_law_decoding(classes, channels), atol=1e-6)
    every = torch.arange(256)
    assert torch.equal(voc.mu_law_encode(voc.mu_law_decode(every)), every)      # decode then encode: exact
    # encode then decode: x lands on the nearest level in the companded domain, so its error is at most
    # the width of the wider quantisation step next to the level chosen
    classes = voc.mu_law_encode(x)
    decoded = voc.mu_law_decode(classes)
    levels = voc.mu_law_decode(torch.arange(256))
    widths = torch.diff(levels)
    wider = torch.maximum(widths[(classes - 1).clamp(0, 254)], widths[classes.clamp(0, 254)])
    assert torch.all((decoded - x).abs() <= wider + 1e-6)
    assert float(widths[127]) < float(widths[-1]) / 50                # mu-law: fine steps near zero, coarse at full scale
    assert float((decoded - x).abs()[x.abs() < 0.01].max()) < 1e-3 < float((decoded - x).abs().max())  # fine near zero


# ----------------------------------------------------------------------------- causality
def test_wavenet_does_not_see_the_future():
    torch.manual_seed(0)
    model = MuLawWaveNet(n_mels=8, hop_length=4, channels=8, skip_channels=8, dilations=(1, 2, 4)).eval()
    previous = torch.randint(0, 256, (1, 40))
    mel = torch.randn(1, 8, 10)
    t = 25
    changed = previous.clone()
    changed[0, t:] = (changed[0, t:] + 97) % 256
    with torch.no_grad():
        a, b = model(previous, mel), model(changed, mel)
    assert torch.allclose(a[..., :t], b[..., :t])           # outputs before t ignore inputs from t on
    assert not torch.allclose(a[..., t], b[..., t])         # ... and the output at t does see input t
    assert model.receptive_field == 1 + 1 + 2 + 4


def test_wavenet_generation_equals_the_parallel_forward():
    torch.manual_seed(0)
    model = MuLawWaveNet(n_mels=8, hop_length=4, channels=8, skip_channels=8, dilations=(1, 2, 4)).eval()
    mel = torch.randn(2, 8, 5)
    classes = model.generate(mel, 20, generator=torch.Generator().manual_seed(1))
    previous = torch.cat([torch.full((2, 1), 128), classes[:, :-1]], dim=1)
    with torch.no_grad():
        logits = model(previous, mel)
    # the sample drawn at each step must be possible under the parallel model's distribution there
    probs = torch.softmax(logits, dim=1).gather(1, classes[:, None]).squeeze(1)
    assert (probs > 0).all()
    # and the incremental logits equal the parallel ones: rerun greedily with temperature -> argmax
    greedy = model.generate(mel, 20, temperature=1e-6)
    previous = torch.cat([torch.full((2, 1), 128), greedy[:, :-1]], dim=1)
    with torch.no_grad():
        assert torch.equal(model(previous, mel).argmax(dim=1), greedy)


def test_parallel_vocoders_make_hop_length_samples_per_frame():
    mel = torch.randn(2, 80, 7) * 10 - 40
    assert ConvVocoder(80, (4, 4, 2), channels=16)(mel).shape == (2, 7 * 32)
    assert FourierVocoder(80, n_fft=256, hop_length=64, channels=16)(mel).shape == (2, 7 * 64)


# ----------------------------------------------------------------------------- mel settings
def test_mel_settings_mismatch_raises_a_clear_error():
    trained = voc.MelSettings()
    other = voc.MelSettings(sr=22050, fmax=11025.0, htk=True)
    with pytest.raises(voc.MelSettingsMismatch) as err:
        voc.assert_same_mel_settings(trained, other)
    message = str(err.value)
    for field in ("sr", "fmax", "htk"):
        assert f"  {field}: vocoder trained with" in message
    assert "n_fft" not in message.split("\n", 1)[1].split("A vocoder")[0]      # only the fields that differ
    assert "front_end()" in message                                             # says how to fix it
    voc.assert_same_mel_settings(trained, voc.MelSettings())                    # equal settings pass
    vocoder = voc.Vocoder(FourierVocoder(80, channels=8), trained)
    with pytest.raises(voc.MelSettingsMismatch, match="amin"):
        vocoder.vocode(torch.zeros(1, 80, 4), voc.MelSettings(amin=1e-5))


def test_mel_settings_read_back_from_the_front_end():
    settings = voc.MelSettings(n_mels=64, fmax=7600.0)
    assert voc.MelSettings.from_front_end(settings.front_end("cpu")) == settings
    from course_lib.features import LogMel
    with pytest.raises(voc.MelSettingsMismatch, match="top_db"):
        voc.MelSettings.from_front_end(LogMel(16000, 1024, 256, 80))           # per-clip top_db floor


# ----------------------------------------------------------------------------- baseline, measures, data
def test_griffin_lim_recovers_a_tone_and_measures_rank_it():
    torch.manual_seed(0)
    settings = voc.MelSettings()
    x = _signals(0, 1, 8000) * 0 + 0.5 * torch.sin(2 * math.pi * 440 * torch.arange(8000) / 16000)
    mel = settings.front_end("cpu")(x)
    y = voc.griffin_lim(mel, settings, x.shape[-1])
    assert y.shape == x.shape
    noise = 0.3 * torch.randn_like(x)
    assert voc.log_mel_l1(y, x, settings) < voc.log_mel_l1(noise, x, settings)
    assert float(voc.mr_stft_loss(y, x)) < float(voc.mr_stft_loss(noise, x))
    assert voc.log_mel_l1(x, x, settings) == 0.0


def test_stoi_is_high_for_the_reference_and_low_for_noise():
    g = np.random.default_rng(0)
    speechlike = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000) * (1 + np.sin(2 * np.pi * 4 * np.arange(16000) / 16000))
    speechlike = speechlike + 0.05 * g.standard_normal(16000)
    assert voc.stoi(speechlike, speechlike, 16000) == pytest.approx(1.0, abs=1e-6)
    assert voc.stoi(g.standard_normal(16000), speechlike, 16000) < 0.5


def test_loudest_segments_and_digit_sequence_mel():
    quiet_loud = torch.cat([torch.zeros(3000), torch.ones(1000) * 0.5, torch.zeros(3000)])
    seg = voc.loudest_segments([quiet_loud, torch.ones(100)], 1000, n_candidates=64,
                               generator=torch.Generator().manual_seed(0))
    assert seg.shape == (2, 1000) and float(seg[0].abs().sum()) > 400 and float(seg[1, 100:].abs().sum()) == 0
    settings = voc.MelSettings()
    renders = {d: 0.3 * torch.sin(2 * math.pi * (200 + 50 * d) * torch.arange(4000) / 16000) for d in range(3)}
    mel = voc.digit_sequence_log_mel([2, 0, 1], renders, settings, gap_frames=5)
    one = settings.front_end("cpu")(renders[0][None])[0]
    assert mel.shape[0] == 80 and mel.shape[1] <= 4 * 5 + 3 * one.shape[1]
    assert torch.all(mel[:, :5] == settings.floor_db)
    with pytest.raises(KeyError, match="digit 7"):
        voc.digit_sequence_log_mel([7], renders, settings)


def test_fourier_vocoder_starts_from_the_pseudo_inverse_magnitude():
    from course_lib.features import mel_filterbank
    settings = voc.MelSettings(n_fft=256, hop_length=64, win_length=256, n_mels=20)
    bank = mel_filterbank(settings.sr, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax,
                          settings.htk, settings.norm, device="cpu")
    model = FourierVocoder(20, 256, 64, channels=8, filterbank=bank)
    mel = settings.front_end("cpu")(_signals(0, 1, 2000))
    expected = (torch.linalg.pinv(bank.double()).float() @ torch.pow(10.0, mel / 10)).clamp_min(1e-10).sqrt()
    with torch.no_grad():
        assert torch.allclose(model.spectrum(mel).abs(), expected, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="filterbank must be"):
        FourierVocoder(20, 512, 64, filterbank=bank)
