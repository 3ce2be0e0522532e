"""Speech recognition with CTC: checked loss, prefix beam search, a bigram language model, a baseline.

One convention runs through the module: the CTC **blank** is symbol :data:`BLANK` (index 0) of the
model's output, and the loss, the decoders and the language model all take it from here, so the index
is stated once. Transcripts are sequences of non-blank symbol ids.

- :func:`check_ctc_lengths` raises a clear error when an utterance has fewer output frames than its
  transcript needs (``torch.nn.functional.ctc_loss`` would return ``inf``, or a silent 0 with
  ``zero_infinity=True``); :func:`ctc_loss_checked` runs the check, then the loss without
  ``zero_infinity``.
- :func:`prefix_beam_search` sums over all alignments of each kept prefix (blank-ending and
  non-blank-ending probabilities), optionally adding a weighted language-model score per emitted symbol.
- :func:`bigram_probabilities` and :class:`BigramLM`: an add-k smoothed bigram model with sentence
  start and end.
- :func:`normalise_digit_words` maps recogniser words ("oh", "Eight", "eighty") to digit characters
  for scoring; :func:`pocketsphinx_digits` runs the pretrained CMU PocketSphinx English model restricted
  to digit words by a JSGF grammar.

Notebook: 13_speech_recognition_ctc
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "BLANK",
    "DIGIT_WORDS",
    "BigramLM",
    "bigram_probabilities",
    "check_ctc_lengths",
    "ctc_loss_checked",
    "normalise_digit_words",
    "pocketsphinx_digits",
    "prefix_beam_search",
]

BLANK = 0
"""Index of the CTC blank in every output vocabulary of this module."""

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The digit vocabulary: word ``DIGIT_WORDS[d]`` is output symbol ``d + 1`` (0 is the blank)."""


def _logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for Python floats (math is faster than numpy on scalars)."""
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _min_frames(target: Sequence[int]) -> int:
    """Fewest frames a CTC path for ``target`` needs: one per symbol plus a blank between repeats."""
    target = list(target)
    return len(target) + sum(1 for a, b in zip(target, target[1:]) if a == b)


def check_ctc_lengths(input_lengths: torch.Tensor | Sequence[int], targets: Sequence[Sequence[int]]) -> None:
    """Raise ``ValueError`` when an utterance has too few output frames for its transcript.

    CTC needs ``n_frames >= len(target) + (number of adjacent repeated symbols)``: every symbol takes
    a frame, and two equal neighbours need a blank between them. Otherwise no path exists and the
    loss is infinite.

    Parameters
    ----------
    input_lengths : tensor or sequence of int, shape (batch,)
        Valid output frames per utterance, *after* the front end's subsampling
        (``model.output_lengths(lengths)``).
    targets : list of lists of int
        Transcripts as symbol ids (never the blank).
    """
    lengths = [int(n) for n in torch.as_tensor(input_lengths).reshape(-1).tolist()]
    if len(lengths) != len(targets):
        raise ValueError(f"{len(lengths)} input lengths but {len(targets)} targets: they must pair up.")
    for i, (n_frames, target) in enumerate(zip(lengths, targets)):
        if BLANK in list(target):
            raise ValueError(f"target {i} contains the blank (symbol {BLANK}); transcripts hold only "
                             "non-blank symbols.")
        needed = _min_frames(target)
        if n_frames < needed:
            raise ValueError(
                f"utterance {i}: {n_frames} output frames after subsampling, but its transcript of "
                f"{len(target)} symbols needs at least {needed} (one per symbol plus a blank between "
                "repeats), so CTC has no path and the loss would be infinite. Fix: lower the front "
                "end's stride or the feature hop, or drop utterances this short.")


def ctc_loss_checked(log_probs: torch.Tensor, targets: Sequence[Sequence[int]],
                     input_lengths: torch.Tensor) -> torch.Tensor:
    """Mean CTC loss (per target symbol, as torch's ``reduction="mean"``) with the length check.

    Parameters
    ----------
    log_probs : torch.Tensor, shape (batch, n_frames, vocab_size)
        Batch-first log-probabilities; symbol :data:`BLANK` is the blank.
    targets : list of lists of int
    input_lengths : torch.Tensor, shape (batch,)
        Valid output frames per utterance, after subsampling.

    Returns
    -------
    torch.Tensor, scalar
    """
    check_ctc_lengths(input_lengths, targets)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([s for t in targets for s in t], dtype=torch.long, device=log_probs.device)
    return F.ctc_loss(log_probs.transpose(0, 1), flat, torch.as_tensor(input_lengths).cpu(), target_lengths,
                      blank=BLANK, zero_infinity=False)


def bigram_probabilities(sequences: Sequence[Sequence[int]], n_symbols: int, smoothing: float = 1.0) -> np.ndarray:
    """Add-k smoothed bigram probabilities with a sentence boundary.

    Parameters
    ----------
    sequences : list of lists of int
        Training sentences over tokens ``0 .. n_symbols - 1``.
    n_symbols : int
    smoothing : float
        k, added to every count (0 = maximum likelihood).

    Returns
    -------
    np.ndarray, shape (n_symbols + 1, n_symbols + 1)
        ``P[previous, next]``; row ``n_symbols`` is the sentence start (no previous token), column
        ``n_symbols`` the sentence end. Every row sums to 1.
    """
    boundary = n_symbols
    counts = np.full((n_symbols + 1, n_symbols + 1), float(smoothing))
    for sentence in sequences:
        tokens = [boundary, *[int(s) for s in sentence], boundary]
        if any(not 0 <= s < n_symbols for s in tokens[1:-1]):
            raise ValueError(f"tokens must lie in 0..{n_symbols - 1}; got {list(sentence)}.")
        for previous, following in zip(tokens, tokens[1:]):
            counts[previous, following] += 1
    totals = counts.sum(axis=1, keepdims=True)
    if np.any(totals == 0):
        raise ValueError("a context was never seen and smoothing=0: its probabilities are undefined; "
                         "use smoothing > 0.")
    return counts / totals


class BigramLM:
    """Bigram language model over a CTC vocabulary's non-blank symbols.

    Parameters
    ----------
    transcripts : list of lists of int
        Training transcripts as output symbol ids (never :data:`BLANK`).
    vocab_size : int
        Output symbols including the blank.
    smoothing : float
        Add-k smoothing (see :func:`bigram_probabilities`).
    """

    def __init__(self, transcripts: Sequence[Sequence[int]], vocab_size: int, smoothing: float = 1.0) -> None:
        self.vocab_size = vocab_size
        self.symbols = [s for s in range(vocab_size) if s != BLANK]
        self._token = {s: i for i, s in enumerate(self.symbols)}
        tokens = [[self._token[int(s)] for s in t] for t in transcripts]
        self.table = bigram_probabilities(tokens, len(self.symbols), smoothing)
        self._log_table = np.log(self.table)
        self.boundary = len(self.symbols)

    def _index(self, symbol: int | None) -> int:
        if symbol is None:
            return self.boundary
        if int(symbol) not in self._token:
            raise ValueError(f"symbol {symbol} is the blank or outside 0..{self.vocab_size - 1}.")
        return self._token[int(symbol)]

    def log_prob(self, symbol: int | None, previous: int | None = None) -> float:
        """Natural-log probability of ``symbol`` (None = sentence end) after ``previous`` (None = start)."""
        return float(self._log_table[self._index(previous), self._index(symbol)])

    def next_probabilities(self, previous: int | None = None) -> dict[int | None, float]:
        """Probability of every non-blank symbol and of the sentence end (key None); they sum to 1."""
        row = self.table[self._index(previous)]
        return {**{s: float(row[i]) for i, s in enumerate(self.symbols)}, None: float(row[self.boundary])}

    def sentence_log_prob(self, transcript: Sequence[int]) -> float:
        """Log-probability of a whole transcript, start and end included."""
        previous, total = None, 0.0
        for s in transcript:
            total += self.log_prob(s, previous)
            previous = s
        return total + self.log_prob(None, previous)


def prefix_beam_search(log_probs: torch.Tensor | np.ndarray, beam_width: int = 8, lm: BigramLM | None = None,
                       lm_weight: float = 0.0, insertion_bonus: float = 0.0,
                       prune_log_prob: float | None = None) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search: the best label sequences, each summed over all its alignments.

    Each kept prefix carries two log-probabilities: of the frames so far ending in a blank, and ending
    in the prefix's last symbol. A frame either adds a blank, repeats the last symbol (the prefix
    stays), or emits a new symbol (the prefix grows; the same symbol as the last one only after a
    blank). Emitting symbol ``c`` after ``p`` adds ``lm_weight * log P_lm(c | p) + insertion_bonus``;
    the end of the utterance adds ``lm_weight * log P_lm(end | last)``.

    Parameters
    ----------
    log_probs : tensor or array, shape (n_frames, vocab_size)
        Per-frame log-probabilities of one utterance; symbol :data:`BLANK` is the blank.
    beam_width : int
        Prefixes kept after each frame.
    lm : BigramLM, optional
    lm_weight : float
        Weight of the language model's log-probability (0 = acoustic only).
    insertion_bonus : float
        Added per emitted symbol: balances the LM's per-symbol penalty, which favours short outputs.
    prune_log_prob : float, optional
        Skip symbols whose frame log-probability is below this (speed; None = exact, try them all).

    Returns
    -------
    list of (prefix, score)
        Best first; ``prefix`` a tuple of symbol ids, ``score`` its natural-log score (without an LM:
        the exact log-probability that the frames collapse to this prefix, when no pruning dropped
        any of its alignments).
    """
    lp = torch.as_tensor(log_probs).detach().cpu().double().numpy() if not isinstance(log_probs, np.ndarray) \
        else np.asarray(log_probs, dtype=float)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be (n_frames, vocab_size) for one utterance; got shape {lp.shape}.")
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1; got {beam_width}.")
    use_lm = lm is not None and lm_weight != 0.0
    n_frames, vocab = lp.shape
    neg_inf = -math.inf
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, neg_inf]}   # prefix -> [log p_blank, log p_symbol]

    def extension(prefix: tuple[int, ...], c: int) -> float:
        bonus = insertion_bonus
        if use_lm:
            bonus += lm_weight * lm.log_prob(c, prefix[-1] if prefix else None)
        return bonus

    for t in range(n_frames):
        frame = lp[t].tolist()
        candidates = [c for c in range(vocab) if c != BLANK
                      and (prune_log_prob is None or frame[c] >= prune_log_prob)]
        following: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_blank, p_symbol) in beams.items():
            total = _logaddexp(p_blank, p_symbol)
            entry = following.setdefault(prefix, [neg_inf, neg_inf])
            entry[0] = _logaddexp(entry[0], total + frame[BLANK])
            last = prefix[-1] if prefix else None
            for c in candidates:
                grown = prefix + (c,)
                new = following.setdefault(grown, [neg_inf, neg_inf])
                if c == last:
                    entry[1] = _logaddexp(entry[1], p_symbol + frame[c])        # repeat: collapses
                    new[1] = _logaddexp(new[1], p_blank + frame[c] + extension(prefix, c))
                else:
                    new[1] = _logaddexp(new[1], total + frame[c] + extension(prefix, c))
        scored = [(-_logaddexp(b, n), prefix, [b, n]) for prefix, (b, n) in following.items()]
        scored = [item for item in scored if item[0] < math.inf]            # drop impossible prefixes
        scored.sort(key=lambda item: item[0])
        ranked = [(prefix, entry) for _, prefix, entry in scored]
        beams = dict(ranked[:beam_width])

    results = []
    for prefix, (p_blank, p_symbol) in beams.items():
        score = float(_logaddexp(p_blank, p_symbol))
        if use_lm:
            score += lm_weight * lm.log_prob(None, prefix[-1] if prefix else None)
        results.append((prefix, score))
    return sorted(results, key=lambda r: -r[1])


_WORD_TO_DIGIT = {**{w: str(d) for d, w in enumerate(DIGIT_WORDS)}, "oh": "0", "o": "0"}
_TENS = {"twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7",
         "eighty": "8", "ninety": "9", "ten": "10", "eleven": "11", "twelve": "12"}


def normalise_digit_words(text: str) -> str:
    """Text normalisation for the digit task: words to a string of digit characters.

    Lower-cases, strips punctuation and pronunciation-variant suffixes (``eight(2)``), maps digit
    words and "oh" to digits and tens words to their spoken digits ("eighty" -> "8", as in a
    recogniser's "eighty three" for "eight three"); every other word is dropped (it counts as a
    deletion of the digit that was spoken). Examples: ``"Eight, eight three"`` -> ``"883"``.
    """
    digits = []
    for word in text.lower().split():
        word = "".join(ch for ch in word.split("(")[0] if ch.isalpha())
        if word in _WORD_TO_DIGIT:
            digits.append(_WORD_TO_DIGIT[word])
        elif word in _TENS:
            digits.append(_TENS[word])
    return "".join(digits)


def pocketsphinx_digits(waveforms: Sequence[torch.Tensor | np.ndarray], sr: int) -> list[str]:
    """Recognise digit strings with CMU PocketSphinx's pretrained US-English model (no training here).

    The search is restricted to the digit words (and "oh") by a JSGF grammar; audio is resampled to
    the model's 16 kHz and converted to 16-bit PCM.

    Parameters
    ----------
    waveforms : list of tensors or arrays, each shape (n_samples,) or (1, n_samples)
        Mono audio in [-1, 1].
    sr : int
        Sample rate in Hz.

    Returns
    -------
    list of str
        The recogniser's words per utterance ("" when it found none).
    """
    try:
        from pocketsphinx import Decoder
    except ImportError as err:  # pragma: no cover - installed by the lock file
        raise ImportError("pocketsphinx is not installed: run `make install` (it is in requirements.lock) "
                          "or `pip install pocketsphinx==5.1.1`.") from err
    import torchaudio.functional as AF

    decoder = Decoder(loglevel="ERROR")
    grammar = ("#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( "
               + " | ".join([*DIGIT_WORDS, "oh"]) + " )+ ;\n")
    decoder.add_jsgf_string("digits", grammar.encode())
    decoder.activate_search("digits")
    out = []
    for wave in waveforms:
        x = torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(-1)
        if sr != 16000:
            x = AF.resample(x, sr, 16000)
        pcm = (x.clamp(-1, 1).numpy() * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        out.append(hyp.hypstr if hyp is not None else "")
    return out
