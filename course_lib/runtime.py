"""Where the course runs: profile and budgets, device and precision, seeds and paths.

Every notebook starts with ``rt = setup()``. The profile is the one switch between the small CI
run and the full course:

``ci``      offline data, CPU, tiny budgets; what ``make test`` runs under nbval.
``laptop``  real data where present (a subset), else the offline sets; CPU-sized budgets.
``gpu``     the full public datasets and budgets; the default when CUDA is present.

It is read from the ``COURSE_PROFILE`` environment variable. Code reads budgets from
``rt.budget`` and never branches on the profile name itself.

Three more variables override a decision ``setup()`` otherwise makes from the machine:
``COURSE_DEVICE`` (cpu | cuda | mps), ``COURSE_PRECISION`` (fp32 | bf16 | fp16 | auto) and
``COURSE_THREADS`` (torch's CPU thread count). ``setup()``'s line says what it chose and why.

Notebook: 00_welcome
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Budget",
    "PROFILES",
    "profile_budget",
    "Runtime",
    "get_runtime",
    "torch_device",
    "data_root",
    "in_colab",
    "PrecisionDecision",
    "PrecisionProbe",
    "cpu_bf16_native",
    "decide_precision",
    "pick_amp_dtype",
    "pick_device",
    "pick_num_threads",
    "physical_cores",
    "precision_reason",
    "time_cpu_precision",
    "read_profile",
    "repo_root",
    "seed_everything",
    "make_cuda_deterministic",
    "setup",
]

PROFILE_ENV = "COURSE_PROFILE"
DATA_ENV = "COURSE_DATA"
CHECKPOINT_ENV = "COURSE_CHECKPOINTS"
DEVICE_ENV = "COURSE_DEVICE"
PRECISION_ENV = "COURSE_PRECISION"
THREADS_ENV = "COURSE_THREADS"
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

    Notes
    -----
    Every field is read (by the data layer or the notebooks). A wall-clock budget is not a field: ``train.fit`` takes
    its own ``max_seconds`` (stop, checkpoint, resume), and the ci profile's 60 s per notebook is
    measured by ``make test``.
    """

    epochs: int
    data_fraction: float
    batch_size: int
    max_clips: int | None


PROFILES: dict[str, Budget] = {
    "ci": Budget(epochs=10, data_fraction=1.0, batch_size=64, max_clips=600),
    "laptop": Budget(epochs=15, data_fraction=0.25, batch_size=64, max_clips=None),
    "gpu": Budget(epochs=40, data_fraction=1.0, batch_size=128, max_clips=None),
}

# Test runs only: override fields of the profile's budget, e.g. COURSE_BUDGET="epochs=3,max_clips=240".
# `make test-laptop` uses it to run the laptop profile on the miniature datasets in minutes.
BUDGET_ENV = "COURSE_BUDGET"


def profile_budget(name: str) -> Budget:
    """The budget of profile ``name``, with the fields ``COURSE_BUDGET`` overrides, if set.

    ``COURSE_BUDGET`` is a comma-separated list of ``field=value`` (fields of :class:`Budget`;
    ``max_clips=none`` removes the cap). It exists so the test suite can run a profile's code
    paths (real-data layouts, workers, devices) with tiny budgets; notebooks read the result from
    ``rt.budget`` like any budget and never see the variable.

    Parameters
    ----------
    name : str
        A key of ``PROFILES``.

    Returns
    -------
    Budget

    Raises
    ------
    ValueError
        ``COURSE_BUDGET`` names an unknown field or a value of the wrong type.

    Notes
    -----
    Notebook: 00_welcome (the profiles table).
    """
    import dataclasses

    budget = PROFILES[name]
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return budget
    types = {f.name: f.type for f in dataclasses.fields(Budget)}
    changes: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (p.strip() for p in item.partition("="))
        if not sep or key not in types:
            raise ValueError(f"{BUDGET_ENV}={text!r}: {item!r} is not field=value with a field of "
                             f"{', '.join(types)} (e.g. {BUDGET_ENV}=epochs=3,max_clips=240)")
        try:
            if key == "max_clips" and value.lower() == "none":
                changes[key] = None
            else:
                changes[key] = float(value) if key == "data_fraction" else int(value)
        except ValueError:
            raise ValueError(f"{BUDGET_ENV}: {key}={value!r} is not a number") from None
    return dataclasses.replace(budget, **changes)


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
        ``COURSE_DEVICE`` if set, else CUDA, then Apple MPS, then CPU (the ci profile: CPU).
    amp_dtype : torch.dtype
        Autocast dtype, see :func:`decide_precision`: bfloat16 on Ampere+ GPUs and on CPUs where
        it is native and measured faster, float16 (+ GradScaler) on older GPUs; ``torch.float32``
        means no autocast.
    seed : int or None
        The seed every random generator was set to; None when nothing seeded them
        (:func:`get_runtime` without :func:`setup`).
    on_colab : bool
        Whether this runs in Google Colab.
    data_dir : Path
        Cache root for datasets (``COURSE_DATA``; Google Drive on Colab when mounted).
    checkpoint_dir : Path
        Where training checkpoints go (Drive on Colab when mounted, so a disconnect loses nothing).
    versions : dict of str to str
        Python, torch and torchaudio versions.
    precision_reason : str
        Why ``amp_dtype``, e.g. ``"fp32: this CPU has no native bf16 (oneDNN)"``.
    threads : int
        torch's CPU thread count, set by ``setup()`` (see :func:`pick_num_threads`); 0 = not set.
    threads_reason : str
        Why that many threads.
    determinism : str
        On CUDA after seeding: which deterministic settings :func:`make_cuda_deterministic`
        made ("" on CPU/MPS, where the course's kernels are deterministic already).
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
    precision_reason: str = ""
    threads: int = 0
    threads_reason: str = ""
    determinism: str = ""

    @property
    def use_grad_scaler(self) -> bool:
        """fp16 needs loss scaling; bf16 has float32's range and does not."""
        return self.device.type == "cuda" and self.amp_dtype == torch.float16

    def summary(self) -> str:
        """One line: profile, device, precision and threads (each with its reason), versions, data cache."""
        dev = str(self.device)
        if self.device.type == "cuda":
            dev += f" ({torch.cuda.get_device_name(self.device)})"
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        where = " on Colab" if self.on_colab else ""
        precision = self.precision_reason or _short_dtype(self.amp_dtype)
        threads = f"threads={self.threads} ({self.threads_reason}) | " if self.threads else ""
        return (f"profile={self.profile} | device={dev}{where} | precision={precision} | {threads}"
                f"seed={'not set' if self.seed is None else self.seed}"
                f"{' (' + self.determinism + ')' if self.determinism else ''} | "
                f"{versions} | data={self.data_dir}")


def repo_root() -> Path:
    """The folder holding ``course_lib/`` (the repository in a local checkout)."""
    return Path(__file__).resolve().parent.parent


def local_data_home() -> Path:
    """Where data and checkpoints go by default, outside Colab's Drive: ``<checkout>/data`` when
    course_lib runs from a checkout, else (pip-installed, e.g. on Colab without Drive) the user's
    cache folder ``$XDG_CACHE_HOME/audio-nn-course`` (``~/.cache/audio-nn-course``), never
    site-packages, which may be read-only and is wiped by a reinstall."""
    root = repo_root()
    if (root / "pyproject.toml").is_file() and (root / "solutions").is_dir():
        return root / "data"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "audio-nn-course"


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def pick_device() -> torch.device:
    """``COURSE_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:1``, ``mps``), else CUDA if present,
    then Apple MPS, then CPU.

    Raises
    ------
    ValueError
        ``COURSE_DEVICE`` is not a device name torch knows.
    RuntimeError
        ``COURSE_DEVICE`` names a device this machine (or this torch build) does not have.
    """
    requested = os.environ.get(DEVICE_ENV, "").strip().lower()
    if requested:
        return _requested_device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def _requested_device(name: str) -> torch.device:
    """The device ``COURSE_DEVICE`` asks for, or an error that says what this machine has."""
    unset = f"unset {DEVICE_ENV} to let setup() choose"
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{DEVICE_ENV}={name!r} is not a device the course runs on: use cpu, cuda, "
                         f"cuda:N or mps (e.g. export {DEVICE_ENV}=cuda), or {unset}.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = (f"built for CUDA {torch.version.cuda}" if torch.version.cuda
                     else "a CPU-only build")
            raise RuntimeError(
                f"{DEVICE_ENV}={name} but torch {torch.__version__} ({built}) sees no CUDA GPU here "
                f"(check `nvidia-smi`); {unset}, or set {DEVICE_ENV}=cpu.")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise RuntimeError(f"{DEVICE_ENV}={name} but this machine has {count} CUDA GPU(s) "
                               f"(cuda:0 to cuda:{count - 1}); {unset}.")
    if device.type == "mps" and not _mps_available():
        raise RuntimeError(f"{DEVICE_ENV}={name} but Apple's MPS backend is not available here "
                           f"(it needs an Apple-silicon Mac and macOS 12.3+); {unset}.")
    return device


# ---------------------------------------------------------------------------------------------
# Precision: decided by capability, and on the CPU by measurement
# ---------------------------------------------------------------------------------------------
# On a CPU, bf16 autocast pays only where oneDNN computes bf16 natively (AVX512-BF16, AMX). Elsewhere
# PyTorch emulates it: one training step of the course's LogMelCNN took 4.6-5.2x LONGER in bf16 than
# in float32 on AVX2-only CPUs (issue 10), which is most students' laptops. Native is not enough
# either: bf16 is only kept when a short probe measures it this much faster than float32 (the margin
# covers timing noise and pays for bf16's 8-bit mantissa).
BF16_MIN_SPEEDUP = 1.1
PROBE_SECONDS = 0.4
_PRECISION_NAMES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
                    "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def _short_dtype(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
        dtype, str(dtype).replace("torch.", ""))


@dataclass(frozen=True)
class PrecisionDecision:
    """The autocast dtype for a device and why it was chosen.

    Attributes
    ----------
    dtype : torch.dtype
        ``torch.bfloat16`` or ``torch.float16`` to autocast to; ``torch.float32`` = no autocast.
    reason : str
        One phrase that starts with the short name, e.g. ``"fp32: this CPU has no native bf16
        (oneDNN)"``.
    probe : PrecisionProbe or None
        The CPU timing the decision rests on, when one was made.
    """

    dtype: torch.dtype
    reason: str
    probe: PrecisionProbe | None = None


@dataclass(frozen=True)
class PrecisionProbe:
    """One CPU timing of float32 against bf16 autocast (see :func:`time_cpu_precision`).

    Attributes
    ----------
    fp32_ms, bf16_ms : float
        Fastest forward+backward step of the probe network in each precision, in milliseconds.
    seconds : float
        Wall time of the whole probe (warm-up included), in seconds.
    threads : int
        torch's CPU thread count during the probe (1 unless asked otherwise).
    """

    fp32_ms: float
    bf16_ms: float
    seconds: float
    threads: int

    @property
    def speedup(self) -> float:
        """How many times faster bf16 ran than float32 (< 1: slower)."""
        return self.fp32_ms / self.bf16_ms


def cpu_bf16_native() -> bool:
    """True where oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX).

    Asks oneDNN rather than the CPU flags: it honours ``ONEDNN_MAX_CPU_ISA`` (so
    ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` emulates an AVX2-only laptop), whereas
    ``torch.cpu._is_avx512_bf16_supported()`` reads CPUID and ignores that cap.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: no native path to use
        return False


def time_cpu_precision(max_seconds: float = PROBE_SECONDS, threads: int = 1) -> PrecisionProbe:
    """Time one forward+backward step of a small conv net on the CPU in float32 and in bf16 autocast.

    The net is a miniature of the course's log-mel CNNs (three 3x3 conv blocks with batch norm and
    pooling, then two linear layers) on a batch of 8 inputs of 64 x 64: about 10 ms a step on one
    core, convolutions and matmuls like the real models. After one warm-up step in each precision,
    steps alternate between the two until ``max_seconds`` have passed since the start (at least one
    timed step of each), and the fastest of each is kept: the minimum is the estimate least
    disturbed by other processes. The global random state and torch's thread count are left as
    they were.

    It runs on one thread by default: the question is whether this CPU's bf16 kernels beat its
    float32 ones, and on a busy 2-core machine a 2-thread step of this net took 0.3-0.8 s instead
    of ~0.02 s (every thread waits for the slowest core), so a 2-thread probe ran for seconds and
    measured the neighbours rather than the kernels.

    Parameters
    ----------
    max_seconds : float
        Time budget for the whole probe, warm-up included, in seconds.
    threads : int
        torch's CPU thread count during the probe.

    Returns
    -------
    PrecisionProbe
    """
    from torch import nn

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        x = torch.randn(8, 1, 64, 64)
        y = torch.randint(0, 10, (8,))

    def step(bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(net(x), y)
        net.zero_grad(set_to_none=True)
        loss.backward()
        return time.perf_counter() - t0

    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        step(False), step(True)  # warm-up: allocator, oneDNN primitive creation
        best = {False: math.inf, True: math.inf}
        rounds = 0
        while rounds < 1 or time.perf_counter() - start < max_seconds:
            for bf16 in ((False, True) if rounds % 2 == 0 else (True, False)):
                best[bf16] = min(best[bf16], step(bf16))
            rounds += 1
    finally:
        torch.set_num_threads(threads_before)
    return PrecisionProbe(fp32_ms=1000 * best[False], bf16_ms=1000 * best[True],
                          seconds=time.perf_counter() - start, threads=threads)


_CPU_DECISION: PrecisionDecision | None = None  # measured once per process


def _cpu_precision() -> PrecisionDecision:
    """bf16 only where oneDNN runs it natively AND the probe measures it faster; else float32."""
    global _CPU_DECISION
    if _CPU_DECISION is None:
        if not cpu_bf16_native():
            _CPU_DECISION = PrecisionDecision(
                torch.float32, "fp32: this CPU has no native bf16 (oneDNN), autocast would emulate it")
        else:
            probe = time_cpu_precision()
            if probe.speedup >= BF16_MIN_SPEEDUP:
                _CPU_DECISION = PrecisionDecision(
                    torch.bfloat16, f"bf16: native and {probe.speedup:.1f}x faster than fp32 in a "
                                    f"{probe.seconds:.1f} s probe", probe)
            else:
                _CPU_DECISION = PrecisionDecision(
                    torch.float32, f"fp32: bf16 is native but only {probe.speedup:.2f}x fp32's speed "
                                   f"in a {probe.seconds:.1f} s probe (bf16 needs >= "
                                   f"{BF16_MIN_SPEEDUP}x)", probe)
    return _CPU_DECISION


def _forced_precision() -> tuple[torch.dtype, str] | None:
    """``COURSE_PRECISION`` as (dtype, the value given), or None for unset / ``auto``."""
    raw = os.environ.get(PRECISION_ENV, "").strip()
    if raw.lower() in ("", "auto"):
        return None
    if raw.lower() not in _PRECISION_NAMES:
        raise ValueError(f"{PRECISION_ENV}={raw!r} is not a precision: use fp32, bf16, fp16 or auto "
                         f"(e.g. export {PRECISION_ENV}=fp32 to run without autocast).")
    return _PRECISION_NAMES[raw.lower()], raw


def decide_precision(device: torch.device | str, *,
                     cuda_bf16_supported: bool | None = None) -> PrecisionDecision:
    """The autocast dtype for ``device``, and why.

    * ``COURSE_PRECISION=fp32|bf16|fp16`` forces it (``auto`` or unset: the rules below).
    * CUDA: bfloat16 on Ampere and newer; float16 on older GPUs such as Colab's T4, where the
      trainer pairs it with a GradScaler.
    * Apple MPS: float32; the trainer does not autocast there (support for convolutions varies
      with the macOS and torch versions).
    * CPU: bfloat16 only where oneDNN runs it natively (:func:`cpu_bf16_native`) **and** a short
      probe (:func:`time_cpu_precision`, < 1 s, once per process) measures it at least
      ``BF16_MIN_SPEEDUP`` times faster than float32; float32 otherwise. Without native support
      nothing is timed: emulated bf16 is several times slower.

    Parameters
    ----------
    device : torch.device or str
    cuda_bf16_supported : bool, optional
        Override the GPU capability query (tests use it to fake a T4).

    Returns
    -------
    PrecisionDecision

    Raises
    ------
    ValueError
        ``COURSE_PRECISION`` holds something else.
    """
    device = torch.device(device)
    if device.type == "mps":
        ignored = f" ({PRECISION_ENV} is not applied on MPS)" if _forced_precision() else ""
        return PrecisionDecision(torch.float32, "fp32: the trainer does not autocast on MPS "
                                                "(support varies with macOS and torch)" + ignored)
    forced = _forced_precision()
    if forced is not None:
        dtype, raw = forced
        return PrecisionDecision(dtype, f"{_short_dtype(dtype)}: forced by {PRECISION_ENV}={raw}")
    if device.type == "cuda":
        if cuda_bf16_supported is None:
            cuda_bf16_supported = torch.cuda.is_bf16_supported()
        if cuda_bf16_supported:
            return PrecisionDecision(torch.bfloat16, "bf16: this GPU computes bfloat16 (Ampere or newer)")
        return PrecisionDecision(torch.float16, "fp16 + GradScaler: this GPU has no bfloat16 "
                                                "(older than Ampere, e.g. a T4)")
    return _cpu_precision()


def pick_amp_dtype(device: torch.device, *, cuda_bf16_supported: bool | None = None) -> torch.dtype:
    """The autocast dtype for ``device`` (``torch.float32`` = no autocast); see
    :func:`decide_precision` for the rules and the reason."""
    return decide_precision(device, cuda_bf16_supported=cuda_bf16_supported).dtype


def precision_reason(device: torch.device | str) -> str:
    """Why :func:`pick_amp_dtype` picks what it picks on ``device``, as one phrase."""
    return decide_precision(device).reason


# ---------------------------------------------------------------------------------------------
# CPU threads: decided here, in one place
# ---------------------------------------------------------------------------------------------
def physical_cores() -> int:
    """Physical CPU cores this process may use (hyper-threads not counted), at least 1.

    Reads ``/proc/cpuinfo`` (Linux) for distinct (socket, core) pairs among the CPUs this process
    is allowed to run on; elsewhere ``os.cpu_count()``.
    """
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # macOS, Windows
        allowed = None
    logical = len(allowed) if allowed else (os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return max(1, logical)
    cores, cpu, socket = set(), None, "0"
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            cpu, socket = int(value), "0"
        elif key == "physical id":
            socket = value
        elif key == "core id" and (allowed is None or cpu in allowed):
            cores.add((socket, value))
    return max(1, min(len(cores) or logical, logical))


def pick_num_threads(profile: str, device: torch.device | str = "cpu") -> tuple[int, str]:
    """torch's CPU thread count for ``profile`` on this machine, and why.

    * ``COURSE_THREADS=N`` forces N; an ``OMP_NUM_THREADS`` the user set is kept.
    * ``ci`` profile: 1 thread. The course's models are small, so a thread pool pays a
      synchronisation on every op, and with 2 threads on 2 cores every op waits for the slower
      core: whatever else runs stalls each step. Measured on the 2-core development machine with
      ``python -m course_lib.bench threads`` (2026-11-25, other jobs running, load average 7.7),
      median ms per training step at 1 | 2 threads: LogMelCNN of 05-07 (batch 64) 312 | 1044,
      GRU of 09 (batch 32) 29 | 478, ChebNet of 08 (batch 32) 43 | 631; in a calmer moment (load
      1.2 at the start) the CNN 238 | 555 and the GRU 24 | 215. One thread won for every model
      in every run; no fully idle machine was available to measure.
    * otherwise: the physical cores (:func:`physical_cores`); hyper-threads share a core's
      arithmetic units and only add synchronisation. Students' machines usually have more cores
      and less else to do than a shared CI runner; ``COURSE_THREADS=1`` is the fix where not.

    Returns
    -------
    threads : int
    reason : str

    Raises
    ------
    ValueError
        ``COURSE_THREADS`` is not a whole number >= 1.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV}={raw!r} is not a thread count: use a whole number >= 1 "
                             f"(e.g. export {THREADS_ENV}=1), or unset it.")
        return n, f"{THREADS_ENV}={n}"
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp), f"OMP_NUM_THREADS={omp}"
    if profile == "ci":
        return 1, "ci profile: the small models measured fastest on one thread"
    cores = physical_cores()
    return cores, f"{cores} physical core{'s' if cores != 1 else ''}"


def set_cpu_threads(threads: int) -> None:
    """One thread count for every CPU pool a notebook uses: torch's, and the BLAS/OpenMP pools of
    NumPy, SciPy and scikit-learn (through threadpoolctl, which scikit-learn installs). Capping
    torch alone left NumPy's BLAS at one thread per logical CPU, the oversubscription that
    :func:`pick_num_threads` measured."""
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return
    threadpool_limits(threads)


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
    """Seed Python, NumPy and torch (all devices) so a run can be repeated.

    On CUDA it also makes the kernels deterministic (:func:`make_cuda_deterministic`): a seed
    alone does not repeat a GPU run, because cuDNN picks algorithms by timing and some kernels
    add in a thread-dependent order.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        make_cuda_deterministic()


def make_cuda_deterministic() -> str:
    """Ask CUDA for repeatable results; returns what was set, for the setup line.

    * ``cudnn.deterministic = True``, ``cudnn.benchmark = False``: no algorithm chosen by timing;
    * ``torch.use_deterministic_algorithms(True, warn_only=True)``: deterministic kernels where
      torch has them, and a warning (not an error) naming each op that has none (e.g. some
      scatter-adds used by graph layers): those ops are where a resumed GPU run may differ in
      the last bits;
    * ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless set): cuBLAS needs it for deterministic matmuls;
      it only takes effect if set before the first cuBLAS call, i.e. before any CUDA matmul.
    """
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    return "deterministic (cuDNN, torch.use_deterministic_algorithms warn_only, cuBLAS workspace)"


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
    return local_data_home() / "cache"


def _default_checkpoint_dir(on_colab: bool) -> Path:
    if os.environ.get(CHECKPOINT_ENV):
        return Path(os.environ[CHECKPOINT_ENV]).expanduser()
    if on_colab and _drive_mounted():
        return DRIVE_ROOT / "audio-nn-course" / "checkpoints"
    return local_data_home() / "checkpoints"


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import torchaudio

        versions["torchaudio"] = torchaudio.__version__
    except ImportError:  # the summary still helps without it
        versions["torchaudio"] = "missing"
    return versions


_RUNTIME: Runtime | None = None


def _build_runtime(profile: str | None, seed: int | None) -> Runtime:
    """Every decision of :func:`setup` except seeding (so reading the runtime never reseeds)."""
    on_colab = in_colab()
    device = pick_device()
    name = read_profile(profile, device)
    if name == "ci" and not os.environ.get(DEVICE_ENV, "").strip():
        device = torch.device("cpu")  # CI runs on the CPU, even on a GPU machine, unless asked
    threads, threads_reason = pick_num_threads(name, device)
    set_cpu_threads(threads)
    precision = decide_precision(device)
    return Runtime(
        profile=name,
        budget=profile_budget(name),
        device=device,
        amp_dtype=precision.dtype,
        seed=seed,
        on_colab=on_colab,
        data_dir=_default_data_dir(on_colab),
        checkpoint_dir=_default_checkpoint_dir(on_colab),
        versions=_versions(),
        precision_reason=precision.reason,
        threads=threads,
        threads_reason=threads_reason,
    )


def setup(seed: int = 0, profile: str | None = None, *, verbose: bool = True) -> Runtime:
    """Detect Colab, pick profile, device, threads and precision, seed everything, print one line.

    The CPU's bf16 probe (:func:`decide_precision`) leaves the random state and the thread count
    (:func:`pick_num_threads`) alone; seeding comes last all the same.

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
    rt = _build_runtime(profile, seed)
    seed_everything(seed)  # last: nothing above draws from the generators afterwards
    if rt.device.type == "cuda":
        rt = dataclasses.replace(rt, determinism=make_cuda_deterministic())
    _RUNTIME = rt
    if verbose:
        print(rt.summary())
        if rt.budget != PROFILES[rt.profile]:
            print(f"budget of the {rt.profile} profile overridden by {BUDGET_ENV}: {rt.budget}")
    return rt


def get_runtime() -> Runtime:
    """The runtime chosen by :func:`setup`; if it was not called, the same decisions made
    quietly **without seeding** (``seed`` is then None): reading the runtime, e.g. from
    ``LogMel()`` or ``fit(device=None)`` mid-notebook, never resets the random generators."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = _build_runtime(None, None)
    return _RUNTIME


def torch_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` as a :class:`torch.device`, or the runtime's device when it is None.

    The one place library code (features, train) turns a ``device=`` argument into a device.
    """
    return get_runtime().device if device is None else torch.device(device)
