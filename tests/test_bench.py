"""Tests for course_lib.bench's precision figures (what is measured is not asserted: only its form)."""

from __future__ import annotations

import pytest
import torch

from course_lib import bench, runtime


@pytest.fixture
def fake_cpu_without_bf16(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    monkeypatch.setattr(runtime, "_CPU_DECISION", None)
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: False)


def test_precision_bench_times_both_and_reports_the_choice(fake_cpu_without_bf16):
    result = bench.bench_precision(batch_size=4, steps=2, device="cpu", n_mels=32, frames=16)
    assert result.fp32_ms > 0 and result.bf16_ms > 0
    assert result.bf16_over_fp32 == pytest.approx(result.bf16_ms / result.fp32_ms)
    assert result.threads == torch.get_num_threads()
    assert result.chosen == "fp32: this CPU has no native bf16 (oneDNN), autocast would emulate it"
    text = result.report()
    for part in ("LogMelCNN(channels=(16, 32, 64))", "4 log-mels of 32 x 16", "fp32", "bf16 autocast",
                 "bf16/fp32", "choose_precision picked fp32: this CPU has no native bf16",
                 "native bf16 (oneDNN) no"):
        assert part in text
    assert len(text.splitlines()) == 3


def test_precision_bench_names_the_emulation_variables(monkeypatch, fake_cpu_without_bf16):
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)  # read at import; the report names it
    monkeypatch.setenv("COURSE_PRECISION", "fp32")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    result = bench.bench_precision(batch_size=2, steps=1, device="cpu", n_mels=16, frames=8)
    assert result.env == {"ONEDNN_MAX_CPU_ISA": "AVX2", "COURSE_PRECISION": "fp32"}
    assert "overrides: ONEDNN_MAX_CPU_ISA=AVX2 COURSE_PRECISION=fp32" in result.report()
    assert result.chosen == "fp32: forced by COURSE_PRECISION=fp32"


def test_precision_command_prints_the_figures(monkeypatch, capsys, fake_cpu_without_bf16):
    monkeypatch.setattr(bench, "bench_precision",
                        lambda batch_size, steps, device: bench.PrecisionResult(
                            device="cpu", threads=1, cpu_capability="AVX2", bf16_native=False,
                            batch_size=batch_size, n_mels=64, frames=63, steps=steps, fp32_ms=40.0,
                            bf16_ms=200.0, chosen="fp32: test", env={}))
    assert bench.main(["precision", "--batch-size", "8", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "on 8 log-mels" in out and "bf16/fp32  5.00 (bf16 slower)" in out
    assert "choose_precision picked fp32: test" in out


def test_thread_bench_times_each_count_and_restores_the_setting(monkeypatch):
    for name in ("COURSE_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    seen: list[int] = []
    monkeypatch.setattr(bench, "_thread_workloads",
                        lambda: {"tiny": lambda: seen.append(torch.get_num_threads())})
    before = torch.get_num_threads()
    result = bench.bench_threads(thread_counts=(1, 2), steps=2, rounds=2)
    assert torch.get_num_threads() == before
    assert set(seen) == {1, 2} and len(seen) == 2 + 2 * 2 * 2  # warm-up + rounds x counts x steps
    assert list(result.ms) == ["tiny"] and len(result.ms["tiny"]) == 2
    text = result.report()
    assert "1 thread | 2 threads" in text and "load average" in text
    assert "pick_num_threads: ci: 1 (" in text


def test_thread_workloads_are_the_course_models():
    work = bench._thread_workloads()
    assert any(name.startswith("CNN") for name in work) and any(name.startswith("GRU") for name in work)
    for step in work.values():
        step()  # each trains one step without error
