"""course_lib.audio: loading, saving, mono, resampling, and a clear error for every bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from course_lib.audio import AudioError, load_audio, load_waveform, resample, save_audio, to_mono


def _tone(sr: int, f: float = 440.0, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_roundtrip_shape_dtype_and_values(tmp_path):
    x = _tone(16000)
    p = save_audio(tmp_path / "a.wav", x, 16000)
    y, sr = load_audio(p)
    assert sr == 16000 and y.dtype == np.float32 and y.shape == (1, len(x))
    np.testing.assert_allclose(y[0], x, atol=1 / 2**15 + 1e-6)  # 16-bit quantization


def test_stereo_to_mono_is_channel_mean(tmp_path):
    left, right = _tone(8000, 300), _tone(8000, 500) * 0.5
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    y, _ = load_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(y[0], (left + right) / 2, atol=1e-6)
    y2, _ = load_audio(tmp_path / "s.wav", mono=False)
    assert y2.shape == (2, len(left))
    np.testing.assert_allclose(to_mono(y2), y, atol=1e-6)


def test_resample_keeps_tone_and_length(tmp_path):
    x = _tone(44100, 1000.0, 1.0)
    y = resample(x, 44100, 16000)
    assert y.shape == (16000,) and y.dtype == np.float32
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 1000.0) <= 1.0
    # anti-aliasing: a 7 kHz tone must not fold into the 0-4 kHz band at 8 kHz
    z = resample(_tone(16000, 7000.0, 1.0), 16000, 8000)
    assert np.sqrt(np.mean(z**2)) < 0.01
    save_audio(tmp_path / "t.wav", x, 44100)
    w = load_waveform(tmp_path / "t.wav", sr=16000)
    assert tuple(w.shape) == (1, 16000) and str(w.dtype) == "torch.float32"
    y16, sr16 = load_audio(tmp_path / "t.wav", sr=16000)
    assert sr16 == 16000 and np.array_equal(w.numpy(), y16)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(AudioError, match="nope.wav.*not found"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    p = tmp_path / "junk.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 3)
    with pytest.raises(AudioError, match="junk.wav.*cannot decode"):
        load_audio(p)


def test_truncated_file(tmp_path):
    p = save_audio(tmp_path / "full.wav", _tone(16000), 16000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(p.read_bytes()[:30])  # header cut in the middle
    with pytest.raises(AudioError, match="cut.wav"):
        load_audio(cut)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav.*no samples"):
        load_audio(p)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="zero.wav"):
        load_audio(tmp_path / "zero.wav")


def test_nan_and_inf_samples(tmp_path):
    for bad in (np.nan, np.inf):
        x = _tone(8000)
        x[10] = bad
        p = tmp_path / f"bad_{bad}.wav"
        sf.write(p, x, 8000, subtype="FLOAT")
        with pytest.raises(AudioError, match="NaN or infinite"):
            load_audio(p)
    with pytest.raises(AudioError, match="refusing"):
        save_audio(tmp_path / "x.wav", np.array([0.0, np.nan]), 8000)


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    save_audio(tmp_path / "a.wav", _tone(8000), 8000)
    save_audio(tmp_path / "a.wav", _tone(8000, 200), 8000)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
    with pytest.raises(AudioError, match=r"b.unknownext: soundfile cannot write '.unknownext' files"):
        save_audio(tmp_path / "b.unknownext", _tone(8000), 8000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_directory_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path)
