"""Checks of notebooks 01 and 02: the references pass, classic mistakes get a specific hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks as check
from course_lib import dsp


def _hint(exercise_id: str, fn) -> str:
    result = check.exercise(exercise_id, fn, quiet=True, strict=False)
    assert not result, f"{exercise_id}: a wrong answer passed"
    assert "Traceback" not in result.message
    return result.message


@pytest.mark.parametrize("exercise_id,reference", [
    ("01.1", dsp.aliased_frequency),
    ("01.2", dsp.quantize),
    ("01.3", lambda x, noise, snr_db: dsp.add_noise(x, noise, snr_db)),
    ("02.1", dsp.dft_matrix),
    ("02.2", dsp.fft_convolve),
    ("02.3", dsp.convolution_matrix),
])
def test_reference_solutions_pass(exercise_id, reference):
    result = check.exercise(exercise_id, reference, quiet=True, strict=False)
    assert result, result.message
    assert result.n_cases >= 4


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv(check.STRICT_ENV, "1")
    with pytest.raises(check.ExerciseFailed, match="01.1"):
        check.exercise("01.1", lambda f, sr: f, quiet=True)


# ------------------------------------------------------------------------------ 01


def test_aliasing_without_folding_gets_the_folding_hint():
    assert "fold frequencies above sr/2" in _hint("01.1", lambda f, sr: np.asarray(f) % sr)


def test_aliasing_scalar_only_code_gets_the_array_hint():
    def scalar_only(f, sr):
        f = f % sr
        if f > sr / 2:  # fails for arrays: truth value of an array is ambiguous
            f = sr - f
        return f

    message = _hint("01.1", scalar_only)
    assert "array" in message and "ValueError" in message


def test_mid_tread_quantiser_gets_the_mid_rise_hint():
    def mid_tread(x, bits):
        delta = 2.0 / 2**bits
        return np.clip(np.round(x / delta) * delta, -1, 1)

    assert "mid-*tread*" in _hint("01.2", mid_tread)


def test_unclipped_quantiser_gets_the_clipping_hint():
    def no_clip(x, bits):
        delta = 2.0 / 2**bits
        return (np.floor(x / delta) + 0.5) * delta

    assert "clip" in _hint("01.2", no_clip)


def test_snr_mistakes_get_amplitude_vs_power_hints():
    def amplitude_by_power_ratio(x, noise, snr_db):
        gain = np.sqrt(np.mean(x**2) / np.mean(noise**2)) * 10 ** (-snr_db / 10)
        return x + gain * noise

    def power_by_amplitude_ratio(x, noise, snr_db):
        gain = np.sqrt(np.mean(x**2) / (np.mean(noise**2) * 10 ** (snr_db / 20)))
        return x + gain * noise

    def sign_flipped(x, noise, snr_db):
        return dsp.add_noise(x, noise, -snr_db)

    assert "twice the target" in _hint("01.3", amplitude_by_power_ratio)
    assert "half the target" in _hint("01.3", power_by_amplitude_ratio)
    assert "sign flipped" in _hint("01.3", sign_flipped)


def test_stub_is_reported_as_not_done():
    def stub(x, bits):
        raise NotImplementedError("Exercise 01.2: write the quantiser")

    assert "not implemented yet" in _hint("01.2", stub)


# ------------------------------------------------------------------------------ 02


def test_dft_matrix_mistakes():
    assert "minus sign" in _hint("02.1", lambda n: np.conj(dsp.dft_matrix(n)))
    assert "normalised" in _hint("02.1", lambda n: dsp.dft_matrix(n) / np.sqrt(n))
    assert "complex" in _hint("02.1", lambda n: dsp.dft_matrix(n).real)


def test_circular_instead_of_linear_convolution_gets_the_padding_hint():
    def circular(x, h):
        n = max(len(x), len(h))
        return np.fft.ifft(np.fft.fft(x, n) * np.fft.fft(h, n)).real

    assert "Zero-pad" in _hint("02.2", circular)


def test_complex_convolution_output_gets_the_real_part_hint():
    def complex_out(x, h):
        n = len(x) + len(h) - 1
        return np.fft.ifft(np.fft.fft(x, n) * np.fft.fft(h, n))

    assert "real part" in _hint("02.2", complex_out)


def test_toeplitz_mistakes():
    assert "correlation" in _hint("02.3", lambda h, n: dsp.convolution_matrix(h[::-1], n))
    assert "transposed" in _hint("02.3", lambda h, n: dsp.convolution_matrix(h, n).T)
