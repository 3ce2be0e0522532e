"""Benchmarks that print a ratio against a baseline measured in the same run.

``python -m course_lib.bench train`` compares two ways of feeding the same model the same clips:

* **naive**: a ``Dataset`` whose ``__getitem__`` decodes the file and computes a librosa log-mel,
  item by item, every epoch (what most first attempts look like);
* **packed**: the clips decoded once into one in-memory waveform tensor; each batch is a slice,
  moved to the device (``non_blocking``, pinned on CUDA), and turned into log-mels there in one
  batched op (``course_lib.features.LogMel``).

Both train the same small CNN with the same optimiser; throughput is reported in clips per second,
with and without the model step, and as a ratio. Nothing is asserted: the numbers are what this
machine measured.

It then prints the precision figures (``python -m course_lib.bench precision`` prints only those):
ms per training step of the course's ``LogMelCNN(channels=(16, 32, 64))`` on a batch of 64 log-mels,
in float32 and in bf16 autocast on this machine, their ratio, and what ``choose_precision`` picked
and why. On a CPU without native bf16 (AVX2 only: most laptops) the bf16 step is several times
slower; ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` makes a newer CPU behave like one.

``python -m course_lib.bench threads`` times training steps of the course's small models (the CNN
of 05-07, a GRU of 09, a ChebNet of 08) with one torch thread and with one per physical core: the
measurement behind ``course_lib.runtime.pick_num_threads``. It prints the machine's load average,
because the answer depends on what else runs.

Notebook: 04_features_and_preprocessing (the feature pipeline on the device); the CNN notebooks
05-07 train from splits decoded once into memory for the reason this benchmark measures.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["BenchResult", "PrecisionResult", "ThreadsResult", "bench_precision", "bench_threads",
           "bench_train", "main"]

SAMPLE_RATE = 16000
N_FFT, HOP, N_MELS = 1024, 256, 64


@dataclass
class BenchResult:
    """Clips per second of each pipeline (with and without the model step) and where they came from."""

    source: str
    n_clips: int
    batch_size: int
    epochs: int
    device: str
    threads: int
    naive_train: float
    packed_train: float
    naive_input: float
    packed_input: float
    pack_seconds: float

    @property
    def train_ratio(self) -> float:
        return self.packed_train / self.naive_train

    @property
    def input_ratio(self) -> float:
        return self.packed_input / self.naive_input

    def report(self) -> str:
        return "\n".join([
            f"bench train: {self.n_clips} clips of 1.0 s from {self.source}, batch {self.batch_size}, "
            f"{self.epochs} epochs, device {self.device}, {self.threads} torch threads",
            f"  with the model step (clips/s): naive {self.naive_train:8.1f} | "
            f"packed {self.packed_train:8.1f} | speed-up {self.train_ratio:5.1f}x",
            f"  input pipeline alone (clips/s): naive {self.naive_input:8.1f} | "
            f"packed {self.packed_input:8.1f} | speed-up {self.input_ratio:5.1f}x",
            f"  one-off cost of packing (decode all clips once): {self.pack_seconds:.2f} s",
        ])


def _clip_files(n_clips: int, folder: Path) -> tuple[list[Path], list[int], str]:
    """Files to read: the offline spoken_digits set when it is built, else clips written here."""
    try:
        from course_lib.data import load_dataset

        ds = load_dataset("spoken_digits", "train", profile="ci")
        if len(ds) == 0:
            raise FileNotFoundError("empty")
        idx = np.random.default_rng(0).permutation(len(ds))[:n_clips]
        return [Path(ds.records[i].path) for i in idx], [int(ds.records[i].label) for i in idx], \
            "offline:spoken_digits"
    except Exception:  # noqa: BLE001 - any failure: the benchmark still runs on written clips
        pass
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    paths, labels = [], []
    for i in range(n_clips):
        label = i % 10
        f0 = 200.0 * 2 ** (label / 4) * (1 + 0.02 * rng.standard_normal())
        x = 0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(len(t)) + 0.01 * rng.standard_normal(len(t))
        path = folder / f"clip_{i:04d}.wav"
        sf.write(path, x.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
        labels.append(label)
    return paths, labels, f"synthetic tones written to {folder}"


def _decode(path: Path) -> np.ndarray:
    import librosa
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE:
        x = librosa.resample(x, orig_sr=sr, target_sr=SAMPLE_RATE)
    return librosa.util.fix_length(x, size=SAMPLE_RATE)


class NaiveDataset(torch.utils.data.Dataset):
    """Decode + librosa log-mel in ``__getitem__``: every item, every epoch."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import librosa

        x = _decode(self.paths[i])
        mel = librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP,
                                             n_mels=N_MELS)
        return torch.from_numpy(librosa.power_to_db(mel, top_db=80.0)).float(), self.labels[i]


def _packed_batches(packed: torch.Tensor, labels: torch.Tensor, batch_size: int,
                    device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.randperm(len(packed))
    for start in range(0, len(packed), batch_size):
        idx = order[start:start + batch_size]
        yield (packed[idx].to(device, non_blocking=True), labels[idx].to(device, non_blocking=True))


def _throughput(batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]], epochs: int,
                step: Callable[[torch.Tensor, torch.Tensor], None], device: torch.device) -> float:
    """Clips per second over ``epochs`` passes (after one warm-up batch)."""
    x, y = next(batches())
    step(x, y)  # warm-up: allocator, librosa/numba caches, cuDNN autotuning
    n, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in batches():
            step(x, y)
            n += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def _store_at_rate(paths: list[Path], rate: int, folder: Path) -> list[Path]:
    """Copies of the clips stored at ``rate`` Hz, as a dataset that ships at that rate would be."""
    import soundfile as sf

    from course_lib.audio import resample

    stored = []
    for i, path in enumerate(paths):
        x = resample(_decode(path), SAMPLE_RATE, rate)
        target = folder / f"stored_{rate}_{i:04d}.wav"
        sf.write(target, x.astype(np.float32), rate, subtype="PCM_16")
        stored.append(target)
    return stored


def bench_train(n_clips: int = 256, batch_size: int = 64, epochs: int = 2,
                device: torch.device | str | None = None, file_rate: int | None = None) -> BenchResult:
    """Measure clips/s of the naive and the packed training input pipelines on the same clips.

    Parameters
    ----------
    n_clips : int
        Clips (1 s each at 16 kHz) from the offline spoken_digits set, or written to a temp dir.
    batch_size, epochs : int
    device : torch.device or str, optional
        Default: the runtime's device.
    file_rate : int, optional
        Store the clips at this rate first (e.g. 44100, as ESC-50 ships): then the naive loader
        resamples every item every epoch while the packed split resamples once. Default: the
        files as they are (16 kHz, the naive loader's best case).

    Returns
    -------
    BenchResult
        ``.report()`` is the text ``python -m course_lib.bench train`` prints.

    Notebook: 04_features_and_preprocessing
    """
    from course_lib.features import LogMel
    from course_lib.models import LogMelCNN

    if device is None:
        from course_lib.runtime import get_runtime

        device = get_runtime().device
    device = torch.device(device)
    with tempfile.TemporaryDirectory(prefix="course_bench_") as tmp:
        paths, labels, source = _clip_files(n_clips, Path(tmp))
        if file_rate is not None and file_rate != SAMPLE_RATE:
            paths = _store_at_rate(paths, file_rate, Path(tmp))
            source += f", stored at {file_rate} Hz"

        t0 = time.perf_counter()
        packed = torch.from_numpy(np.stack([_decode(p) for p in paths]))
        pack_seconds = time.perf_counter() - t0
        label_t = torch.tensor(labels)
        if device.type == "cuda":
            packed, label_t = packed.pin_memory(), label_t.pin_memory()

        logmel = LogMel(SAMPLE_RATE, N_FFT, HOP, N_MELS, device=device)
        torch.manual_seed(0)
        model = LogMelCNN(10, channels=(8, 16, 32)).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def model_step(feats: torch.Tensor, y: torch.Tensor) -> None:
            loss = loss_fn(model(feats), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        naive = torch.utils.data.DataLoader(NaiveDataset(paths, labels), batch_size=batch_size,
                                            shuffle=True, pin_memory=device.type == "cuda")

        def naive_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for feats, y in naive:
                yield feats.to(device, non_blocking=True), y.to(device, non_blocking=True)

        def packed_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for x, y in _packed_batches(packed, label_t, batch_size, device):
                yield logmel(x), y

        def no_step(x: torch.Tensor, y: torch.Tensor) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()

        return BenchResult(
            source=source, n_clips=len(paths), batch_size=batch_size, epochs=epochs,
            device=str(device), threads=torch.get_num_threads(),
            naive_train=_throughput(naive_batches, epochs, model_step, device),
            packed_train=_throughput(packed_batches, epochs, model_step, device),
            naive_input=_throughput(naive_batches, epochs, no_step, device),
            packed_input=_throughput(packed_batches, epochs, no_step, device),
            pack_seconds=pack_seconds,
        )


# The variables that cap the CPU's instruction set: set, they make this machine emulate an older one.
_ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "COURSE_PRECISION")


@dataclass
class PrecisionResult:
    """ms per training step of the course's CNN in float32 and in bf16 autocast, and the choice.

    Attributes
    ----------
    device : str
    threads : int
        torch's CPU thread count.
    cpu_capability : str
        The vector instruction set ATen dispatches to (``AVX512``, ``AVX2``, ...).
    bf16_native : bool
        Whether oneDNN computes bf16 natively here (``course_lib.runtime.cpu_bf16_native``).
    batch_size, n_mels, frames, steps : int
        What one step trains on, and the steps timed per precision.
    fp32_ms, bf16_ms : float
        Median ms per training step (forward, backward, AdamW update).
    chosen : str
        ``choose_precision``'s pick and reason, e.g. ``"fp32: this CPU has no native bf16 (oneDNN)..."``.
    env : dict of str to str
        The instruction-set and precision variables set for this run (empty: none).
    """

    device: str
    threads: int
    cpu_capability: str
    bf16_native: bool
    batch_size: int
    n_mels: int
    frames: int
    steps: int
    fp32_ms: float
    bf16_ms: float
    chosen: str
    env: dict[str, str]

    @property
    def bf16_over_fp32(self) -> float:
        """bf16 step time / float32 step time (> 1: bf16 is slower)."""
        return self.bf16_ms / self.fp32_ms

    def report(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items()) or "none"
        faster = ("bf16 faster" if self.bf16_over_fp32 < 1 else "bf16 slower")
        return "\n".join([
            f"bench precision: one training step of LogMelCNN(channels=(16, 32, 64)) on {self.batch_size} "
            f"log-mels of {self.n_mels} x {self.frames}, median of {self.steps} steps, device {self.device}, "
            f"{self.threads} torch threads, CPU capability {self.cpu_capability}, native bf16 (oneDNN) "
            f"{'yes' if self.bf16_native else 'no'}, overrides: {env}",
            f"  fp32 {self.fp32_ms:8.1f} ms/step | bf16 autocast {self.bf16_ms:8.1f} ms/step | "
            f"bf16/fp32 {self.bf16_over_fp32:5.2f} ({faster})",
            f"  choose_precision picked {self.chosen}",
        ])


def bench_precision(batch_size: int = 64, steps: int = 6, device: torch.device | str | None = None,
                    n_mels: int = N_MELS, frames: int = 63) -> PrecisionResult:
    """Time training steps of the course's CNN in float32 and in bf16 autocast on ``device``.

    Parameters
    ----------
    batch_size : int
    steps : int
        Steps timed per precision, after one warm-up step each; the two precisions alternate in
        blocks of ``steps // 3`` (at least 1) so a change in the machine's load hits both.
    device : torch.device or str, optional
        Default: the runtime's device.
    n_mels, frames : int
        Input size; 64 x 63 is one second at 16 kHz with hop 256, as in notebooks 05-07.

    Returns
    -------
    PrecisionResult
        ``.report()`` is what ``python -m course_lib.bench precision`` prints.

    Notebook: 05_from_filters_to_cnns (the trainer's precision choice)
    """
    import os

    from course_lib.models import LogMelCNN
    from course_lib.runtime import cpu_bf16_native
    from course_lib.train import choose_precision

    if device is None:
        from course_lib.runtime import get_runtime

        device = get_runtime().device
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 1, n_mels, frames, generator=gen).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LogMelCNN(10, channels=(16, 32, 64)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    step(False), step(True)  # warm-up: allocator, oneDNN primitives, cuDNN autotuning
    block = max(1, steps // 3)
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(math.ceil(steps / block)):
        for bf16 in (False, True) if round_ % 2 == 0 else (True, False):
            times[bf16].extend(step(bf16) for _ in range(min(block, steps - len(times[bf16]))))
    precision = choose_precision(device, True)
    return PrecisionResult(
        device=str(device), threads=torch.get_num_threads(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(), bf16_native=cpu_bf16_native(),
        batch_size=batch_size, n_mels=n_mels, frames=frames, steps=steps,
        fp32_ms=1000 * float(np.median(times[False])), bf16_ms=1000 * float(np.median(times[True])),
        chosen=precision.reason,
        env={k: os.environ[k] for k in _ISA_ENV if os.environ.get(k)},
    )


@dataclass
class ThreadsResult:
    """ms per training step of small course models at each torch thread count.

    Attributes
    ----------
    thread_counts : tuple of int
    ms : dict of str to list of float
        Workload name -> median ms per step at each of ``thread_counts``.
    load_average : tuple of float
        The machine's 1-, 5- and 15-minute load averages before the run (empty where unknown).
    cores : int
        Physical cores (``course_lib.runtime.physical_cores``).
    picked : dict of str to str
        Profile -> what ``pick_num_threads`` chooses there and why.
    """

    thread_counts: tuple[int, ...]
    ms: dict[str, list[float]]
    load_average: tuple[float, ...]
    cores: int
    picked: dict[str, str]

    def report(self) -> str:
        load = ", ".join(f"{x:.2f}" for x in self.load_average) or "unknown"
        head = " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in self.thread_counts)
        lines = [f"bench threads: ms per training step at {head}; {self.cores} physical cores, "
                 f"load average before the run {load} (other work on the machine changes the answer)"]
        for name, times in self.ms.items():
            cells = " | ".join(f"{ms:8.1f}" for ms in times)
            lines.append(f"  {name:30s} {cells} | {self.thread_counts[-1]} threads / 1 thread "
                         f"{times[-1] / times[0]:5.2f}")
        lines.append("  pick_num_threads: " + "; ".join(f"{k}: {v}" for k, v in self.picked.items()))
        return "\n".join(lines)


def _thread_workloads() -> dict[str, Callable[[], None]]:
    """One training step (forward, backward, AdamW) of a small model from each part of the course."""
    from course_lib.models import LogMelCNN
    from course_lib.models.temporal import RNNClassifier

    def stepper(model: nn.Module, batch: Callable[[], tuple[object, torch.Tensor]]) -> Callable[[], None]:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step() -> None:
            x, y = batch()
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    gen = torch.Generator().manual_seed(0)
    x_cnn, y_cnn = torch.randn(64, 1, N_MELS, 63, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    x_seq, y_seq = torch.randn(32, 40, 50, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    work = {
        "CNN (05-07), batch 64": stepper(LogMelCNN(10, channels=(16, 32, 64)), lambda: (x_cnn, y_cnn)),
        "GRU h48 (09), batch 32": stepper(RNNClassifier(40, 10, hidden=48, cell="gru", pooling="mean"),
                                          lambda: (x_seq, y_seq)),
    }
    try:
        from torch_geometric.data import Batch

        from course_lib import graphs
        from course_lib.models.gnn import ChebNetClassifier
    except ImportError:  # torch-geometric missing: the other workloads still say enough
        return work
    frames = []
    for i in range(32):
        g = graphs.frame_graph(torch.randn(40, 32, generator=gen), k=4)  # 1 s at hop 512, as in 08
        g.y = torch.tensor(i % 10)
        frames.append(g)
    graph_batch = Batch.from_data_list(frames)  # what torch-geometric's DataLoader yields
    work["ChebNet K=3 (08), batch 32"] = stepper(ChebNetClassifier(40, 10, hidden=32, K=3),
                                                 lambda: (graph_batch, graph_batch.y))
    return work


def bench_threads(thread_counts: tuple[int, ...] | None = None, steps: int = 5,
                  rounds: int = 3) -> ThreadsResult:
    """Median ms per training step of the course's small models at each torch thread count.

    Parameters
    ----------
    thread_counts : tuple of int, optional
        Default: 1 and the physical cores (1 and 2 on a one-core machine).
    steps : int
        Steps per timed block.
    rounds : int
        Timed blocks per workload and thread count; the thread counts alternate between rounds so
        that a change in the machine's load hits all of them.

    Returns
    -------
    ThreadsResult

    Notebook: 08_spectral_graph_networks, 09_temporal_models (their models run on the runtime's
    thread count)
    """
    import os

    from course_lib.runtime import physical_cores, pick_num_threads

    cores = physical_cores()
    if thread_counts is None:
        thread_counts = (1, cores if cores > 1 else 2)
    try:
        load = tuple(os.getloadavg())
    except (AttributeError, OSError):
        load = ()
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        work = _thread_workloads()
    times: dict[str, dict[int, list[float]]] = {name: {t: [] for t in thread_counts} for name in work}
    try:
        for name, step in work.items():
            for t in thread_counts:  # warm-up at each count (OpenMP spins up its pool once)
                torch.set_num_threads(t)
                step()
            for r in range(rounds):
                for t in (thread_counts if r % 2 == 0 else thread_counts[::-1]):
                    torch.set_num_threads(t)
                    start = time.perf_counter()
                    for _ in range(steps):
                        step()
                    times[name][t].append(1000 * (time.perf_counter() - start) / steps)
    finally:
        torch.set_num_threads(before)
    picked = {}
    for profile in ("ci", "laptop"):
        n, why = pick_num_threads(profile)
        picked[profile] = f"{n} ({why})"
    return ThreadsResult(thread_counts=tuple(thread_counts),
                         ms={name: [float(np.median(times[name][t])) for t in thread_counts] for name in work},
                         load_average=load, cores=cores, picked=picked)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m course_lib.bench train [--clips N] [--batch-size B] ...``."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="naive vs packed training input pipeline (clips/s)")
    tr.add_argument("--clips", type=int, default=256, help="number of 1-s clips (default 256)")
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--epochs", type=int, default=2)
    tr.add_argument("--device", default=None, help="cpu, cuda or mps (default: the runtime's)")
    tr.add_argument("--file-rates", type=int, nargs="*", default=[44100],
                    help="also measure with the clips stored at these rates (default 44100, as ESC-50)")
    tr.add_argument("--no-precision", action="store_true",
                    help="skip the fp32 vs bf16 and thread figures printed after the pipeline figures")
    pr = sub.add_parser("precision", help="ms per CNN training step in fp32 and bf16, and the choice")
    pr.add_argument("--batch-size", type=int, default=64)
    pr.add_argument("--steps", type=int, default=6, help="timed steps per precision (default 6)")
    pr.add_argument("--device", default=None, help="cpu, cuda or mps (default: the runtime's)")
    th = sub.add_parser("threads", help="ms per training step of small models at 1 and N threads")
    th.add_argument("--threads", type=int, nargs="+", default=None,
                    help="thread counts to compare (default: 1 and the physical cores)")
    args = parser.parse_args(argv)
    if args.command == "train":
        for rate in (None, *args.file_rates):
            result = bench_train(args.clips, args.batch_size, args.epochs, args.device, rate)
            print(result.report())
        if not args.no_precision:
            print(bench_precision(device=args.device).report())
            print(bench_threads().report())
    elif args.command == "precision":
        print(bench_precision(args.batch_size, args.steps, args.device).report())
    elif args.command == "threads":
        print(bench_threads(tuple(args.threads) if args.threads else None).report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
