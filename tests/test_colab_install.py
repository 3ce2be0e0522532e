"""tools/check_colab_install.py (`make test-py312`): what it counts as touching Colab's torch, which
tests it runs, and how it finds Python 3.12. The check itself runs in `make test`."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_colab_install",
                                               ROOT / "tools" / "check_colab_install.py")
check_colab_install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_colab_install)


def test_reinstalling_or_changing_the_torch_stack_is_reported():
    kept = {"torch": "2.14.1", "torchaudio": "2.11.0", "nvidia-cublas": "13.1.1.3"}
    assert check_colab_install.stack_changes({"numpy": "2.5.5", "course-lib": "0.1.0"}, kept, kept) is None
    reinstalled = check_colab_install.stack_changes({"torch": "2.14.1", "numpy": "2.5.5"}, kept, kept)
    assert reinstalled.startswith("pip installed torch==2.14.1;")
    upgraded_cuda = check_colab_install.stack_changes({"nvidia-cublas": "13.4.1.3"}, kept,
                                                      {**kept, "nvidia-cublas": "13.4.1.3"})
    assert "nvidia-cublas==13.4.1.3" in upgraded_cuda and "widen the range" in upgraded_cuda
    removed = check_colab_install.stack_changes({}, kept, {"torch": "2.14.1"})
    assert removed.startswith("pip installed nothing of it;")


def test_the_unit_tests_run_on_312_are_the_checkouts_minus_the_named_exceptions():
    run = check_colab_install.unit_tests()
    every = sorted(f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py"))
    assert set(run) | {f"tests/{n}" for n in check_colab_install.NOT_ON_THE_COLAB_PATH} == set(every)
    assert "tests/test_packaging.py" in run and "tests/test_runtime.py" in run


def test_an_explicit_interpreter_that_is_not_312_is_not_taken(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("PYTHON312", raising=False)
    monkeypatch.setenv("PYENV_ROOT", "/nonexistent")
    if sys.version_info[:2] != (3, 12):
        assert check_colab_install.find_python312(sys.executable) is None
    else:
        assert check_colab_install.find_python312(sys.executable) == sys.executable
