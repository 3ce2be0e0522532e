"""course_lib.emotion against independent references: tones of known f0, bursts at a known rate,
sine levels from the formula, scikit-learn's balanced accuracy, and split properties counted
clip by clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from course_lib import emotion
from course_lib.metrics import unweighted_average_recall

SR = 16000


def harmonic_tone(f0_hz, duration_s=1.0, sr=SR, n_harmonics=5, amplitude=0.5):
    """A voiced-like tone: harmonics k * f0 with 1/k amplitudes; f0_hz may be an array (a glide)."""
    n = int(duration_s * sr)
    f0 = np.broadcast_to(np.asarray(f0_hz, dtype=float), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1))
    return amplitude * x / np.abs(x).max()


@pytest.mark.parametrize("f0_hz", [110.0, 180.0, 260.0])
def test_pitch_track_finds_the_f0_of_a_tone(f0_hz):
    f0, probability = emotion.pitch_track(harmonic_tone(f0_hz), SR)
    voiced = np.isfinite(f0)
    assert voiced.mean() > 0.8
    semitone_error = 12 * np.log2(np.nanmedian(f0) / f0_hz)
    assert abs(semitone_error) < 0.3            # the grid is 0.5 st
    assert f0.shape == probability.shape == (1 + SR // 256,)


def test_pitch_track_calls_noise_unvoiced_and_checks_its_range():
    noise = 0.3 * np.random.default_rng(0).standard_normal(SR)
    f0, _ = emotion.pitch_track(noise, SR)
    assert np.isnan(f0).mean() > 0.8
    with pytest.raises(ValueError, match="fmax"):
        emotion.pitch_track(noise, SR, fmax=9000.0)
    with pytest.raises(ValueError, match="mono"):
        emotion.pitch_track(np.zeros((2, 100)), SR)


def test_prosodic_features_of_tones_match_their_formulas():
    names = list(emotion.PROSODIC_FEATURES)
    steady = emotion.prosodic_features(harmonic_tone(200.0, 1.5), SR)
    assert steady.shape == (len(names),)
    assert abs(steady[names.index("f0 median (st re 100 Hz)")] - 12.0) < 0.3    # 200 Hz = one octave up
    assert steady[names.index("f0 spread IQR (st)")] < 0.6
    assert abs(steady[names.index("f0 slope (st/s)")]) < 0.5
    assert steady[names.index("voiced fraction")] > 0.8
    assert abs(steady[names.index("speech duration (s)")] - 1.5) < 0.1

    # a glide from 150 to 300 Hz, exponential in time: one octave (12 st) per second
    t = np.arange(SR) / SR
    glide = emotion.prosodic_features(harmonic_tone(150.0 * 2 ** t), SR)
    assert abs(glide[names.index("f0 slope (st/s)")] - 12.0) < 1.0
    assert abs(glide[names.index("f0 range p5-p95 (st)")] - 0.9 * 12.0) < 1.0

    # a sine of amplitude a has RMS a / sqrt(2): 20 log10(0.5 / sqrt(2)) = -9.03 dBFS
    sine = 0.5 * np.sin(2 * np.pi * 220.0 * np.arange(SR) / SR)
    level = emotion.prosodic_features(sine, SR)
    expected_db = 20 * np.log10(0.5 / np.sqrt(2))
    assert abs(level[names.index("energy mean (dBFS)")] - expected_db) < 0.3
    assert abs(level[names.index("energy peak (dBFS)")] - expected_db) < 0.3
    assert level[names.index("energy spread std (dB)")] < 1.0     # only the two half-empty edge frames differ


def test_prosodic_features_of_silence_are_defined():
    features = emotion.prosodic_features(np.zeros(SR // 2), SR)
    assert np.all(np.isfinite(features))
    assert features[list(emotion.PROSODIC_FEATURES).index("voiced fraction")] == 0


@pytest.mark.parametrize("rate_hz", [3.0, 4.0, 6.0])
def test_speaking_rate_counts_bursts_per_second(rate_hz):
    duration_s = 3.0
    t = np.arange(int(duration_s * SR)) / SR
    bursts = np.sin(np.pi * rate_hz * t) ** 8                   # rate_hz loud "syllables" per second
    x = 0.5 * bursts * harmonic_tone(150.0, duration_s)
    assert abs(emotion.speaking_rate(x, SR) - rate_hz) < 0.5


def test_prosodic_feature_matrix_stacks_rows():
    clips = [harmonic_tone(150.0, 0.5), torch.from_numpy(harmonic_tone(220.0, 0.7)).float()[None]]
    matrix = emotion.prosodic_feature_matrix(clips, SR)
    assert matrix.shape == (2, len(emotion.PROSODIC_FEATURES))
    assert np.allclose(matrix[0], emotion.prosodic_features(clips[0], SR))
    with pytest.raises(ValueError, match="no clips"):
        emotion.prosodic_feature_matrix([], SR)


def test_uar_equals_sklearn_balanced_accuracy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y_true = rng.choice(6, size=50, p=[0.4, 0.2, 0.2, 0.1, 0.05, 0.05])
        y_pred = np.where(rng.random(50) < 0.5, y_true, rng.integers(0, 6, 50))
        assert np.isclose(unweighted_average_recall(y_true, y_pred), balanced_accuracy_score(y_true, y_pred))


def speakers_of(counts, seed=0):
    ids = [s for s, n in counts.items() for _ in range(n)]
    return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]


@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5])
def test_speaker_split_is_disjoint_complete_and_sized(fraction):
    speakers = speakers_of({f"actor{a}": 3 + a % 4 for a in range(12)})
    train, test = emotion.speaker_split(speakers, fraction, rng=1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(speakers)))
    assert not emotion.shared_speakers(speakers, train, test)
    held = {speakers[i] for i in test}
    assert len(held) == round(fraction * 12)
    # every clip of a held-out speaker is in test, counted clip by clip
    assert all((i in set(test.tolist())) == (speakers[i] in held) for i in range(len(speakers)))
    again = emotion.speaker_split(speakers, fraction, rng=1)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    others = {frozenset(speakers[i] for i in emotion.speaker_split(speakers, fraction, rng=s)[1]) for s in range(6)}
    assert len(others) > 1


def test_speaker_split_edges_and_errors():
    speakers = [1, 1, 2, 2, 3]                       # RAVDESS actor numbers are ints
    train, test = emotion.speaker_split(speakers, 0.01, rng=0)
    assert len({speakers[i] for i in test}) == 1     # at least one test speaker
    train, test = emotion.speaker_split(speakers, 0.99, rng=0)
    assert len({speakers[i] for i in train}) == 1    # at least one training speaker
    with pytest.raises(ValueError, match="at least 2 speakers"):
        emotion.speaker_split(["a", "a"], 0.5)
    with pytest.raises(ValueError, match="test_fraction"):
        emotion.speaker_split(speakers, 1.0)


def test_random_split_shares_speakers():
    speakers = speakers_of({f"s{i}": 10 for i in range(8)})
    train, test = emotion.random_split(len(speakers), 0.25, rng=0)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(speakers)))
    assert len(test) == 20
    assert len(emotion.shared_speakers(speakers, train, test)) >= 6


def test_fix_length_trims_pads_and_crops():
    tone = harmonic_tone(200.0, 0.5)
    padded_tone = np.concatenate([np.zeros(4000), tone, np.zeros(4000)])
    out = emotion.fix_length([padded_tone, tone[:1000]], 9000)
    assert out.shape == (2, 1, 9000) and out.dtype == torch.float32
    assert abs(int((out[0, 0] != 0).sum()) - len(tone)) < 600        # the silence went, the tone stayed
    assert torch.all(out[1, 0, 1100:] == 0)
    long = emotion.fix_length([harmonic_tone(200.0, 2.0)], 4000)
    assert long.shape == (1, 1, 4000) and long.abs().max() > 0.1


def test_attention_cnn_shapes_weights_and_normalisation():
    torch.manual_seed(0)
    model = emotion.AttentionCNN(n_mels=40, n_classes=5, channels=(4, 8, 8)).eval()
    spec = torch.randn(3, 1, 40, 64) * 10 - 30
    model.fit_normalization([spec])
    assert torch.allclose(model.norm_mean, spec.mean(dim=(0, 1, 3)), atol=1e-4)
    logits, weights = model(spec, return_weights=True)
    assert logits.shape == (3, 5) and weights.shape == (3, 64 // 8)
    assert torch.allclose(weights.sum(dim=1), torch.ones(3), atol=1e-6)
    assert torch.allclose(model(spec[:, 0]), logits, atol=1e-6)       # (batch, n_mels, frames) accepted
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="40"):
        model(torch.zeros(2, 1, 32, 64))
    with pytest.raises(ValueError, match="bands"):
        emotion.AttentionCNN(n_mels=4, n_classes=2, channels=(4, 4, 4))
