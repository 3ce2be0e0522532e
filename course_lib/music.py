"""Symbolic music: MIDI <-> notes <-> piano roll <-> event tokens, sampling, corpus statistics, audio.

Every stage is a mapping:

- ``load_score`` reads a MIDI file into a :class:`Score` (a list of :class:`Note` in seconds, the
  tempo, the key signature); ``write_midi`` writes notes back.
- ``notes_to_roll`` / ``roll_to_notes``: notes <-> a piano roll ``(128, n_steps)`` on a grid of
  ``step_s`` seconds (a sixteenth note at the score's tempo). A plain roll cannot tell a held note
  from the same pitch struck again; the event tokens can.
- :class:`EventTokenizer`: notes <-> a sequence of integer tokens (the MIDI-like event vocabulary of
  Oore et al. 2018 on a grid: ``NOTE_ON(p)``, ``NOTE_OFF(p)``, ``SHIFT(k steps)``), preceded by one
  *condition* token (here the key signature, 12 classes).
- ``sampling_distribution`` turns a model's logits into the distribution one samples from
  (temperature, top-k, nucleus / top-p).
- Statistics that compare generated music with a corpus: pitch-class histograms and their distance,
  note density, pitch entropy, n-gram repetition, key estimation (Krumhansl-Kessler profiles) and the
  longest n-gram shared with the training data (memorisation).
- ``render_notes``: notes -> audio with fluidsynth and the course's General MIDI sound font (the one
  the offline music sets are rendered with); without fluidsynth, pretty_midi's sine synthesiser.

Public API for other notebooks: ``Note``, ``Score``, ``load_score``, ``write_midi``, ``render_notes``,
``notes_to_roll``, ``roll_to_notes``, ``EventTokenizer``, ``chorale_corpus``.

Notebook: 16_music_generation
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "Note",
    "Score",
    "PITCH_NAMES",
    "KEY_NAMES",
    "N_KEYS",
    "pitch_name",
    "load_score",
    "write_midi",
    "notes_to_roll",
    "roll_to_notes",
    "quantise",
    "toy_melody",
    "EventTokenizer",
    "key_signature_class",
    "estimate_key",
    "pitch_class_histogram",
    "histogram_distance",
    "note_density",
    "pitch_entropy",
    "repetition_rate",
    "longest_common_ngram",
    "NgramIndex",
    "sampling_distribution",
    "sample_tokens",
    "TokenWindows",
    "chorale_corpus",
    "render_notes",
]

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# The condition classes: a key signature, named by its major key and the relative minor.
KEY_NAMES = tuple(f"{PITCH_NAMES[k]} / {PITCH_NAMES[(k + 9) % 12].lower()}" for k in range(12))
N_KEYS = 12
DEFAULT_VELOCITY = 80


class Note(NamedTuple):
    """One note: MIDI pitch (0-127), start and end in seconds, MIDI velocity (1-127)."""

    pitch: int
    start_s: float
    end_s: float
    velocity: int = DEFAULT_VELOCITY


def pitch_name(pitch: int) -> str:
    """``60 -> "C4"`` (scientific pitch notation, middle C = C4)."""
    return f"{PITCH_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


@dataclass
class Score:
    """A MIDI file's notes (all non-drum tracks merged, sorted by start, then pitch).

    Attributes
    ----------
    notes : list of Note
    tempo_bpm : float
        The tempo at time 0, quarter notes per minute.
    key_number : int or None
        pretty_midi's key number of the first key signature (0-11 major C..B, 12-23 minor c..b).
    name : str
    """

    notes: list[Note]
    tempo_bpm: float = 120.0
    key_number: int | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def step_s(self) -> float:
        """Seconds per sixteenth note at this score's tempo: the grid of rolls and tokens."""
        return 60.0 / self.tempo_bpm / 4.0

    @property
    def key(self) -> int | None:
        """The key-signature class (0-11, see :func:`key_signature_class`), or None."""
        if self.key_number is None:
            return None
        return key_signature_class(self.key_number % 12, "major" if self.key_number < 12 else "minor")


def load_score(path: str | os.PathLike) -> Score:
    """Read a MIDI file with pretty_midi.

    Raises
    ------
    FileNotFoundError
        The file does not exist (names it).
    ValueError
        pretty_midi cannot parse it (names the file and the parser's message).
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MIDI file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about odd but readable files
            pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types for a broken file
        raise ValueError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    notes = [Note(int(n.pitch), float(n.start), float(n.end), int(n.velocity))
             for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    notes.sort(key=lambda n: (n.start_s, n.pitch))
    _, tempi = pm.get_tempo_changes()
    keys = pm.key_signature_changes
    return Score(notes, float(tempi[0]) if len(tempi) else 120.0,
                 int(keys[0].key_number) if keys else None, path.stem)


def _pretty_midi(notes: Sequence[Note], program: int = 0, tempo_bpm: float = 120.0):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo_bpm))
    inst = pretty_midi.Instrument(program=int(program))
    for n in notes:
        if n.end_s > n.start_s:
            inst.notes.append(pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch),
                                               start=float(n.start_s), end=float(n.end_s)))
    pm.instruments.append(inst)
    return pm


def write_midi(notes: Sequence[Note], path: str | os.PathLike, program: int = 0,
               tempo_bpm: float = 120.0) -> Path:
    """Write ``notes`` as a one-track MIDI file (General MIDI ``program``, 0 = piano); returns the path."""
    path = Path(path)
    _pretty_midi(notes, program, tempo_bpm).write(str(path))
    return path


# --------------------------------------------------------------------------- grid, roll
def quantise(notes: Sequence[Note], step_s: float) -> list[Note]:
    """Snap starts and ends to the nearest multiple of ``step_s`` (a note lasts at least one step)."""
    out = []
    for n in notes:
        start = int(round(n.start_s / step_s))
        end = max(start + 1, int(round(n.end_s / step_s)))
        out.append(Note(int(n.pitch), start * step_s, end * step_s, int(n.velocity)))
    return sorted(out, key=lambda n: (n.start_s, n.pitch))


def notes_to_roll(notes: Sequence[Note], step_s: float, n_steps: int | None = None) -> np.ndarray:
    """Piano roll: ``roll[p, t] = 1`` while pitch ``p`` sounds in step ``t``.

    Step ``t`` covers ``[t * step_s, (t + 1) * step_s)``; a note occupies the steps from
    ``round(start_s / step_s)`` up to, not including, ``round(end_s / step_s)`` (at least one).

    Parameters
    ----------
    notes : sequence of Note
    step_s : float
        Grid step in seconds.
    n_steps : int, optional
        Columns; default: up to the last note's end.

    Returns
    -------
    np.ndarray, shape (128, n_steps), float32
    """
    grid = quantise(notes, step_s)
    if n_steps is None:
        n_steps = max((int(round(n.end_s / step_s)) for n in grid), default=0)
    roll = np.zeros((128, n_steps), dtype=np.float32)
    for n in grid:
        roll[n.pitch, int(round(n.start_s / step_s)):int(round(n.end_s / step_s))] = 1.0
    return roll


def roll_to_notes(roll: np.ndarray, step_s: float, velocity: int = DEFAULT_VELOCITY) -> list[Note]:
    """Inverse of :func:`notes_to_roll`: every run of active steps of a pitch becomes one note.

    A note struck again right after itself merges with it (the roll has no onsets).
    """
    roll = np.asarray(roll) > 0
    padded = np.zeros((roll.shape[0], roll.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = roll
    change = np.diff(padded, axis=1)
    notes = []
    for pitch in range(roll.shape[0]):
        starts, ends = np.flatnonzero(change[pitch] == 1), np.flatnonzero(change[pitch] == -1)
        notes += [Note(pitch, s * step_s, e * step_s, velocity) for s, e in zip(starts, ends)]
    return sorted(notes, key=lambda n: (n.start_s, n.pitch))


def toy_melody(symbols: Sequence[int] = (0, 0, 1, 1, 0, 0, 1, 1), pitches: Sequence[int] = (60, 62),
               step_s: float = 0.5) -> list[Note]:
    """The article's toy: symbol ``i`` is pitch ``pitches[i]``, one note per ``step_s``.

    ``[0, 0, 1, 1, 0, 0, 1, 1]`` with ``(60, 62)`` is C4 C4 D4 D4 C4 C4 D4 D4.
    """
    return [Note(int(pitches[s]), i * step_s, (i + 1) * step_s) for i, s in enumerate(symbols)]


# --------------------------------------------------------------------------- event tokens
class EventTokenizer:
    """Notes on a grid <-> integer event tokens, with one condition token in front.

    Vocabulary (``vocab_size = n_conditions + 128 + 128 + max_shift``)::

        [0, n_conditions)                         CONDITION(c)  (key signature class)
        on_offset + p   (p = 0..127)              NOTE_ON(p)
        off_offset + p                            NOTE_OFF(p)
        shift_offset + k - 1   (k = 1..max_shift) SHIFT(k steps)

    At each grid step the offs come first, then the ons (each in rising pitch), then one or more
    shifts to the next step with an event. A pitch sounding twice at once (two voices in unison)
    sounds once: a new onset of a sounding pitch ends the earlier note, so ``decode(encode(x))``
    returns ``x`` for quantised notes without same-pitch overlaps.

    Parameters
    ----------
    n_conditions : int
        Condition classes (12 key signatures).
    max_shift : int
        Longest single shift in steps; longer gaps take several shift tokens.
    """

    def __init__(self, n_conditions: int = N_KEYS, max_shift: int = 16):
        self.n_conditions = int(n_conditions)
        self.max_shift = int(max_shift)
        self.on_offset = self.n_conditions
        self.off_offset = self.on_offset + 128
        self.shift_offset = self.off_offset + 128
        self.vocab_size = self.shift_offset + self.max_shift

    def __repr__(self) -> str:
        return (f"EventTokenizer({self.n_conditions} conditions + 128 NOTE_ON + 128 NOTE_OFF + "
                f"{self.max_shift} SHIFT = {self.vocab_size} tokens)")

    def is_pitch(self, tokens: np.ndarray) -> np.ndarray:
        """Boolean mask of the NOTE_ON / NOTE_OFF tokens."""
        tokens = np.asarray(tokens)
        return (tokens >= self.on_offset) & (tokens < self.shift_offset)

    def encode(self, notes: Sequence[Note], step_s: float, condition: int | None = None) -> list[int]:
        """Notes -> tokens (a condition token first when ``condition`` is given)."""
        events: dict[int, list[tuple[int, int]]] = {}  # step -> [(order, token)]; offs (0) before ons (1)
        last_on: dict[int, int] = {}
        spans = []
        for n in quantise(notes, step_s):
            s, e = int(round(n.start_s / step_s)), int(round(n.end_s / step_s))
            spans.append((n.pitch, s, e))
        spans.sort(key=lambda x: (x[1], x[0]))
        active_until: dict[int, int] = {}
        cleaned = []
        for pitch, s, e in spans:  # a new onset of a sounding pitch cuts the earlier note there
            if pitch in active_until and active_until[pitch] > s:
                i = last_on[pitch]
                cleaned[i] = (pitch, cleaned[i][1], s)
            last_on[pitch] = len(cleaned)
            cleaned.append((pitch, s, e))
            active_until[pitch] = e
        for pitch, s, e in cleaned:
            if e <= s:
                continue
            events.setdefault(s, []).append((1, self.on_offset + pitch))
            events.setdefault(e, []).append((0, self.off_offset + pitch))
        tokens = [] if condition is None else [self.condition_token(condition)]
        now = 0
        for step in sorted(events):
            gap = step - now
            while gap > 0:
                k = min(gap, self.max_shift)
                tokens.append(self.shift_offset + k - 1)
                gap -= k
            tokens += [tok for _, tok in sorted(events[step])]
            now = step
        return tokens

    def decode(self, tokens: Sequence[int], step_s: float, velocity: int = DEFAULT_VELOCITY) -> list[Note]:
        """Tokens -> notes. Condition tokens are skipped; an off without an on, or an on of a sounding
        pitch, is ignored; notes still on at the end stop at the last step (at least one step long)."""
        now = 0
        sounding: dict[int, int] = {}
        notes = []
        for tok in (int(t) for t in tokens):
            if self.on_offset <= tok < self.off_offset:
                sounding.setdefault(tok - self.on_offset, now)
            elif self.off_offset <= tok < self.shift_offset:
                pitch = tok - self.off_offset
                if pitch in sounding:
                    start = sounding.pop(pitch)
                    if now > start:
                        notes.append(Note(pitch, start * step_s, now * step_s, velocity))
            elif self.shift_offset <= tok < self.vocab_size:
                now += tok - self.shift_offset + 1
        for pitch, start in sounding.items():
            notes.append(Note(pitch, start * step_s, max(now, start + 1) * step_s, velocity))
        return sorted(notes, key=lambda n: (n.start_s, n.pitch))

    def condition_token(self, condition: int) -> int:
        """The token of condition class ``condition``."""
        if not 0 <= int(condition) < self.n_conditions:
            raise ValueError(f"condition {condition} outside 0..{self.n_conditions - 1}")
        return int(condition)

    def transpose(self, tokens: Sequence[int], semitones: int) -> np.ndarray:
        """Shift every NOTE_ON/NOTE_OFF by ``semitones`` (condition and shift tokens unchanged).

        Raises ValueError when a pitch would leave 0..127.
        """
        tokens = np.array(tokens, dtype=np.int64)
        mask = self.is_pitch(tokens)
        pitch = (tokens[mask] - self.on_offset) % 128 + semitones
        if pitch.size and (pitch.min() < 0 or pitch.max() > 127):
            raise ValueError(f"transposing by {semitones} semitones leaves the MIDI range 0..127")
        tokens[mask] += semitones
        return tokens

    def describe(self, token: int) -> str:
        """A readable name: ``"key C / a"``, ``"on C4"``, ``"off D4"``, ``"shift 2"``."""
        token = int(token)
        if token < self.on_offset:
            return f"key {KEY_NAMES[token]}" if self.n_conditions == N_KEYS else f"cond {token}"
        if token < self.off_offset:
            return f"on {pitch_name(token - self.on_offset)}"
        if token < self.shift_offset:
            return f"off {pitch_name(token - self.off_offset)}"
        return f"shift {token - self.shift_offset + 1}"


# --------------------------------------------------------------------------- keys and statistics
# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def key_signature_class(tonic: int, mode: str) -> int:
    """The key signature of a key as the pitch class of its major tonic (a minor key -> its
    relative major, a minor third up): ``(0, "major") -> 0`` (C), ``(9, "minor") -> 0`` (a)."""
    if mode not in ("major", "minor"):
        raise ValueError(f"mode must be 'major' or 'minor', got {mode!r}")
    return int(tonic) % 12 if mode == "major" else (int(tonic) + 3) % 12


def pitch_class_histogram(notes: Sequence[Note], weight: str = "duration") -> np.ndarray:
    """Share of each pitch class (C..B), weighted by duration (seconds) or by note count.

    Returns
    -------
    np.ndarray, shape (12,)
        Sums to 1 (all zeros for no notes).
    """
    if weight not in ("duration", "count"):
        raise ValueError(f"weight must be 'duration' or 'count', got {weight!r}")
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += (n.end_s - n.start_s) if weight == "duration" else 1.0
    total = hist.sum()
    return hist / total if total > 0 else hist


def estimate_key(notes: Sequence[Note]) -> tuple[int, str, float]:
    """Krumhansl-Schmuckler key finding: the key whose profile correlates best with the
    duration-weighted pitch-class histogram.

    Returns
    -------
    tonic : int
        Pitch class 0-11.
    mode : {"major", "minor"}
    correlation : float
        Pearson correlation of the winning profile (NaN for no notes).
    """
    hist = pitch_class_histogram(notes)
    if hist.sum() == 0 or np.ptp(hist) == 0:
        return 0, "major", float("nan")
    best = (-2.0, 0, "major")
    for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2], best[0]


def histogram_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ``0.5 * sum |p - q|`` between two histograms (each normalised
    first): 0 for the same shares, 1 for disjoint supports."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    p = p / p.sum() if p.sum() > 0 else p
    q = q / q.sum() if q.sum() > 0 else q
    return float(0.5 * np.abs(p - q).sum())


def note_density(notes: Sequence[Note], step_s: float) -> float:
    """Note onsets per quarter note (4 grid steps of ``step_s``) over the span from the first onset
    to the last end; 0 for no notes."""
    if not notes:
        return 0.0
    span = max(n.end_s for n in notes) - min(n.start_s for n in notes)
    return float(len(notes) / max(span / (4 * step_s), 1e-9))


def pitch_entropy(notes: Sequence[Note]) -> float:
    """Entropy in bits of the note-count pitch-class histogram (0 = one pitch class, log2 12 ≈ 3.58
    = all twelve equally)."""
    p = pitch_class_histogram(notes, weight="count")
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) if p.size else 0.0


def repetition_rate(sequence: Sequence[int], n: int = 4) -> float:
    """Share of the n-grams of ``sequence`` that already occurred earlier in it:
    ``1 - distinct / total`` (0 = nothing repeats; near 1 = a loop)."""
    seq = list(sequence)
    total = len(seq) - n + 1
    if total <= 0:
        return 0.0
    distinct = len({tuple(seq[i:i + n]) for i in range(total)})
    return float(1 - distinct / total)


_HASH_BASE = np.uint64(1_000_003)


def _prefix_hashes(seq: np.ndarray) -> np.ndarray:
    """``P[i]`` = polynomial hash (uint64, wrapping) of ``seq[:i]`` with symbols ``seq + 1``."""
    p = np.zeros(len(seq) + 1, dtype=np.uint64)
    acc = np.uint64(0)
    vals = (np.asarray(seq, dtype=np.int64) + 1).astype(np.uint64)
    with np.errstate(over="ignore"):
        for i, v in enumerate(vals):  # sequential by nature; len is at most a few hundred thousand
            acc = acc * _HASH_BASE + v
            p[i + 1] = acc
    return p


def _ngram_hashes(prefix: np.ndarray, n: int) -> np.ndarray:
    """Hashes of all n-grams from prefix hashes: ``P[i + n] - P[i] * B**n`` (mod 2**64)."""
    if len(prefix) - 1 < n:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        power = np.uint64(1)
        for _ in range(n):
            power = power * _HASH_BASE
        return prefix[n:] - prefix[:-n] * power


class NgramIndex:
    """The n-grams of reference sequences (the training data), for the longest match of a query.

    References are joined with a separator no token equals, so no n-gram spans two of them. The
    sorted n-gram hashes are kept per ``n`` once computed. Matching is by 64-bit hashes: a false
    match needs a hash collision (probability about ``len(query) * len(references) / 2**64``).

    Parameters
    ----------
    references : sequence of int sequences (token ids >= 0)
    """

    def __init__(self, references: Sequence[Sequence[int]]):
        parts = []
        for r in references:
            parts += [np.asarray(r, dtype=np.int64), np.array([-1])]  # -1 + 1 = 0: the separator
        joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self.n_tokens = int((joined >= 0).sum())
        self._prefix = _prefix_hashes(joined)
        self._sorted: dict[int, np.ndarray] = {}

    def _hashes(self, n: int) -> np.ndarray:
        if n not in self._sorted:
            self._sorted[n] = np.sort(_ngram_hashes(self._prefix, n))
        return self._sorted[n]

    def contains_ngram_of(self, sequence: Sequence[int], n: int) -> bool:
        """True when some n-gram of ``sequence`` occurs in the references."""
        mine = _ngram_hashes(_prefix_hashes(np.asarray(sequence, dtype=np.int64)), n)
        ref = self._hashes(n)
        if mine.size == 0 or ref.size == 0:
            return False
        where = np.clip(np.searchsorted(ref, mine), 0, ref.size - 1)
        return bool(np.any(ref[where] == mine))

    def longest_match(self, sequence: Sequence[int]) -> int:
        """Length of the longest contiguous run of ``sequence`` found in the references (binary
        search on the length: a shared n-gram implies shared shorter ones)."""
        lo, hi = 0, len(sequence)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.contains_ngram_of(sequence, mid):
                lo = mid
            else:
                hi = mid - 1
        return lo


def longest_common_ngram(sequence: Sequence[int], references: Sequence[Sequence[int]]) -> int:
    """Length of the longest contiguous run of ``sequence`` that also occurs in one of
    ``references`` (:class:`NgramIndex`; build one index to query many sequences)."""
    return NgramIndex(references).longest_match(sequence)


# --------------------------------------------------------------------------- sampling
def sampling_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                          top_p: float | None = None) -> torch.Tensor:
    """The distribution to sample the next token from.

    1. divide the logits by ``temperature`` (before the softmax: ``softmax(z / T)``);
    2. top-k: keep the ``top_k`` most probable tokens (exactly k), zero the rest, renormalise;
    3. nucleus: keep the smallest set of most probable tokens whose probability reaches ``top_p``
       (the token that crosses ``top_p`` is kept), zero the rest, renormalise.

    Parameters
    ----------
    logits : torch.Tensor, shape (..., vocab)
    temperature : float
        > 0; below 1 sharpens, above 1 flattens.
    top_k : int, optional
        >= 1; None keeps all.
    top_p : float, optional
        In (0, 1]; None keeps all.

    Returns
    -------
    torch.Tensor, shape (..., vocab)
        Probabilities (float32) summing to 1 over the last axis.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        k = min(int(top_k), probs.shape[-1])
        kept = torch.zeros_like(probs).scatter(-1, probs.topk(k, dim=-1).indices, 1.0)
        probs = probs * kept
        probs = probs / probs.sum(-1, keepdim=True)
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p  # probability of the more probable tokens
        keep_sorted = (before < top_p).float()
        keep = torch.zeros_like(probs).scatter(-1, order, keep_sorted)
        probs = probs * keep
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


@torch.no_grad()
def sample_tokens(model: torch.nn.Module, prompts: torch.Tensor, n_tokens: int, *, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Continue ``prompts`` by ``n_tokens`` sampled tokens, one at a time.

    ``model.stream(tokens, state) -> (logits [batch, vocab] of the next token, state)`` is used
    (the language models of :mod:`course_lib.models.music` have it).

    Parameters
    ----------
    model : nn.Module
    prompts : torch.Tensor, shape (batch, prompt_length), int64
        Each starts with its condition token.
    n_tokens : int
    temperature, top_k, top_p
        See :func:`sampling_distribution`.
    generator : torch.Generator, optional
        On the CPU; makes the samples reproducible.

    Returns
    -------
    torch.Tensor, shape (batch, prompt_length + n_tokens), int64, on the CPU
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokens = prompts.to(device)
    logits, state = model.stream(tokens, None)
    out = [tokens.cpu()]
    for _ in range(n_tokens):
        probs = sampling_distribution(logits, temperature, top_k, top_p).cpu()
        nxt = torch.multinomial(probs, 1, generator=generator)
        out.append(nxt)
        logits, state = model.stream(nxt.to(device), state)
    model.train(was_training)
    return torch.cat(out, dim=1)


# --------------------------------------------------------------------------- training windows
class TokenWindows(torch.utils.data.Dataset):
    """Windows of ``length`` event tokens cut from pieces, each with its condition token in front.

    Item ``i``: ``(inputs, targets)``, two int64 tensors of shape ``(length,)``: inputs are
    ``[CONDITION, e_0, ..., e_{length-2}]``, targets ``[e_0, ..., e_{length-1}]`` (the next token at
    every position). With ``transpose=True`` each access transposes the window by a random
    -5..+6 semitones (drawn with torch's global generator, seeded by the trainer) and moves the key
    condition with it: every key signature is seen equally often.

    Parameters
    ----------
    pieces : list of (tokens, key)
        Event tokens without a condition token; ``key`` the key-signature class 0..11.
    tokenizer : EventTokenizer
    length : int
        Tokens per window (the stride between windows is ``length``).
    transpose : bool
    """

    def __init__(self, pieces: Sequence[tuple[Sequence[int], int]], tokenizer: EventTokenizer, length: int,
                 transpose: bool = False):
        self.tokenizer, self.length, self.transpose = tokenizer, int(length), bool(transpose)
        self.pieces = [(np.asarray(t, dtype=np.int64), int(k)) for t, k in pieces]
        self.index = [(p, s) for p, (t, _) in enumerate(self.pieces)
                      for s in range(0, max(1, len(t) - self.length + 1), self.length) if len(t) > self.length]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        p, s = self.index[i]
        tokens, key = self.pieces[p]
        window = tokens[s:s + self.length]
        if self.transpose:
            shift = int(torch.randint(-5, 7, ()).item())
            try:
                window = self.tokenizer.transpose(window, shift)
                key = (key + shift) % 12
            except ValueError:  # out of the MIDI range: keep the original key
                pass
        seq = np.concatenate([[self.tokenizer.condition_token(key)], window])
        return torch.from_numpy(seq[:-1].copy()), torch.from_numpy(seq[1:].copy())


# --------------------------------------------------------------------------- the corpus
@dataclass
class Corpus:
    """Scores of one split and where they came from."""

    scores: list[Score]
    source: str
    split: str

    def __len__(self) -> int:
        return len(self.scores)


def _music21_chorale_midis(cache: Path, keep: float, max_count: int | None = None) -> list[Path]:
    """All Bach chorales of music21's corpus written as MIDI into ``cache`` (once; a chorale that
    music21 cannot convert is skipped and counted)."""
    from course_lib.data.offline.music_styles import corpus_files, piece_to_midi

    files = corpus_files("bach", lambda p: p.name.startswith("bwv") and p.suffix == ".mxl")
    files = [f for i, f in enumerate(files) if (i * 7919) % 1000 < keep * 1000] if keep < 1 else files
    files = files if max_count is None else files[:max_count]
    cache.mkdir(parents=True, exist_ok=True)
    out, failed = [], 0
    todo = [f for f in files if not (cache / f"{f.stem}.mid").is_file() and not (cache / f"{f.stem}.failed").is_file()]
    if todo:
        print(f"converting {len(todo)} chorales of music21's corpus to MIDI into {cache} (once) ...", flush=True)
    for f in files:
        mid = cache / f"{f.stem}.mid"
        if f in todo:
            try:
                piece_to_midi(f, None, mid)
            except Exception as exc:  # music21 fails on a few scores: skip them, say how many
                (cache / f"{f.stem}.failed").write_text(f"{type(exc).__name__}: {exc}\n")
        if mid.is_file():
            out.append(mid)
        else:
            failed += 1
    if failed:
        print(f"{failed} chorales could not be converted and are skipped")
    return out


def _split_of(stem: str) -> str:
    """A fixed split by chorale name (a stable hash: 80 % train, 10 % val, 10 % test)."""
    import zlib

    h = zlib.crc32(stem.encode()) % 10
    return "val" if h == 0 else "test" if h == 1 else "train"


def chorale_corpus(split: str, profile: str | None = None, data_fraction: float = 1.0,
                   max_chorales: int | None = None) -> Corpus:
    """Bach chorales of one split as :class:`Score` objects.

    In the ``ci`` profile: the MIDI files of the offline ``chorales`` set, with its split by chorale
    (``python -m course_lib.data prepare --only chorales`` builds it). Elsewhere: every Bach chorale
    of music21's corpus (``data_fraction`` of them), converted to MIDI once into
    ``<data>/music/chorales_midi``, split by a fixed hash of the chorale's name; the offline set's
    val/test chorales stay out of training there too.

    Parameters
    ----------
    split : {"train", "val", "test"}
    profile : str, optional
        Default: the current profile (``COURSE_PROFILE``).
    data_fraction : float
        Share of the corpus's chorales used outside the ``ci`` profile.
    max_chorales : int, optional
        At most this many chorales (before splitting) outside the ``ci`` profile: each one is
        converted from MusicXML on first use, which takes about a third of a second.
    """
    from course_lib.data import SPLITS
    from course_lib.data.offline.common import offline_dir, read_manifest
    from course_lib.runtime import data_root, read_profile

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    profile = read_profile(profile)
    set_dir = offline_dir("chorales")
    try:
        manifest = read_manifest(set_dir)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{set_dir}: the offline 'chorales' set is not built - run "
            "`python -m course_lib.data prepare --only chorales`") from None
    offline_split = {Path(f["path"]).stem: f["split"] for f in manifest.get("files", []) if "split" in f}
    if profile == "ci":
        paths = sorted(set_dir / f["path"] for f in manifest["files"]
                       if f.get("split") == split and f["path"].endswith(".mid"))
        source = f"offline:chorales ({len(offline_split)} chorales of music21's corpus as MIDI)"
    else:
        every = _music21_chorale_midis(Path(data_root()) / "music" / "chorales_midi", data_fraction, max_chorales)
        def assigned(stem: str) -> str:
            return offline_split.get(stem, _split_of(stem))
        paths = [p for p in every if assigned(p.stem) == split]
        source = f"music21 corpus: {len(every)} Bach chorales as MIDI"
    scores = [load_score(p) for p in paths]
    return Corpus([s for s in scores if s.notes], source, split)


# --------------------------------------------------------------------------- audio
def render_notes(notes: Sequence[Note], sr: int = 22050, program: int = 0, tempo_bpm: float = 120.0,
                 max_s: float | None = None) -> np.ndarray:
    """Notes -> mono audio ``(n_samples,)`` float32 at ``sr`` Hz, peak 0.9.

    fluidsynth with the course's General MIDI sound font (``program``: 0 piano, 19 organ, 48
    strings, 52 choir ...), as the offline music sets are rendered; where fluidsynth is not installed,
    pretty_midi's sine-wave synthesiser (one line says so; install ``fluidsynth`` and
    ``timgm6mb-soundfont`` for instruments).

    Parameters
    ----------
    notes : sequence of Note
    sr : int
        Sample rate in Hz.
    program : int
        General MIDI program (0-based).
    tempo_bpm : float
        Written into the MIDI file (times are already in seconds).
    max_s : float, optional
        Keep the notes starting before ``max_s`` seconds.
    """
    import tempfile

    notes = [n for n in notes if max_s is None or n.start_s < max_s]
    if not notes:
        return np.zeros(int(sr * 0.5), dtype=np.float32)
    pm = _pretty_midi(notes, program, tempo_bpm)
    x = None
    if shutil.which("fluidsynth") is not None:
        from course_lib.data.offline.common import OfflineBuildError, fluidsynth
        from course_lib.data.offline.music_styles import sound_font

        try:
            with tempfile.TemporaryDirectory() as d:
                mid = Path(d) / "notes.mid"
                pm.write(str(mid))
                x, _ = fluidsynth(mid, sound_font(), int(sr))
        except OfflineBuildError as exc:
            print(f"fluidsynth could not render ({exc}); using pretty_midi's sine synthesiser")
            x = None
    else:
        print("fluidsynth is not installed: sine-wave rendering (install fluidsynth and timgm6mb-soundfont)")
    if x is None:
        x = pm.synthesize(fs=int(sr))
    x = np.asarray(x, dtype=np.float32)
    end = int((max(n.end_s for n in notes) + 1.0) * sr)
    x = x[:end]
    peak = float(np.abs(x).max()) if x.size else 0.0
    return (x * (0.9 / peak)).astype(np.float32) if peak > 0 else x
