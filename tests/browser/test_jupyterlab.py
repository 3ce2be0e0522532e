"""tools/browser_check.py (`make test-browser`): the parts that need no browser.

The check itself (JupyterLab driven by headless Chromium) runs in `make test-browser`; here its
system-tool probe meets fake ``chromium``/``chromedriver`` scripts first on PATH (missing, broken,
a mismatched pair, a working pair), so these tests behave the same with or without the real tools,
and its choice of the widget cell is compared with the notebook's source.
"""

import importlib.util
import json
import os
import socket
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("browser_check", ROOT / "tools" / "browser_check.py")
browser_check = importlib.util.module_from_spec(_spec)
sys.modules["browser_check"] = browser_check   # its dataclasses look their module up there
_spec.loader.exec_module(browser_check)


def _tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _working_chromium(folder: Path, major: int = 156) -> None:
    _tool(folder, "chromium", f"""case "$*" in
  *--version*) echo "Chromium {major}.0.8078.108 built on Debian";;
  *--dump-dom*) echo "<html><head></head><body></body></html>"; echo "dbus noise" >&2;;
  *) exit 3;;
esac""")


@pytest.fixture
def only_fakes_on_path(tmp_path, monkeypatch):
    """PATH holds only the fake tools' folder (the scripts need nothing but /bin/sh's builtins)."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    monkeypatch.setenv("PATH", str(fakes))
    return fakes


def test_missing_tools_are_named_with_their_debian_packages_and_the_apt_command(only_fakes_on_path):
    failed = browser_check.probe_browser_tools()
    assert set(failed) == {"chromium", "chromedriver"}
    assert all("not found on PATH" in why for why in failed.values())
    with pytest.raises(browser_check.BrowserCheckError) as raised:
        browser_check.ensure_browser_tools(install=False)
    message = str(raised.value)
    assert message.startswith("step 'system tools' failed")
    assert "apt-get install -y --no-install-recommends chromium chromium-driver" in message


def test_a_chromium_that_renders_nothing_fails_its_probe(only_fakes_on_path):
    _tool(only_fakes_on_path, "chromium", 'echo "cannot open display" >&2; exit 0')
    _tool(only_fakes_on_path, "chromedriver", 'echo "ChromeDriver 156.0.8078.108"')
    failed = browser_check.probe_browser_tools()
    assert list(failed) == ["chromium"]
    assert "cannot open display" in failed["chromium"]


def test_a_driver_from_another_release_is_a_failure_of_chromedriver(only_fakes_on_path):
    _working_chromium(only_fakes_on_path, major=156)
    _tool(only_fakes_on_path, "chromedriver", 'echo "ChromeDriver 149.0.7000.1 (abc)"')
    failed = browser_check.probe_browser_tools()
    assert list(failed) == ["chromedriver"]
    assert "versions differ" in failed["chromedriver"]
    assert browser_check.apt_command_for(failed).endswith("chromium-driver")


def test_a_working_pair_passes(only_fakes_on_path):
    _working_chromium(only_fakes_on_path)
    _tool(only_fakes_on_path, "chromedriver", 'echo "ChromeDriver 156.0.8078.108 (deadbeef)"')
    assert browser_check.probe_browser_tools() == {}
    browser_check.ensure_browser_tools(install=False)


def test_the_widget_cell_is_the_one_that_builds_the_sliders():
    index = browser_check.widget_cell_index(browser_check.WIDGET_NOTEBOOK)
    cells = json.loads((ROOT / browser_check.WIDGET_NOTEBOOK).read_text())["cells"]
    with_sliders = [i for i, c in enumerate(cells)
                    if c["cell_type"] == "code" and "Slider(" in "".join(c["source"])]
    assert with_sliders and index == with_sliders[0]
    assert all("Slider(" not in "".join(c["source"]) for c in cells[:index])


def test_the_free_port_can_be_bound_on_localhost():
    port = browser_check.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))


def test_lab_never_autosaves_into_the_checkout_and_drops_the_agg_backend(tmp_path, monkeypatch):
    settings = browser_check.LAB_SETTINGS["@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"]
    assert settings["autosave"] is False
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = browser_check._lab_environment(tmp_path)
    assert "MPLBACKEND" not in env and env["COURSE_PROFILE"] == "ci"
    assert env["JUPYTER_CONFIG_DIR"].startswith(str(tmp_path))
