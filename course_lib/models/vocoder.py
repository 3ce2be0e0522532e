"""Neural vocoders: log-mel frames -> waveform samples, in parallel or one sample at a time.

* :class:`ConvVocoder` is a parallel generator in the style of MelGAN's (Kumar et al. 2019,
  arXiv:1910.06711) and HiFi-GAN's (Kong et al. 2020, arXiv:2010.05646): a convolution over the mel
  frames, then transposed convolutions that upsample by ``upsample_rates`` (their product is the
  hop length), each followed by a residual stack of dilated convolutions (dilations 1, 3, 9: a
  growing receptive field at the new rate), and a ``tanh`` output. The course trains it with a
  multi-resolution STFT loss only (Yamamoto et al. 2020, Parallel WaveGAN's auxiliary loss), without
  the adversarial discriminators of those papers: cheaper, and the gap in quality is what the GAN
  closes (``course_lib.vocoder``).
* :class:`MuLawWaveNet` is a tiny WaveNet (van den Oord et al. 2016, arXiv:1609.03499): causal
  dilated convolutions with gated activations over the previous samples' mu-law classes,
  conditioned on the mel frames, predicting a categorical distribution over the next sample's
  class. :meth:`MuLawWaveNet.generate` runs it sample by sample with one cached buffer per layer
  (each step costs a constant amount of work, the "fast WaveNet" queue).

Both take log-mel frames in dB, ``(batch, n_mels, n_frames)``, and standardise them with one mean
and one standard deviation measured on training data (``fit_normalization``, kept as buffers).

Notebook: 18_speech_generation_vocoder
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.models.temporal import CausalConv1d

__all__ = ["ConvVocoder", "FourierVocoder", "MuLawWaveNet"]


class _Standardize(nn.Module):
    """``(x - mean) / std`` with one scalar mean and std (buffers, saved with the model)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    @torch.no_grad()
    def fit(self, log_mels: Iterable[Tensor]) -> None:
        values = torch.cat([m.detach().float().flatten().cpu() for m in log_mels])
        self.mean.fill_(float(values.mean()))
        self.std.fill_(float(values.std().clamp_min(1e-3)))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class _ResidualStack(nn.Module):
    """Residual blocks ``x + conv1x1(lrelu(conv3_dilated(lrelu(x))))`` with the given dilations."""

    def __init__(self, channels: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LeakyReLU(0.2),
                nn.Conv1d(channels, channels, 3, dilation=d, padding=d),
                nn.LeakyReLU(0.2),
                nn.Conv1d(channels, channels, 1),
            )
            for d in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


class ConvVocoder(nn.Module):
    """Parallel convolutional vocoder (MelGAN/HiFi-GAN-style generator, trained without a GAN).

    Parameters
    ----------
    n_mels : int
        Mel bands of the input.
    upsample_rates : sequence of int
        Upsampling factor of each stage; their product is the hop length in samples (every mel
        frame becomes ``hop_length`` samples).
    channels : int
        Channels after the input convolution; each upsampling stage halves them (at least 4).
    dilations : sequence of int
        Dilations of the residual stack after each upsampling stage.

    Shapes: ``(batch, n_mels, n_frames)`` log-mel in dB -> ``(batch, n_frames * hop_length)``
    samples in ``[-1, 1]``.
    """

    def __init__(self, n_mels: int, upsample_rates: Sequence[int] = (8, 8, 4), channels: int = 64,
                 dilations: Sequence[int] = (1, 3, 9)) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.upsample_rates = tuple(int(r) for r in upsample_rates)
        self.hop_length = 1
        for r in self.upsample_rates:
            self.hop_length *= r
        self.normalize = _Standardize()
        self.pre = nn.Conv1d(n_mels, channels, 7, padding=3)
        stages = []
        c = channels
        for r in self.upsample_rates:
            out = max(c // 2, 4)
            # kernel 2r, stride r, padding r/2 (+ output_padding for odd r): length exactly times r.
            stages.append(nn.Sequential(
                nn.LeakyReLU(0.2),
                nn.ConvTranspose1d(c, out, 2 * r, stride=r, padding=r // 2 + r % 2, output_padding=r % 2),
                _ResidualStack(out, dilations),
            ))
            c = out
        self.stages = nn.ModuleList(stages)
        self.post = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv1d(c, 1, 7, padding=3), nn.Tanh())

    def fit_normalization(self, log_mels: Iterable[Tensor]) -> None:
        """Measure the input mean and standard deviation (dB) on training log-mels."""
        self.normalize.fit(log_mels)

    def forward(self, log_mel: Tensor) -> Tensor:
        """``(batch, n_mels, n_frames)`` dB -> ``(batch, n_frames * hop_length)`` samples."""
        if log_mel.ndim != 3 or log_mel.shape[1] != self.n_mels:
            raise ValueError(f"ConvVocoder expects log-mel (batch, {self.n_mels}, n_frames), got {tuple(log_mel.shape)}")
        x = self.pre(self.normalize(log_mel))
        for stage in self.stages:
            x = stage(x)
        return self.post(x)[:, 0]


class _GatedLayer(nn.Module):
    """One WaveNet layer: causal dilated conv + mel conditioning -> tanh * sigmoid -> residual, skip."""

    def __init__(self, channels: int, skip_channels: int, n_mels: int, dilation: int) -> None:
        super().__init__()
        self.conv = CausalConv1d(channels, 2 * channels, 2, dilation=dilation)
        self.condition = nn.Conv1d(n_mels, 2 * channels, 1)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def gate(self, h: Tensor) -> tuple[Tensor, Tensor]:
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return self.residual(z), self.skip(z)


class MuLawWaveNet(nn.Module):
    """Tiny conditional WaveNet over mu-law classes.

    Parameters
    ----------
    n_mels : int
        Mel bands of the conditioning input.
    hop_length : int
        Samples per mel frame (each frame conditions ``hop_length`` samples).
    quantization_channels : int
        Mu-law classes (torchaudio's name): 256 for 8-bit mu-law.
    channels, skip_channels : int
        Residual and skip channels.
    dilations : sequence of int
        One gated layer per dilation; the receptive field is ``1 + sum(dilations)`` samples.

    Shapes: ``forward(previous, log_mel)``: ``previous`` ``(batch, n_samples)`` int64 classes of the
    samples *before* each target (the targets shifted right by one), ``log_mel``
    ``(batch, n_mels, n_frames)`` with ``n_frames * hop_length >= n_samples`` ->
    logits ``(batch, quantization_channels, n_samples)``.
    """

    def __init__(self, n_mels: int, hop_length: int, quantization_channels: int = 256, channels: int = 32,
                 skip_channels: int = 64, dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128)) -> None:
        super().__init__()
        self.n_mels, self.hop_length, self.quantization_channels = n_mels, hop_length, quantization_channels
        self.normalize = _Standardize()
        self.embed = nn.Embedding(quantization_channels, channels)
        self.layers = nn.ModuleList(_GatedLayer(channels, skip_channels, n_mels, d) for d in dilations)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, quantization_channels, 1))

    @property
    def receptive_field(self) -> int:
        """Samples each prediction sees: the current input and ``sum(dilations)`` before it."""
        return 1 + sum(layer.conv.left_context for layer in self.layers)

    def fit_normalization(self, log_mels: Iterable[Tensor]) -> None:
        """Measure the conditioning mean and standard deviation (dB) on training log-mels."""
        self.normalize.fit(log_mels)

    def _conditions(self, log_mel: Tensor, n_samples: int) -> list[Tensor]:
        """Per layer: the mel projection at frame rate, repeated to sample rate, cropped."""
        mel = self.normalize(log_mel)
        return [layer.condition(mel).repeat_interleave(self.hop_length, dim=-1)[..., :n_samples]
                for layer in self.layers]

    def forward(self, previous: Tensor, log_mel: Tensor) -> Tensor:
        n = previous.shape[-1]
        if log_mel.shape[-1] * self.hop_length < n:
            raise ValueError(f"{log_mel.shape[-1]} mel frames condition only {log_mel.shape[-1] * self.hop_length} "
                             f"samples, fewer than the {n} asked for")
        x = self.embed(previous).transpose(1, 2)
        skips = 0
        for layer, cond in zip(self.layers, self._conditions(log_mel, n)):
            residual, skip = layer.gate(layer.conv(x) + cond)
            x = x + residual
            skips = skips + skip
        return self.head(skips)

    @torch.no_grad()
    def generate(self, log_mel: Tensor, n_samples: int, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> Tensor:
        """Sample ``n_samples`` mu-law classes one after another, each fed back as the next input.

        Every layer keeps its last ``left_context`` inputs (``CausalConv1d.forward_stream``), so a
        step costs the same however long the output already is.

        Parameters
        ----------
        log_mel : Tensor
            ``(batch, n_mels, n_frames)`` dB.
        n_samples : int
        generator : torch.Generator, optional
            For repeatable sampling (on the model's device).
        temperature : float
            Logits are divided by it before sampling.

        Returns
        -------
        Tensor
            ``(batch, n_samples)`` int64 mu-law classes (decode with ``course_lib.vocoder.mu_law_decode``).
        """
        batch = log_mel.shape[0]
        device = log_mel.device
        conditions = self._conditions(log_mel, n_samples)
        buffers = [layer.conv.init_state(batch, device=device) for layer in self.layers]
        current = torch.full((batch,), self.quantization_channels // 2, dtype=torch.long, device=device)  # silence
        out = torch.empty(batch, n_samples, dtype=torch.long, device=device)
        for t in range(n_samples):
            x = self.embed(current)[:, :, None]
            skips = 0
            for k, (layer, cond) in enumerate(zip(self.layers, conditions)):
                h, buffers[k] = layer.conv.forward_stream(x, buffers[k])
                residual, skip = layer.gate(h + cond[..., t:t + 1])
                x = x + residual
                skips = skips + skip
            logits = self.head(skips)[:, :, 0] / temperature
            current = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
            out[:, t] = current
        return out


class FourierVocoder(nn.Module):
    """Frame-rate vocoder with an inverse-STFT head (the design of Vocos, Siuzdak 2023, arXiv:2306.00814).

    Dilated convolutions run over the mel *frames* (dilations 1, 2, 4, ... : a receptive field of
    many frames), and a 1x1 convolution predicts, for every frame, the log magnitude and a phase
    direction of each of the ``n_fft // 2 + 1`` STFT bins; ``torch.istft`` (overlap-add) makes the
    samples. Nothing runs at the sample rate, so it is cheap enough to train on a CPU in seconds,
    and it is as parallel as :class:`ConvVocoder`.

    Parameters
    ----------
    n_mels : int
    n_fft, hop_length : int
        The synthesis STFT (Hann window of ``n_fft``, centred frames): one output frame per mel frame.
    channels : int
    dilations : sequence of int
        One residual block (dilated conv 3 -> GELU -> 1x1) per dilation.
    filterbank : Tensor, optional
        The front end's mel filter bank ``(n_mels, n_fft // 2 + 1)``. When given, the predicted log
        magnitude is a correction added to the magnitude that the bank's pseudo-inverse recovers
        from the mel power (Griffin-Lim's starting point, clipped at zero), and the correction starts
        at zero: training begins with the right spectral envelope and spends its steps on the phase
        and the detail the mel lost.

    Shapes: ``(batch, n_mels, n_frames)`` dB -> ``(batch, n_frames * hop_length)`` samples.
    """

    def __init__(self, n_mels: int, n_fft: int = 1024, hop_length: int = 256, channels: int = 192,
                 dilations: Sequence[int] = (1, 2, 4, 1, 2, 4), filterbank: Tensor | None = None) -> None:
        super().__init__()
        self.n_mels, self.n_fft, self.hop_length = n_mels, n_fft, hop_length
        self.n_freqs = n_fft // 2 + 1
        self.normalize = _Standardize()
        self.pre = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.GroupNorm(1, channels), nn.Conv1d(channels, channels, 3, dilation=d, padding=d),
                          nn.GELU(), nn.Conv1d(channels, channels, 1))
            for d in dilations)
        self.head = nn.Conv1d(channels, 3 * self.n_freqs, 1)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        if filterbank is not None:
            if tuple(filterbank.shape) != (n_mels, self.n_freqs):
                raise ValueError(f"filterbank must be (n_mels, n_fft // 2 + 1) = {(n_mels, self.n_freqs)}, "
                                 f"got {tuple(filterbank.shape)}")
            self.register_buffer("mel_pinv", torch.linalg.pinv(filterbank.double().cpu()).float())
            with torch.no_grad():                          # the correction starts at zero
                self.head.weight[: self.n_freqs].zero_()
                self.head.bias[: self.n_freqs].zero_()
        else:
            self.mel_pinv = None

    @property
    def receptive_field(self) -> int:
        """Mel frames each output frame depends on: the input convolution's 7 and 2 per dilation step."""
        return 7 + 2 * sum(block[1].dilation[0] for block in self.blocks)

    def fit_normalization(self, log_mels: Iterable[Tensor]) -> None:
        """Measure the input mean and standard deviation (dB) on training log-mels."""
        self.normalize.fit(log_mels)

    def spectrum(self, log_mel: Tensor) -> Tensor:
        """The predicted complex STFT ``(batch, n_fft // 2 + 1, n_frames)``."""
        if log_mel.ndim != 3 or log_mel.shape[1] != self.n_mels:
            raise ValueError(f"FourierVocoder expects log-mel (batch, {self.n_mels}, n_frames), got {tuple(log_mel.shape)}")
        x = self.pre(self.normalize(log_mel))
        for block in self.blocks:
            x = x + block(x)
        log_magnitude, re, im = self.head(x).float().chunk(3, dim=1)
        if self.mel_pinv is not None:                  # + ln of the pseudo-inverse magnitude, floored at 1e-5
            power = torch.pow(10.0, log_mel.float() / 10.0)
            linear = (self.mel_pinv @ power).clamp_min(1e-10)
            log_magnitude = log_magnitude + 0.5 * torch.log(linear)
        magnitude = torch.exp(log_magnitude.clamp(max=6.0))        # clamp: no overflow early in training
        phase = torch.atan2(im, re)
        return torch.polar(magnitude, phase)

    def forward(self, log_mel: Tensor) -> Tensor:
        """``(batch, n_mels, n_frames)`` dB -> ``(batch, n_frames * hop_length)`` samples.

        The last ``hop_length`` samples lie past the centre of the last frame (half covered by
        windows): like a time-domain generator's output, crop to the length wanted.
        """
        spec = self.spectrum(log_mel)
        return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window,
                           length=spec.shape[-1] * self.hop_length)
