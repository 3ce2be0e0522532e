"""Checks for 03_stft_and_time_frequency: framing a signal and the STFT from scratch.

Each check compares the student's function with ``course_lib.dsp`` on several inputs and, before
the generic value comparison, recognises the usual mistakes (frames as rows, a missing frame, the
hop ignored, no window, no centring, the full FFT instead of the real one, a normalised FFT) to
name them in the hint.

Notebook: 03_stft_and_time_frequency
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import (Case, as_numpy, compare_arrays, exercise_check, matches,
                               reject_known_mistakes)

__all__: list[str] = []


def _signal(n: int, seed: int) -> np.ndarray:
    """A chirp plus noise: every frame differs, so misplaced frames cannot pass by accident."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    return np.sin(2 * np.pi * (300 * t + 900 * t**2)) + 0.1 * rng.standard_normal(n)


@exercise_check("03.1", "framing a signal")
def _check_frame(candidate):
    from course_lib import dsp

    for n, frame_length, hop in [(16, 4, 2), (100, 32, 8), (1000, 256, 64), (37, 10, 9), (512, 512, 128)]:
        x = _signal(n, seed=n)
        case = Case(f"len(x)={n}, frame_length={frame_length}, hop_length={hop}")
        got = as_numpy(case.call(candidate, x.copy(), frame_length, hop))
        expected = dsp.frame(x, frame_length, hop)
        n_expected = expected.shape[1]
        if matches(got, expected.T, atol=1e-12):
            case.fail("your frames are rows: return shape (frame_length, n_frames), one frame per "
                      "column (x[t*hop : t*hop + frame_length] is column t); transpose the result")
        if got is not None and got.ndim == 2 and got.shape[0] in (frame_length - 1, frame_length + 1):
            case.fail(f"each frame has {got.shape[0]} samples, expected frame_length = {frame_length}: "
                      "a slice x[a:b] holds b - a samples (the end is excluded), so use "
                      "x[t*hop_length : t*hop_length + frame_length]")
        if got is not None and got.ndim == 2 and got.shape[0] == frame_length:
            n_by_frame = 1 + (n - frame_length) // frame_length
            if hop != frame_length and got.shape[1] == n_by_frame and not matches(got, expected, atol=1e-12) \
                    and matches(got, dsp.frame(x, frame_length, frame_length), atol=1e-12):
                case.fail(f"consecutive frames start frame_length = {frame_length} samples apart: they "
                          f"should start hop_length = {hop} apart (frames overlap by frame_length - "
                          "hop_length samples)")
            if got.shape[1] == n_expected - 1:
                case.fail(f"{got.shape[1]} frames, expected 1 + (n - frame_length) // hop_length = "
                          f"{n_expected}: the last frame that fits exactly is missing (off by one)")
            if got.shape[1] > n_expected:
                case.fail(f"{got.shape[1]} frames, expected {n_expected}: only frames that fit entirely "
                          "inside x count (no padding here)")
        compare_arrays(case, got, expected, atol=1e-12, rtol=0, name="frames")
        yield case


def _variants(x: np.ndarray, n_fft: int, hop: int) -> dict:
    """Wrong-but-plausible STFTs, each with the hint that names its mistake (computed lazily)."""
    from course_lib import dsp

    padded = np.pad(x, n_fft // 2)
    frames = dsp.frame(padded, n_fft, hop)
    periodic = dsp.get_window("hann", n_fft, fftbins=True)
    symmetric = dsp.get_window("hann", n_fft, fftbins=False)
    hamming = dsp.get_window("hamming", n_fft, fftbins=True)
    spectrum = np.fft.rfft(frames * periodic[:, None], axis=0)
    return {
        "no window: multiply each frame by the periodic Hann window before the FFT":
            lambda: np.fft.rfft(frames, axis=0),
        "symmetric Hann window: spectral analysis uses the periodic one "
        "(dsp.get_window('hann', n_fft, fftbins=True), i.e. scipy's sym=False)":
            lambda: np.fft.rfft(frames * symmetric[:, None], axis=0),
        "a Hamming window (0.54 - 0.46 cos): the exercise asks for Hann (0.5 - 0.5 cos)":
            lambda: np.fft.rfft(frames * hamming[:, None], axis=0),
        "no centring: pad n_fft // 2 zeros on both sides of x first (center=True), so frame t is "
        "centred on sample t * hop_length":
            lambda: dsp.stft(x, n_fft=n_fft, hop_length=hop, center=False),
        "the full FFT: keep only the 1 + n_fft // 2 non-negative frequencies (np.fft.rfft)":
            lambda: np.fft.fft(frames * periodic[:, None], axis=0),
        "reflect padding: librosa (since 0.10) and this course pad with zeros (np.pad's default)":
            lambda: dsp.stft(np.pad(x, n_fft // 2, mode="reflect"), n_fft=n_fft, hop_length=hop, center=False),
        "the FFT is normalised by 1/n_fft (norm='forward'): the STFT uses numpy's unnormalised "
        "forward FFT (norm='backward', the default)":
            lambda: spectrum / n_fft,
        "the FFT is normalised by 1/sqrt(n_fft) (norm='ortho'): the STFT uses numpy's "
        "unnormalised forward FFT (the default norm)":
            lambda: spectrum / np.sqrt(n_fft),
        "the spectrum is divided by the window's sum: that scaling is for reading amplitudes off "
        "a plot; the STFT itself is unnormalised":
            lambda: spectrum / periodic.sum(),
        "the complex conjugate: the forward FFT has exp(-2j*pi*k*m/n) (np.fft.rfft), "
        "not the inverse kernel":
            lambda: np.conj(spectrum),
    }


@exercise_check("03.2", "the STFT from scratch")
def _check_stft(candidate):
    from course_lib import dsp

    for n, n_fft, hop in [(64, 16, 4), (800, 128, 32), (4000, 512, 128), (999, 256, 100)]:
        x = _signal(n, seed=n + 1)
        case = Case(f"len(x)={n}, n_fft={n_fft}, hop_length={hop}")
        got = as_numpy(case.call(candidate, x.copy(), n_fft, hop))
        expected = dsp.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True)
        reject_known_mistakes(case, got, expected, _variants(x, n_fft, hop), atol=1e-8, rtol=1e-6)
        if got is not None and got.ndim == 2:
            if matches(got, expected.T, atol=1e-8):
                case.fail("frequency must run along axis 0: return shape (1 + n_fft // 2, n_frames)")
            if matches(got, np.abs(expected), atol=1e-8):
                case.fail("you returned magnitudes: return the complex STFT (np.abs comes later)")
            if matches(got, np.abs(expected) ** 2, atol=1e-8, rtol=1e-6):
                case.fail("you returned the power |X|^2: return the complex STFT (power comes later)")
            if got.shape[0] == expected.shape[0] and got.shape[1] != expected.shape[1]:
                case.fail(f"{got.shape[1]} frames, expected {expected.shape[1]}: after padding n_fft // 2 "
                          "zeros on *each* side (both ends) a centred STFT has 1 + len(x) // hop_length frames")
        compare_arrays(case, got, expected, atol=1e-8, rtol=1e-6, name="STFT",
                       factors={"1/n_fft": 1 / n_fft, "1/sqrt(n_fft)": 1 / np.sqrt(n_fft)})
        yield case
