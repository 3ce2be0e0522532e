import dataclasses
import os

import numpy as np
import pytest
import torch

from course_lib import runtime


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch):
    """Each test starts without the overrides a developer's shell may export."""
    for name in (runtime.DEVICE_ENV, runtime.PRECISION_ENV, runtime.THREADS_ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError) as err:
        runtime.setup(verbose=False)
    message = str(err.value)
    assert "turbo" in message
    for name in runtime.PROFILES:
        assert name in message


@pytest.mark.parametrize("name", ["ci", "laptop", "gpu", "CI"])
def test_profile_from_environment(monkeypatch, name):
    monkeypatch.setenv("COURSE_PROFILE", name)
    rt = runtime.setup(verbose=False)
    assert rt.profile == name.lower()
    assert rt.budget == runtime.PROFILES[name.lower()]
    assert runtime.get_runtime() is rt


def test_default_profile_follows_the_device(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert runtime.read_profile(None, torch.device("cuda")) == "gpu"
    assert runtime.read_profile(None, torch.device("cpu")) == "laptop"


def test_ci_profile_runs_on_cpu_and_budgets_are_small(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    rt = runtime.setup(verbose=False)
    assert rt.device.type == "cpu"
    assert rt.budget.epochs < runtime.PROFILES["gpu"].epochs
    assert rt.budget.max_clips is not None


def test_setup_seeds_everything(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    runtime.setup(seed=123, verbose=False)
    first = (np.random.rand(), torch.rand(1).item())
    runtime.setup(seed=123, verbose=False)
    assert (np.random.rand(), torch.rand(1).item()) == first


def test_summary_is_one_line_with_versions_and_cache(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    rt = runtime.setup()
    printed = capsys.readouterr().out.strip()
    assert "\n" not in printed
    for part in ("profile=ci", "device=cpu", "torch", "torchaudio", str(tmp_path)):
        assert part in printed
    assert rt.data_dir == tmp_path


def test_precision_choice_on_gpus():
    assert runtime.pick_amp_dtype(torch.device("cuda"), cuda_bf16_supported=False) == torch.float16
    assert runtime.pick_amp_dtype(torch.device("cuda"), cuda_bf16_supported=True) == torch.bfloat16
    fp16 = runtime.decide_precision("cuda", cuda_bf16_supported=False)
    assert fp16.reason.startswith("fp16 + GradScaler:")
    assert runtime.pick_amp_dtype(torch.device("mps")) == torch.float32  # the trainer runs MPS in fp32


def _fake_cpu(monkeypatch, native: bool, fp32_ms: float = 10.0, bf16_ms: float = 10.0) -> list[int]:
    """Pretend to be a CPU with or without native bf16 whose probe measures the given times."""
    timed: list[int] = []

    def probe(max_seconds=runtime.PROBE_SECONDS):
        timed.append(1)
        return runtime.PrecisionProbe(fp32_ms=fp32_ms, bf16_ms=bf16_ms, seconds=0.3, threads=2)

    monkeypatch.setattr(runtime, "_CPU_DECISION", None)  # forget this process's real measurement
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: native)
    monkeypatch.setattr(runtime, "time_cpu_precision", probe)
    return timed


def test_cpu_without_native_bf16_gets_fp32_without_timing(monkeypatch):
    timed = _fake_cpu(monkeypatch, native=False, fp32_ms=50.0, bf16_ms=10.0)
    decision = runtime.decide_precision("cpu")
    assert decision.dtype == torch.float32
    assert decision.reason == "fp32: this CPU has no native bf16 (oneDNN), autocast would emulate it"
    assert timed == []  # emulated bf16 is never worth timing


@pytest.mark.parametrize("fp32_ms, bf16_ms, expected", [
    (40.0, 20.0, torch.bfloat16),   # native and 2x faster: e.g. AMX
    (20.0, 40.0, torch.float32),    # native but slower (small ops, conversion overhead)
    (20.0, 19.0, torch.float32),    # within the 1.1x margin: not worth bf16's lost mantissa
])
def test_native_cpu_keeps_the_faster_precision_measured_once(monkeypatch, fp32_ms, bf16_ms, expected):
    timed = _fake_cpu(monkeypatch, native=True, fp32_ms=fp32_ms, bf16_ms=bf16_ms)
    assert runtime.pick_amp_dtype(torch.device("cpu")) == expected
    assert runtime.pick_amp_dtype(torch.device("cpu")) == expected
    assert len(timed) == 1  # once per process
    reason = runtime.precision_reason("cpu")
    speedup = f"{fp32_ms / bf16_ms:.1f}x" if expected == torch.bfloat16 else f"{fp32_ms / bf16_ms:.2f}x"
    assert reason.startswith("bf16: native" if expected == torch.bfloat16 else "fp32: bf16 is native")
    assert speedup in reason and "0.3 s probe" in reason


def test_setup_line_says_precision_and_why(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    _fake_cpu(monkeypatch, native=True, fp32_ms=38.0, bf16_ms=20.0)
    rt = runtime.setup()
    assert rt.amp_dtype == torch.bfloat16 and not rt.use_grad_scaler
    assert rt.precision_reason == "bf16: native and 1.9x faster than fp32 in a 0.3 s probe"
    assert "precision=bf16: native and 1.9x faster" in capsys.readouterr().out
    _fake_cpu(monkeypatch, native=False)
    rt = runtime.setup()
    assert rt.amp_dtype == torch.float32
    assert "precision=fp32: this CPU has no native bf16" in capsys.readouterr().out


@pytest.mark.parametrize("value, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                          ("FP16", torch.float16), ("bfloat16", torch.bfloat16)])
def test_precision_env_override_forces_the_dtype_without_timing(monkeypatch, value, dtype):
    timed = _fake_cpu(monkeypatch, native=True, fp32_ms=40.0, bf16_ms=10.0)
    monkeypatch.setenv("COURSE_PRECISION", value)
    decision = runtime.decide_precision("cpu")
    assert decision.dtype == dtype
    assert decision.reason.endswith(f"forced by COURSE_PRECISION={value}")
    assert timed == []
    assert runtime.pick_amp_dtype(torch.device("cuda"), cuda_bf16_supported=True) == dtype


def test_precision_env_auto_measures_and_bad_value_is_explained(monkeypatch):
    _fake_cpu(monkeypatch, native=True, fp32_ms=40.0, bf16_ms=10.0)
    monkeypatch.setenv("COURSE_PRECISION", "auto")
    assert runtime.pick_amp_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setenv("COURSE_PRECISION", "half")
    with pytest.raises(ValueError, match=r"COURSE_PRECISION='half'.*fp32, bf16, fp16 or auto"):
        runtime.decide_precision("cpu")


def test_cpu_probe_times_both_precisions_and_keeps_random_state_and_threads():
    torch.set_num_threads(2)
    threads_before = torch.get_num_threads()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    probe = runtime.time_cpu_precision(max_seconds=0.05)
    assert torch.equal(torch.rand(3), expected)  # seeding done before the probe still holds
    assert probe.fp32_ms > 0 and probe.bf16_ms > 0
    assert probe.speedup == pytest.approx(probe.fp32_ms / probe.bf16_ms)
    assert probe.threads == 1 and torch.get_num_threads() == threads_before


def test_device_override_cpu_even_where_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    assert runtime.setup(verbose=False).device == torch.device("cpu")


def test_device_override_runs_the_ci_profile_where_asked(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    monkeypatch.setattr(runtime, "_requested_device", lambda name: torch.device(name))  # fake a GPU
    monkeypatch.setattr(runtime, "decide_precision",
                        lambda device, **kw: runtime.PrecisionDecision(torch.bfloat16, "bf16: test"))
    assert runtime.setup(verbose=False).device == torch.device("cuda")


def test_device_override_for_a_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match=r"COURSE_DEVICE=cuda but torch .* sees no CUDA GPU.*unset "
                                           r"COURSE_DEVICE.*COURSE_DEVICE=cpu"):
        runtime.setup(verbose=False)
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match=r"COURSE_DEVICE='tpu' is not a device.*cpu, cuda, cuda:N or mps"):
        runtime.pick_device()
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "mps")
    with pytest.raises(RuntimeError, match="MPS backend is not available"):
        runtime.pick_device()


def test_thread_policy_per_profile_and_machine(monkeypatch):
    monkeypatch.setattr(runtime, "physical_cores", lambda: 6)
    assert runtime.pick_num_threads("ci")[0] == 1
    assert runtime.pick_num_threads("laptop") == (6, "6 physical cores")
    assert runtime.pick_num_threads("gpu", "cuda")[0] == 6


def test_physical_cores_is_within_the_usable_cpus():
    import os

    assert 1 <= runtime.physical_cores() <= (os.cpu_count() or 1)


def test_thread_overrides(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runtime.pick_num_threads("ci") == (3, "OMP_NUM_THREADS=3")
    monkeypatch.setenv("COURSE_THREADS", "2")
    assert runtime.pick_num_threads("ci") == (2, "COURSE_THREADS=2")  # the course's own wins
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("COURSE_THREADS", bad)
        with pytest.raises(ValueError, match=rf"COURSE_THREADS='{bad}' is not a thread count"):
            runtime.pick_num_threads("laptop")


def test_setup_applies_the_thread_count_and_says_it(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    monkeypatch.setenv("COURSE_THREADS", "1")
    _fake_cpu(monkeypatch, native=False)
    rt = runtime.setup()
    assert torch.get_num_threads() == rt.threads == 1
    assert "threads=1 (COURSE_THREADS=1)" in capsys.readouterr().out
    from threadpoolctl import threadpool_info  # NumPy's BLAS follows torch, not one per CPU
    assert {pool["num_threads"] for pool in threadpool_info()} == {1}
    monkeypatch.delenv("COURSE_THREADS")
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    rt = runtime.setup(verbose=False)
    assert rt.threads == torch.get_num_threads() == runtime.pick_num_threads("ci")[0]


def test_drive_is_used_on_colab_when_mounted(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("COURSE_CHECKPOINTS", raising=False)
    monkeypatch.setattr(runtime, "DRIVE_ROOT", tmp_path)
    assert runtime._default_data_dir(on_colab=True).is_relative_to(tmp_path)
    assert runtime._default_checkpoint_dir(on_colab=True).is_relative_to(tmp_path)
    assert not runtime._default_data_dir(on_colab=False).is_relative_to(tmp_path)


def test_one_data_root_for_runtime_downloads_and_offline_sets(monkeypatch, tmp_path):
    from course_lib.data import download
    from course_lib.data.offline import common

    # runtime.data_root() is the only getter; the data layer's defaults all come from it.
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert runtime.data_root() == tmp_path
    assert download.dataset_dir("esc50").is_relative_to(tmp_path.resolve())
    assert common.offline_dir("spoken_digits") == tmp_path / "offline" / "spoken_digits"
    monkeypatch.delenv("COURSE_DATA")
    default = runtime.local_data_home() / "cache"
    if (runtime.repo_root() / "solutions").is_dir():    # a checkout (not the 3.12 check's installed copy)
        assert default == runtime.repo_root() / "data" / "cache"
    assert runtime.data_root() == default
    assert download.dataset_dir("esc50").is_relative_to(default.resolve())
    assert common.offline_dir("spoken_digits") == default / "offline" / "spoken_digits"
    assert not hasattr(download, "cache_root") and not hasattr(common, "default_cache_root")


def test_an_installed_course_lib_keeps_data_in_the_user_cache_not_site_packages(monkeypatch, tmp_path):
    site = tmp_path / "site-packages"
    (site / "course_lib").mkdir(parents=True)
    monkeypatch.setattr(runtime, "repo_root", lambda: site)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("COURSE_CHECKPOINTS", raising=False)
    assert runtime._default_data_dir(on_colab=False) == tmp_path / "xdg" / "audio-nn-course" / "cache"
    assert runtime._default_checkpoint_dir(on_colab=False) == tmp_path / "xdg" / "audio-nn-course" / "checkpoints"
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "mine"))
    assert runtime.data_root() == tmp_path / "mine"


def test_reading_the_runtime_never_reseeds(monkeypatch):
    """get_runtime() without setup() decides device/profile quietly but leaves the RNGs alone."""
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setattr(runtime, "_RUNTIME", None)
    torch.manual_seed(5)
    np.random.seed(5)
    torch.rand(3), np.random.rand(3)  # advance both generators past their seeded start
    expected_torch, expected_np = torch.get_rng_state().clone(), np.random.get_state()[1].copy()
    rt = runtime.get_runtime()
    assert rt.seed is None and "seed=not set" in rt.summary()
    assert torch.equal(torch.get_rng_state(), expected_torch)
    assert np.array_equal(np.random.get_state()[1], expected_np)
    assert runtime.get_runtime() is rt and runtime.torch_device() == rt.device


def test_seeding_under_cuda_sets_the_deterministic_flags(monkeypatch):
    """With CUDA present (mocked), a seed also asks cuDNN/cuBLAS/torch for deterministic kernels."""
    calls = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.setdefault("seed", seed))
    monkeypatch.setattr(torch, "use_deterministic_algorithms",
                        lambda mode, warn_only=False: calls.setdefault("algos", (mode, warn_only)))
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    runtime.seed_everything(3)
    assert calls == {"seed": 3, "algos": (True, True)}
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")


def test_setup_line_says_when_cuda_runs_deterministically(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setattr(runtime, "_RUNTIME", None)  # restored afterwards: no fake-CUDA runtime leaks
    monkeypatch.setattr(runtime, "make_cuda_deterministic", lambda: "deterministic (mocked)")
    build = runtime._build_runtime
    monkeypatch.setattr(runtime, "_build_runtime", lambda profile, seed: dataclasses.replace(
        build(profile, seed), device=torch.device("cuda")))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # seed_everything: CPU path
    rt = runtime.setup(seed=9)
    line = capsys.readouterr().out
    assert rt.determinism == "deterministic (mocked)"
    assert "seed=9 (deterministic (mocked))" in line
