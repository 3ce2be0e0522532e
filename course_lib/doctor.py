"""The course doctor: what a student or a lab administrator needs to know on the first day.

    python -m course_lib doctor        (or: make doctor)

One screen: Python and the locked packages, the device and precision the notebooks will use (and
why), every system tool checked by use (each voice says a word, fluidsynth renders a note), the
data cache (where, free space, which offline sets are built and intact, which real datasets are
present) and the Colab/Drive state. Every problem comes with the one command that fixes it, and
the exit status is 1 when there is one.

It reads and runs tools only: it trains nothing, seeds nothing, downloads nothing and writes
nothing but temporary files, so it is safe to run at any time (a few seconds).

Notebook: 00_welcome
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "check_packages", "check_device", "check_system_tools",
           "check_data", "check_colab", "diagnose", "main"]

OK, NOTE, PROBLEM = "ok", "note", "PROBLEM"
REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
# Shown one per line; the other locked packages are summarised.
KEY_PACKAGES = ("torch", "torchaudio", "librosa", "numpy", "scipy", "soundfile", "torch-geometric")
# Below this much free space the cache cannot take even the offline sets and one download.
MIN_FREE_BYTES = 2 * 10**9
REINSTALL = "rm -f .venv/.course-installed && make install"


@dataclass(frozen=True)
class Finding:
    """One line of the report.

    Attributes
    ----------
    status : str
        ``"ok"``, ``"note"`` (worth knowing, nothing to fix) or ``"PROBLEM"``.
    text : str
        What was found.
    fix : str or None
        The one command (or action) that fixes a problem.
    """

    status: str
    text: str
    fix: str | None = None


# --------------------------------------------------------------------------- packages
def _requires_python() -> str | None:
    """The course's ``requires-python``: pyproject.toml in a checkout, else the installed metadata."""
    try:
        import tomllib

        return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"].get(
            "requires-python")
    except Exception:
        try:
            return metadata.metadata("course-lib")["Requires-Python"]
        except Exception:
            return None


def _satisfies(version: str, spec: str) -> bool:
    try:
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(spec).contains(version, prereleases=True)
    except Exception:
        return True  # cannot judge without packaging: say nothing rather than something wrong


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _against_lock(lock: Path) -> list[Finding]:
    """A checkout: every package against ``requirements.lock`` (``course_lib.lockfile``'s rule)."""
    from course_lib import lockfile

    try:
        pins = lockfile.applicable_pins(lockfile.read_lock(lock))
    except lockfile.LockError as exc:
        return [Finding(PROBLEM, str(exc), "git checkout requirements.lock   (or: make lock)")]
    out = []
    for name in KEY_PACKAGES:
        if name in pins and (have := _installed(name)) is not None:
            out.append(Finding(OK, f"{name} {have} (lock {pins[name]})"))
    differences = lockfile.environment_mismatches(pins, lockfile.installed_versions())
    if differences:
        shown = "; ".join(d.split(":")[0] for d in differences[:4])
        more = f" (+{len(differences) - 4} more: python -m course_lib.lockfile check)" if len(differences) > 4 else ""
        out.append(Finding(PROBLEM, f"{len(differences)} difference(s) from {lock.name}: {shown}{more}",
                           REINSTALL))
    else:
        out.append(Finding(OK, f"all {len(pins)} packages of {lock.name} installed at their versions, "
                               f"nothing else"))
    return out


def _against_ranges() -> list[Finding]:
    """An installed course_lib (Colab): packages against the ranges it declares, since Colab keeps
    its own torch and friends."""
    try:
        requires = metadata.requires("course-lib") or []
    except metadata.PackageNotFoundError:
        return [Finding(NOTE, "course-lib's metadata is not installed: versions not compared")]
    out, bad = [], []
    for req in requires:
        if "extra ==" in req:
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)", req)
        if not m:
            continue
        name, spec = m.group(1), m.group(2).strip()
        have = _installed(name)
        if have is None or (spec and not _satisfies(have, spec)):
            bad.append(f"{name} {have or 'missing'} (course needs {spec or 'any'})")
        elif name.lower() in KEY_PACKAGES:
            out.append(Finding(OK, f"{name} {have} (course accepts {spec or 'any'})"))
    if bad:
        out.append(Finding(PROBLEM, f"{len(bad)} package(s) outside the course's ranges: {'; '.join(bad[:5])}",
                           "re-run the notebook's first (setup) cell"))
    return out


def check_packages(on_colab: bool) -> list[Finding]:
    """Python and the installed packages: against ``requirements.lock`` in a checkout, against
    the ranges course_lib declares on Colab (which keeps its own torch)."""
    out = []
    py = platform.python_version()
    needs = _requires_python()
    if needs and not _satisfies(py, needs):
        out.append(Finding(PROBLEM, f"Python {py} ({sys.executable}); the course needs {needs}",
                           "make install PYTHON=python3.11"))
    else:
        out.append(Finding(OK, f"Python {py} ({sys.executable}" + (f"; course needs {needs})" if needs else ")")))
    venv = REPO / ".venv"
    if not on_colab and venv.is_dir() and Path(sys.prefix).resolve() != venv.resolve():
        out.append(Finding(NOTE, f"this is not the course's environment {venv}: "
                                 f"run .venv/bin/python -m course_lib doctor (or make doctor)"))
    lock = LOCK
    if lock.is_file() and not on_colab:
        return out + _against_lock(lock)
    return out + _against_ranges()


# --------------------------------------------------------------------------- device
def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _precision(runtime, device) -> str:
    """The autocast dtype and why: the runtime's own decision and reason where it gives one
    (``decide_precision``), else its dtype and what decides it."""
    decide = getattr(runtime, "decide_precision", None)
    if decide is not None:
        return decide(device).reason  # e.g. "fp32: this CPU has no native bf16 (oneDNN)"
    import torch

    amp = runtime.pick_amp_dtype(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        why = f"compute capability {major}.{minor}"
    elif device.type == "mps":
        why = "Apple GPU"
    else:
        flags = _cpu_flags()
        native = [n for f, n in (("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX-BF16")) if f in flags]
        why = f"CPU bf16: {', '.join(native) or 'not native (emulated)'}"
    return f"{str(amp).replace('torch.', '')} ({why})"


def check_device() -> list[Finding]:
    """Profile, device, threads and precision as ``setup()`` would choose them, without seeding.

    On a CPU with native bf16 the runtime times bf16 against float32 for a fraction of a second,
    as ``setup()`` does; nothing else runs.
    """
    try:
        import torch

        from course_lib import runtime
    except Exception as exc:
        return [Finding(PROBLEM, f"torch or course_lib.runtime does not import: "
                                 f"{type(exc).__name__}: {exc}", REINSTALL)]
    device_env = getattr(runtime, "DEVICE_ENV", "COURSE_DEVICE")
    try:
        device = runtime.pick_device()
    except (ValueError, RuntimeError) as exc:
        return [Finding(PROBLEM, str(exc).splitlines()[0], f"unset {device_env}")]
    try:
        profile = runtime.read_profile(None, device)
    except ValueError as exc:
        return [Finding(PROBLEM, str(exc).splitlines()[0],
                        f"export {runtime.PROFILE_ENV}=laptop   (or unset it)")]
    env = os.environ.get(runtime.PROFILE_ENV, "").strip()
    why = f"{runtime.PROFILE_ENV}={env}" if env else (
        f"{runtime.PROFILE_ENV} unset: " + ("CUDA present -> gpu" if device.type == "cuda" else "no CUDA -> laptop"))
    out = [Finding(OK, f"profile {profile} ({why})")]
    if profile == "ci" and not os.environ.get(device_env, "").strip():
        device = torch.device("cpu")  # setup() runs the ci profile on the CPU unless asked otherwise
    detail = ""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        detail = f": {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
    pick_threads = getattr(runtime, "pick_num_threads", None)
    try:
        threads, threads_why = (pick_threads(profile, device) if pick_threads
                                else (torch.get_num_threads(), "torch's default"))
    except ValueError as exc:
        return out + [Finding(PROBLEM, str(exc).splitlines()[0], "unset COURSE_THREADS")]
    out.append(Finding(OK, f"device {device}{detail}; {threads} CPU thread(s) of {os.cpu_count()} "
                           f"({threads_why})"))
    if device.type == "cpu" and shutil.which("nvidia-smi") and not torch.cuda.is_available():
        out.append(Finding(PROBLEM, f"an NVIDIA driver is present (nvidia-smi) but torch "
                                    f"{torch.__version__} cannot use CUDA (built for CUDA: {torch.version.cuda})",
                           "install the CUDA build of the locked torch: https://pytorch.org/get-started/locally/"))
    torch.set_num_threads(threads)  # what setup() does first, so a CPU timing means the same here
    try:
        precision = _precision(runtime, device)
    except ValueError as exc:  # e.g. COURSE_PRECISION=fast
        return out + [Finding(PROBLEM, str(exc).splitlines()[0], "unset COURSE_PRECISION")]
    out.append(Finding(OK, f"precision {precision}"))
    return out


# --------------------------------------------------------------------------- system tools
def check_system_tools(on_colab: bool) -> list[Finding]:
    """Every tool and voice the offline builders run, used once each (see ``system_tools``).

    One line per tool; the failing ones share one fix, the apt command for all their packages.
    Without apt (macOS, other Linux) the offline sets cannot be built at all (their audio comes from
    Debian packages), so failures there are notes: the notebooks use the real datasets instead.
    """
    try:
        from course_lib.data import offline
        from course_lib.data.offline.system_tools import FETCH_TOOLS, fix_command
    except Exception as exc:
        return [Finding(PROBLEM, f"course_lib.data.offline does not import: {type(exc).__name__}: {exc}",
                        REINSTALL)]
    results = offline.check_system_tools()
    debian = all(shutil.which(t) for t in FETCH_TOOLS)
    fix = fix_command([r for r in results if r.tool not in FETCH_TOOLS])
    out = []
    if not debian:
        out.append(Finding(NOTE, "no apt-get/dpkg (not Debian/Ubuntu): the offline sets cannot be built "
                                 "here; the notebooks use the real datasets, downloaded on first use. "
                                 "For `make test`, use Debian/Ubuntu, WSL or Colab"))
    by_tool: dict[str, list] = {}
    for r in results:
        by_tool.setdefault(r.tool, []).append(r)
    for tool, rs in by_tool.items():
        failed = [r for r in rs if not r.ok]
        if not failed:
            out.append(Finding(OK, offline.format_report(rs).splitlines()[0].strip().replace("  OK    ", ": ", 1)))
            continue
        if tool in FETCH_TOOLS:
            continue  # said once above
        detail = failed[0].detail if failed[0].detail.startswith(tool) else f"{failed[0].label}: {failed[0].detail}"
        detail = detail.split(" — install ")[0]  # the fix goes on its own line
        tried = [r for r in failed[1:] if not r.detail.startswith("not tried")]
        more = f" (and {len(tried)} more voice(s))" if tried else ""
        if on_colab:
            out.append(Finding(NOTE, f"{detail}{more}; the notebooks install it with apt on first use"))
        elif not debian:
            out.append(Finding(NOTE, f"{detail}{more}"))
        else:
            out.append(Finding(PROBLEM, f"{detail}{more}", fix))
    return out


# --------------------------------------------------------------------------- data
def _free_bytes(path: Path) -> tuple[Path, int]:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe, shutil.disk_usage(probe).free


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def check_data() -> list[Finding]:
    """The data cache: where, free space, offline sets (built and intact?), real datasets present."""
    try:
        from course_lib import runtime
        from course_lib.data import offline
    except Exception as exc:
        return [Finding(PROBLEM, f"course_lib does not import: {type(exc).__name__}: {exc}", REINSTALL)]
    out = []
    root = runtime.data_root()
    env = os.environ.get(runtime.DATA_ENV)
    where = f"{runtime.DATA_ENV}={env}" if env else "default; COURSE_DATA moves it"
    existing, free = _free_bytes(root)
    writable = os.access(existing, os.W_OK)
    status = OK if free >= MIN_FREE_BYTES and writable else PROBLEM
    fix = None
    if not writable:
        fix = f"export {runtime.DATA_ENV}=<a folder you can write to>"
    elif free < MIN_FREE_BYTES:
        fix = f"free space on {existing}, or export {runtime.DATA_ENV}=<a disk with more than {_gb(MIN_FREE_BYTES)}>"
    out.append(Finding(status, f"cache {root} ({where}): {_gb(free)} free"
                               + ("" if writable else f", {existing} is not writable"), fix))
    built, absent, broken = [], [], []
    t0 = time.perf_counter()
    for name in offline.OFFLINE_SETS:
        set_dir = offline.offline_dir(name, root)
        if not (set_dir / "manifest.json").exists():
            absent.append(name)
            continue
        problems = offline.verify_manifest(set_dir)
        if problems:
            broken.append((name, problems))
            continue
        man = offline.read_manifest(set_dir)
        built.append(f"{name} {len(man.get('items', []))}" + ("" if man.get("scale", 1.0) == 1.0
                                                              else f" (scale {man['scale']})"))
    hashed_s = time.perf_counter() - t0
    if built:
        out.append(Finding(OK, f"offline sets built and intact (sha256, {hashed_s:.1f} s): "
                               f"{', '.join(built)}"))
    for name, problems in broken:
        out.append(Finding(PROBLEM, f"offline set {name} is damaged: {problems[0]}"
                                    + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                           f"python -m course_lib.data prepare --only {name} --force"))
    if absent:
        out.append(Finding(NOTE, f"offline sets not built yet (built on first use, or all now with "
                                 f"'python -m course_lib.data prepare'): {', '.join(absent)}"))
    try:
        from course_lib.data.download import describe_datasets

        rows = describe_datasets(root)
    except Exception as exc:
        out.append(Finding(NOTE, f"real datasets not listed: {type(exc).__name__}: {exc}"))
        return out
    present = [r["name"] for r in rows if r["status"] == "present"]
    fetchable = [r for r in rows if r["status"] == "downloadable"]
    size = sum(r["size"] or 0 for r in fetchable)
    out.append(Finding(OK, f"real datasets present: {', '.join(present) or 'none'}; "
                           f"{len(fetchable)} more downloadable on first use ({_gb(size)} in all)"))
    if size > free:
        out.append(Finding(NOTE, f"all downloadable datasets ({_gb(size)}) would not fit in "
                                 f"{_gb(free)}: the gpu profile needs them; the laptop profile uses "
                                 f"subsets and falls back to the offline sets"))
    return out


# --------------------------------------------------------------------------- Colab / Drive
def check_colab() -> list[Finding]:
    """Colab and Google Drive: where checkpoints and the data cache survive a disconnect."""
    in_colab = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
    if not in_colab:
        return [Finding(OK, f"not on Colab (course_lib from {REPO})")]
    drive = Path("/content/drive/MyDrive")
    out = [Finding(OK, f"on Colab ({os.environ.get('COLAB_RELEASE_TAG', 'release unknown')})")]
    if drive.is_dir():
        out.append(Finding(OK, f"Google Drive mounted: cache and checkpoints under {drive / 'audio-nn-course'}"))
    else:
        out.append(Finding(NOTE, "Google Drive is not mounted: the data cache and checkpoints are lost "
                                 "when the runtime disconnects. Mount it: from google.colab import drive; "
                                 "drive.mount('/content/drive')"))
    if not shutil.which("nvidia-smi"):
        out.append(Finding(NOTE, "no GPU in this Colab runtime: Runtime > Change runtime type > GPU "
                                 "(the gpu profile's budgets assume one)"))
    return out


# --------------------------------------------------------------------------- report
def _safe(check: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return check()
    except Exception as exc:  # the doctor reports; a broken check is itself a finding
        return [Finding(PROBLEM, f"this check failed: {type(exc).__name__}: {exc}", REINSTALL)]


def diagnose() -> list[tuple[str, list[Finding]]]:
    """Run every check; ``[(section title, findings)]``.

    Notebook: 00_welcome
    """
    on_colab = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
    return [
        ("Python and packages", _safe(lambda: check_packages(on_colab))),
        ("Device and precision", _safe(check_device)),
        ("System tools (each used once: a word per voice, a note through the sound font)",
         _safe(lambda: check_system_tools(on_colab))),
        ("Data cache", _safe(check_data)),
        ("Colab and Drive", _safe(check_colab)),
    ]


def render(sections: list[tuple[str, list[Finding]]], seconds: float) -> str:
    """The one-screen report, problems and their fixes at the end."""
    lines = [f"course doctor: {REPO}"]
    problems = []
    for title, findings in sections:
        lines.append(title)
        for i, f in enumerate(findings):
            lines.append(f"  {f.status:<8} {f.text}")
            if f.status == PROBLEM:
                problems.append(f)
                later = [g.fix for g in findings[i + 1:] if g.status == PROBLEM]
                if f.fix and f.fix not in later:  # a fix shared by several lines: once, after the last
                    lines.append(f"  {'':<8} fix: {f.fix}")
    if problems:
        lines.append(f"{len(problems)} problem(s) found in {seconds:.1f} s. The fixes, in order:")
        lines += [f"  {f.fix}" for f in dict((f.fix, f) for f in problems if f.fix).values()]
    else:
        lines.append(f"No problems found ({seconds:.1f} s).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the report; 1 when a problem was found, else 0."""
    t0 = time.perf_counter()
    sections = diagnose()
    print(render(sections, time.perf_counter() - t0), flush=True)
    return 1 if any(f.status == PROBLEM for _, fs in sections for f in fs) else 0


if __name__ == "__main__":
    sys.exit(main())
