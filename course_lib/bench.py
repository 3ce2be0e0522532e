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

Notebook: 04_features_and_preprocessing (the feature pipeline on the device); the CNN notebooks
05-07 train from splits decoded once into memory for the reason this benchmark measures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["BenchResult", "bench_train", "main"]

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


def _fix_length(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


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
    return _fix_length(x, SAMPLE_RATE)


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
    args = parser.parse_args(argv)
    if args.command == "train":
        for rate in (None, *args.file_rates):
            result = bench_train(args.clips, args.batch_size, args.epochs, args.device, rate)
            print(result.report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
