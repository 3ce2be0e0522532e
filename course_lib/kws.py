"""Keyword spotting: the 12-class data protocol, a streaming front end, detection and its metrics.

* Data: :func:`load_kws_split` builds the standard Speech Commands v2 12-class task (ten keywords,
  ``_unknown_`` for every other word, ``_silence_`` cut from the background-noise recordings) from
  the official split lists; where Speech Commands cannot be had (the ``ci`` profile, no network) it
  builds the same protocol from the offline sets (``spoken_words`` keywords, ``spoken_digits`` and the
  remaining words as unknown, synthetic coloured noise as silence).
* Features: :func:`kws_log_mel` (uncentred frames, fixed 0 dB reference, no ``top_db`` floor: every
  frame depends only on its own samples, so a stream computes exactly the offline frames).
* Streaming: :func:`offline_posteriors` and :class:`StreamingKWS` give the classifier's posteriors on
  one-second windows every ``stride_frames`` frames, from a whole recording or chunk by chunk.
* Decisions: :func:`smooth_posteriors`, :func:`detect_keywords` (threshold + refractory suppression),
  :func:`score_detections` (hits, misses, false accepts against known event times),
  :func:`frr_at_fa` (false-reject rate at a fixed false-alarm rate) and :func:`make_stream` (a long
  recording with keywords at known times).
* The voice "customer service" demo: :data:`INTENTS` and :func:`respond`.

Notebook: 12_keyword_spotting
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.features import LogMel

__all__ = [
    "STANDARD_KEYWORDS",
    "OFFLINE_KEYWORDS",
    "UNKNOWN",
    "SILENCE",
    "INTENTS",
    "NOT_CAUGHT",
    "KWSData",
    "Response",
    "StreamingKWS",
    "detect_keywords",
    "frr_at_fa",
    "kws_log_mel",
    "load_kws_split",
    "make_stream",
    "offline_posteriors",
    "respond",
    "score_detections",
    "smooth_posteriors",
]

STANDARD_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
"""The ten keywords of the standard Speech Commands 12-class protocol (Warden 2018)."""
OFFLINE_KEYWORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "kilo", "lima")
"""The offline stand-in's keywords: the first ten words of the ``spoken_words`` set."""
UNKNOWN = "_unknown_"
SILENCE = "_silence_"

# spoken keyword -> (intent, answer) for the voice "customer service" demo, for both keyword sets.
INTENTS: dict[str, tuple[str, str]] = {
    "yes": ("confirm", "Done: your request is confirmed."),
    "no": ("decline", "All right, I have cancelled that request."),
    "up": ("upgrade_plan", "Your plan can be upgraded to 50 GB for 5 euros more a month."),
    "down": ("downgrade_plan", "I can move you to the 10 GB plan from next month."),
    "left": ("previous_menu", "Back to the previous menu."),
    "right": ("next_menu", "On to the next menu."),
    "on": ("activate_roaming", "Roaming is now switched on."),
    "off": ("deactivate_roaming", "Roaming is now switched off."),
    "stop": ("end_call", "Thank you for calling. Goodbye!"),
    "go": ("continue", "Let's continue."),
    "alpha": ("account_balance", "Your balance is 42 euros and 17 cents."),
    "bravo": ("billing", "Your last bill was sent on the first of the month."),
    "charlie": ("cancel_order", "Your open order has been cancelled."),
    "delta": ("delivery_status", "Your parcel is out for delivery today."),
    "echo": ("repeat", "Repeating the last message."),
    "foxtrot": ("forward_call", "Forwarding you to an agent."),
    "golf": ("opening_hours", "We are open from 8 am to 8 pm, Monday to Saturday."),
    "hotel": ("help", "You can say a keyword for balance, billing, orders or delivery."),
    "kilo": ("data_usage", "You have used 3.2 GB of your 10 GB this month."),
    "lima": ("language", "Language set to English."),
}
NOT_CAUGHT = "Sorry, I didn't catch that. Could you say it again?"


# --------------------------------------------------------------------------------------- data
@dataclass
class KWSData:
    """One split of a 12-class keyword-spotting task, decoded into memory.

    Attributes
    ----------
    waveforms : Tensor, shape (n_clips, 1, n_samples)
        float32 clips of one second at ``sr``.
    labels : Tensor, shape (n_clips,)
        int64 indices into ``classes``.
    classes : list of str
        The keywords, then ``UNKNOWN``, then ``SILENCE``.
    speakers : list of str
        Speaker (or synthetic voice, or ``"noise"``) of each clip.
    words : list of str
        The word spoken in each clip (the unknown clips' own word; ``SILENCE`` for noise).
    real : list of bool
        Whether each clip is a real recording (False for synthetic voices and synthetic noise).
    noise : Tensor, shape (n_noises, n_samples)
        The background-noise recordings silence is cut from (and training mixes in).
    source : str
        ``"real:speech_commands"`` or ``"offline:spoken_words+spoken_digits"``.
    note : str
        What the data is, to print.
    sr : int
    """

    waveforms: Tensor
    labels: Tensor
    classes: list[str]
    speakers: list[str]
    words: list[str]
    real: list[bool]
    noise: Tensor
    source: str
    note: str
    sr: int = 16000

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def dataset(self) -> torch.utils.data.TensorDataset:
        """``(waveform [1, n], label)`` pairs for ``course_lib.train.make_loader``."""
        return torch.utils.data.TensorDataset(self.waveforms, self.labels)


def _coloured_noise(n_samples: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """White, pink (1/f power) and brown (1/f^2 power) noise, each scaled to a peak of 0.5."""
    out = []
    for name, exponent in (("white", 0.0), ("pink", 0.5), ("brown", 1.0)):
        spectrum = np.fft.rfft(rng.standard_normal(n_samples))
        f = np.arange(len(spectrum), dtype=np.float64)
        f[0] = 1.0
        spectrum /= f ** exponent
        spectrum[0] = 0.0
        x = np.fft.irfft(spectrum, n_samples)
        out.append((name, (0.5 * x / np.abs(x).max()).astype(np.float32)))
    return out


def _silence_clips(noise: np.ndarray, n_clips: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_clips`` one-second excerpts of the noise recordings at a random gain in [0, 1]."""
    clips = np.zeros((n_clips, n_samples), np.float32)
    for i in range(n_clips):
        row = noise[rng.integers(len(noise))]
        start = rng.integers(0, row.size - n_samples + 1)
        clips[i] = rng.uniform(0.0, 1.0) * row[start:start + n_samples]
    return clips


def _pick(items: list, n: int, rng: np.random.Generator) -> list:
    if n >= len(items):
        return list(items)
    return [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]


def _balanced_cap(labels: list[int], max_clips: int | None, rng: np.random.Generator) -> list[int]:
    """Indices of at most ``max_clips`` items, as equal a share per class as the classes allow."""
    if max_clips is None or max_clips >= len(labels):
        return list(range(len(labels)))
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    for members in by_class.values():
        rng.shuffle(members)
    kept: list[int] = []
    while len(kept) < max_clips:  # round robin over the classes that still have clips
        progressed = False
        for y in sorted(by_class):
            if by_class[y] and len(kept) < max_clips:
                kept.append(by_class[y].pop())
                progressed = True
        if not progressed:
            break
    return sorted(kept)


def load_kws_split(split: str, max_clips: int | None = None, sr: int = 16000, seed: int = 0,
                   profile: str | None = None, cache_root: str | None = None) -> KWSData:
    """One split of the 12-class keyword-spotting task, decoded into memory.

    The standard protocol on Speech Commands v2 (``load_dataset("speech_commands", split)``, the
    official ``validation_list.txt``/``testing_list.txt``): ten keywords, ``UNKNOWN`` for the other
    25 words, ``SILENCE`` as one-second excerpts of the ``_background_noise_`` recordings at a random
    gain. Unknown and silence get as many clips as the average keyword (the usual balance; a split
    with fewer than 20 clips per keyword keeps every unknown clip). Where the real data is not
    available (the ``ci`` profile, no network) the same protocol is built from the offline sets:
    keywords :data:`OFFLINE_KEYWORDS` from ``spoken_words``, unknown = its other words and the
    ``spoken_digits`` words, silence = synthetic white, pink and brown noise. Offline, train and
    val are synthetic voices and test is one real speaker.

    Parameters
    ----------
    split : {"train", "val", "test"}
    max_clips : int, optional
        Keep at most this many clips, balanced over the classes (the profile's
        ``budget.max_clips``).
    sr : int
        Sample rate in Hz.
    seed : int
        Seed of the unknown subsample, the silence excerpts and the ``max_clips`` subset.
    profile : {"ci", "laptop", "gpu"}, optional
        Default: the runtime's.
    cache_root : path-like, optional
        Data cache (default: the runtime's).

    Returns
    -------
    KWSData

    Notebook: 12_keyword_spotting
    """
    from course_lib.data import load_dataset
    from course_lib.data import download

    rng = np.random.default_rng([seed, ("train", "val", "test").index(split)])
    n = int(sr)
    base = load_dataset("speech_commands", split, sr=sr, profile=profile, duration=1.0, cache_root=cache_root)
    if base.source.startswith("real:"):
        present = sorted({base.classes[y] for y in base.labels})
        keywords = [w for w in STANDARD_KEYWORDS if w in present]
        note = base.note
        if len(keywords) < 2:
            if download.fixture_mirror() is None:
                raise ValueError(
                    f"this copy of Speech Commands holds {len(keywords)} of the ten keywords "
                    f"{STANDARD_KEYWORDS} in its {split} split: is it complete? Delete its folder in the "
                    "data cache and load it again to download it afresh.")
            keywords = present[: max(1, min(10, len(present) - 2))]
            print(f"keyword spotting: the test fixture has none of the standard keywords; its words "
                  f"{keywords} stand in for them, the rest are unknown", flush=True)
        items = [(r.path, base.classes[r.label], str(r.meta.get("speaker", "")), True) for r in base.records]
        noise_dir = Path(base.records[0].path).parent.parent / "_background_noise_"
        noise_files = sorted(noise_dir.glob("*.wav"))
        if not noise_files:
            raise FileNotFoundError(f"{noise_dir}: no background-noise recordings (*.wav); the silence class "
                                    "is cut from them. Re-download Speech Commands v0.02.")
        from course_lib.audio import load_audio

        noise_rows = [load_audio(p, sr=sr, mono=True)[0].reshape(-1) for p in noise_files]
        noise_names = [p.stem for p in noise_files]
        source = base.source
    else:
        words = load_dataset("spoken_words", split, sr=sr, profile=profile, duration=1.0, cache_root=cache_root)
        keywords = [w for w in OFFLINE_KEYWORDS if w in words.classes]
        items = []
        for clips in (words, base):
            for r in clips.records:
                real = not bool(r.meta.get("synthetic", True))
                items.append((r.path, clips.classes[r.label], str(r.meta.get("group", r.meta.get("speaker", ""))), real))
        noise_named = _coloured_noise(30 * n, np.random.default_rng(1234))  # one noise bank for every split
        noise_rows = [x for _, x in noise_named]
        noise_names = [name for name, _ in noise_named]
        source = f"offline:{words.source.split(':', 1)[1]}+{base.source.split(':', 1)[1]}"
        note = (f"{words.note} Unknown words: the other spoken_words words and {base.note} "
                "Silence: synthetic white, pink and brown noise (no real background recordings offline).")

    classes = list(keywords) + [UNKNOWN, SILENCE]
    keyword_items = [it for it in items if it[1] in keywords]
    unknown_items = [it for it in items if it[1] not in keywords]
    per_keyword = len(keyword_items) / max(1, len(keywords))
    n_balance = max(1, int(round(per_keyword)))
    if per_keyword >= 20:
        unknown_items = _pick(unknown_items, n_balance, rng)
    chosen = keyword_items + unknown_items
    labels = [classes.index(it[1]) if it[1] in keywords else classes.index(UNKNOWN) for it in chosen]
    labels += [classes.index(SILENCE)] * n_balance
    keep = _balanced_cap(labels, max_clips, rng)

    from course_lib.audio import load_audio

    noise_len = min(x.size for x in noise_rows)
    noise = np.stack([x[:noise_len] for x in noise_rows]).astype(np.float32)
    if noise_len < n:
        raise ValueError(f"the background-noise recordings are shorter ({noise_len} samples) than one clip ({n})")
    silence = _silence_clips(noise, n_balance, n, rng)
    waves = np.zeros((len(keep), 1, n), np.float32)
    speakers, spoken, real = [], [], []
    for row, i in enumerate(keep):
        if i < len(chosen):
            path, word, speaker, is_real = chosen[i]
            x = load_audio(path, sr=sr, mono=True)[0].reshape(-1)[:n]
            waves[row, 0, : x.size] = x
            speakers.append(speaker)
            spoken.append(word)
            real.append(is_real)
        else:
            waves[row, 0] = silence[i - len(chosen)]
            speakers.append("noise")
            spoken.append(SILENCE)
            real.append(source.startswith("real:"))
    return KWSData(torch.from_numpy(waves), torch.tensor([labels[i] for i in keep], dtype=torch.int64),
                   classes, speakers, spoken, real, torch.from_numpy(noise), source,
                   f"{note} Noise recordings: {', '.join(noise_names)}.", int(sr))


# ----------------------------------------------------------------------------------- features
def kws_log_mel(sr: int = 16000, n_mels: int = 40, device: torch.device | str | None = None) -> LogMel:
    """The course's keyword-spotting log-mel: 40 ms windows every 20 ms, 40 bands from 20 Hz to 4 kHz.

    The front end of "Hello Edge" (Zhang et al. 2017). Uncentred frames (frame ``t`` reads samples
    ``t * hop_length ... t * hop_length + n_fft - 1``), a fixed 0 dB reference and no ``top_db``
    floor: each frame depends on its own samples only, so a stream computes the same frames as the
    whole recording. 4 kHz is the telephone band of the offline real speaker and holds the formants
    that tell words apart. One second gives ``1 + (sr - n_fft) // hop_length = 49`` frames.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    n_mels : int
        Mel bands.
    device : torch.device or str, optional

    Returns
    -------
    LogMel

    Notebook: 12_keyword_spotting
    """
    return LogMel(sr, n_fft=int(0.04 * sr), hop_length=int(0.02 * sr), n_mels=n_mels, center=False,
                  fmin=20.0, fmax=4000.0, top_db=None, device=device)


# ---------------------------------------------------------------------------------- streaming
def _window_posteriors(model: nn.Module, frames: Tensor, window_frames: int, stride_frames: int) -> Tensor:
    """Softmax of ``model`` on windows ``frames[:, j*stride : j*stride + window]`` -> (n_windows, C)."""
    n_windows = (frames.shape[-1] - window_frames) // stride_frames + 1
    if n_windows <= 0:
        return torch.zeros(0, 0)
    windows = frames.unfold(-1, window_frames, stride_frames)[:, :n_windows]   # (n_mels, n_windows, W)
    return torch.softmax(model(windows.permute(1, 0, 2).contiguous()).float(), dim=-1)


@torch.no_grad()
def offline_posteriors(model: nn.Module, log_mel: LogMel, waveform: Tensor, window_frames: int,
                       stride_frames: int, batch_size: int = 256) -> Tensor:
    """Class posteriors on every window of a whole recording: the reference for :class:`StreamingKWS`.

    Window ``j`` holds frames ``j * stride_frames ... j * stride_frames + window_frames - 1`` of the
    recording's (uncentred) log-mel; its decision can be made once its last frame's samples have
    arrived, at ``((j * stride_frames + window_frames - 1) * hop_length + n_fft) / sr`` seconds.

    Parameters
    ----------
    model : nn.Module
        Log-mel ``(batch, n_mels, window_frames)`` -> logits ``(batch, n_classes)``; run in eval mode.
    log_mel : LogMel
        With ``center=False`` (:func:`kws_log_mel`).
    waveform : Tensor, shape (n_samples,) or (1, n_samples)
    window_frames, stride_frames : int
        Window length and step in frames.
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    Tensor, shape (n_windows, n_classes), on the CPU.

    Notebook: 12_keyword_spotting
    """
    if log_mel.center:
        raise ValueError("offline_posteriors needs uncentred frames (LogMel(..., center=False)): a centred "
                         "frame reads half a window ahead and pads the recording's ends")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        frames = log_mel.to(device)(waveform.reshape(1, -1).to(device))[0]
        n_windows = (frames.shape[-1] - window_frames) // stride_frames + 1
        outs = []
        for start in range(0, max(n_windows, 0), batch_size):
            first = start * stride_frames
            last = (min(start + batch_size, n_windows) - 1) * stride_frames + window_frames
            outs.append(_window_posteriors(model, frames[:, first:last], window_frames, stride_frames).cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0, 0)


class StreamingKWS:
    """Run a keyword classifier on a live stream: audio in chunks of any size, posteriors out.

    Keeps the samples not yet framed and the last ``window_frames`` log-mel frames; each complete
    frame is computed from its own ``n_fft`` samples once they have arrived, and every
    ``stride_frames`` new frames the classifier runs on the last ``window_frames``. The outputs are
    those of :func:`offline_posteriors` on the whole recording, window for window.

    Parameters
    ----------
    model : nn.Module
        Log-mel ``(batch, n_mels, window_frames)`` -> logits; put in eval mode.
    log_mel : LogMel
        With ``center=False``.
    window_frames, stride_frames : int

    Notebook: 12_keyword_spotting
    """

    def __init__(self, model: nn.Module, log_mel: LogMel, window_frames: int, stride_frames: int) -> None:
        if log_mel.center:
            raise ValueError("StreamingKWS needs uncentred frames (LogMel(..., center=False))")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.log_mel = log_mel.to(self.device)
        self.window_frames, self.stride_frames = int(window_frames), int(stride_frames)
        self.n_fft, self.hop_length = log_mel.n_fft, log_mel.hop_length
        self.reset()

    def reset(self) -> None:
        """Forget the stream (start a new one)."""
        self.samples = torch.zeros(0, device=self.device)
        self.frames = torch.zeros(self.log_mel.n_mels, 0, device=self.device)
        self.frames_seen = 0          # frames computed so far in the stream
        self.next_window_end = self.window_frames   # frame count at which the next window is complete

    @torch.no_grad()
    def process(self, chunk: Tensor) -> Tensor:
        """Feed the next samples; return the posteriors of the windows they complete.

        Parameters
        ----------
        chunk : Tensor, shape (n,)
            The next ``n`` samples (any ``n >= 0``).

        Returns
        -------
        Tensor, shape (n_new_windows, n_classes), on the CPU (``n_new_windows`` may be 0).
        """
        self.samples = torch.cat([self.samples, chunk.reshape(-1).to(self.device, torch.float32)])
        n_new = 0 if self.samples.numel() < self.n_fft else 1 + (self.samples.numel() - self.n_fft) // self.hop_length
        if n_new == 0:
            return torch.zeros(0, 0)
        used = (n_new - 1) * self.hop_length + self.n_fft
        new_frames = self.log_mel(self.samples[:used].reshape(1, -1))[0]
        self.samples = self.samples[n_new * self.hop_length:]
        # keep the frames the next windows can still reach
        self.frames = torch.cat([self.frames, new_frames], dim=-1)
        first_kept = self.frames_seen + n_new - self.frames.shape[-1]   # stream index of self.frames[:, 0]
        self.frames_seen += n_new
        outs = []
        while self.next_window_end <= self.frames_seen:
            start = self.next_window_end - self.window_frames - first_kept
            window = self.frames[:, start:start + self.window_frames]
            outs.append(_window_posteriors(self.model, window, self.window_frames, 1))
            self.next_window_end += self.stride_frames
        keep_from = self.next_window_end - self.window_frames - first_kept
        self.frames = self.frames[:, max(0, keep_from):]
        return torch.cat(outs).cpu() if outs else torch.zeros(0, 0)


# ---------------------------------------------------------------------------------- decisions
def smooth_posteriors(posteriors: np.ndarray | Tensor, n_smooth: int) -> np.ndarray:
    """Causal moving average of each class's posterior over the last ``n_smooth`` outputs.

    ``p'_t = mean(p_{max(0, t - n_smooth + 1)} ... p_t)``: at the start of the stream, the mean of
    the outputs so far (Chen, Parada & Heigold 2014); it never reads a future output.

    Parameters
    ----------
    posteriors : array, shape (n_steps, n_classes)
    n_smooth : int
        Window length in outputs (1: no smoothing).

    Returns
    -------
    ndarray, shape (n_steps, n_classes), float64

    Notebook: 12_keyword_spotting
    """
    p = np.asarray(posteriors.detach().cpu() if isinstance(posteriors, Tensor) else posteriors, dtype=np.float64)
    if n_smooth < 1:
        raise ValueError(f"n_smooth must be >= 1 output; got {n_smooth}")
    csum = np.cumsum(np.concatenate([np.zeros((1, p.shape[1])), p]), axis=0)
    t = np.arange(p.shape[0])
    start = np.maximum(0, t - n_smooth + 1)
    return (csum[t + 1] - csum[start]) / (t + 1 - start)[:, None]


def detect_keywords(posteriors: np.ndarray | Tensor, n_smooth: int, threshold: float, refractory: int,
                    keyword_indices: Sequence[int]) -> list[tuple[int, int]]:
    """Keyword detections in a posterior track: smooth, threshold, then suppress.

    At each step ``t`` (in order), the smoothed posteriors (:func:`smooth_posteriors`) of the
    keyword classes are compared: if the best one is ``>= threshold`` and ``t`` is not within
    ``refractory`` steps after the previous detection, a detection ``(t, class)`` is made and the
    next ``refractory`` steps (``t + 1 ... t + refractory``) can make none.

    Parameters
    ----------
    posteriors : array, shape (n_steps, n_classes)
        Class posteriors per step (softmax outputs).
    n_smooth : int
        Smoothing window in steps.
    threshold : float
        Minimum smoothed posterior of a keyword.
    refractory : int
        Steps after a detection in which no other detection is made.
    keyword_indices : sequence of int
        The classes that are keywords (unknown and silence are never detected).

    Returns
    -------
    list of (int, int)
        ``(step, class)`` of each detection, in time order.

    Notebook: 12_keyword_spotting
    """
    smoothed = smooth_posteriors(posteriors, n_smooth)
    keys = np.asarray(list(keyword_indices), dtype=np.int64)
    detections: list[tuple[int, int]] = []
    blocked_until = -1
    for t in range(smoothed.shape[0]):
        if t <= blocked_until:
            continue
        best = int(keys[np.argmax(smoothed[t, keys])])
        if smoothed[t, best] >= threshold:
            detections.append((t, best))
            blocked_until = t + refractory
    return detections


def score_detections(detections: Sequence[tuple[float, int]], events: Sequence[tuple[float, float, int]],
                     tolerance_s: float = 0.5) -> dict[str, int]:
    """Count hits, misses and false accepts of detections against events with known times.

    A detection ``(time_s, class)`` is a hit when an event of the same class, not yet hit, spans it:
    ``start_s <= time_s <= end_s + tolerance_s`` (a streaming decision comes after the word). Every
    other detection is a false accept: in noise or other speech, the wrong keyword, or a second
    detection of an event already hit. An event without a hit is a miss.

    Parameters
    ----------
    detections : sequence of (float, int)
        Detection time in seconds and class.
    events : sequence of (float, float, int)
        Start and end in seconds and class of each keyword in the recording.
    tolerance_s : float
        How long after an event's end a detection still counts for it, in seconds.

    Returns
    -------
    dict
        ``hits``, ``misses``, ``false_accepts``, ``n_events``, ``n_detections``.

    Notebook: 12_keyword_spotting
    """
    hit = [False] * len(events)
    false_accepts = 0
    for time_s, cls in sorted(detections, key=lambda d: d[0]):
        for i, (start_s, end_s, event_cls) in enumerate(events):
            if not hit[i] and event_cls == cls and start_s <= time_s <= end_s + tolerance_s:
                hit[i] = True
                break
        else:
            false_accepts += 1
    hits = sum(hit)
    return {"hits": hits, "misses": len(events) - hits, "false_accepts": false_accepts,
            "n_events": len(events), "n_detections": len(detections)}


def frr_at_fa(positive_scores: np.ndarray | Sequence[float], negative_scores: np.ndarray | Sequence[float],
              fa_rate: float) -> tuple[float, float]:
    """False-reject rate at a fixed false-alarm rate, with the threshold picked on the negatives.

    A clip is accepted when its score is strictly above the threshold. The threshold is the lowest
    one whose false-alarm rate (accepted negatives / negatives) is at most ``fa_rate``: with
    ``m = floor(fa_rate * n_negatives)`` false alarms allowed, it is the ``(m + 1)``-th highest
    negative score (``-inf`` when every negative may be accepted). The false-reject rate is the
    share of positives not accepted, ``mean(positive <= threshold)``.

    Parameters
    ----------
    positive_scores : array, shape (n_positives,)
        Scores (e.g. the keyword's posterior) of clips of the keyword.
    negative_scores : array, shape (n_negatives,)
        Scores of every other clip (other keywords, unknown, silence).
    fa_rate : float
        Allowed false-alarm rate, in [0, 1].

    Returns
    -------
    frr : float
        False-reject rate at that threshold.
    threshold : float

    Notebook: 12_keyword_spotting
    """
    pos = np.asarray(positive_scores, dtype=np.float64).reshape(-1)
    neg = np.asarray(negative_scores, dtype=np.float64).reshape(-1)
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"frr_at_fa needs positives and negatives; got {pos.size} and {neg.size}")
    if not 0.0 <= fa_rate <= 1.0:
        raise ValueError(f"fa_rate is a rate in [0, 1]; got {fa_rate}")
    allowed = int(math.floor(fa_rate * neg.size + 1e-9))
    threshold = -np.inf if allowed >= neg.size else float(np.sort(neg)[::-1][allowed])
    return float(np.mean(pos <= threshold)), float(threshold)


def make_stream(keyword_clips: Sequence[tuple[Tensor | np.ndarray, int]], filler_clips: Sequence[Tensor | np.ndarray],
                noise: Tensor | np.ndarray, sr: int, gap_s: tuple[float, float] = (1.0, 3.0),
                snr_db: float = 20.0, rng: np.random.Generator | int | None = 0
                ) -> tuple[np.ndarray, list[tuple[float, float, int]]]:
    """A long recording with keywords at known times among other speech and background noise.

    The keyword clips and the filler clips (other words, sentences) are placed in a random order,
    separated by gaps drawn uniformly from ``gap_s``; background noise runs under everything at
    ``snr_db`` relative to the speech's average power.

    Parameters
    ----------
    keyword_clips : sequence of (waveform, class)
        Held-out keyword clips and their classes.
    filler_clips : sequence of waveform
        Held-out non-keyword speech.
    noise : array, shape (n_noises, n_samples) or (n_samples,)
        Background noise, tiled to the recording's length (one recording drawn per stream).
    sr : int
        Sample rate in Hz.
    gap_s : tuple of float
        Range of the pause before each clip, in seconds.
    snr_db : float
        Speech-to-noise ratio of the whole recording, in dB.
    rng : numpy Generator or int, optional

    Returns
    -------
    recording : ndarray, shape (n_samples,), float32
    events : list of (float, float, int)
        ``(start_s, end_s, class)`` of every keyword clip in the recording.

    Notebook: 12_keyword_spotting
    """
    rng = np.random.default_rng(rng)
    as_np = lambda x: np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float32).reshape(-1)
    pieces = [(as_np(w), int(c)) for w, c in keyword_clips] + [(as_np(w), -1) for w in filler_clips]
    order = rng.permutation(len(pieces))
    parts, events, position = [], [], 0
    for i in order:
        gap = int(rng.uniform(*gap_s) * sr)
        parts.append(np.zeros(gap, np.float32))
        position += gap
        clip, cls = pieces[i]
        parts.append(clip)
        if cls >= 0:
            events.append((position / sr, (position + clip.size) / sr, cls))
        position += clip.size
    parts.append(np.zeros(int(gap_s[1] * sr), np.float32))
    speech = np.concatenate(parts)
    bank = np.asarray(noise.detach().cpu() if isinstance(noise, Tensor) else noise, dtype=np.float32)
    bank = bank.reshape(-1, bank.shape[-1])
    background = np.resize(bank[rng.integers(len(bank))], speech.size)
    speech_power = float(np.mean(np.concatenate([p[0] for p in pieces]) ** 2))
    gain = math.sqrt(speech_power / (10 ** (snr_db / 10)) / max(float(np.mean(background ** 2)), 1e-20))
    return (speech + gain * background).astype(np.float32), events


# ------------------------------------------------------------------------- the intent demo
@dataclass
class Response:
    """What the voice assistant understood and answers.

    Attributes
    ----------
    keyword : str or None
        The keyword heard (None: below the threshold, or not a keyword).
    intent : str or None
    answer : str
    confidence : float
        The model's probability of its best class.
    best_class : str
        The most probable class (a keyword, unknown or silence).
    """

    keyword: str | None
    intent: str | None
    answer: str
    confidence: float
    best_class: str = field(default="")


def respond(probabilities: np.ndarray | Tensor, classes: Sequence[str], threshold: float) -> Response:
    """Spoken keyword -> intent -> answer, or "didn't catch that" when unsure.

    Parameters
    ----------
    probabilities : array, shape (n_classes,)
        The classifier's posteriors for one utterance.
    classes : sequence of str
        Class names; keywords are those in :data:`INTENTS`.
    threshold : float
        Minimum probability to act on a keyword; below it (or when the best class is unknown or
        silence) the answer is :data:`NOT_CAUGHT`.

    Returns
    -------
    Response

    Notebook: 12_keyword_spotting
    """
    p = np.asarray(probabilities.detach().cpu() if isinstance(probabilities, Tensor) else probabilities,
                   dtype=np.float64).reshape(-1)
    if p.size != len(classes):
        raise ValueError(f"{p.size} probabilities for {len(classes)} classes")
    best = int(np.argmax(p))
    name = classes[best]
    if name in INTENTS and p[best] >= threshold:
        intent, answer = INTENTS[name]
        return Response(name, intent, answer, float(p[best]), name)
    return Response(None, None, NOT_CAUGHT, float(p[best]), name)
