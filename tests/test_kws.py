"""course_lib.kws and course_lib.models.kws: streaming = offline, detection counting on hand-made
posterior tracks with known events, FRR at a fixed FA against a brute-force search, the data protocol."""

import itertools

import numpy as np
import pytest
import torch

from course_lib import kws
from course_lib.features import LogMel
from course_lib.models.cnn import count_parameters
from course_lib.models.kws import DSCNN, separable_block_parameters

SR = 16000


# ------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("channels,kernel_size", [(8, 3), (48, 9), (64, 5)])
def test_separable_block_parameters_match_the_module(channels, kernel_size):
    model = DSCNN(40, 12, channels=channels, n_blocks=2, kernel_size=kernel_size)
    assert count_parameters(model.blocks[0]) == separable_block_parameters(channels, kernel_size)


def test_dscnn_shapes_normalisation_and_error():
    torch.manual_seed(0)
    model = DSCNN(40, 12, channels=16, n_blocks=2).eval()
    spec = 20 * torch.randn(3, 40, 49) - 30
    model.fit_normalization([spec[:2], spec[2:]])
    flat = spec.permute(1, 0, 2).reshape(40, -1).double()
    assert torch.allclose(model.norm_mean.double(), flat.mean(1), atol=1e-4)
    assert torch.allclose(model.norm_std.double(), flat.std(1, unbiased=False), atol=1e-3)
    assert model(spec).shape == (3, 12)
    assert model(spec[:, :, :30]).shape == (3, 12)          # any number of frames
    with pytest.raises(ValueError, match="log-mel"):
        model(spec[:, :20])
    assert count_parameters(DSCNN(40, 12)) < 100_000


# ------------------------------------------------------------------- streaming = offline
@pytest.mark.parametrize("chunk", [1, 160, 333, 1600, 7000])
def test_streaming_posteriors_equal_offline(chunk):
    torch.manual_seed(1)
    model = DSCNN(40, 5, channels=16, n_blocks=2).eval()
    mel = kws.kws_log_mel(SR, device="cpu")
    rng = np.random.default_rng(0)
    recording = torch.from_numpy((0.1 * rng.standard_normal(int(3.3 * SR))).astype(np.float32))
    window, stride = 49, 5
    offline = kws.offline_posteriors(model, mel, recording, window, stride, batch_size=7)
    n_frames = 1 + (len(recording) - mel.n_fft) // mel.hop_length
    assert offline.shape == ((n_frames - window) // stride + 1, 5)
    streamer = kws.StreamingKWS(model, mel, window, stride)
    outs = [streamer.process(recording[s:s + chunk]) for s in range(0, len(recording), chunk)]
    streamed = torch.cat([o for o in outs if len(o)])
    assert streamed.shape == offline.shape
    assert (streamed - offline).abs().max() < 1e-5
    # window j is exactly the model on frames j*stride ... j*stride + window - 1 of the whole recording
    frames = mel(recording[None])[0]
    j = 7
    direct = torch.softmax(model(frames[None, :, j * stride:j * stride + window]), -1)[0]
    assert torch.allclose(offline[j], direct, atol=1e-5)
    streamer.reset()
    again = torch.cat([o for o in (streamer.process(recording[s:s + 4000]) for s in range(0, len(recording), 4000))
                       if len(o)])
    assert torch.allclose(again, offline, atol=1e-5)


def test_streaming_refuses_centred_frames():
    model = DSCNN(40, 3, channels=8, n_blocks=1)
    centred = LogMel(SR, n_fft=640, hop_length=320, n_mels=40, center=True, device="cpu")
    with pytest.raises(ValueError, match="center=False"):
        kws.StreamingKWS(model, centred, 49, 5)


# ---------------------------------------------------------------- smoothing and detection
def test_smoothing_is_a_causal_mean_over_the_outputs_so_far():
    p = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    expected = np.array([[1, 0], [0.5, 0.5], [2 / 3, 1 / 3], [2 / 3, 1 / 3]])
    assert np.allclose(kws.smooth_posteriors(p, 3), expected)
    assert np.allclose(kws.smooth_posteriors(p, 1), p)


def _hand_track():
    """20 steps, classes (kw0, kw1, unknown, silence): kw0 at steps 3-5, kw1 at 12-13, unknown at 8."""
    p = np.tile([0.05, 0.05, 0.1, 0.8], (20, 1))
    p[3:6] = [0.9, 0.02, 0.03, 0.05]
    p[8] = [0.02, 0.02, 0.95, 0.01]
    p[12:14] = [0.03, 0.9, 0.02, 0.05]
    return p


def test_detection_on_a_hand_made_track():
    p = _hand_track()
    assert kws.detect_keywords(p, 1, 0.5, 4, [0, 1]) == [(3, 0), (12, 1)]
    # no suppression: every step above the threshold fires
    assert kws.detect_keywords(p, 1, 0.5, 0, [0, 1]) == [(3, 0), (4, 0), (5, 0), (12, 1), (13, 1)]
    # refractory = 1 suppresses exactly one step after each detection
    assert kws.detect_keywords(p, 1, 0.5, 1, [0, 1]) == [(3, 0), (5, 0), (12, 1)]
    # unknown (class 2) is never detected even when it is the loudest class
    assert all(c in (0, 1) for _, c in kws.detect_keywords(p, 1, 0.5, 0, [0, 1]))
    # smoothing over 2 steps delays kw1's detection: (0.05 + 0.9) / 2 < 0.5 at step 12
    assert kws.detect_keywords(p, 2, 0.5, 4, [0, 1]) == [(4, 0), (13, 1)]
    assert kws.detect_keywords(p, 1, 0.95, 4, [0, 1]) == []


def test_scoring_counts_hits_misses_and_false_accepts():
    events = [(1.0, 2.0, 0), (5.0, 6.0, 1), (9.0, 10.0, 0)]
    detections = [
        (2.3, 0),    # hit event 0 (within the 0.5 s tolerance after its end)
        (2.4, 0),    # second detection of event 0: false accept
        (5.5, 0),    # wrong keyword during event 1: false accept
        (7.5, 1),    # in a pause: false accept
        (10.6, 0),   # too late for event 2 (end + 0.5 s = 10.5): false accept, event 2 missed
    ]
    s = kws.score_detections(detections, events, tolerance_s=0.5)
    assert s == {"hits": 1, "misses": 2, "false_accepts": 4, "n_events": 3, "n_detections": 5}
    assert kws.score_detections([], events)["misses"] == 3
    assert kws.score_detections([(1.5, 0), (5.1, 1), (9.0, 0)], events)["hits"] == 3


def test_detection_and_scoring_on_a_stream_track_with_known_events():
    # a track with keywords at steps 10 and 40 (100 ms per step) and a loud unknown word at 25
    p = np.tile([0.02, 0.02, 0.06, 0.9], (60, 1))
    p[10:15] = [0.85, 0.05, 0.05, 0.05]
    p[25:30] = [0.05, 0.05, 0.85, 0.05]
    p[40:44] = [0.05, 0.85, 0.05, 0.05]
    found = kws.detect_keywords(p, 3, 0.6, 10, [0, 1])
    times = [(0.1 * t, c) for t, c in found]
    events = [(0.9, 1.5, 0), (3.9, 4.4, 1)]
    assert kws.score_detections(times, events) == {"hits": 2, "misses": 0, "false_accepts": 0,
                                                   "n_events": 2, "n_detections": 2}


# ------------------------------------------------------------------------ FRR at fixed FA
def _brute_force_frr(pos, neg, fa):
    """Lowest FRR over every threshold whose FA rate (negatives strictly above) is <= fa."""
    best = None
    for t in sorted(set(np.concatenate([pos, neg]).tolist()) | {-np.inf}):
        if np.mean(neg > t) <= fa + 1e-12:
            frr = np.mean(pos <= t)
            if best is None or frr < best[0] or (frr == best[0] and t < best[1]):
                best = (frr, t)
    return best


@pytest.mark.parametrize("seed,fa", list(itertools.product(range(6), [0.0, 0.01, 0.05, 0.1, 0.3, 1.0])))
def test_frr_at_fa_matches_brute_force(seed, fa):
    rng = np.random.default_rng(seed)
    pos = np.round(rng.uniform(0.2, 1.0, rng.integers(1, 30)), 2)      # rounding makes ties
    neg = np.round(rng.uniform(0.0, 0.8, rng.integers(1, 80)), 2)
    frr, threshold = kws.frr_at_fa(pos, neg, fa)
    assert np.mean(neg > threshold) <= fa + 1e-12
    brute_frr, _ = _brute_force_frr(pos, neg, fa)
    assert frr == pytest.approx(brute_frr)


def test_frr_at_fa_errors():
    with pytest.raises(ValueError, match="positives and negatives"):
        kws.frr_at_fa([], [0.1], 0.1)
    with pytest.raises(ValueError, match="fa_rate"):
        kws.frr_at_fa([0.5], [0.1], 5.0)


# ---------------------------------------------------------------------- stream and demo
def test_make_stream_places_keywords_at_known_times():
    clip = np.zeros(SR, np.float32)
    clip[4000:8000] = 0.5 * np.sin(np.arange(4000) / 5)
    keywords = [(clip, 0), (clip, 1), (clip, 0)]
    fillers = [0.1 * clip]
    noise = np.random.default_rng(0).standard_normal((2, 3 * SR)).astype(np.float32)
    recording, events = kws.make_stream(keywords, fillers, noise, SR, gap_s=(0.5, 1.0), snr_db=30.0, rng=1)
    assert len(events) == 3 and sorted(e[2] for e in events) == [0, 0, 1]
    for start, end, _ in events:
        assert end - start == pytest.approx(1.0)
        segment = recording[int(start * SR) + 4000:int(start * SR) + 8000]
        assert np.corrcoef(segment, clip[4000:8000])[0, 1] > 0.99   # the clip is where the event says
    assert recording.dtype == np.float32


def test_respond_maps_keywords_to_intents_and_asks_again_when_unsure():
    classes = ["yes", "no", kws.UNKNOWN, kws.SILENCE]
    r = kws.respond(torch.tensor([0.9, 0.05, 0.03, 0.02]), classes, threshold=0.5)
    assert (r.keyword, r.intent, r.answer) == ("yes", *kws.INTENTS["yes"])
    unsure = kws.respond(np.array([0.4, 0.3, 0.2, 0.1]), classes, threshold=0.5)
    assert unsure.keyword is None and unsure.answer == kws.NOT_CAUGHT and unsure.best_class == "yes"
    unknown = kws.respond(np.array([0.05, 0.05, 0.85, 0.05]), classes, threshold=0.5)
    assert unknown.keyword is None and unknown.answer == kws.NOT_CAUGHT
    assert all(w in kws.INTENTS for w in kws.STANDARD_KEYWORDS + kws.OFFLINE_KEYWORDS)


def test_offline_protocol_has_twelve_balanced_classes_and_a_real_test_speaker():
    from course_lib.data.datasets import OfflineSetMissing

    try:
        train = kws.load_kws_split("train", max_clips=120, profile="ci")
        test = kws.load_kws_split("test", profile="ci")
    except OfflineSetMissing as exc:
        pytest.skip(f"offline sets not built: {exc}")
    assert train.classes == list(kws.OFFLINE_KEYWORDS) + [kws.UNKNOWN, kws.SILENCE]
    assert np.bincount(train.labels.numpy(), minlength=12).tolist() == [10] * 12
    assert train.waveforms.shape == (120, 1, SR)
    assert not any(train.real[i] for i in range(len(train)) if train.words[i] != kws.SILENCE)
    assert not set(train.speakers) & set(test.speakers) - {"noise"}
    keyword_rows = [i for i in range(len(test)) if int(test.labels[i]) < 10]
    assert keyword_rows and all(test.real[i] for i in keyword_rows)
