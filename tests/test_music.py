"""course_lib.music and course_lib.models.music: MIDI/roll/token round trips, the sampler's
properties, corpus statistics against hand-computed values, and a trained model whose condition
changes the measured key of what it generates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import music
from course_lib.models.music import LSTMLanguageModel, TransformerLanguageModel, next_token_loss
from course_lib.music import Note


def _random_grid_notes(rng, n=40, step_s=0.125):
    """Notes on the grid with no two notes of one pitch overlapping or touching."""
    notes, busy = [], {}
    for _ in range(n):
        pitch = int(rng.integers(40, 90))
        start = int(rng.integers(0, 100))
        end = start + int(rng.integers(1, 12))
        if any(s <= end and start <= e for s, e in busy.get(pitch, [])):
            continue
        busy.setdefault(pitch, []).append((start, end))
        notes.append(Note(pitch, start * step_s, end * step_s, music.DEFAULT_VELOCITY))
    return sorted(notes, key=lambda x: (x.start_s, x.pitch))


def test_midi_round_trip_notes_roll_midi(tmp_path):
    rng = np.random.default_rng(0)
    step_s = 0.125
    notes = _random_grid_notes(rng, step_s=step_s)
    roll = music.notes_to_roll(notes, step_s)
    assert roll.shape == (128, max(round(n.end_s / step_s) for n in notes))
    back = music.roll_to_notes(roll, step_s)
    path = music.write_midi(back, tmp_path / "x.mid")
    score = music.load_score(path)
    got = [(n.pitch, round(n.start_s / step_s), round(n.end_s / step_s)) for n in score.notes]
    want = [(n.pitch, round(n.start_s / step_s), round(n.end_s / step_s)) for n in notes]
    assert got == want
    assert np.array_equal(music.notes_to_roll(score.notes, step_s), roll)


def test_roll_merges_a_repeated_note_but_tokens_keep_it():
    step_s = 0.5
    toy = music.toy_melody()  # C C D D C C D D
    assert [music.pitch_name(n.pitch) for n in toy] == ["C4", "C4", "D4", "D4"] * 2
    from_roll = music.roll_to_notes(music.notes_to_roll(toy, step_s), step_s)
    assert len(from_roll) == 4  # each repeated pair merged into one long note
    tok = music.EventTokenizer()
    assert tok.decode(tok.encode(toy, step_s), step_s) == toy


def test_tokeniser_round_trip_and_layout():
    rng = np.random.default_rng(1)
    tok = music.EventTokenizer(n_conditions=12, max_shift=16)
    assert tok.vocab_size == 12 + 128 + 128 + 16
    for seed in range(5):
        notes = _random_grid_notes(np.random.default_rng(seed), n=60)
        tokens = tok.encode(notes, 0.125, condition=3)
        assert tokens[0] == 3 and all(0 <= t < tok.vocab_size for t in tokens)
        assert tok.decode(tokens, 0.125) == notes
    # a gap longer than max_shift takes several shift tokens
    gap = [Note(60, 0.0, 0.125), Note(62, 40 * 0.125, 41 * 0.125)]
    names = [tok.describe(t) for t in tok.encode(gap, 0.125)]
    assert names == ["on C4", "shift 1", "off C4", "shift 16", "shift 16", "shift 7", "on D4", "shift 1", "off D4"]
    # transposition moves pitches only
    t = np.array(tok.encode(gap, 0.125, condition=0))
    up = tok.transpose(t, 2)
    assert [n.pitch for n in tok.decode(up, 0.125)] == [62, 64] and up[0] == 0
    with pytest.raises(ValueError, match="MIDI range"):
        tok.transpose(t, 100)
    del rng


def test_unison_sounds_once():
    tok = music.EventTokenizer()
    notes = [Note(60, 0.0, 1.0), Note(60, 0.0, 1.0), Note(64, 0.0, 1.0)]
    assert tok.decode(tok.encode(notes, 0.25), 0.25) == [Note(60, 0.0, 1.0), Note(64, 0.0, 1.0)]


def test_sampling_distribution_properties():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 30, generator=gen) * 2
    p1 = music.sampling_distribution(logits)
    assert torch.allclose(p1, torch.softmax(logits, -1), atol=1e-6)
    for kwargs in ({"temperature": 0.5}, {"top_k": 4}, {"top_p": 0.7}, {"temperature": 1.5, "top_k": 10, "top_p": 0.8}):
        p = music.sampling_distribution(logits, **kwargs)
        assert torch.allclose(p.sum(-1), torch.ones(5), atol=1e-5)
    # temperature: lower is sharper (entropy falls), higher flatter
    ent = lambda p: -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
    assert (ent(music.sampling_distribution(logits, 0.5)) < ent(p1)).all()
    assert (ent(music.sampling_distribution(logits, 2.0)) > ent(p1)).all()
    # top-k keeps exactly k, the k most probable
    pk = music.sampling_distribution(logits, top_k=4)
    assert ((pk > 0).sum(-1) == 4).all()
    assert torch.equal((pk > 0), torch.zeros_like(pk, dtype=torch.bool).scatter(-1, logits.topk(4, -1).indices, True))
    # nucleus: the smallest prefix of the sorted probabilities reaching p, crossing token included
    pp = music.sampling_distribution(logits, top_p=0.7)
    for row_p, row_kept in zip(p1, pp > 0):
        sorted_p = row_p.sort(descending=True).values
        need = int((sorted_p.cumsum(0) < 0.7).sum()) + 1
        assert int(row_kept.sum()) == need
        assert float(row_p[row_kept].sum()) >= 0.7 - 1e-6
    # top_p=1 and top_k=vocab change nothing; a tiny top_p keeps the argmax only
    assert torch.allclose(music.sampling_distribution(logits, top_p=1.0, top_k=30), p1, atol=1e-6)
    assert torch.equal(music.sampling_distribution(logits, top_p=1e-6).argmax(-1), logits.argmax(-1))
    assert ((music.sampling_distribution(logits, top_p=1e-6) > 0).sum(-1) == 1).all()
    with pytest.raises(ValueError):
        music.sampling_distribution(logits, temperature=0)


def test_statistics_hand_computed():
    c_major = [Note(p, i * 0.5, (i + 1) * 0.5) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    hist = music.pitch_class_histogram(c_major)
    assert np.isclose(hist[0], 2 / 8) and np.isclose(hist.sum(), 1) and hist[1] == 0
    assert music.estimate_key(c_major)[:2] == (0, "major")
    a_minor = [Note(p, i * 0.5, (i + 1) * 0.5) for i, p in enumerate([57, 59, 60, 62, 64, 65, 68, 69, 57, 64, 57])]
    tonic, mode, _ = music.estimate_key(a_minor)
    assert (tonic, mode) == (9, "minor") and music.key_signature_class(tonic, mode) == 0
    assert music.key_signature_class(2, "major") == 2 and music.key_signature_class(11, "minor") == 2
    assert music.histogram_distance([1, 0], [0, 1]) == 1.0 and music.histogram_distance([1, 1], [2, 2]) == 0.0
    assert np.isclose(music.pitch_entropy(c_major), -(2 / 8 * np.log2(2 / 8) + 6 / 8 * np.log2(1 / 8)))
    # 8 notes over 4 s = 8 quarter notes at step 0.125 s (a quarter is 0.5 s): 1 note per quarter
    assert np.isclose(music.note_density(c_major, 0.125), 1.0)
    assert music.repetition_rate([1, 2, 3, 1, 2, 3, 1, 2, 3], n=3) == pytest.approx(1 - 3 / 7)
    assert music.repetition_rate([1, 2, 3, 4], n=2) == 0.0


def test_longest_common_ngram_against_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        seq = rng.integers(0, 4, 30)
        refs = [rng.integers(0, 4, int(rng.integers(5, 40))) for _ in range(3)]
        brute = 0
        for n in range(1, len(seq) + 1):
            grams = {tuple(r[i:i + n]) for r in refs for i in range(len(r) - n + 1)}
            if any(tuple(seq[i:i + n]) in grams for i in range(len(seq) - n + 1)):
                brute = n
        assert music.longest_common_ngram(seq, refs) == brute
    copy = rng.integers(0, 300, 500)
    assert music.longest_common_ngram(copy[100:350], [copy]) == 250


@pytest.mark.parametrize("cls", [LSTMLanguageModel, TransformerLanguageModel])
def test_language_models_are_causal_and_stream_like_forward(cls):
    torch.manual_seed(0)
    model = cls(40, 32, 64) if cls is LSTMLanguageModel else cls(40, 32, 4, 2, 64, max_len=64)
    model.eval()
    x = torch.randint(0, 40, (3, 20))
    logits = model(x)
    assert logits.shape == (3, 20, 40)
    y = x.clone()
    y[:, 12:] = torch.randint(0, 40, (3, 8))
    assert torch.allclose(model(y)[:, :12], logits[:, :12], atol=1e-5)  # the future does not leak
    out, state = model.stream(x[:, :5], None)
    steps = [out]
    for i in range(5, 20):
        out, state = model.stream(x[:, i:i + 1], state)
        steps.append(out)
    assert torch.allclose(torch.stack(steps[:-1], 1), logits[:, 4:19], atol=1e-4)


def _key_pieces(tok, n_per_key=4, n_notes=24, seed=0):
    """Melodies on the tonic triad of their major key (C: C E G): the key is the only thing the
    condition tells, and the triad alone is enough for the key estimator."""
    rng = np.random.default_rng(seed)
    pieces = []
    for key in range(12):
        for _ in range(n_per_key):
            pitches = 60 + key + rng.choice([0, 4, 7], n_notes) - 12 * (key > 5)
            notes = [Note(int(p), i * 0.25, (i + 1) * 0.25) for i, p in enumerate(pitches)]
            pieces.append((tok.encode(notes, 0.125), key))
    return pieces


def test_conditioning_changes_the_measured_key():
    """A small LSTM trained on key-labelled triad melodies: sampled with condition k, its output's
    estimated key signature is k far more often than chance (1/12), and changing only the
    condition changes the measured key."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest and keeps the test cheap
    try:
        torch.manual_seed(0)
        tok = music.EventTokenizer()
        data = music.TokenWindows(_key_pieces(tok), tok, length=24)
        loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
        model = LSTMLanguageModel(tok.vocab_size, 32, 64)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(25):
            for inputs, targets in loader:
                optimiser.zero_grad()
                next_token_loss(model(inputs), targets).backward()
                optimiser.step()
        gen = torch.Generator().manual_seed(0)
        keys = torch.arange(12).repeat(2)
        out = music.sample_tokens(model, keys[:, None], 48, generator=gen)
    finally:
        torch.set_num_threads(threads)
    measured = [music.key_signature_class(*music.estimate_key(tok.decode(row.tolist(), 0.125))[:2]) for row in out]
    hits = np.mean(np.array(measured) == keys.numpy())
    assert hits >= 0.4, f"only {hits:.0%} of samples in the conditioned key (chance 1/12)"
    assert len(set(measured)) >= 6  # the condition moves the output, not one fixed key
