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
- Characters are the output symbols (:data:`CHARACTERS`; :func:`encode_text`, :func:`decode_symbols`),
  after one text normalisation, :func:`normalise_text`, applied to references and hypotheses alike.
- Error correction after the beam: :class:`Lexicon` (the training words) maps an unknown word to the
  nearest known one; :class:`WordBigramLM` scores word sequences; :func:`rescore_nbest` picks the best
  corrected hypothesis of the beam with a tuned LM weight.
- :func:`pocketsphinx_transcribe` runs the pretrained CMU PocketSphinx English model (restricted to a
  closed vocabulary by a JSGF grammar when one is given).

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
    "CHARACTERS",
    "BigramLM",
    "Lexicon",
    "WordBigramLM",
    "bigram_probabilities",
    "check_ctc_lengths",
    "ctc_loss_checked",
    "decode_symbols",
    "encode_text",
    "normalise_text",
    "pocketsphinx_transcribe",
    "prefix_beam_search",
    "rescore_nbest",
]

BLANK = 0
"""Index of the CTC blank in every output vocabulary of this module."""

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


CHARACTERS = " 'abcdefghijklmnopqrstuvwxyz"
"""Output symbols of the character recogniser: symbol ``i + 1`` is ``CHARACTERS[i]`` (0 is the blank)."""


def normalise_text(text: str) -> str:
    """The text normalisation applied to every reference and hypothesis before scoring.

    Lower-case; every character other than a-z and the apostrophe becomes a space; runs of spaces
    collapse. ``"Mister JOHN-Dashwood, 2"`` -> ``"mister john dashwood"``. Digits are dropped (LibriSpeech
    spells numbers out; so do the digit strings).
    """
    kept = "".join(ch if ("a" <= ch <= "z" or ch == "'") else " " for ch in text.lower())
    return " ".join(kept.split())


def encode_text(text: str) -> list[int]:
    """Normalised text -> output symbol ids (``CHARACTERS.index(ch) + 1``), never the blank."""
    return [CHARACTERS.index(ch) + 1 for ch in normalise_text(text)]


def decode_symbols(symbols: Sequence[int]) -> str:
    """Output symbol ids -> normalised text (the inverse of :func:`encode_text`)."""
    return normalise_text("".join(CHARACTERS[int(s) - 1] for s in symbols if int(s) != BLANK))


class Lexicon:
    """The words of the training transcripts, with counts: the recogniser's known vocabulary.

    Parameters
    ----------
    transcripts : list of str
        Training transcripts (normalised here with :func:`normalise_text`).

    Attributes
    ----------
    counts : dict of str to int
        Occurrences of each word in the training transcripts.
    """

    def __init__(self, transcripts: Sequence[str]) -> None:
        self.counts: dict[str, int] = {}
        for text in transcripts:
            for word in normalise_text(text).split():
                self.counts[word] = self.counts.get(word, 0) + 1
        if not self.counts:
            raise ValueError("a lexicon needs at least one word: the training transcripts are empty.")
        self.words = sorted(self.counts, key=lambda w: (-self.counts[w], w))
        self._nearest: dict[str, str | None] = {}

    def __contains__(self, word: str) -> bool:
        return word in self.counts

    def __len__(self) -> int:
        return len(self.counts)

    def nearest(self, word: str, max_relative_distance: float = 0.5) -> str | None:
        """The lexicon word fewest character edits away (ties: the more frequent), or None when even
        the nearest needs more than ``max_relative_distance * len(word)`` edits."""
        key = f"{word}\0{max_relative_distance}"
        if key not in self._nearest:
            from course_lib.metrics import edit_distance

            limit = max(1, int(max_relative_distance * len(word)))
            best, best_distance = None, limit + 1
            for candidate in self.words:            # most frequent first: ties keep the earlier one
                if abs(len(candidate) - len(word)) >= best_distance:
                    continue                         # the length difference alone costs that many edits
                distance = edit_distance(word, candidate)
                if distance < best_distance:
                    best, best_distance = candidate, distance
            self._nearest[key] = best
        return self._nearest[key]

    def correct(self, text: str, max_relative_distance: float = 0.5) -> str:
        """Replace each out-of-lexicon word by its nearest lexicon word (kept when none is near)."""
        words = []
        for word in normalise_text(text).split():
            if word not in self.counts:
                word = self.nearest(word, max_relative_distance) or word
            words.append(word)
        return " ".join(words)


class WordBigramLM:
    """Add-k smoothed word bigram model over a lexicon, with ``<unk>`` for every other word.

    The same probabilities as :func:`bigram_probabilities` over word ids (row = previous word or the
    sentence start, column = next word or the sentence end), kept as counts: LibriSpeech's training
    lexicon has tens of thousands of words, and the dense table would need gigabytes.

    Parameters
    ----------
    transcripts : list of str
        Training transcripts.
    lexicon : Lexicon
        The known words (usually built from the same transcripts).
    smoothing : float
        k of add-k smoothing, > 0 (every context, seen or not, then has a distribution).
    """

    UNKNOWN = "<unk>"

    def __init__(self, transcripts: Sequence[str], lexicon: Lexicon, smoothing: float = 1.0) -> None:
        if smoothing <= 0:
            raise ValueError(f"smoothing must be > 0 (an unseen context has no distribution otherwise); "
                             f"got {smoothing}.")
        self.vocabulary = [*lexicon.words, self.UNKNOWN]
        self._id = {w: i for i, w in enumerate(self.vocabulary)}
        self.boundary = len(self.vocabulary)          # the start as a context, the end as an outcome
        self.smoothing = float(smoothing)
        self._pairs: dict[tuple[int, int], int] = {}
        self._contexts: dict[int, int] = {}
        for text in transcripts:
            tokens = [self.boundary, *self.ids(text), self.boundary]
            for pair in zip(tokens, tokens[1:]):
                self._pairs[pair] = self._pairs.get(pair, 0) + 1
                self._contexts[pair[0]] = self._contexts.get(pair[0], 0) + 1

    def ids(self, text: str) -> list[int]:
        """Word ids of a text (``<unk>`` for words outside the lexicon)."""
        unknown = self._id[self.UNKNOWN]
        return [self._id.get(w, unknown) for w in normalise_text(text).split()]

    def _context(self, previous: str | None) -> int:
        return self.boundary if previous is None else self.ids(previous)[0]

    def _prob(self, context: int, outcome: int) -> float:
        outcomes = len(self.vocabulary) + 1                                    # every word and the end
        return (self._pairs.get((context, outcome), 0) + self.smoothing) / \
            (self._contexts.get(context, 0) + self.smoothing * outcomes)

    def prob(self, word: str | None, previous: str | None = None) -> float:
        """P(word | previous); ``word=None`` is the sentence end, ``previous=None`` the start."""
        return self._prob(self._context(previous), self.boundary if word is None else self.ids(word)[0])

    def next_probabilities(self, previous: str | None = None) -> dict[str | None, float]:
        """P(word | previous word) for every word and the sentence end (key None); they sum to 1."""
        context = self._context(previous)
        return {**{w: self._prob(context, i) for i, w in enumerate(self.vocabulary)},
                None: self._prob(context, self.boundary)}

    def sentence_log_prob(self, text: str) -> float:
        """Natural-log probability of the whole text, sentence start and end included."""
        tokens = [self.boundary, *self.ids(text), self.boundary]
        return float(sum(math.log(self._prob(a, b)) for a, b in zip(tokens, tokens[1:])))

    def perplexity(self, transcripts: Sequence[str]) -> float:
        """exp of the mean negative log-probability per predicted token (words and sentence ends)."""
        n_tokens = sum(len(normalise_text(t).split()) + 1 for t in transcripts)
        return float(math.exp(-sum(self.sentence_log_prob(t) for t in transcripts) / n_tokens))


def rescore_nbest(nbest: Sequence[tuple[str, float]], lm: WordBigramLM | None = None, lm_weight: float = 0.0,
                  word_bonus: float = 0.0, lexicon: Lexicon | None = None) -> str:
    """Pick the best of a beam's N hypotheses after lexicon correction and language-model rescoring.

    Each hypothesis ``(text, acoustic log-probability)`` is first corrected with the lexicon (when
    given), then scored ``acoustic + lm_weight * log P_lm(text) + word_bonus * n_words``. The bonus
    balances the LM's per-word cost, which otherwise favours dropping words.

    Returns
    -------
    str
        The best corrected text ("" for an empty N-best list).
    """
    best_text, best_score = "", -math.inf
    for text, acoustic in nbest:
        if lexicon is not None:
            text = lexicon.correct(text)
        score = acoustic + word_bonus * len(text.split())
        if lm is not None and lm_weight != 0.0:
            score += lm_weight * lm.sentence_log_prob(text)
        if score > best_score:
            best_text, best_score = text, score
    return best_text


def pocketsphinx_transcribe(waveforms: Sequence[torch.Tensor | np.ndarray], sr: int,
                            vocabulary: Sequence[str] | None = None) -> list[str]:
    """Recognise speech with CMU PocketSphinx's pretrained US-English model (no training here).

    With ``vocabulary``, the search is restricted to those words by a JSGF grammar (any sequence of
    them; words missing from PocketSphinx's dictionary are left out and named in a warning); without
    it, its own English language model decodes open text. Audio is resampled to the model's 16 kHz
    and converted to 16-bit PCM.

    Parameters
    ----------
    waveforms : list of tensors or arrays, each shape (n_samples,) or (1, n_samples)
        Mono audio in [-1, 1].
    sr : int
        Sample rate in Hz.
    vocabulary : list of str, optional
        A closed vocabulary (e.g. the ten digit words).

    Returns
    -------
    list of str
        The recogniser's text per utterance, normalised with :func:`normalise_text` ("" when it
        found nothing).
    """
    try:
        from pocketsphinx import Decoder
    except ImportError as err:  # pragma: no cover - installed by the lock file
        raise ImportError("pocketsphinx is not installed: run `make install` (it is in requirements.lock) "
                          "or `pip install pocketsphinx==5.1.1`.") from err
    import warnings

    import torchaudio.functional as AF

    decoder = Decoder(loglevel="ERROR")
    if vocabulary is not None:
        known = [w for w in dict.fromkeys(vocabulary) if decoder.lookup_word(w) is not None]
        missing = sorted(set(vocabulary) - set(known))
        if missing:
            warnings.warn(f"PocketSphinx's dictionary lacks {missing[:10]}: left out of its grammar", stacklevel=2)
        if not known:
            raise ValueError("none of the vocabulary's words is in PocketSphinx's dictionary.")
        grammar = "#JSGF V1.0;\ngrammar words;\npublic <words> = ( " + " | ".join(known) + " )+ ;\n"
        decoder.add_jsgf_string("words", grammar.encode())
        decoder.activate_search("words")
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
        out.append(normalise_text(hyp.hypstr.replace("<sil>", " ")) if hyp is not None else "")
    return out
