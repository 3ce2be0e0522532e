"""Music classification helpers: tracks cut into segments, track-level decisions, MFCC statistics.

A music classifier sees fixed-length *segments* (a few seconds each) but is judged per *track*
(a 30-s GTZAN clip, or one piece of the offline ``music_styles`` set):

* :func:`segment` cuts one signal into non-overlapping (or hopped) segments;
  :func:`segment_dataset` does it for a whole split and remembers which track every segment came
  from (:class:`SegmentedSplit`).
* :func:`shared_tracks` / :func:`assert_tracks_disjoint`: the segments of one track must never
  straddle two splits, or the test accuracy partly measures recognising a recording already heard.
* :func:`track_posteriors` turns segment logits into one decision per track: the mean of the
  segments' softmax posteriors (the exercise of the notebook); :func:`track_labels` gives each
  track's label.
* :func:`mfcc_statistics`: the classic non-deep baseline's feature (mean and standard deviation of
  each MFCC over frames, Tzanetakis & Cook 2002), batched on the device with ``features.mfcc``.
* :func:`embed`: a CNN's pooled penultimate features (for an embedding map).

Shapes: a batch of waveforms is ``[batch, 1, samples]`` or ``[batch, samples]``; segment logits
``(n_segments, n_classes)``; track names are strings.

Notebook: 15_music_classification
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from course_lib import features

__all__ = [
    "SegmentedSplit",
    "segment",
    "segment_dataset",
    "shared_tracks",
    "assert_tracks_disjoint",
    "track_posteriors",
    "track_labels",
    "mfcc_statistics",
    "embed",
]

TRACK_KEYS = ("track", "piece", "path")  # the meta field that names a clip's track, first found wins


def segment(x: Any, sr: float, segment_s: float, hop_s: float | None = None) -> Any:
    """Cut a signal into fixed-length segments.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (n_samples,) or (1, n_samples)
        One mono signal.
    sr : float
        Sample rate, Hz.
    segment_s : float
        Segment length, seconds (``round(segment_s * sr)`` samples).
    hop_s : float, optional
        Seconds between segment starts; default ``segment_s`` (no overlap).

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (n_segments, segment_samples)
        ``n_segments = 1 + (n_samples - segment_samples) // hop_samples``; the incomplete tail is
        dropped. A signal shorter than one segment is zero-padded to one segment (a track is
        never lost).
    """
    seg = int(round(segment_s * sr))
    hop = int(round((hop_s if hop_s is not None else segment_s) * sr))
    if seg < 1 or hop < 1:
        raise ValueError(f"segment_s={segment_s} and hop_s={hop_s} must each be at least one sample at sr={sr}")
    is_torch = isinstance(x, Tensor)
    t = x if is_torch else torch.from_numpy(np.asarray(x))
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 1:
        raise ValueError(f"segment expects one mono signal (n_samples,) or (1, n_samples); got shape {tuple(t.shape)}")
    if t.shape[0] < seg:
        t = nn.functional.pad(t, (0, seg - t.shape[0]))
    out = t.unfold(0, seg, hop).contiguous()
    return out if is_torch else out.numpy()


@dataclass
class SegmentedSplit:
    """One split cut into segments; every segment knows its track.

    Attributes
    ----------
    waveforms : torch.Tensor, float32 [n_segments, 1, segment_samples]
    labels : torch.Tensor, int64 [n_segments]
    tracks : list of str
        The track of every segment (``len == n_segments``).
    classes : list of str
    sr : int
        Hz.
    segment_s : float
        Seconds per segment.
    source : str
        What was loaded (``"real:gtzan"``, ``"offline:music_styles"``...).
    track_meta : dict of str to dict
        The first clip's metadata of each track (e.g. ``piece``, ``instrument``).
    """

    waveforms: Tensor
    labels: Tensor
    tracks: list[str]
    classes: list[str]
    sr: int
    segment_s: float
    source: str = ""
    track_meta: dict[str, dict] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks."""
        return len(set(self.tracks))


def _track_name(meta: dict, track_key: str | None) -> str:
    if track_key is not None:
        if track_key not in meta:
            raise KeyError(f"clip metadata has no {track_key!r} field (it has {sorted(meta)})")
        return str(meta[track_key])
    for key in TRACK_KEYS:
        if key in meta:
            return str(meta[key])
    raise KeyError(f"clip metadata names no track (looked for {TRACK_KEYS}; it has {sorted(meta)})")


def segment_dataset(dataset: Any, segment_s: float, hop_s: float | None = None, *,
                    track_key: str | None = None, max_tracks: int | None = None,
                    seed: int = 0) -> SegmentedSplit:
    """Decode a split and cut every clip into segments, keeping each segment's track.

    Parameters
    ----------
    dataset : AudioDataset
        Items ``(waveform [1, samples], label, meta)`` with ``.classes``, ``.sr`` and ``.source``.
    segment_s, hop_s : float
        See :func:`segment`.
    track_key : str, optional
        The meta field naming a clip's track. Default: the first of ``"track"`` (GTZAN),
        ``"piece"`` (offline music sets), ``"path"`` (one file, one track) present. Clips of one
        track (several excerpts of one piece) are one track.
    max_tracks : int, optional
        Keep this many tracks, drawn at random with ``seed`` (whole tracks: a budget never splits
        one).
    seed : int
        Seed of that draw.

    Returns
    -------
    SegmentedSplit
    """
    metas = [dict(r.meta, path=str(r.path)) for r in dataset.records] if hasattr(dataset, "records") else None
    if metas is None:
        metas = [dataset[i][2] for i in range(len(dataset))]
    names = [_track_name(m, track_key) for m in metas]
    order = sorted(set(names))
    if max_tracks is not None and max_tracks < len(order):
        keep = np.random.default_rng(seed).choice(len(order), size=max_tracks, replace=False)
        order = sorted(order[i] for i in keep)
    kept = set(order)
    waves, labels, tracks, track_meta = [], [], [], {}
    for i, name in enumerate(names):
        if name not in kept:
            continue
        x, label, meta = dataset[i]
        if name in track_meta and int(label) != track_meta[name]["label"]:
            raise ValueError(f"track {name!r} has clips with two labels ({track_meta[name]['label']} and {label})")
        track_meta.setdefault(name, dict(meta, label=int(label)))
        segs = segment(x, dataset.sr, segment_s, hop_s)
        waves.append(segs)
        labels += [int(label)] * len(segs)
        tracks += [name] * len(segs)
    if not waves:
        raise ValueError(f"{getattr(dataset, 'source', 'dataset')}: no clips to segment")
    return SegmentedSplit(torch.cat(waves).unsqueeze(1).float(), torch.tensor(labels, dtype=torch.int64), tracks,
                          list(dataset.classes), int(dataset.sr), float(segment_s),
                          getattr(dataset, "source", ""), track_meta)


def shared_tracks(*splits: SegmentedSplit | Sequence[str]) -> set[str]:
    """Tracks that appear in more than one of the given splits (segments or track-name lists)."""
    seen: dict[str, int] = {}
    for k, s in enumerate(splits):
        for name in set(s.tracks if isinstance(s, SegmentedSplit) else s):
            seen[name] = seen.get(name, 0) | (1 << k)
    return {name for name, mask in seen.items() if mask & (mask - 1)}


def assert_tracks_disjoint(**splits: SegmentedSplit | Sequence[str]) -> None:
    """Raise ``AssertionError`` naming the tracks whose segments straddle two splits."""
    shared = shared_tracks(*splits.values())
    if shared:
        where = {name: [k for k, s in splits.items()
                        if name in set(s.tracks if isinstance(s, SegmentedSplit) else s)] for name in sorted(shared)}
        listed = ", ".join(f"{n} ({'/'.join(w)})" for n, w in list(where.items())[:5])
        raise AssertionError(f"{len(shared)} track(s) have segments in two splits: {listed}"
                             f"{' ...' if len(shared) > 5 else ''}")


def track_posteriors(segment_logits: Any, tracks: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """One posterior per track: the mean of its segments' softmax posteriors.

    Parameters
    ----------
    segment_logits : array-like, shape (n_segments, n_classes)
        Classifier outputs before the softmax.
    tracks : sequence of str, length n_segments
        The track of each segment (in any order, interleaved or not).

    Returns
    -------
    names : list of str
        The distinct tracks, sorted.
    posteriors : numpy.ndarray, float64, shape (n_tracks, n_classes)
        Row ``i`` is the average over the segments of ``names[i]`` of ``softmax(logits)``; rows sum
        to 1. The track's decision is its ``argmax``.
    """
    z = np.asarray(torch.as_tensor(segment_logits).detach().cpu().double().numpy())
    if z.ndim != 2 or len(tracks) != z.shape[0]:
        raise ValueError(f"segment_logits must be (n_segments, n_classes) with one track per segment; got "
                         f"{z.shape} and {len(tracks)} track names")
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    names, index = np.unique(np.asarray(tracks, dtype=object).astype(str), return_inverse=True)
    sums = np.zeros((len(names), z.shape[1]))
    np.add.at(sums, index, p)
    counts = np.bincount(index, minlength=len(names))
    return [str(n) for n in names], sums / counts[:, None]


def track_labels(labels: Any, tracks: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Each track's label, in :func:`track_posteriors`' order (sorted names); ``ValueError`` if a track has two."""
    y = np.asarray(torch.as_tensor(labels).cpu().numpy()).astype(np.int64)
    out: dict[str, int] = {}
    for name, label in zip(tracks, y.tolist()):
        if out.setdefault(str(name), label) != label:
            raise ValueError(f"track {name!r} has segments with labels {out[str(name)]} and {label}")
    names = sorted(out)
    return names, np.array([out[n] for n in names], dtype=np.int64)


def mfcc_statistics(waveforms: Any, sr: float, n_mfcc: int = 20, n_fft: int = 2048,
                    hop_length: int | None = None, n_mels: int = 128, *, batch_size: int = 256,
                    device: Any = None) -> Tensor:
    """Mean and standard deviation over frames of each MFCC: the classic track descriptor.

    Parameters
    ----------
    waveforms : torch.Tensor or numpy.ndarray, [batch, samples] or [batch, 1, samples]
        Full-scale audio.
    sr, n_mfcc, n_fft, hop_length, n_mels
        MFCC settings (``features.mfcc``: librosa's defaults and numbers).
    batch_size : int
        Clips per batch on the device.
    device : torch.device or str, optional
        Where to compute (default: the waveforms' device).

    Returns
    -------
    torch.Tensor, float32 on the CPU, shape (batch, 2 * n_mfcc)
        ``[mean_0 .. mean_{n_mfcc-1}, std_0 .. std_{n_mfcc-1}]``; the standard deviation is the
        population one (``ddof = 0``, as ``numpy.std``).
    """
    w = torch.as_tensor(waveforms, dtype=torch.float32)
    if w.ndim == 3:
        if w.shape[1] != 1:
            raise ValueError(f"expected mono waveforms [batch, 1, samples]; got {tuple(w.shape)}")
        w = w[:, 0]
    if w.ndim == 1:
        raise ValueError("mfcc_statistics expects a batch [batch, samples]; for one clip pass x[None]")
    dev = torch.device(device) if device is not None else w.device
    out = []
    for chunk in w.split(batch_size):
        m = features.mfcc(chunk.to(dev), sr, n_mfcc, n_fft, hop_length, n_mels)  # (batch, n_mfcc, frames)
        out.append(torch.cat([m.mean(dim=-1), m.std(dim=-1, correction=0)], dim=-1).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def embed(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """A CNN's embedding: its ``features`` output averaged over frequency and time.

    Parameters
    ----------
    model : nn.Module
        Has a ``features`` module mapping ``(batch, 1, n_mels, frames)`` to ``(batch, channels, f, t)``
        (``LogMelCNN``, ``FullyConvClassifier``); run in eval mode on its own device.
    x : torch.Tensor, (n, 1, n_mels, frames) or (n, n_mels, frames)

    Returns
    -------
    torch.Tensor, float32 on the CPU, shape (n, channels)
        The vector the classifier head reads (``LogMelCNN``) or the 1x1 class conv maps
        (``FullyConvClassifier``).
    """
    if not hasattr(model, "features"):
        raise TypeError(f"{type(model).__name__} has no .features stage to embed with")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = []
        for chunk in x.split(batch_size):
            c = chunk.to(device)
            if c.ndim == 3:
                c = c.unsqueeze(1)
            out.append(model.features(c).mean(dim=(2, 3)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)
