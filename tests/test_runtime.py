import numpy as np
import pytest
import torch

from course_lib import runtime


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


def test_precision_choice():
    assert runtime.pick_amp_dtype(torch.device("cpu")) == torch.bfloat16
    assert runtime.pick_amp_dtype(torch.device("cuda"), cuda_bf16_supported=False) == torch.float16
    assert runtime.pick_amp_dtype(torch.device("cuda"), cuda_bf16_supported=True) == torch.bfloat16


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

    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert runtime.data_root() == tmp_path
    assert download.cache_root() == tmp_path
    assert common.default_cache_root() == tmp_path
    monkeypatch.delenv("COURSE_DATA")
    assert download.cache_root() == common.default_cache_root() == runtime.repo_root() / "data" / "cache"
