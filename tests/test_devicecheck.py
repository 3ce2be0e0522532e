"""`make test-device`: refuses without an accelerator, runs notebooks as `make test` does, prints a table.

No GPU here: the refusal, the device resolution and the tables are tested directly, and one real run
goes through the whole machinery on the CPU (`--device cpu`, a labelled rehearsal) over two tiny
notebooks, one passing and one failing.
"""

import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_lib import devicecheck
from course_lib.devicecheck import NoAccelerator, NotebookRun

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"),
                                                  (True, False, "cuda")])
def test_auto_picks_cuda_then_mps(cuda, mps, expected):
    assert devicecheck.resolve_device("auto", cuda=cuda, mps=mps) == expected


def test_auto_without_an_accelerator_says_so():
    with pytest.raises(NoAccelerator, match=r"(?s)No CUDA or MPS device here.*make test.*torch sees"):
        devicecheck.resolve_device("auto", cuda=False, mps=False)
    with pytest.raises(NoAccelerator, match="--device cuda"):
        devicecheck.resolve_device("cuda", cuda=False, mps=True)
    assert devicecheck.resolve_device("cpu", cuda=False, mps=False) == "cpu"


def test_main_refuses_without_running_anything(monkeypatch, capsys):
    monkeypatch.setattr(devicecheck, "resolve_device",
                        lambda requested: (_ for _ in ()).throw(NoAccelerator("No CUDA or MPS device here")))
    monkeypatch.setattr(devicecheck, "run_notebook", lambda *a, **k: pytest.fail("ran a notebook"))
    assert devicecheck.main([]) == devicecheck.EXIT_NOT_RUN
    assert devicecheck.main(["--preflight"]) == devicecheck.EXIT_NOT_RUN  # make test-device's first step
    assert "No CUDA or MPS device here" in capsys.readouterr().err


def test_preflight_passes_where_the_runtime_uses_the_device(capsys):
    assert devicecheck.main(["--device", "cpu", "--preflight"]) == 0
    assert "the ci profile runs on CPU REHEARSAL" in capsys.readouterr().out


def test_main_refuses_when_the_runtime_ignores_the_device(monkeypatch, capsys):
    monkeypatch.setattr(devicecheck, "resolve_device", lambda requested: "cuda")
    monkeypatch.setattr(devicecheck, "probe_runtime_device", lambda device: "cpu")
    monkeypatch.setattr(devicecheck, "run_notebook", lambda *a, **k: pytest.fail("ran a notebook"))
    assert devicecheck.main([]) == devicecheck.EXIT_NOT_RUN
    assert "put the ci profile on cpu" in capsys.readouterr().err


def test_the_ci_environment_is_the_makefiles():
    line = re.search(r"^CI_ENV\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), flags=re.M).group(1)
    assert dict(pair.split("=", 1) for pair in line.split()) == devicecheck.CI_ENV


def test_each_notebook_trains_into_an_empty_checkpoint_folder(tmp_path, monkeypatch):
    stale = tmp_path / "checkpoints" / "05_x" / "old.pt"
    stale.parent.mkdir(parents=True)
    stale.write_text("a previous run")
    seen = {}

    def fake_run(command, env, **kwargs):
        seen.update(env)
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(devicecheck.subprocess, "run", fake_run)
    devicecheck.run_notebook(Path("05_x.ipynb"), "cpu", tmp_path)
    assert seen["COURSE_CHECKPOINTS"] == str(tmp_path / "checkpoints" / "05_x")
    assert not stale.exists(), "a rerun would resume the old checkpoint instead of training"


def test_every_solution_notebook_is_checked_by_default():
    assert devicecheck.find_notebooks() == sorted((ROOT / "solutions").glob("*.ipynb"))
    assert [p.name for p in devicecheck.find_notebooks(["00_"])] == ["00_welcome.ipynb"]
    with pytest.raises(FileNotFoundError, match="no solution notebook matches"):
        devicecheck.find_notebooks(["99_nothing"])


def test_notebook_table_lists_seconds_and_failures():
    runs = [NotebookRun("00_welcome", 12.34, 9.5, True),
            NotebookRun("09_temporal_models", 40.0, None, False, "failed at Cell 12", Path("x/09.log"))]
    table = devicecheck.notebook_table(runs).splitlines()
    assert table[0] == "| notebook | cells (s) | wall (s) | result |"
    assert table[2] == "| 00_welcome | 9.5 | 12.3 | pass |"
    assert table[3] == "| 09_temporal_models | - | 40.0 | **FAIL** (failed at Cell 12; log: x/09.log) |"
    assert table[4] == "| total (1/2 passed) | 9.5 | 52.3 | |"


def test_bench_table_gives_the_ratios():
    result = SimpleNamespace(source="offline:spoken_digits, stored at 44100 Hz", naive_input=100.0,
                             packed_input=900.0, naive_train=50.0, packed_train=200.0,
                             input_ratio=9.0, train_ratio=4.0)
    row = devicecheck.bench_table([result]).splitlines()[2]
    assert row == "| 44100 Hz | 100 | 900 | 9.0x | 50 | 200 | 4.0x |"


def _tiny_notebook(path: Path, body: str) -> Path:
    nb = new_notebook(cells=[new_code_cell("import os\nprint(os.environ['COURSE_DEVICE'], "
                                           "os.environ['COURSE_PROFILE'])"),
                             new_code_cell(body)])
    nbformat.write(nb, path)
    return path


def test_a_cpu_rehearsal_runs_notebooks_like_make_test(tmp_path, capsys):
    good = _tiny_notebook(tmp_path / "90_good.ipynb", "x = 1 + 1")
    bad = _tiny_notebook(tmp_path / "91_bad.ipynb", "raise ValueError('broken on purpose')")
    benched = []
    code = devicecheck.main(["--device", "cpu", "--notebooks", str(good), str(bad),
                             "--log-dir", str(tmp_path / "logs")],
                            bench=lambda device, rate: benched.append((device, rate)) or SimpleNamespace(
                                source="s" + (f", stored at {rate} Hz" if rate else ""),
                                naive_input=1.0, packed_input=2.0, naive_train=1.0, packed_train=3.0,
                                input_ratio=2.0, train_ratio=3.0))
    out = capsys.readouterr().out
    assert code == devicecheck.EXIT_FAILED
    assert "CPU REHEARSAL" in out
    assert re.search(r"^\| 90_good \| [0-9.-]+ \| [0-9.]+ \| pass \|$", out, flags=re.M)
    assert re.search(r"^\| 91_bad \| .* \*\*FAIL\*\* \(failed at Cell 1; log: ", out, flags=re.M)
    assert "ValueError: broken on purpose" in (tmp_path / "logs" / "91_bad.log").read_text()
    assert benched == [("cpu", None), ("cpu", 44100)]
    assert "| 44100 Hz | 1 | 2 | 2.0x | 1 | 3 | 3.0x |" in out
    assert "1 notebook(s) failed on cpu: 91_bad" in out
