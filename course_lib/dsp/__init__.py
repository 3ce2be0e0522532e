"""Part I of the course, from scratch: the signal mappings written in NumPy/SciPy.

Every function here is the *reference* the rest of ``course_lib`` (and the notebooks' exercises)
is tested against, so each one is small, readable and checked against a public library in
``tests/test_dsp.py`` (numpy.fft, scipy.signal, librosa, torch/torchaudio). Names and defaults
follow librosa (see "Vocabulary" in ``docs/DEVELOPING.md``), so a student can swap one for the
other, and :mod:`course_lib.features` (the batched torch versions) uses the same ones.

One module per chapter, as libfmp does (``from course_lib import dsp; dsp.stft(...)`` reaches
every function; the chapter modules say where each one is taught):

==========================  =================================  ======================================
module                      notebook                           functions
==========================  =================================  ======================================
:mod:`~.signals`            01_sound_as_signal                 sampling, quantisation, dB, SNR
:mod:`~.fourier`            02_fourier_and_convolution         DFT matrix, convolution, windows, FIR
:mod:`~.timefreq`           03_stft_and_time_frequency         frames, STFT/ISTFT, Griffin-Lim, CWT
:mod:`~.mel`                04_features_and_preprocessing      mel scale and filterbank, log-mel, MFCC
:mod:`~.denoise`            04_features_and_preprocessing      spectral subtraction, Wiener gain
==========================  =================================  ======================================

Conventions
-----------
- Signals are real ``np.ndarray`` of shape ``(n_samples,)`` (most functions also accept leading
  batch/channel axes ``(..., n_samples)``); amplitudes are in full-scale units, i.e. ``[-1, 1]``.
- Spectrograms have shape ``(..., n_freqs, n_frames)`` with ``n_freqs = 1 + n_fft // 2``; one
  *example* is the last two axes (``power_to_db``'s ``ref`` and ``top_db`` act per example).
- Frequencies are in Hz, times in samples unless a name says ``_s`` / ``duration``.

This package imports nothing else of ``course_lib`` (see ``docs/DEVELOPING.md``).
"""

from __future__ import annotations

from course_lib.dsp.denoise import spectral_subtraction, wiener_denoise
from course_lib.dsp.fourier import (
    circular_convolve,
    convolution_matrix,
    dft,
    dft_matrix,
    fft_convolve,
    fir_lowpass,
    get_window,
)
from course_lib.dsp.mel import (
    dct_matrix,
    hz_to_mel,
    lifter_weights,
    log_mel,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
    melspectrogram,
    mfcc,
)
from course_lib.dsp.signals import (
    add_noise,
    aliased_frequency,
    amplitude_to_db,
    power_to_db,
    quantize,
    rms,
    snr_db,
)
from course_lib.dsp.timefreq import (
    cola_error,
    frame,
    griffin_lim,
    istft,
    morlet_scalogram,
    spectral_convergence,
    stft,
)

from course_lib.dsp import denoise, fourier, mel, signals, timefreq

# Each chapter module lists its public names once; the package re-exports exactly those, in
# course order.
__all__ = [*signals.__all__, *fourier.__all__, *timefreq.__all__, *mel.__all__, *denoise.__all__]
