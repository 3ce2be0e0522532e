"""course_lib.ssl: InfoNCE against a hand-computed case and an independent formulation, the spread
that shows a collapse, the leakage-free split, stratified label shares, views, models, the probe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import features, models, ssl


# ------------------------------------------------------------------------------------ InfoNCE
def _info_nce_by_loops(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    """NT-Xent written out anchor by anchor, in float64 NumPy: the definition, not a matrix trick."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        positive = i + n if i < n else i - n
        numerator = math.exp(float(z[i] @ z[positive]) / temperature)
        denominator = sum(math.exp(float(z[i] @ z[j]) / temperature) for j in range(2 * n) if j != i)
        total += -math.log(numerator / denominator)
    return total / (2 * n)


def test_info_nce_hand_computed_case():
    # z1 = z2 = identity, T = 1: each anchor's positive has similarity 1, its 2 negatives 0,
    # so each of the 4 terms is -log(e / (e + 2)) = log(1 + 2/e).
    eye = torch.eye(2, dtype=torch.float64)
    assert float(ssl.info_nce(eye, eye, 1.0)) == pytest.approx(math.log(1 + 2 / math.e), abs=1e-12)
    # With T = 0.5 the same case gives log(1 + 2 exp(-2)).
    assert float(ssl.info_nce(eye, eye, 0.5)) == pytest.approx(math.log(1 + 2 * math.exp(-2)), abs=1e-12)


@pytest.mark.parametrize("n,dim,temperature", [(2, 3, 1.0), (5, 8, 0.1), (7, 4, 0.5), (16, 32, 0.07)])
def test_info_nce_matches_an_anchor_by_anchor_loop(n, dim, temperature):
    gen = torch.Generator().manual_seed(n)
    z1 = torch.randn(n, dim, generator=gen, dtype=torch.float64) * 3
    z2 = z1 + torch.randn(n, dim, generator=gen, dtype=torch.float64)
    expected = _info_nce_by_loops(z1.numpy(), z2.numpy(), temperature)
    assert float(ssl.info_nce(z1, z2, temperature)) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_info_nce_matches_a_logsumexp_over_the_cross_and_within_view_blocks():
    # A second independent form: positives on the diagonal of the cross-view block, negatives from
    # the cross-view block (off the diagonal) and the within-view block (off the diagonal).
    gen = torch.Generator().manual_seed(3)
    z1 = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    z2 = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    t = 0.3
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    off = ~torch.eye(6, dtype=torch.bool)
    terms = []
    for anchor, other in ((a, b), (b, a)):
        cross, within = anchor @ other.T / t, anchor @ anchor.T / t
        candidates = torch.cat([cross, within.masked_fill(~off, float("-inf"))], dim=1)
        terms.append(torch.logsumexp(candidates, dim=1) - cross.diagonal())
    assert float(ssl.info_nce(z1, z2, t)) == pytest.approx(float(torch.cat(terms).mean()), rel=1e-12)


def test_info_nce_invariances_and_the_collapsed_value():
    gen = torch.Generator().manual_seed(4)
    z1 = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    z2 = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    loss = float(ssl.info_nce(z1, z2, 0.2))
    perm = torch.randperm(8, generator=gen)
    assert float(ssl.info_nce(5 * z1, 0.1 * z2, 0.2)) == pytest.approx(loss)      # cosine: lengths do not matter
    assert float(ssl.info_nce(z1[perm], z2[perm], 0.2)) == pytest.approx(loss)    # the order of the clips neither
    assert float(ssl.info_nce(z2, z1, 0.2)) == pytest.approx(loss)                # both directions count
    # A collapsed encoder (every embedding equal) scores log(2N - 1): a blind guess among the candidates.
    same = torch.ones(8, 6)
    assert float(ssl.info_nce(same, same, 0.2)) == pytest.approx(math.log(15), rel=1e-6)
    # ...while the positives-only loss is at its minimum there: why it collapses.
    assert float(ssl.alignment_loss(same, same)) == pytest.approx(0.0, abs=1e-6)


def test_info_nce_half_precision_and_gradients():
    z1 = torch.randn(4, 8, dtype=torch.bfloat16, requires_grad=True)
    z2 = torch.randn(4, 8, dtype=torch.bfloat16)
    loss = ssl.info_nce(z1, z2, 0.1)
    assert loss.dtype == torch.float32  # computed in float32 under autocast-style inputs
    loss.backward()
    assert z1.grad is not None and torch.isfinite(z1.grad.float()).all()


def test_info_nce_rejects_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        ssl.info_nce(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2 clips"):
        ssl.info_nce(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="temperature"):
        ssl.info_nce(torch.randn(4, 3), torch.randn(4, 3), 0.0)


# ------------------------------------------------------------------------------- spread, loss
def test_embedding_spread_is_zero_for_a_collapse_and_near_one_when_spread():
    assert ssl.embedding_spread(torch.ones(16, 8) * 3) == pytest.approx(0.0, abs=1e-6)
    gen = torch.Generator().manual_seed(0)
    spread = ssl.embedding_spread(torch.randn(4000, 64, generator=gen))
    assert spread == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="batch >= 2"):
        ssl.embedding_spread(torch.randn(1, 4))


def test_contrastive_loss_logs_the_spread_in_training_only():
    loss_fn = ssl.ContrastiveLoss(0.5)
    z = torch.randn(8, 4)
    loss = loss_fn(z)
    assert float(loss) == pytest.approx(float(ssl.info_nce(z[:4], z[4:], 0.5)))
    loss_fn(torch.randn(8, 4))
    loss_fn.eval()
    loss_fn(torch.randn(8, 4))                       # validation: not logged
    assert len(loss_fn.spreads) == 2
    loss_fn.train()
    for _ in range(4):
        loss_fn(torch.randn(8, 4))
    per_epoch = loss_fn.spread_per_epoch(3)
    assert per_epoch.shape == (2,)
    assert per_epoch[0] == pytest.approx(np.mean(loss_fn.spreads[:3]))
    positives_only = ssl.ContrastiveLoss(negatives=False)
    assert float(positives_only(torch.cat([z[:4], z[:4]]))) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="2N rows"):
        loss_fn(torch.randn(7, 4))


def test_positives_only_training_collapses_and_info_nce_does_not():
    # A tiny encoder trained on random clips' two noisy views: the spread tells the two losses apart.
    torch.manual_seed(0)
    data = torch.randn(64, 16)
    spreads = {}
    for negatives in (True, False):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
        loss_fn = ssl.ContrastiveLoss(0.2, negatives=negatives)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(100):
            x = data[torch.randint(0, 64, (32,))]
            views = torch.cat([x + 0.3 * torch.randn_like(x), x + 0.3 * torch.randn_like(x)])
            loss = loss_fn(net(views))
            opt.zero_grad()
            loss.backward()
            opt.step()
        spreads[negatives] = np.mean(loss_fn.spreads[-10:])
    assert spreads[True] > 0.5
    assert spreads[False] < 0.3 * spreads[True]


# ------------------------------------------------------------------------- the pool, the split
def _clips(ids, groups, length=8):
    n = len(ids)
    return ssl.Clips(torch.zeros(n, 1, length), torch.zeros(n, dtype=torch.long), list(ids), list(groups))


def test_check_disjoint_reports_a_clean_split():
    pool = _clips(["a", "b", "c"], ["r1", "r1", "r2"])
    held = {"val": _clips(["d"], ["r3"]), "test": _clips(["e", "f"], ["r4", "r4"])}
    report = ssl.check_disjoint(pool, held)
    assert report == {"val": {"clips": 1, "shared_clips": 0, "recordings": 1, "shared_recordings": 0},
                      "test": {"clips": 2, "shared_clips": 0, "recordings": 1, "shared_recordings": 0}}


def test_check_disjoint_refuses_shared_clips_and_shared_recordings():
    pool = _clips(["a", "b"], ["r1", "r2"])
    with pytest.raises(ssl.LeakageError, match=r"1 clip\(s\) of 'test' are in the pool.*'b'"):
        ssl.check_disjoint(pool, {"test": _clips(["b", "z"], ["r2", "r9"])})
    # A different clip of a recording the pool already holds is leakage too...
    with pytest.raises(ssl.LeakageError, match=r"1 recording\(s\) of 'val' also feed the pool"):
        ssl.check_disjoint(pool, {"val": _clips(["c"], ["r1"])})
    # ...unless only clip ids are asked about.
    assert ssl.check_disjoint(pool, {"val": _clips(["c"], ["r1"])}, by_group=False)["val"]["shared_recordings"] == 1
    # The pool of "all the audio" (train + test) is refused.
    test = _clips(["t1", "t2"], ["r8", "r8"])
    with pytest.raises(ssl.LeakageError, match="transductive leakage"):
        ssl.check_disjoint(ssl.Clips.concat([pool, test]), {"test": test})


def test_the_offline_split_is_leakage_free():
    # The split notebook 10 pretrains on: the offline percussion set's train split vs its val and
    # test splits (by clip and by kit).
    from course_lib.data import load_dataset
    from course_lib.data.datasets import OfflineSetMissing

    try:
        splits = {name: load_dataset("sound_events", name, profile="ci", build_missing=False)
                  for name in ("train", "val", "test")}
    except OfflineSetMissing:
        pytest.skip("offline set sound_events not built (python -m course_lib.data prepare --only sound_events)")
    pool, val, test = (ssl.decode_clips(splits[name], max_clips=40) for name in ("train", "val", "test"))
    report = ssl.check_disjoint(pool, {"val": val, "test": test})
    assert all(r["shared_clips"] == 0 and r["shared_recordings"] == 0 for r in report.values())
    assert all(g.startswith("source:") for g in pool.groups)


class _FakeDataset:
    def __init__(self, metas, lengths):
        self.metas, self.lengths = metas, lengths

    def __len__(self):
        return len(self.metas)

    def __getitem__(self, i):
        return torch.full((1, self.lengths[i]), float(i)), i % 2, dict(self.metas[i], index=i)


def test_decode_clips_keeps_ids_groups_and_the_order_of_decode_split():
    from course_lib.data import decode_split

    metas = [{"path": f"/d/{i}.wav", "src_file": f"rec{i // 2}"} for i in range(5)]
    data = _FakeDataset(metas, [3, 5, 4, 5, 2])
    clips = ssl.decode_clips(data, max_clips=4, seed=1)
    waves, labels = decode_split(data, max_clips=4, seed=1)
    assert torch.equal(clips.waveforms, waves) and torch.equal(clips.labels, labels)
    order = [int(w[0, 0]) for w in clips.waveforms]
    assert clips.ids == [f"/d/{i}.wav" for i in order]
    assert clips.groups == [f"src_file:rec{i // 2}" for i in order]
    sub = clips.subset([2, 0])
    assert sub.ids == [clips.ids[2], clips.ids[0]] and len(sub) == 2


def test_source_group_prefers_the_recording_and_falls_back_to_the_path():
    assert ssl.source_group({"src_file": "1-100032", "speaker": "x", "path": "p"}) == "src_file:1-100032"
    assert ssl.source_group({"source": "hydrogen:kit", "path": "p"}) == "source:hydrogen:kit"
    assert ssl.source_group({"speaker": "abc", "path": "p"}) == "speaker:abc"
    assert ssl.source_group({"path": "/x.wav"}) == "path:/x.wav"
    with pytest.raises(KeyError, match="names no source recording"):
        ssl.source_group({"label": 3})


def test_labelled_subset_is_stratified_seeded_and_keeps_every_class():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    one_percent = ssl.labelled_subset(labels, 0.01)
    assert np.array_equal(np.bincount(labels[one_percent], minlength=4), [1, 1, 1, 1])   # at least one each
    ten_percent = ssl.labelled_subset(labels, 0.1, seed=0)
    assert np.array_equal(np.bincount(labels[ten_percent], minlength=4), [5, 3, 2, 1])  # round(0.1 n), >= 1
    assert np.array_equal(ten_percent, ssl.labelled_subset(labels, 0.1, seed=0))
    assert not np.array_equal(ten_percent, ssl.labelled_subset(labels, 0.1, seed=1))
    assert np.array_equal(ssl.labelled_subset(torch.as_tensor(labels), 1.0), np.arange(100))
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            ssl.labelled_subset(labels, bad)


# ----------------------------------------------------------------------------- views and masks
def test_random_crop_cuts_contiguous_slices():
    x = torch.arange(40.0).view(2, 1, 20) + torch.tensor([0.0, 100.0]).view(2, 1, 1)
    crops = ssl.random_crop(x, 7, generator=torch.Generator().manual_seed(0))
    assert crops.shape == (2, 1, 7)
    for row, crop in zip(x, crops):
        start = int(crop[0, 0] - row[0, 0])
        assert torch.equal(crop, row[:, start:start + 7])
    with pytest.raises(ValueError, match="clip length"):
        ssl.random_crop(x, 21)


def test_random_crop_can_keep_each_clip_s_peak():
    # Short events in silence: every crop that keeps the peak holds the event; plain crops need not.
    x = torch.zeros(3, 1, 100)
    x[0, 0, 2], x[1, 0, 97], x[2, 0, 50] = 1.0, -2.0, 0.5
    gen = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        crops = ssl.random_crop(x, 30, gen, keep_peak=True)
        assert (crops.abs().amax(dim=-1) > 0).all()
        starts.add(int(torch.nonzero(crops[2, 0])[0]))   # where the middle clip's event landed
    assert starts == set(range(30))                      # every crop containing it is drawn
    assert torch.equal(ssl.random_crop(x, 100, gen, keep_peak=True), x)
    silent = sum(bool((ssl.random_crop(x, 30, gen).abs().amax(dim=-1) == 0).any()) for _ in range(50))
    assert silent > 0


def test_augmented_pairs_give_two_different_views_of_each_clip():
    sr = 8000
    frontend = features.FeaturePipeline(sr, n_fft=256, hop_length=128, n_mels=16, device="cpu",
                                        spec_augment=features.SpecAugment(3, 3, 1, 1))
    pairs = ssl.AugmentedPairs(frontend.eval(), sr, crop_s=0.5,
                               waveform_augment=features.AddNoise(torch.randn(2, sr), snr_db=(20.0, 30.0)))
    waves = torch.randn(3, 1, sr)
    first, second = pairs.waveform_views(waves, generator=torch.Generator().manual_seed(0))
    assert first.shape == second.shape == (3, 1, sr // 2)
    assert not torch.allclose(first, second)
    views, targets = pairs(waves, torch.tensor([0, 1, 2]))     # labels are ignored
    assert targets is None and views.shape == (6, 1, 16, 1 + (sr // 2) // 128)
    assert not frontend.training                                 # the frontend's mode is restored
    assert "crop_s=0.5" in repr(pairs)


def test_mask_bands_hides_bands_and_keeps_the_target():
    spec = torch.randn(4, 1, 20, 30) + 5
    masked, target = ssl.MaskBands(6, 6, 1, 1)(spec, spec, generator=torch.Generator().manual_seed(0))
    assert target is spec
    hidden = masked == 0
    assert hidden.any() and torch.equal(masked[~hidden], spec[~hidden])


# ------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("shape", [(40, 32), (41, 33), (16, 9)])
def test_masked_reconstruction_model_returns_the_input_shape(shape):
    channels = (4, 8, 8)
    net = ssl.MaskedReconstructionModel(models.LogMelCNN(3, channels).features, channels)
    x = torch.randn(2, 1, *shape)
    assert net(x).shape == x.shape
    assert net.embed(x).shape == (2, channels[-1])


def test_a_pretrained_encoder_drops_into_logmelcnn():
    channels = (4, 8)
    net = ssl.ContrastiveModel(models.LogMelCNN(3, channels).features, channels[-1], projection_dim=5)
    x = torch.randn(3, 1, 20, 16)
    assert net(x).shape == (3, 5) and net.embed(x).shape == (3, 8)
    classifier = models.LogMelCNN(3, channels)
    classifier.features.load_state_dict(net.features.state_dict())
    net.eval(), classifier.eval()
    with torch.no_grad():
        assert torch.allclose(ssl.Embedder(classifier.features)(x), net.embed(x))
        assert torch.allclose(ssl.Embedder(classifier.features)(x[:, 0]), net.embed(x))  # (B, F, T) too


# -------------------------------------------------------------------------------- linear probe
def test_linear_probe_standardises_on_training_data_and_chooses_c_on_validation():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 10)) * 2
    y_train, y_val = rng.integers(0, 3, 60), rng.integers(0, 3, 80)
    scale = np.linspace(1, 1000, 10)          # wildly different feature scales: standardising matters
    x_train = (centres[y_train] + rng.normal(size=(60, 10)) * 2) * scale
    x_val = (centres[y_val] + rng.normal(size=(80, 10)) * 2) * scale
    cs = (0.001, 0.1, 10.0)
    probe = ssl.fit_linear_probe(x_train, y_train, x_val, y_val, cs=cs)
    scaler = probe.pipeline[0]
    assert np.allclose(scaler.mean_, x_train.mean(0))     # fitted on the probe's training clips only
    # The same choice made by hand with scikit-learn.
    by_hand = {}
    for c in cs:
        z = StandardScaler().fit(x_train)
        model = LogisticRegression(C=c, max_iter=2000).fit(z.transform(x_train), y_train)
        by_hand[c] = float(np.mean(model.predict(z.transform(x_val)) == y_val))
    assert probe.val_accuracy == pytest.approx(by_hand)
    best = max(by_hand.values())
    assert probe.c == min(c for c in cs if by_hand[c] == best)   # ties: the strongest regularisation
    assert probe.accuracy(x_val, y_val) == pytest.approx(best)
    assert probe.accuracy(torch.as_tensor(x_val), torch.as_tensor(y_val)) == pytest.approx(best)


def test_linear_probe_errors_name_the_problem():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="single class"):
        ssl.fit_linear_probe(x, [1, 1, 1, 1], x, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="n = len"):
        ssl.fit_linear_probe(x, [0, 1, 0], x, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="cs is empty"):
        ssl.fit_linear_probe(np.eye(4), [0, 1, 0, 1], np.eye(4), [0, 1, 0, 1], cs=())
