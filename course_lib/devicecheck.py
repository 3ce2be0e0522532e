"""Every solution notebook and the benchmark on the accelerator, in one command: ``make test-device``.

CI runs the notebooks on a CPU only. This runs each ``solutions/*.ipynb`` exactly as ``make test``
does (pytest + nbval, the ``ci`` profile, failing checks raise) but with ``COURSE_DEVICE`` set to the
accelerator, then ``make bench``'s measurement on it, and prints one table: notebook, seconds,
pass/fail; the benchmark's clips per second and ratios. On a machine without CUDA or MPS it says so
and exits 2 without running anything.

``python -m course_lib.devicecheck [--device auto|cuda|mps|cpu] [--notebooks NAME ...] [--no-bench]
[--preflight]``

``--device cpu`` is a rehearsal of the machinery (labelled as such), not an accelerator check.
Exit status: 0 all passed, 1 something failed, 2 nothing run (no accelerator, or the runtime did not
put the ``ci`` profile on the requested device).

Notebook: none (a check for course maintainers and anyone with a GPU; see README "Accelerators").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from course_lib.runtime import DEVICE_ENV

__all__ = [
    "CI_ENV",
    "NoAccelerator",
    "NotebookRun",
    "bench_table",
    "find_notebooks",
    "main",
    "notebook_table",
    "resolve_device",
    "run_notebook",
]

REPO = Path(__file__).resolve().parent.parent
# The environment of `make test`'s notebook run (the Makefile's CI_ENV; a test keeps them equal).
CI_ENV = {"COURSE_PROFILE": "ci", "COURSE_STRICT_CHECKS": "1", "MPLBACKEND": "Agg",
          "PYTHONHASHSEED": "0"}
CELL_TIMEOUT_S = 600
EXIT_FAILED, EXIT_NOT_RUN = 1, 2
_FAILED_CELL = re.compile(r"^FAILED \S+::(Cell \d+)", flags=re.M)
_CELL_SECONDS = re.compile(r"^\s*([0-9.]+) s  (\S+\.ipynb)", flags=re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # nbval's and IPython's colours, dropped from the logs


class NoAccelerator(RuntimeError):
    """No CUDA or MPS device where one was asked for; the message says what torch sees."""


@dataclass
class NotebookRun:
    """One notebook's run: wall time of the pytest process, nbval's summed cell time, outcome."""

    name: str
    wall_s: float
    cells_s: float | None
    passed: bool
    detail: str = ""
    log: Path | None = None


def _torch_report() -> str:
    import torch

    cuda = torch.version.cuda or "none"
    return f"torch {torch.__version__} (built for CUDA {cuda})"


def resolve_device(requested: str, *, cuda: bool | None = None, mps: bool | None = None) -> str:
    """The device to check: ``requested``, or for ``"auto"`` CUDA, else MPS.

    Raises
    ------
    NoAccelerator
        ``auto`` with neither, or ``cuda``/``mps`` that torch does not see.
    """
    if cuda is None or mps is None:
        import torch

        cuda = torch.cuda.is_available() if cuda is None else cuda
        backend = getattr(torch.backends, "mps", None)
        mps = bool(backend is not None and backend.is_available()) if mps is None else mps
    available = {"cuda": cuda, "mps": mps, "cpu": True}
    if requested == "auto":
        for name in ("cuda", "mps"):
            if available[name]:
                return name
        raise NoAccelerator(
            "No CUDA or MPS device here: `make test-device` checks the notebooks on an accelerator and "
            "has nothing to check on this machine (`make test` covers the CPU).\n"
            f"torch sees: {_torch_report()}, cuda available: {cuda}, mps available: {mps}. On a GPU "
            "machine where this is unexpected: `nvidia-smi` must list the card, and the installed torch "
            "must be a CUDA build (`make doctor` says which).")
    if requested not in available:
        raise ValueError(f"unknown device {requested!r}: use auto, cuda, mps or cpu")
    if not available[requested]:
        raise NoAccelerator(f"--device {requested} asked for, but torch does not see it ({_torch_report()}); "
                            "`make doctor` says why")
    return requested


def find_notebooks(names: Sequence[str] = ()) -> list[Path]:
    """``solutions/*.ipynb`` (all, or those whose file name contains one of ``names``; a path to a
    notebook is taken as it is)."""
    every = sorted((REPO / "solutions").glob("*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        if Path(name).suffix == ".ipynb" and Path(name).is_file():
            chosen.append(Path(name).resolve())
            continue
        hits = [p for p in every if name in p.name]
        if not hits:
            raise FileNotFoundError(f"no solution notebook matches {name!r}; "
                                    f"they are: {', '.join(p.stem for p in every)}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def _environment(device: str, checkpoint_dir: Path | None = None) -> dict[str, str]:
    env = {**os.environ, **CI_ENV, DEVICE_ENV: device}
    if checkpoint_dir is not None:
        # A fresh folder per run: resuming an earlier run's checkpoints would skip the training
        # whose speed and correctness on the accelerator this check exists to measure.
        env["COURSE_CHECKPOINTS"] = str(checkpoint_dir)
    return env


def probe_runtime_device(device: str, python: str = sys.executable) -> str:
    """The device ``course_lib.runtime.setup()`` picks in the ``ci`` profile with ``COURSE_DEVICE``
    set, asked in a fresh interpreter as a notebook's first cell would; e.g. ``"cuda"``."""
    code = ("from course_lib.runtime import setup\n"
            "print(setup(seed=0, verbose=False).device.type)")
    out = subprocess.run([python, "-c", code], env=_environment(device), cwd=REPO,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"course_lib.runtime.setup() failed with {DEVICE_ENV}={device}:\n"
                           f"{out.stderr.strip()[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def run_notebook(path: Path, device: str, log_dir: Path, python: str = sys.executable,
                 cell_timeout_s: int = CELL_TIMEOUT_S) -> NotebookRun:
    """Run one notebook as ``make test`` does (pytest + nbval, ci profile) on ``device``."""
    log = log_dir / f"{path.stem}.log"
    command = [python, "-m", "pytest", str(path), "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={cell_timeout_s}", "-p", "no:cacheprovider", "-q"]
    start = time.perf_counter()
    checkpoints = log_dir / "checkpoints" / path.stem
    shutil.rmtree(checkpoints, ignore_errors=True)
    out = subprocess.run(command, env=_environment(device, checkpoints), cwd=REPO,
                         capture_output=True, text=True)
    wall = time.perf_counter() - start
    text = _ANSI.sub("", out.stdout + out.stderr)
    log.write_text(" ".join(command) + "\n\n" + text)
    cells = next((float(s) for s, name in _CELL_SECONDS.findall(text) if name == path.name), None)
    failed = _FAILED_CELL.findall(text)
    detail = "" if out.returncode == 0 else (f"failed at {failed[0]}" if failed
                                              else f"pytest exited {out.returncode}")
    return NotebookRun(path.stem, wall, cells, out.returncode == 0, detail, log)


def notebook_table(runs: Sequence[NotebookRun]) -> str:
    """A Markdown table (it reads in a terminal and pastes into the README)."""
    lines = ["| notebook | cells (s) | wall (s) | result |", "|---|---:|---:|---|"]
    for run in runs:
        cells = f"{run.cells_s:.1f}" if run.cells_s is not None else "-"
        result = "pass" if run.passed else f"**FAIL** ({run.detail}; log: {run.log})"
        lines.append(f"| {run.name} | {cells} | {run.wall_s:.1f} | {result} |")
    total_cells = sum(r.cells_s or 0.0 for r in runs)
    lines.append(f"| total ({sum(r.passed for r in runs)}/{len(runs)} passed) | {total_cells:.1f} | "
                 f"{sum(r.wall_s for r in runs):.1f} | |")
    return "\n".join(lines)


def bench_table(results: Sequence) -> str:
    """The benchmark's :class:`course_lib.bench.BenchResult` s as a Markdown table."""
    lines = ["| files as stored | naive input (clips/s) | packed input (clips/s) | input speed-up | "
             "naive + model (clips/s) | packed + model (clips/s) | speed-up with model |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        stored = "16 kHz" if "stored at" not in r.source else r.source.rsplit("stored at ", 1)[1]
        lines.append(f"| {stored} | {r.naive_input:.0f} | {r.packed_input:.0f} | {r.input_ratio:.1f}x | "
                     f"{r.naive_train:.0f} | {r.packed_train:.0f} | {r.train_ratio:.1f}x |")
    return "\n".join(lines)


def _device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, {_torch_report()}"
    if device == "mps":
        return f"Apple MPS, {_torch_report()}"
    return f"CPU REHEARSAL (not an accelerator check), {_torch_report()}"


def main(argv: list[str] | None = None, *,
         bench: Callable[[str, int | None], object] | None = None) -> int:
    """Command line; ``bench(device, file_rate)`` replaces the benchmark in tests."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.devicecheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"],
                        help="default auto: CUDA, else MPS, else refuse (cpu: a rehearsal only)")
    parser.add_argument("--notebooks", nargs="*", default=[],
                        help="only these (parts of) names, e.g. 05 09_temporal; default: all")
    parser.add_argument("--no-bench", action="store_true", help="skip the benchmark")
    parser.add_argument("--preflight", action="store_true",
                        help="only check that there is an accelerator the runtime uses (exit 0 or 2)")
    parser.add_argument("--log-dir", type=Path, default=REPO / "data" / "cache" / "devicecheck",
                        help="one log per notebook (default data/cache/devicecheck)")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
        notebooks = find_notebooks(args.notebooks)
    except (NoAccelerator, FileNotFoundError) as err:
        print(f"test-device: {err}", file=sys.stderr)
        return EXIT_NOT_RUN
    try:
        picked = probe_runtime_device(device)
    except RuntimeError as err:
        print(f"test-device: {err}\nNothing was run.", file=sys.stderr)
        return EXIT_NOT_RUN
    if picked != device:
        print(f"test-device: with {DEVICE_ENV}={device}, course_lib.runtime.setup() put the ci profile "
              f"on {picked}: the notebooks would not run on {device}. The override belongs in "
              "course_lib/runtime.py (setup); nothing was run.", file=sys.stderr)
        return EXIT_NOT_RUN
    if args.preflight:
        print(f"test-device: the ci profile runs on {_device_name(device)}")
        return 0
    args.log_dir.mkdir(parents=True, exist_ok=True)
    print(f"test-device on {_device_name(device)}: {len(notebooks)} notebook(s), ci profile, "
          f"{DEVICE_ENV}={device}; logs in {args.log_dir}", flush=True)
    runs = []
    for path in notebooks:
        runs.append(run_notebook(path, device, args.log_dir))
        print(f"  {runs[-1].name}: {'pass' if runs[-1].passed else 'FAIL'} "
              f"in {runs[-1].wall_s:.1f} s", flush=True)
    print("\n" + notebook_table(runs))
    bench_ok = True
    if not args.no_bench:
        if bench is None:
            from course_lib.bench import bench_train

            def bench(dev: str, rate: int | None) -> object:
                return bench_train(device=dev, file_rate=rate)
        try:
            results = [bench(device, rate) for rate in (None, 44100)]
            print(f"\nmake bench on {device} (clips/s measured in this run; compare only within it):\n"
                  + bench_table(results))
        except Exception as err:  # noqa: BLE001 - the table above still stands; say what broke
            bench_ok = False
            print(f"\nmake bench on {device}: FAILED: {type(err).__name__}: {err}")
    failed = [r.name for r in runs if not r.passed]
    if failed or not bench_ok:
        print(f"\ntest-device: {len(failed)} notebook(s) failed on {device}: {', '.join(failed) or '-'}"
              + ("" if bench_ok else "; the benchmark failed"))
        return EXIT_FAILED
    print(f"\ntest-device: every notebook passed on {device}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
