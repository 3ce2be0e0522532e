"""course_lib.mir against independent references: slicing by hand, scipy's softmax, librosa's MFCCs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import librosa
import numpy as np
import pytest
import torch
from scipy.special import softmax

from course_lib import mir
from course_lib.models import FullyConvClassifier, LogMelCNN


def test_segment_cuts_whole_segments_and_drops_the_tail():
    x = np.arange(10_500, dtype=np.float32)
    segs = mir.segment(x, 1000, 2.5)
    assert segs.shape == (4, 2500)
    for k in range(4):
        np.testing.assert_array_equal(segs[k], x[k * 2500:(k + 1) * 2500])
    hopped = mir.segment(torch.from_numpy(x)[None], 1000, 2.0, hop_s=1.0)
    assert isinstance(hopped, torch.Tensor) and hopped.shape == (1 + (10_500 - 2000) // 1000, 2000)
    np.testing.assert_array_equal(hopped[3].numpy(), x[3000:5000])


def test_segment_pads_a_short_signal_to_one_segment_and_refuses_stereo():
    segs = mir.segment(np.ones(700, dtype=np.float32), 1000, 1.0)
    assert segs.shape == (1, 1000) and segs[0, :700].sum() == 700 and not segs[0, 700:].any()
    with pytest.raises(ValueError, match="mono"):
        mir.segment(np.zeros((2, 5000)), 1000, 1.0)


class _FakeSplit:
    """A dataset in AudioDataset's shape: records with meta, items (waveform [1, n], label, meta)."""

    def __init__(self, clips, sr=1000):
        self.sr, self.classes, self.source = sr, ["a", "b"], "fake"
        self.records = [SimpleNamespace(path=Path(f"/x/{i}.wav"), label=label, meta=meta)
                        for i, (_, label, meta) in enumerate(clips)]
        self._clips = clips

    def __len__(self):
        return len(self._clips)

    def __getitem__(self, i):
        w, label, meta = self._clips[i]
        return torch.from_numpy(w)[None], label, dict(meta)


def _clip(n, value):
    return np.full(n, value, dtype=np.float32)


def test_segment_dataset_groups_excerpts_of_one_piece_into_one_track():
    ds = _FakeSplit([(_clip(5000, 1.0), 0, {"piece": "p1"}), (_clip(5000, 2.0), 0, {"piece": "p1"}),
                     (_clip(2600, 3.0), 1, {"piece": "p2"})])
    s = mir.segment_dataset(ds, 2.5)
    assert s.waveforms.shape == (5, 1, 2500) and s.labels.tolist() == [0, 0, 0, 0, 1]
    assert s.tracks == ["p1"] * 4 + ["p2"] and s.n_tracks == 2
    assert s.waveforms[2, 0, 0] == 2.0 and s.track_meta["p2"]["label"] == 1
    by_file = mir.segment_dataset(ds, 2.5, track_key="path")
    assert by_file.n_tracks == 3
    few = mir.segment_dataset(ds, 2.5, max_tracks=1, seed=3)
    assert few.n_tracks == 1 and len(few) == (4 if few.tracks[0] == "p1" else 1)  # whole tracks only


def test_segment_dataset_refuses_a_track_with_two_labels_and_a_missing_key():
    ds = _FakeSplit([(_clip(3000, 1.0), 0, {"piece": "p"}), (_clip(3000, 1.0), 1, {"piece": "p"})])
    with pytest.raises(ValueError, match="two labels"):
        mir.segment_dataset(ds, 1.0)
    with pytest.raises(KeyError, match="artist"):
        mir.segment_dataset(ds, 1.0, track_key="artist")


def test_shared_tracks_and_the_disjointness_assertion():
    assert mir.shared_tracks(["a", "b", "b"], ["c"], ["d", "a"]) == {"a"}
    assert mir.shared_tracks(["a"], ["b"]) == set()
    mir.assert_tracks_disjoint(train=["a", "a"], test=["b"])
    with pytest.raises(AssertionError, match=r"a \(train/test\)"):
        mir.assert_tracks_disjoint(train=["a", "x"], val=["y"], test=["a"])


def test_track_posteriors_average_the_softmax_of_each_tracks_segments():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (11, 4))
    tracks = ["t2", "t1", "t2", "t3", "t1", "t2", "t3", "t3", "t3", "t1", "t2"]
    names, p = mir.track_posteriors(torch.from_numpy(z).float(), tracks)
    assert names == ["t1", "t2", "t3"]
    for name, row in zip(names, p):
        expected = np.mean([softmax(z[i]) for i, t in enumerate(tracks) if t == name], axis=0)
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_track_posteriors_hand_computed_case_differs_from_a_vote():
    # one confident segment for class 0 outweighs two hesitant ones for class 1
    z = np.array([[np.log(9.0), 0.0], [0.0, np.log(1.5)], [0.0, np.log(1.5)]])
    _, p = mir.track_posteriors(z, ["a"] * 3)
    np.testing.assert_allclose(p[0], [(0.9 + 0.4 + 0.4) / 3, (0.1 + 0.6 + 0.6) / 3])
    assert p[0].argmax() == 0   # a majority vote of argmaxes would say class 1
    with pytest.raises(ValueError, match="one track per segment"):
        mir.track_posteriors(z, ["a", "b"])


def test_track_labels_in_sorted_order_and_refuses_mixed_labels():
    names, y = mir.track_labels(torch.tensor([2, 0, 2, 1]), ["z", "a", "z", "m"])
    assert names == ["a", "m", "z"] and y.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="labels"):
        mir.track_labels([0, 1], ["a", "a"])


def test_mfcc_statistics_match_librosa_per_clip():
    rng = np.random.default_rng(1)
    sr = 16000
    t = np.arange(sr) / sr
    clips = np.stack([0.5 * np.sin(2 * np.pi * 330 * t), 0.2 * rng.standard_normal(sr),
                      np.sin(2 * np.pi * (100 + 900 * t) * t) * t]).astype(np.float32)
    got = mir.mfcc_statistics(torch.from_numpy(clips)[:, None], sr, n_mfcc=13, n_fft=1024, hop_length=256)
    assert got.shape == (3, 26) and got.dtype == torch.float32
    for x, row in zip(clips, got.numpy()):
        m = librosa.feature.mfcc(y=x, sr=sr, n_mfcc=13, n_fft=1024, hop_length=256)
        np.testing.assert_allclose(row, np.concatenate([m.mean(axis=1), m.std(axis=1)]), rtol=1e-3, atol=2e-3)
    with pytest.raises(ValueError, match="batch"):
        mir.mfcc_statistics(torch.zeros(sr), sr)


@pytest.mark.parametrize("build", [lambda: LogMelCNN(3, channels=(4, 8)),
                                   lambda: FullyConvClassifier(3, (4, 8), block="separable")])
def test_embed_is_what_the_classifier_head_reads(build):
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(5, 1, 16, 20)
    e = mir.embed(model, x, batch_size=2)
    assert e.shape == (5, 8)
    with torch.no_grad():
        if isinstance(model, LogMelCNN):
            torch.testing.assert_close(model.head(e), model(x), rtol=1e-5, atol=1e-5)
        else:
            expected = model.features(x).mean(dim=(2, 3))
            torch.testing.assert_close(e, expected)
    model.train()
    mir.embed(model, x)
    assert model.training   # the mode is restored
