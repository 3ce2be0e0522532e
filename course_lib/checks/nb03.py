"""Checks for 03_stft_and_time_frequency: framing a signal and the STFT from scratch.

Each check compares the student's function with ``course_lib.dsp`` on several inputs and, before
the generic value comparison, recognises the usual mistakes (frames as rows, a missing frame, no
window, no centring, the full FFT instead of the real one) to name them in the hint.

Notebook: 03_stft_and_time_frequency
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import Case, compare_arrays, exercise_check

__all__: list[str] = []


def _as_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else value


def _close(a, b, tol: float = 1e-8) -> bool:
    a = _as_numpy(a)
    return isinstance(a, np.ndarray) and a.shape == np.shape(b) and bool(np.allclose(a, b, atol=tol, rtol=1e-6))


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
        got = _as_numpy(case.call(candidate, x.copy(), frame_length, hop))
        expected = dsp.frame(x, frame_length, hop)
        if _close(got, expected.T):
            case.fail("your frames are rows: return shape (frame_length, n_frames), one frame per "
                      "column (x[t*hop : t*hop + frame_length] is column t); transpose the result")
        if isinstance(got, np.ndarray) and got.ndim == 2 and got.shape[0] == frame_length:
            n_expected = expected.shape[1]
            if got.shape[1] == n_expected - 1:
                case.fail(f"{got.shape[1]} frames, expected 1 + (n - frame_length) // hop_length = "
                          f"{n_expected}: the last frame that fits exactly is missing (off by one)")
            if got.shape[1] > n_expected:
                case.fail(f"{got.shape[1]} frames, expected {n_expected}: only frames that fit entirely "
                          "inside x count (no padding here)")
        compare_arrays(case, got, expected, atol=1e-12, rtol=0, name="frames")
        yield case


def _variants(x: np.ndarray, n_fft: int, hop: int) -> dict[str, np.ndarray]:
    """Wrong-but-plausible STFTs, each with the hint that names its mistake."""
    from course_lib import dsp

    padded = np.pad(x, n_fft // 2)
    frames = dsp.frame(padded, n_fft, hop)
    periodic = dsp.get_window("hann", n_fft, fftbins=True)
    symmetric = dsp.get_window("hann", n_fft, fftbins=False)
    return {
        "no window: multiply each frame by the periodic Hann window before the FFT":
            np.fft.rfft(frames, axis=0),
        "symmetric Hann window: spectral analysis uses the periodic one "
        "(dsp.get_window('hann', n_fft, fftbins=True), i.e. scipy's sym=False)":
            np.fft.rfft(frames * symmetric[:, None], axis=0),
        "no centring: pad n_fft // 2 zeros on both sides of x first (center=True), so frame t is "
        "centred on sample t * hop_length":
            dsp.stft(x, n_fft=n_fft, hop_length=hop, center=False),
        "the full FFT: keep only the 1 + n_fft // 2 non-negative frequencies (np.fft.rfft)":
            np.fft.fft(frames * periodic[:, None], axis=0),
        "reflect padding: librosa (since 0.10) and this course pad with zeros (np.pad's default)":
            dsp.stft(np.pad(x, n_fft // 2, mode="reflect"), n_fft=n_fft, hop_length=hop, center=False),
    }


@exercise_check("03.2", "the STFT from scratch")
def _check_stft(candidate):
    from course_lib import dsp

    for n, n_fft, hop in [(64, 16, 4), (800, 128, 32), (4000, 512, 128), (999, 256, 100)]:
        x = _signal(n, seed=n + 1)
        case = Case(f"len(x)={n}, n_fft={n_fft}, hop_length={hop}")
        got = _as_numpy(case.call(candidate, x.copy(), n_fft, hop))
        expected = dsp.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True)
        for hint, wrong in _variants(x, n_fft, hop).items():
            if _close(got, wrong):
                case.fail(hint)
        if isinstance(got, np.ndarray) and got.ndim == 2:
            if _close(got, expected.T):
                case.fail("frequency must run along axis 0: return shape (1 + n_fft // 2, n_frames)")
            if _close(got, np.abs(expected)):
                case.fail("you returned magnitudes: return the complex STFT (np.abs comes later)")
        compare_arrays(case, got, expected, atol=1e-8, rtol=1e-6, name="STFT")
        yield case
