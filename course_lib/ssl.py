"""Learning without labels: pretext tasks, their losses, augmented pairs and the linear probe.

Self-supervised learning trains an encoder on audio whose labels nobody looks at, with a task
made from the audio itself, then measures what the encoder learned with the few labels there are:

* **the pool and its split**: :func:`decode_clips` decodes a split with each clip's id (its path)
  and source recording; :func:`check_disjoint` proves that the clips a probe is judged on (and
  their recordings) never entered pretraining, :func:`labelled_subset` draws 1 %, 10 %, ... of the
  labels per class.
* **masked-spectrogram reconstruction**: :class:`MaskedReconstructionModel` rebuilds a log-mel
  from a copy with bands of time and frequency hidden (:class:`MaskBands`).
* **contrastive learning**: :class:`AugmentedPairs` turns a batch of clips into two augmented,
  randomly cropped views of each; :class:`ContrastiveModel` maps views to vectors and
  :func:`info_nce` (NT-Xent, Chen et al. 2020) pulls the two views of a clip together and pushes
  the other clips of the batch away. :class:`ContrastiveLoss` also logs
  :func:`embedding_spread` at every step, so a collapse (every clip mapped to one point) shows.
* **evaluation**: :class:`Embedder` pools an encoder's feature map into one vector per clip;
  :func:`fit_linear_probe` standardises those vectors and fits a logistic regression whose
  regularisation is chosen on a validation split.

The encoder is the feature stack of ``models.LogMelCNN`` (its ``.features``), so a pretrained
encoder drops into a classifier of the same shape for fine-tuning, and the baseline trained from
scratch is the very same network.

Notebook: 10_self_supervised
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Clips",
    "decode_clips",
    "source_group",
    "LeakageError",
    "check_disjoint",
    "labelled_subset",
    "random_crop",
    "AugmentedPairs",
    "MaskBands",
    "Embedder",
    "ContrastiveModel",
    "MaskedReconstructionModel",
    "info_nce",
    "alignment_loss",
    "embedding_spread",
    "ContrastiveLoss",
    "LinearProbe",
    "fit_linear_probe",
]

# Metadata keys that name the recording a clip was cut from, most specific first: ESC-50's
# source file, the offline sets' kit or recording, a speaker (Speech Commands, RAVDESS, the
# offline speech sets' voices).
_GROUP_KEYS = ("src_file", "source", "recording", "speaker", "track", "group")


# --------------------------------------------------------------------------------------------
# The pool, the split and the labels
# --------------------------------------------------------------------------------------------
@dataclass
class Clips:
    """Decoded clips of one split, with what identifies each of them.

    Attributes
    ----------
    waveforms : Tensor, shape (n_clips, 1, n_samples), float32
        Zero-padded to the longest clip.
    labels : Tensor, shape (n_clips,), int64
        Class indices. A pretraining pool carries them only so that figures can be coloured
        afterwards: nothing in pretraining reads them.
    ids : list of str
        One id per clip (its file path): the same clip has the same id in every split.
    groups : list of str
        The source recording (or speaker, or kit) of each clip, see :func:`source_group`.
    """

    waveforms: Tensor
    labels: Tensor
    ids: list[str]
    groups: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: Sequence[int] | np.ndarray | Tensor) -> Clips:
        """The clips at ``index``, in that order."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return Clips(self.waveforms[idx], self.labels[idx], [self.ids[i] for i in idx.tolist()],
                     [self.groups[i] for i in idx.tolist()])

    @staticmethod
    def concat(parts: Sequence[Clips]) -> Clips:
        """Several splits as one, waveforms zero-padded to the longest clip."""
        if not parts:
            raise ValueError("concat needs at least one Clips")
        length = max(p.waveforms.shape[-1] for p in parts)
        waves = [F.pad(p.waveforms, (0, length - p.waveforms.shape[-1])) for p in parts]
        return Clips(torch.cat(waves), torch.cat([p.labels for p in parts]),
                     [i for p in parts for i in p.ids], [g for p in parts for g in p.groups])


def source_group(meta: Mapping[str, Any]) -> str:
    """The recording a clip comes from, read from its metadata.

    Clips cut from one recording (ESC-50's ``src_file``, one kit of the offline percussion set,
    one speaker) sound alike for reasons that have nothing to do with their class, so retrieval
    and splits treat them as one group.

    Parameters
    ----------
    meta : mapping
        A dataset item's metadata (``AudioDataset`` items carry ``path`` too).

    Returns
    -------
    str
        The first of ``src_file``, ``source``, ``recording``, ``speaker``, ``track``, ``group``
        present, prefixed with its key; else the clip's own path (a group of one).

    Notebook: 10_self_supervised
    """
    for key in _GROUP_KEYS:
        if meta.get(key) not in (None, ""):
            return f"{key}:{meta[key]}"
    if "path" not in meta:
        raise KeyError(f"metadata {sorted(meta)} names no source recording ({', '.join(_GROUP_KEYS)}) "
                       "and no path: pass a dataset whose items carry one of them")
    return f"path:{meta['path']}"


def decode_clips(dataset: Any, max_clips: int | None = None, seed: int = 0) -> Clips:
    """Decode a split once into memory, keeping each clip's id and source recording.

    The same seeded order and cap as ``course_lib.data.decode_split`` (so the same clips), plus
    what a leakage check and a grouped retrieval need.

    Parameters
    ----------
    dataset : AudioDataset
        Items ``(waveform [1, n_samples], label, meta)``; ``meta`` holds ``path``.
    max_clips : int, optional
        Keep at most this many clips (the profile's ``budget.max_clips``).
    seed : int
        Seed of the random order.

    Returns
    -------
    Clips

    Notebook: 10_self_supervised
    """
    from course_lib.data import collate_pad

    order = np.random.default_rng(seed).permutation(len(dataset))[:max_clips]
    if len(order) == 0:
        raise ValueError(f"{dataset!r} holds no clips: nothing to decode")
    items = [dataset[int(i)] for i in order]
    waveforms, _, labels, metas = collate_pad(items)
    ids = [str(m["path"]) for m in metas]
    return Clips(waveforms, labels, ids, [source_group(m) for m in metas])


class LeakageError(ValueError):
    """Clips (or recordings) of a held-out split also sit in the pretraining pool."""


def check_disjoint(pool: Clips, held_out: Mapping[str, Clips], *, by_group: bool = True
                   ) -> dict[str, dict[str, int]]:
    """Prove that no held-out clip, and no held-out recording, entered the pretraining pool.

    Pretraining on the clips a probe is later tested on (transductive leakage) lets the encoder
    memorise them; a clip from the same recording as a test clip leaks almost as much.

    Parameters
    ----------
    pool : Clips
        What pretraining sees.
    held_out : mapping of str to Clips
        The splits the probe is chosen and judged on, e.g. ``{"val": ..., "test": ...}``.
    by_group : bool
        Also require that no source recording (``Clips.groups``) is shared.

    Returns
    -------
    dict
        ``{split: {"clips": n, "shared_clips": 0, "recordings": m, "shared_recordings": 0}}``.

    Raises
    ------
    LeakageError
        When a clip (or, with ``by_group``, a recording) is shared; the message names a few.

    Notebook: 10_self_supervised
    """
    pool_ids, pool_groups = set(pool.ids), set(pool.groups)
    report: dict[str, dict[str, int]] = {}
    problems = []
    for name, clips in held_out.items():
        shared = sorted(pool_ids.intersection(clips.ids))
        shared_groups = sorted(pool_groups.intersection(clips.groups))
        report[name] = {"clips": len(clips), "shared_clips": len(shared),
                        "recordings": len(set(clips.groups)), "shared_recordings": len(shared_groups)}
        if shared:
            problems.append(f"{len(shared)} clip(s) of '{name}' are in the pool, e.g. {shared[:3]}")
        if by_group and shared_groups:
            problems.append(f"{len(shared_groups)} recording(s) of '{name}' also feed the pool, "
                            f"e.g. {shared_groups[:3]}")
    if problems:
        raise LeakageError("transductive leakage: " + "; ".join(problems) + ". Build the pool from "
                           "the training split only (and split by recording), then pretrain again.")
    return report


def labelled_subset(labels: Any, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a stratified share of labelled clips: ``fraction`` of each class, at least one.

    Parameters
    ----------
    labels : array-like of int, shape (n_clips,)
    fraction : float in (0, 1]
        Share of each class to keep (``round(fraction * n_class)``, at least 1).
    seed : int
        Seed of the draw: the same seed gives the same clips.

    Returns
    -------
    np.ndarray of int64, sorted
        Indices into ``labels``.

    Notebook: 10_self_supervised
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels).astype(np.int64)
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n = max(1, int(round(fraction * len(members))))
        keep.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(keep))


# --------------------------------------------------------------------------------------------
# Augmented pairs and masks
# --------------------------------------------------------------------------------------------
def random_crop(waveforms: Tensor, n_samples: int, generator: torch.Generator | None = None,
                keep_peak: bool = False) -> Tensor:
    """Cut ``n_samples`` consecutive samples from each clip, each at its own random start.

    Parameters
    ----------
    waveforms : Tensor, shape (batch, 1, time) or (batch, time)
    n_samples : int
        Length of a crop, at most ``time``.
    generator : torch.Generator, optional
        Source of the start positions (CPU).
    keep_peak : bool
        Draw the start only among the crops that contain the clip's loudest sample. A short
        event padded with silence (common in ESC-50) then never yields a crop of pure silence,
        which has nothing in it to recognise.

    Returns
    -------
    Tensor, shape (batch, 1, n_samples) or (batch, n_samples)

    Notebook: 10_self_supervised
    """
    length = waveforms.shape[-1]
    if not 0 < n_samples <= length:
        raise ValueError(f"n_samples must lie in 1..{length} (the clip length), got {n_samples}")
    flat = waveforms.reshape(waveforms.shape[0], length)
    u = torch.rand(flat.shape[0], generator=generator, dtype=torch.float64)
    if keep_peak:
        peak = flat.abs().argmax(dim=1).cpu()
        low = (peak - n_samples + 1).clamp(min=0)
        high = peak.clamp(max=length - n_samples)
    else:
        low, high = torch.zeros(flat.shape[0], dtype=torch.long), torch.full((flat.shape[0],), length - n_samples)
    starts = low + (u * (high - low + 1)).long().clamp(max=high - low)
    index = starts.to(waveforms.device)[:, None] + torch.arange(n_samples, device=waveforms.device)
    return torch.gather(flat, 1, index).reshape(*waveforms.shape[:-1], n_samples)


class AugmentedPairs:
    """Two augmented views of every clip in a batch: the positive pairs of contrastive learning.

    Each view is a random crop of ``crop_s`` seconds that keeps the clip's loudest sample (so two
    views of a short event padded with silence both hold the event), then ``waveform_augment``
    (e.g. noise at a random SNR), then ``frontend`` in train mode (log-mel, normalisation and its SpecAugment).
    Used as ``fit``'s ``batch_hook`` on an unlabelled pool: ``hook(waveforms, ignored) ->
    (views, None)`` with ``views = cat([view_1, view_2])``, so rows ``i`` and ``batch + i`` are the
    two views of clip ``i``. Labels are never read.

    Parameters
    ----------
    frontend : course_lib.features.FeaturePipeline
        Waveforms ``(batch, 1, time)`` -> log-mels ``(batch, 1, n_mels, n_frames)``.
    sr : int
        Sample rate of the waveforms in Hz.
    crop_s : float
        Length of each view in seconds (clips shorter than that are used whole).
    waveform_augment : nn.Module, optional
        Applied to each crop before the features (``features.AddNoise``, ``RandomShift``...),
        in train mode.

    Notebook: 10_self_supervised
    """

    def __init__(self, frontend: nn.Module, sr: int, crop_s: float,
                 waveform_augment: nn.Module | None = None) -> None:
        if crop_s <= 0:
            raise ValueError(f"crop_s must be > 0 seconds, got {crop_s}")
        self.frontend = frontend
        self.sr = int(sr)
        self.crop_s = float(crop_s)
        self.waveform_augment = waveform_augment

    def waveform_views(self, waveforms: Tensor, generator: torch.Generator | None = None
                       ) -> tuple[Tensor, Tensor]:
        """The two augmented crops of each clip, ``(batch, 1, crop)`` each: what you can listen to."""
        n = min(int(round(self.crop_s * self.sr)), waveforms.shape[-1])
        views = []
        for _ in range(2):
            view = random_crop(waveforms, n, generator, keep_peak=True)
            if self.waveform_augment is not None:
                augment = self.waveform_augment.to(waveforms.device).train()
                view = augment(view) if generator is None else augment(view, generator=generator)
            views.append(view)
        return views[0], views[1]

    def views(self, waveforms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Both views as log-mels, ``(2 * batch, 1, n_mels, n_frames)``: view 1 of every clip first."""
        first, second = self.waveform_views(waveforms, generator)
        was_training = self.frontend.training
        self.frontend.train()
        try:
            return torch.cat([self.frontend(first, generator=generator),
                              self.frontend(second, generator=generator)])
        finally:
            self.frontend.train(was_training)

    def __call__(self, waveforms: Tensor, targets: Any = None) -> tuple[Tensor, None]:
        return self.views(waveforms), None

    def __repr__(self) -> str:  # part of fit's run fingerprint
        return (f"AugmentedPairs(crop_s={self.crop_s}, sr={self.sr}, frontend={self.frontend!r}, "
                f"waveform_augment={self.waveform_augment!r})")


class MaskBands:
    """Hide random bands of frequency and time: the input of masked-spectrogram reconstruction.

    As ``fit``'s ``batch_hook`` on log-mels (``target="input"``): ``hook(spec, spec) ->
    (masked spec, spec)``, so the model sees the masked copy and is scored on rebuilding the
    whole spectrogram. Masks follow SpecAugment (``features.spec_augment``); the hidden cells
    become 0, the mean of a normalised log-mel.

    Parameters
    ----------
    freq_mask_param, time_mask_param : int
        Widest band, in mel bands and frames (exclusive bound).
    n_freq_masks, n_time_masks : int
        Bands per example on each axis.

    Notebook: 10_self_supervised
    """

    def __init__(self, freq_mask_param: int = 8, time_mask_param: int = 8, n_freq_masks: int = 2,
                 n_time_masks: int = 2) -> None:
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.n_freq_masks = n_freq_masks
        self.n_time_masks = n_time_masks

    def __call__(self, spec: Tensor, targets: Any = None,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        from course_lib.features import spec_augment

        masked = spec_augment(spec, self.freq_mask_param, self.time_mask_param, self.n_freq_masks,
                              self.n_time_masks, generator)
        return masked, spec if targets is None else targets

    def __repr__(self) -> str:
        return (f"MaskBands(freq_mask_param={self.freq_mask_param}, time_mask_param="
                f"{self.time_mask_param}, n_freq_masks={self.n_freq_masks}, n_time_masks={self.n_time_masks})")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
def _as_image(x: Tensor) -> Tensor:
    return x.unsqueeze(1) if x.dim() == 3 else x


class Embedder(nn.Module):
    """An encoder's feature map averaged over frequency and time: one vector per clip.

    Parameters
    ----------
    features : nn.Module
        ``(batch, 1, n_mels, n_frames)`` -> ``(batch, channels, n_mels', n_frames')``, e.g.
        ``models.LogMelCNN(...).features``.

    Input ``(batch, n_mels, n_frames)`` or ``(batch, 1, n_mels, n_frames)``; output
    ``(batch, channels)``.

    Notebook: 10_self_supervised
    """

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: Tensor) -> Tensor:
        return self.features(_as_image(x)).mean(dim=(2, 3))


class ContrastiveModel(nn.Module):
    """Encoder -> global average pool -> projection head: the network contrastive learning trains.

    The loss acts on the projection ``z``; the probe and fine-tuning use the encoder's pooled
    output (the projection head is thrown away after pretraining, as in SimCLR: it absorbs the
    invariances the pretext task asks for).

    Parameters
    ----------
    features : nn.Module
        The encoder (e.g. ``models.LogMelCNN(...).features``).
    out_channels : int
        Channels of the encoder's last feature map.
    projection_dim : int
        Size of ``z``.

    Input ``(batch, 1, n_mels, n_frames)``; output ``z`` of shape ``(batch, projection_dim)``.

    Notebook: 10_self_supervised
    """

    def __init__(self, features: nn.Module, out_channels: int, projection_dim: int = 32) -> None:
        super().__init__()
        self.features = features
        self.projection = nn.Sequential(nn.Linear(out_channels, out_channels), nn.ReLU(inplace=True),
                                        nn.Linear(out_channels, projection_dim))

    def embed(self, x: Tensor) -> Tensor:
        """The encoder's pooled output ``(batch, out_channels)`` (what a probe reads)."""
        return self.features(_as_image(x)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.embed(x))


class MaskedReconstructionModel(nn.Module):
    """Encoder -> small transposed-conv decoder: rebuild a whole log-mel from a masked copy.

    The decoder mirrors ``models.ConvAutoencoder``'s (notebook 05): each stage doubles both axes
    with a 4x4 transposed convolution, a linear 3x3 convolution gives the log-mel back, cropped to
    the input's size. Only the encoder is kept after pretraining.

    Parameters
    ----------
    features : nn.Module
        The encoder; each of its ``n_stages`` stages halves both axes.
    channels : sequence of int
        Output channels of the encoder's stages (the decoder uses them in reverse).

    Input ``(batch, 1, n_mels, n_frames)``; output the same shape.

    Notebook: 10_self_supervised
    """

    def __init__(self, features: nn.Module, channels: Sequence[int]) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list the encoder's stages")
        self.features = features
        rev = list(channels)[::-1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(rev, rev[1:] + [rev[-1]]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(rev[-1], 1, 3, padding=1))  # linear: log-mels have both signs
        self.decoder = nn.Sequential(*layers)

    def embed(self, x: Tensor) -> Tensor:
        """The encoder's pooled output ``(batch, channels[-1])``."""
        return self.features(_as_image(x)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        x = _as_image(x)
        out = self.decoder(self.features(x))
        if out.shape[-2] < x.shape[-2] or out.shape[-1] < x.shape[-1]:
            out = F.pad(out, (0, max(0, x.shape[-1] - out.shape[-1]), 0, max(0, x.shape[-2] - out.shape[-2])))
        return out[..., : x.shape[-2], : x.shape[-1]]


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------
def _pair_halves(z1: Tensor, z2: Tensor) -> None:
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (batch, dim) with the same shape; got "
                         f"{tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError("InfoNCE needs at least 2 clips per batch: with one there are no negatives")


def _at_least_float32(z: Tensor) -> Tensor:
    """Half-precision embeddings (autocast) widened to float32; float64 kept for exact checks."""
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> Tensor:
    """InfoNCE / NT-Xent, SimCLR's contrastive loss, over both views of a batch.

    The ``2N`` embeddings are L2-normalised; for each one (the anchor), its other view is the
    positive and the remaining ``2N - 2`` embeddings are negatives:

    ``loss_i = -log( exp(s(i, p(i)) / T) / sum_{j != i} exp(s(i, j) / T) )``

    with ``s`` the cosine similarity and ``T`` the temperature, averaged over all ``2N`` anchors
    (both directions). Computed as a cross-entropy over the similarity matrix whose diagonal
    (each anchor with itself) is removed.

    Parameters
    ----------
    z1, z2 : Tensor, shape (batch, dim)
        Row ``i`` of each is a view of clip ``i``.
    temperature : float
        ``T > 0``; small values sharpen the softmax over candidates.

    Returns
    -------
    Tensor, scalar (float32 under autocast; float64 for float64 inputs)

    Notebook: 10_self_supervised
    """
    _pair_halves(z1, z2)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(_at_least_float32(torch.cat([z1, z2])), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, positives)


def alignment_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Positives only: ``mean(1 - cos(z1_i, z2_i))``, no negatives (the degenerate objective).

    Minimised by mapping every clip to the same point, which is what it does unless something
    else (negatives, a stop-gradient, a predictor) prevents it: the collapse demonstration.

    Notebook: 10_self_supervised
    """
    _pair_halves(z1, z2)
    return (1 - F.cosine_similarity(_at_least_float32(z1), _at_least_float32(z2), dim=1)).mean()


def embedding_spread(z: Tensor) -> float:
    """How spread out a batch of embeddings is: ``sqrt(dim) * mean_d std_batch(normalised z)``.

    The std (over the batch) of each coordinate of the L2-normalised embeddings, averaged over
    coordinates and scaled by ``sqrt(dim)``: about 1 for directions spread over the sphere, 0
    when every clip maps to the same direction (collapse). Chen & He (2021) watch the same
    quantity (unscaled, against ``1 / sqrt(dim)``).

    Parameters
    ----------
    z : Tensor, shape (batch, dim), batch >= 2

    Returns
    -------
    float

    Notebook: 10_self_supervised
    """
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"z must be (batch, dim) with batch >= 2, got {tuple(z.shape)}")
    unit = F.normalize(z.detach().float(), dim=1)
    return float(unit.std(dim=0).mean() * z.shape[1] ** 0.5)


class ContrastiveLoss(nn.Module):
    """``fit``'s loss for :class:`AugmentedPairs` batches: InfoNCE (or positives only) + a spread log.

    ``loss(z, ignored)`` splits ``z`` (``2N`` rows, view 1 of every clip first) into its two
    halves. In training mode each call appends :func:`embedding_spread` of ``z`` to
    ``self.spreads`` so the run's spread can be read per epoch (:meth:`spread_per_epoch`).

    Parameters
    ----------
    temperature : float
        InfoNCE's temperature.
    negatives : bool
        ``False`` drops the negatives: :func:`alignment_loss` (it collapses).

    Notebook: 10_self_supervised
    """

    def __init__(self, temperature: float = 0.1, negatives: bool = True) -> None:
        super().__init__()
        self.temperature = temperature
        self.negatives = negatives
        self.spreads: list[float] = []

    def forward(self, z: Tensor, targets: Any = None) -> Tensor:
        if z.shape[0] % 2:
            raise ValueError(f"expected 2N rows (two views of N clips), got {z.shape[0]}")
        if self.training:
            self.spreads.append(embedding_spread(z))
        z1, z2 = z.chunk(2)
        return info_nce(z1, z2, self.temperature) if self.negatives else alignment_loss(z1, z2)

    def spread_per_epoch(self, steps_per_epoch: int) -> np.ndarray:
        """Mean spread of each epoch's steps, shape (epochs,)."""
        values = np.asarray(self.spreads, dtype=np.float64)
        epochs = len(values) // steps_per_epoch
        if epochs == 0:
            raise ValueError(f"{len(values)} steps logged, fewer than one epoch of {steps_per_epoch}")
        return values[: epochs * steps_per_epoch].reshape(epochs, steps_per_epoch).mean(axis=1)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, negatives={self.negatives}"


# --------------------------------------------------------------------------------------------
# The linear probe
# --------------------------------------------------------------------------------------------
@dataclass
class LinearProbe:
    """A standardise -> logistic-regression probe and how its regularisation was chosen.

    Attributes
    ----------
    pipeline : sklearn.pipeline.Pipeline
        ``StandardScaler`` (fitted on the probe's training features only) then
        ``LogisticRegression(C=c)``.
    c : float
        Inverse regularisation strength chosen on validation.
    val_accuracy : dict of float to float
        Validation accuracy of every ``C`` tried.
    """

    pipeline: Any
    c: float
    val_accuracy: dict[float, float] = field(default_factory=dict)

    def predict(self, features: Any) -> np.ndarray:
        """Class indices, shape (n_clips,)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self.pipeline.predict(_numpy(features))

    def accuracy(self, features: Any, labels: Any) -> float:
        """Fraction of ``labels`` the probe predicts."""
        return float(np.mean(self.predict(features) == _numpy(labels)))


def _numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu().float() if hasattr(x, "detach") else x)


def fit_linear_probe(train_features: Any, train_labels: Any, val_features: Any, val_labels: Any,
                     cs: Iterable[float] = (0.01, 0.1, 1.0, 10.0), max_iter: int = 2000) -> LinearProbe:
    """A linear classifier on frozen embeddings, its regularisation chosen on validation.

    The features are standardised with the training subset's mean and std (a probe on raw
    embeddings mostly measures their scale), then a multinomial logistic regression is fitted
    for each ``C`` (scikit-learn's inverse L2 strength); the ``C`` with the best validation
    accuracy is kept (ties: the strongest regularisation, the smallest ``C``).

    Parameters
    ----------
    train_features : array-like, shape (n_train, dim)
    train_labels : array-like of int, shape (n_train,)
    val_features : array-like, shape (n_val, dim)
    val_labels : array-like of int, shape (n_val,)
    cs : iterable of float
        Candidate ``C`` values.
    max_iter : int
        L-BFGS iterations per fit.

    Returns
    -------
    LinearProbe

    Notebook: 10_self_supervised
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x_train, y_train = _numpy(train_features), _numpy(train_labels).astype(np.int64)
    x_val, y_val = _numpy(val_features), _numpy(val_labels).astype(np.int64)
    if x_train.ndim != 2 or x_train.shape[0] != y_train.size:
        raise ValueError(f"train_features must be (n, dim) with n = len(train_labels); got "
                         f"{x_train.shape} for {y_train.size} labels")
    if np.unique(y_train).size < 2:
        raise ValueError("the probe's training subset holds a single class: draw at least one "
                         "clip per class (labelled_subset does)")
    scores: dict[float, float] = {}
    best = None
    # A (clips x 64) problem is far too small for parallel BLAS: extra threads only spin, and on a
    # busy 2-core machine they made these fits ~6x slower (measured). One thread, then restored.
    with threadpool_limits(1):
        for c in sorted(float(c) for c in cs):
            pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
            pipeline.fit(x_train, y_train)
            scores[c] = float(np.mean(pipeline.predict(x_val) == y_val))
            if best is None or scores[c] > scores[best[0]]:
                best = (c, pipeline)
    if best is None:
        raise ValueError("cs is empty: give at least one C to try, e.g. (0.01, 0.1, 1.0, 10.0)")
    return LinearProbe(best[1], best[0], scores)
