"""Mixed precision: which autocast dtype the forward pass runs in, and whether a GradScaler is needed.

Notebook: 06_cnn_audio_classification
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["Precision", "choose_precision"]


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: autocast dtype (None = plain float32), loss scaling, and why."""

    dtype: torch.dtype | None
    use_scaler: bool
    reason: str = field(default="", compare=False)

    @property
    def autocast(self) -> bool:
        return self.dtype is not None

    def __str__(self) -> str:
        name = "float32" if self.dtype is None else str(self.dtype).replace("torch.", "")
        return name + (" + GradScaler" if self.use_scaler else "")


def choose_precision(
    device: torch.device | str,
    amp: bool | torch.dtype = True,
    *,
    cuda_bf16_supported: bool | None = None,
) -> Precision:
    """Pick the mixed-precision mode for ``device``.

    * ``amp=False``: float32 everywhere.
    * ``amp=True``: the runtime's decision (``course_lib.runtime.decide_precision``), which
      ``COURSE_PRECISION=fp32|bf16|fp16`` overrides:

      - CPU: bfloat16 autocast only where oneDNN runs bf16 natively (AVX512-BF16, AMX) **and** a
        short probe, timed once per process, finds it faster than float32; float32 otherwise.
        Emulated bf16 made a training step of the course's CNN 4.6-5.2x slower on AVX2-only
        CPUs. bfloat16 has float32's exponent range, so no loss scaling.
      - CUDA with bfloat16 (Ampere and newer): bfloat16 autocast.
      - CUDA without bfloat16 (T4, V100): float16 autocast **and** a ``GradScaler``: float16's
        smallest normal number is ~6e-5, so small gradients would flush to zero unscaled.
    * Apple MPS: float32; autocast support for convolutions there varies with the macOS and
      torch version, and a silent fallback is worse than a slower correct run.
    * ``amp=<dtype>``: that dtype (``torch.float32`` = no autocast); tests force bf16 this way.

    Parameters
    ----------
    device : torch.device or str
    amp : bool or torch.dtype
        True for the choice above, False for float32, or a dtype to force.
    cuda_bf16_supported : bool, optional
        Override the GPU capability query (tests use it to fake a T4).

    Returns
    -------
    Precision

    Notebook: 06_cnn_audio_classification
    """
    device = torch.device(device)
    if amp is False:
        return Precision(None, False, "fp32: amp=False")
    if device.type == "mps":
        return Precision(None, False, "fp32: the trainer does not autocast on MPS")
    if isinstance(amp, torch.dtype):
        dtype, reason = amp, f"amp={amp} given"
    else:
        from course_lib.runtime import decide_precision

        decision = decide_precision(device, cuda_bf16_supported=cuda_bf16_supported)
        dtype, reason = decision.dtype, decision.reason
    if dtype == torch.float32:
        return Precision(None, False, reason)
    return Precision(dtype, device.type == "cuda" and dtype == torch.float16, reason)

