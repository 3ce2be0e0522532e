"""Where the course runs: profile and budgets, device and precision, seeds and paths.

Every notebook starts with ``rt = setup()``. The profile is the one switch between the small CI
run and the full course:

``ci``      offline data, CPU, tiny budgets; what ``make test`` runs under nbval.
``laptop``  real data where present (a subset), else the offline sets; CPU-sized budgets.
``gpu``     the full public datasets and budgets; the default when CUDA is present.

It is read from the ``COURSE_PROFILE`` environment variable. Code reads budgets from
``rt.budget`` and never branches on the profile name itself.

Notebook: 00_welcome
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Budget",
    "PROFILES",
    "Runtime",
    "get_runtime",
    "data_root",
    "in_colab",
    "pick_amp_dtype",
    "pick_device",
    "read_profile",
    "repo_root",
    "seed_everything",
    "setup",
]

PROFILE_ENV = "COURSE_PROFILE"
DATA_ENV = "COURSE_DATA"
CHECKPOINT_ENV = "COURSE_CHECKPOINTS"
DRIVE_ROOT = Path("/content/drive/MyDrive")


@dataclass(frozen=True)
class Budget:
    """How much work a profile allows; notebooks size their runs from this, never from the name.

    Attributes
    ----------
    epochs : int
        Training epochs for a notebook's main model.
    data_fraction : float
        Fraction of a real dataset's training split to use (1.0 = all of it).
    batch_size : int
        Mini-batch size for training.
    max_clips : int or None
        Cap on clips per split (None = no cap); keeps CI runs small.
    time_budget_s : float
        Soft wall-clock budget for one training run, in seconds.
    num_workers : int
        DataLoader worker processes.
    """

    epochs: int
    data_fraction: float
    batch_size: int
    max_clips: int | None
    time_budget_s: float
    num_workers: int


PROFILES: dict[str, Budget] = {
    "ci": Budget(epochs=10, data_fraction=1.0, batch_size=64, max_clips=600,
                 time_budget_s=20.0, num_workers=0),
    "laptop": Budget(epochs=15, data_fraction=0.25, batch_size=64, max_clips=None,
                     time_budget_s=600.0, num_workers=2),
    "gpu": Budget(epochs=40, data_fraction=1.0, batch_size=128, max_clips=None,
                  time_budget_s=3600.0, num_workers=2),
}


@dataclass(frozen=True)
class Runtime:
    """What ``setup()`` decided, in one object.

    Attributes
    ----------
    profile : str
        ``"ci"``, ``"laptop"`` or ``"gpu"``.
    budget : Budget
        The profile's budgets.
    device : torch.device
        CUDA, then Apple MPS, then CPU.
    amp_dtype : torch.dtype
        Autocast dtype: bfloat16 where the device supports it (CPU, Ampere+ GPUs), else float16.
    seed : int
        The seed every random generator was set to.
    on_colab : bool
        Whether this runs in Google Colab.
    data_dir : Path
        Cache root for datasets (``COURSE_DATA``; Google Drive on Colab when mounted).
    checkpoint_dir : Path
        Where training checkpoints go (Drive on Colab when mounted, so a disconnect loses nothing).
    """

    profile: str
    budget: Budget
    device: torch.device
    amp_dtype: torch.dtype
    seed: int
    on_colab: bool
    data_dir: Path
    checkpoint_dir: Path
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def use_grad_scaler(self) -> bool:
        """fp16 needs loss scaling; bf16 has float32's range and does not."""
        return self.device.type == "cuda" and self.amp_dtype == torch.float16

    def summary(self) -> str:
        """One line: profile, device, versions, data cache."""
        dev = str(self.device)
        if self.device.type == "cuda":
            dev += f" ({torch.cuda.get_device_name(self.device)})"
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        where = " on Colab" if self.on_colab else ""
        return (f"profile={self.profile} | device={dev}{where} | amp={str(self.amp_dtype)[6:]} | "
                f"seed={self.seed} | {versions} | data={self.data_dir}")


def repo_root() -> Path:
    """The folder holding ``course_lib/`` (the repository in a local checkout)."""
    return Path(__file__).resolve().parent.parent


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def pick_device() -> torch.device:
    """CUDA if present, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_amp_dtype(device: torch.device, *, cuda_bf16_supported: bool | None = None) -> torch.dtype:
    """The autocast dtype for ``device``.

    bfloat16 where supported (CPU, MPS, Ampere and newer GPUs); float16 on older GPUs such as
    Colab's T4, where it must be paired with a GradScaler.
    """
    if device.type == "cuda":
        if cuda_bf16_supported is None:
            cuda_bf16_supported = torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16_supported else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16


def read_profile(value: str | None = None, device: torch.device | None = None) -> str:
    """The profile name from ``value`` or ``COURSE_PROFILE``; default gpu with CUDA, else laptop."""
    if value is None:
        value = os.environ.get(PROFILE_ENV, "").strip()
    if not value:
        device = device or pick_device()
        return "gpu" if device.type == "cuda" else "laptop"
    value = value.lower()
    if value not in PROFILES:
        raise ValueError(
            f"Unknown course profile {value!r} (from {PROFILE_ENV}). "
            f"Valid profiles: {', '.join(PROFILES)}. "
            f"For example: export {PROFILE_ENV}=laptop"
        )
    return value


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _drive_mounted() -> bool:
    return DRIVE_ROOT.is_dir()


def data_root() -> Path:
    """The data cache folder, decided now: ``COURSE_DATA``, else Google Drive on Colab when
    mounted, else ``<repo>/data/cache``. The one place this is decided; the data layer calls it."""
    return _default_data_dir(in_colab())


def _default_data_dir(on_colab: bool) -> Path:
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    if on_colab and _drive_mounted():
        return DRIVE_ROOT / "audio-nn-course" / "data"
    return repo_root() / "data" / "cache"


def _default_checkpoint_dir(on_colab: bool) -> Path:
    if os.environ.get(CHECKPOINT_ENV):
        return Path(os.environ[CHECKPOINT_ENV]).expanduser()
    if on_colab and _drive_mounted():
        return DRIVE_ROOT / "audio-nn-course" / "checkpoints"
    return repo_root() / "data" / "checkpoints"


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import torchaudio

        versions["torchaudio"] = torchaudio.__version__
    except ImportError:  # the summary still helps without it
        versions["torchaudio"] = "missing"
    return versions


_RUNTIME: Runtime | None = None


def setup(seed: int = 0, profile: str | None = None, *, verbose: bool = True) -> Runtime:
    """Detect Colab, pick profile, device and precision, seed everything, print one line.

    Parameters
    ----------
    seed : int
        Seed for Python, NumPy and torch.
    profile : str, optional
        Overrides ``COURSE_PROFILE`` (``"ci"``, ``"laptop"`` or ``"gpu"``).
    verbose : bool
        Print the one-line summary.

    Returns
    -------
    Runtime
        Also kept for :func:`get_runtime`, so library code sees the same decision.
    """
    global _RUNTIME
    on_colab = in_colab()
    device = pick_device()
    name = read_profile(profile, device)
    if name == "ci":
        device = torch.device("cpu")  # CI is CPU-only by definition, even on a GPU machine
    seed_everything(seed)
    rt = Runtime(
        profile=name,
        budget=PROFILES[name],
        device=device,
        amp_dtype=pick_amp_dtype(device),
        seed=seed,
        on_colab=on_colab,
        data_dir=_default_data_dir(on_colab),
        checkpoint_dir=_default_checkpoint_dir(on_colab),
        versions=_versions(),
    )
    _RUNTIME = rt
    if verbose:
        print(rt.summary())
    return rt


def get_runtime() -> Runtime:
    """The runtime chosen by :func:`setup` (set up quietly with defaults if not yet called)."""
    if _RUNTIME is None:
        return setup(verbose=False)
    return _RUNTIME
