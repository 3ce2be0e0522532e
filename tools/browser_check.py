"""The course in a real browser: JupyterLab from the course's .venv, driven by headless Chromium.

What ``make test-browser`` proves, in the order it runs (each numbered step is named in its failure):

1. The system tools, checked by use: ``chromium --headless --dump-dom about:blank`` prints a page and
   ``chromedriver --version`` answers with the same major version. Debian's ``chromium`` and
   ``chromium-driver`` are installed with apt when they fail and this runs as root
   (``--install-system-packages``); elsewhere the error names the apt command.
2. JupyterLab starts from ``.venv/bin/jupyter lab`` on 127.0.0.1 (a free port, a random token, the
   repository as root directory, the CI profile in its environment, its own throwaway Jupyter
   config, data and settings folders, so a user's ``~/.jupyter`` cannot change the result) and
   answers ``/api/status``. It is always shut down, also when a step fails.
3. ``notebooks/00_welcome.ipynb`` opens (in a browser tab and Lab workspace of its own) with the
   course kernel (``audio-nn-course``) running and no "Select Kernel" dialog, and Run > Run All
   Cells starts.
4. Meanwhile, in a second tab, ``notebooks/03_stft_and_time_frequency.ipynb`` (the STFT trade-off
   widget) opens the same way; Run > Run All Above Selected Cell and Shift+Enter run it up to the
   widget's cell; its ipywidgets sliders render; pressing the right arrow on the ``win_length``
   slider moves its readout and redraws the plot (the image's bytes change); an audio player
   appears and loads its clip.
5. Back in the first tab: every cell of 00_welcome ran without an error output, the setup cell
   printed its ``profile=ci`` line, and an ``<audio>`` player appeared and loaded its clip.

The two kernels run side by side (one thread each), which halves the wall time on two cores.
Screenshots (PNG) of every checked state, and of the page at a failure, go to ``.make/browser/``
(``--out``), with the server's log; their paths are printed. Selenium drives Debian's
``/usr/bin/chromedriver`` directly: Selenium Manager is switched off (``SE_OFFLINE``), nothing is
downloaded. Lab's autosave is off, so the notebooks in the checkout are never rewritten with outputs
(their bytes are compared before and after).

``python tools/browser_check.py [--install-system-packages] [--out DIR] [--timeout SECONDS]``;
``--system-packages-only`` checks (and with ``--install-system-packages`` installs) the two tools
and stops. Exit status 0 when every step passed, 1 otherwise, 2 when the system tools are missing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_JUPYTER = ROOT / ".venv" / "bin" / "jupyter"
KERNEL_NAME = "audio-nn-course"
WELCOME = "notebooks/00_welcome.ipynb"
# The student notebook with the ipywidgets STFT trade-off explorer (SelectionSliders in `interactive`).
WIDGET_NOTEBOOK = "notebooks/03_stft_and_time_frequency.ipynb"
# Debian package of each command the check runs.
SYSTEM_PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver"}
PROBE_TIMEOUT_S = 60.0
SERVER_START_TIMEOUT_S = 90.0
# Lab settings for the check's throwaway settings folder: no autosave (outputs must never be written
# into the checkout's notebooks), no news/update toasts over the page, every cell kept in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
        {"windowingMode": "none", "recordTiming": True},
}


class BrowserCheckError(RuntimeError):
    """A step of the check failed; the message names the step, what was seen and the screenshot."""


# --------------------------------------------------------------------------- system packages
def _run_probe(cmd: list[str], expect: str = "") -> tuple[bool, str]:
    """Run ``cmd``: (exit status 0 and ``expect`` in its standard output, what it printed).

    On success that is its standard output; on failure the end of its standard error too (Chromium
    logs harmless D-Bus errors there on machines without a session bus).
    """
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except FileNotFoundError:
        return False, "not found on PATH"
    except subprocess.TimeoutExpired:
        return False, f"did not finish within {PROBE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if proc.returncode == 0 and expect.lower() in proc.stdout.lower():
        return True, proc.stdout.strip()
    return False, (f"exit status {proc.returncode}; " + (proc.stdout + proc.stderr).strip()[-600:])


def _major(version_text: str) -> int | None:
    found = re.search(r"(\d+)\.\d+\.\d+", version_text)
    return int(found.group(1)) if found else None


def chromium_flags() -> list[str]:
    """Headless Chromium's command-line flags here (``--no-sandbox`` only as root, which needs it)."""
    flags = ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
             "--window-size=1400,1000",
             # a notebook runs in a background tab while the other is checked: keep it rendering
             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
             "--disable-backgrounding-occluded-windows"]
    if getattr(os, "geteuid", lambda: 1)() == 0:
        flags.append("--no-sandbox")
    return flags


def probe_browser_tools() -> dict[str, str]:
    """Use Chromium and ChromeDriver once each; ``{command: what failed}`` (empty when both work).

    Chromium must render a page headless (``--dump-dom about:blank`` prints ``<html>``), ChromeDriver
    must report its version, and both must share one major version (a mismatched pair starts no
    session).
    """
    failed: dict[str, str] = {}
    ok, said = _run_probe(["chromium", *chromium_flags(), "--dump-dom", "about:blank"], "<html")
    if not ok:
        failed["chromium"] = f"chromium --headless --dump-dom about:blank: {said or 'printed nothing'}"
    ok, driver_said = _run_probe(["chromedriver", "--version"], "chromedriver")
    if not ok:
        failed["chromedriver"] = f"chromedriver --version: {driver_said or 'printed nothing'}"
    if not failed:
        _, browser_said = _run_probe(["chromium", "--version"])
        browser, driver = _major(browser_said), _major(driver_said)
        if browser is None or driver is None or browser != driver:
            failed["chromedriver"] = (f"versions differ: {browser_said!r} and {driver_said!r} "
                                      "(install both from the same release)")
    return failed


def apt_install_command(packages: list[str]) -> str:
    sudo = "" if getattr(os, "geteuid", lambda: 1)() == 0 else "sudo "
    return (f"{sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends "
            f"{' '.join(packages)}")


def ensure_browser_tools(install: bool) -> None:
    """Check Chromium and ChromeDriver by use; install their Debian packages with apt when they
    fail, ``install`` is set and this runs as root on a system with apt; check again.

    Raises
    ------
    BrowserCheckError
        When a tool still fails: names the tool, what it printed and the command that installs it.
    """
    failed = probe_browser_tools()
    if not failed:
        print("system tools, checked by use: chromium renders a page headless, chromedriver matches it",
              flush=True)
        return
    packages = sorted({SYSTEM_PACKAGES[tool] for tool in failed})
    is_root = getattr(os, "geteuid", lambda: 1)() == 0
    if install and is_root and shutil.which("apt-get"):
        print(f"browser tools failing their check: {', '.join(failed)}\n"
              f"installing: apt-get install -y --no-install-recommends {' '.join(packages)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                       env=env, stdout=subprocess.DEVNULL, check=False)
        failed = probe_browser_tools()
        if not failed:
            print("system tools, checked again after installing: chromium and chromedriver work",
                  flush=True)
            return
    details = "\n".join(f"  {tool}: {why}" for tool, why in failed.items())
    raise BrowserCheckError(
        f"step 'system tools' failed: the browser check needs Debian's {' and '.join(packages)}:\n"
        f"{details}\ninstall them with:\n  {apt_command_for(failed)}"
        + ("" if is_root or not install else "\n(not root: cannot install them here)"))


def apt_command_for(failed: dict[str, str]) -> str:
    return apt_install_command(sorted({SYSTEM_PACKAGES[tool] for tool in failed}))


# --------------------------------------------------------------------------- JupyterLab server
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab``: its URL, token, process and log file."""

    port: int
    token: str
    process: subprocess.Popen
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


def _lab_environment(scratch: Path) -> dict[str, str]:
    """The server's (and so the kernels') environment: the CI profile, the venv first on PATH, and
    Jupyter's config/data/runtime folders in ``scratch`` so a user's own settings play no part. The
    course kernel is found in the venv's sys-prefix share/jupyter/kernels, where ``make install``
    puts it. MPLBACKEND is dropped: Agg would stop the inline figures the check looks for."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"MPLBACKEND", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "COURSE_STRICT_CHECKS"}}
    env.update(COURSE_PROFILE="ci", PYTHONHASHSEED="0",
               PATH=f"{VENV_JUPYTER.parent}{os.pathsep}{env.get('PATH', '')}",
               JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_DATA_DIR=str(scratch / "data"),
               JUPYTER_RUNTIME_DIR=str(scratch / "runtime"), IPYTHONDIR=str(scratch / "ipython"),
               JUPYTERLAB_SETTINGS_DIR=str(scratch / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(scratch / "workspaces"))
    return env


def start_lab(scratch: Path, log_path: Path) -> LabServer:
    """Start ``.venv/bin/jupyter lab`` on 127.0.0.1 and wait until ``/api/status`` answers.

    Raises
    ------
    BrowserCheckError
        When the venv has no jupyter, the server exits, or it does not answer in time (with the log).
    """
    if not VENV_JUPYTER.exists():
        raise BrowserCheckError(f"step 'start JupyterLab' failed: {VENV_JUPYTER} does not exist; "
                                "run `make install` first")
    settings = scratch / "settings"
    for name, values in LAB_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(24)
    cmd = [str(VENV_JUPYTER), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={scratch / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True"]
    if getattr(os, "geteuid", lambda: 1)() == 0:
        cmd.append("--allow-root")
    log = log_path.open("w")
    process = subprocess.Popen(cmd, cwd=ROOT, env=_lab_environment(scratch), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    server = LabServer(port, token, process, log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserCheckError(f"step 'start JupyterLab' failed: the server exited with status "
                                    f"{process.returncode}; its log ({log_path}) ends:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=5) as reply:
                if reply.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    stop_lab(server)
    raise BrowserCheckError(f"step 'start JupyterLab' failed: no answer on {server.base_url} within "
                            f"{SERVER_START_TIMEOUT_S:.0f} s; its log ({log_path}) ends:\n{server.log_tail()}")


def stop_lab(server: LabServer) -> None:
    """Ask the server to shut down (it stops its kernels), then end its process group if it lingers."""
    if server.process.poll() is None:
        with contextlib.suppress(OSError, urllib.error.URLError):
            request = urllib.request.Request(server.url("api/shutdown"), method="POST", data=b"")
            urllib.request.urlopen(request, timeout=10).close()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.process.pid, sig)
                try:
                    server.process.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue


# --------------------------------------------------------------------------- the browser
def start_browser():
    """Headless Debian Chromium through Debian's chromedriver; Selenium Manager stays offline."""
    os.environ["SE_OFFLINE"] = "true"   # never let Selenium Manager look for (or download) a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in chromium_flags():
        options.add_argument(flag)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_window_size(1400, 1000)
    return driver


# The notebook in the tab on show: notebooks opened earlier stay in the page, hidden.
CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
# JavaScript run in the page. JupyterLab is exposed as window.jupyterapp (--LabApp.expose_app_in_browser);
# it is only read, to report errors and the kernel precisely: every action goes through the UI.
JS_NOTEBOOK_STATE = """
const app = window.jupyterapp;
if (!app) { return null; }
// the panel of the notebook at arguments[0], whether or not Lab has it as current widget
// (a browser tab without focus has none)
let panel = null;
for (const w of app.shell.widgets('main')) {
  if (w.context && w.context.path === arguments[0] && w.content && w.content.model) { panel = w; }
}
if (!panel) { return null; }
const session = panel.sessionContext;
const cells = [];
let index = -1;
for (const cell of panel.content.model.cells) {
  index += 1;
  if (cell.type !== 'code') { continue; }
  const outputs = cell.outputs.toJSON();
  const timing = cell.getMetadata('execution') || {};
  const seconds = (timing['shell.execute_reply'] && timing['iopub.execute_input'])
    ? (Date.parse(timing['shell.execute_reply']) - Date.parse(timing['iopub.execute_input'])) / 1000 : null;
  cells.push({index: index, count: cell.executionCount, seconds: seconds, errors: outputs.filter(o => o.output_type === 'error')
              .map(o => o.ename + ': ' + o.evalue)});
}
return {path: panel.context.path, kernel: session.session && session.session.kernel
          ? session.session.kernel.name : null,
        status: session.kernelDisplayStatus, cells: cells};
"""


@dataclass
class Check:
    """The state of one run of the check: the driver, the artefact folder, the step log."""

    driver: object
    server: LabServer
    out: Path
    timeout_s: float
    screenshots: list[Path] = field(default_factory=list)
    tabs: dict[str, str] = field(default_factory=dict)   # notebook path -> browser tab handle
    timings: list[tuple[str, float]] = field(default_factory=list)

    def screenshot(self, name: str, element=None) -> Path:
        """Save the window (or ``element``) as ``<out>/<name>.png`` and print its path."""
        path = self.out / f"{name}.png"
        if element is not None:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            time.sleep(0.2)
        self.driver.save_screenshot(str(path))
        self.screenshots.append(path)
        print(f"    screenshot: {path}", flush=True)
        return path

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run one named step; on any failure take a screenshot and raise a message naming both."""
        t0 = time.monotonic()
        print(f"  - {name} ...", flush=True)
        try:
            yield
        except Exception as exc:
            shot = self.out / f"FAILED-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
            try:
                self.driver.save_screenshot(str(shot))
                where = f"screenshot of the page: {shot}"
            except Exception as shot_exc:  # the browser itself may be gone
                where = f"no screenshot ({type(shot_exc).__name__}: {shot_exc})"
            raise BrowserCheckError(f"step '{name}' failed: {exc}\n  {where}\n  "
                                    f"server log: {self.server.log_path}") from exc
        seconds = time.monotonic() - t0
        self.timings.append((name, seconds))
        print(f"    ok ({seconds:.1f} s)", flush=True)

    def wait_for(self, what: str, condition: Callable[[], object], timeout_s: float | None = None,
                 poll_s: float = 0.25):
        """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except BrowserCheckError:
                raise
            except Exception as exc:  # stale elements while Lab re-renders: poll again
                last_error = exc
            time.sleep(poll_s)
        extra = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
        raise TimeoutError(f"{what}: not seen within {timeout_s or self.timeout_s:.0f} s{extra}")

    # ----------------------------------------------------------------------- page helpers
    def show(self, path: str) -> None:
        """Bring the browser tab of notebook ``path`` to the front."""
        self.driver.switch_to.window(self.tabs[path])

    def css(self, selector: str, within=None) -> list:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def notebook_state(self, path: str) -> dict | None:
        return self.driver.execute_script(JS_NOTEBOOK_STATE, path)

    def dialog_text(self) -> str | None:
        """The text of a dialog open on the page (Select Kernel, Cannot open, ...), if any."""
        for dialog in self.css(".jp-Dialog"):
            if dialog.is_displayed():
                return " ".join(dialog.text.split())[:300]
        return None

    def open_notebook(self, path: str) -> None:
        """Open ``path`` in Lab, in a browser tab (and Lab workspace) of its own, and wait for the
        course kernel to be idle, failing at once on a "Select Kernel" dialog."""
        if self.tabs:
            self.driver.switch_to.new_window("tab")
        self.tabs[path] = self.driver.current_window_handle
        workspace = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower())
        self.driver.get(self.server.url(f"lab/workspaces/check-{workspace}/tree/{path}"))

        def kernel_idle():
            dialog = self.dialog_text()
            if dialog and "kernel" in dialog.lower():
                raise BrowserCheckError(
                    f"JupyterLab asked for a kernel instead of starting {KERNEL_NAME!r}: {dialog!r} "
                    f"(is the kernel installed in .venv? `make install` installs it)")
            if dialog:
                raise BrowserCheckError(f"JupyterLab showed a dialog: {dialog!r}")
            state = self.notebook_state(path)
            if not state or state["path"] != path:
                return None
            if state["kernel"] and state["kernel"] != KERNEL_NAME:
                raise BrowserCheckError(f"the notebook started kernel {state['kernel']!r}, "
                                        f"not the course's {KERNEL_NAME!r}")
            return state["kernel"] == KERNEL_NAME and state["status"] == "idle"

        self.wait_for(f"the {KERNEL_NAME} kernel idle in {path}", kernel_idle)
        shown = " ".join(e.text for e in self.css(f"{CURRENT} .jp-Toolbar-kernelName"))
        if shown and KERNEL_NAME not in shown:
            raise BrowserCheckError(f"the toolbar names kernel {shown!r}, not {KERNEL_NAME!r}")

    def click_menu(self, menu: str, item: str) -> None:
        """Click ``menu`` in Lab's menu bar, then its entry ``item`` (what a student does)."""
        from selenium.webdriver.common.by import By

        self.driver.find_element(
            By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='{menu}']]").click()
        entry = self.wait_for(f"menu entry {menu} > {item}", lambda: [
            e for e in self.driver.find_elements(
                By.XPATH, f"//li[contains(@class,'lm-Menu-item')][.//div[normalize-space()='{item}']]")
            if e.is_displayed()], timeout_s=10)
        if "lm-mod-disabled" in (entry[0].get_attribute("class") or ""):
            raise BrowserCheckError(f"the menu entry {menu} > {item} is disabled")
        entry[0].click()

    def _ran(self, path: str, last: int | None) -> dict | None:
        """The notebook's state once the kernel is idle and every code cell up to ``last`` (all
        when None) has run; raises at the first error output."""
        state = self.notebook_state(path)
        if not state or state["path"] != path or state["status"] != "idle":
            return None
        wanted = [c for c in state["cells"] if last is None or c["index"] <= last]
        errors = [(c["index"], e) for c in wanted for e in c["errors"]]
        if errors:
            index, error = errors[0]
            raise BrowserCheckError(f"cell {index} of {path} raised {error}")
        return state if all(c["count"] for c in wanted) else None

    def start_cells(self, path: str, upto: int | None = None) -> None:
        """Run the notebook's cells the way a student does (see :meth:`wait_cells` for the end).

        ``upto=None``: Run > Run All Cells. Else select cell ``upto`` (index among all cells), use
        Run > Run All Above Selected Cell, wait for those, then Shift+Enter on cell ``upto``.
        """
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        if upto is None:
            # a click in the notebook gives its browser tab focus, and Lab its current notebook
            self.css(f"{CURRENT} .jp-Cell")[0].find_element("css selector", ".jp-InputPrompt").click()
            self.click_menu("Run", "Run All Cells")
            return
        self.css(f"{CURRENT} .jp-Cell")[upto].find_element("css selector", ".jp-InputPrompt").click()
        self.click_menu("Run", "Run All Above Selected Cell")
        self.wait_for(f"the cells above cell {upto} of {path} executed", lambda: self._ran(path, upto - 1))
        self.css(f"{CURRENT} .jp-Cell")[upto].find_element("css selector", ".jp-InputPrompt").click()
        ActionChains(self.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()

    def wait_cells(self, path: str, upto: int | None = None) -> dict:
        """Wait until the code cells up to ``upto`` (all when None) have run; print the slowest."""
        state = self.wait_for(f"the code cells of {path} executed", lambda: self._ran(path, upto))
        ran = [c for c in state["cells"] if c["count"]]
        timed = sorted((c for c in ran if c["seconds"] is not None), key=lambda c: -c["seconds"])
        print(f"    {len(ran)} code cells ran, {sum(c['seconds'] or 0 for c in ran):.1f} s in the kernel; "
              "slowest: " + ", ".join(f"cell {c['index']} {c['seconds']:.1f} s" for c in timed[:3]),
              flush=True)
        return state

    def cell_output_text(self, code_cell_index: int) -> str:
        cells = self.css(f"{CURRENT} .jp-CodeCell")
        return cells[code_cell_index].find_element("css selector", ".jp-OutputArea").text

    def audio_loaded(self, what: str) -> object:
        """Wait for an ``<audio>`` player whose clip loads (a duration above zero); return it."""
        def loaded():
            for audio in self.css(f"{CURRENT} audio"):
                duration = self.driver.execute_script(
                    "const a = arguments[0]; if (a.readyState < 1) { a.load(); } return a.duration;", audio)
                if duration and duration > 0:
                    return audio, duration
            return None

        audio, duration = self.wait_for(f"an <audio> player in {what} with its clip loaded", loaded,
                                        timeout_s=30)
        print(f"    {len(self.css(f'{CURRENT} audio'))} audio player(s); the first holds "
              f"{duration:.2f} s of audio", flush=True)
        return audio


def _image_digest(img) -> str:
    src = img.get_attribute("src") or ""
    payload = src.split(",", 1)[1] if src.startswith("data:") else src
    with contextlib.suppress(ValueError):
        return hashlib.sha256(base64.b64decode(payload)).hexdigest()
    return hashlib.sha256(src.encode()).hexdigest()


# --------------------------------------------------------------------------- the checks
def start_welcome(check: Check) -> None:
    """Open 00_welcome and start Run All; its outputs are checked by :func:`check_welcome` after
    the widget notebook's checks (the two kernels run side by side, one per core)."""
    with check.step(f"open {WELCOME} with the {KERNEL_NAME} kernel, no Select Kernel dialog"):
        check.open_notebook(WELCOME)
        check.screenshot("00_welcome-opened")
    with check.step(f"start Run > Run All Cells in {WELCOME}"):
        check.start_cells(WELCOME)


def check_welcome(check: Check) -> None:
    check.show(WELCOME)
    with check.step(f"every cell of {WELCOME} ran without an error"):
        check.wait_cells(WELCOME)
    with check.step("the setup cell prints its profile= line"):
        text = check.wait_for("the setup cell's output", lambda: check.cell_output_text(0), timeout_s=10)
        if "profile=" not in text:
            raise BrowserCheckError(f"the setup cell's output has no 'profile=': {text[:300]!r}")
        if "profile=ci" not in text:
            raise BrowserCheckError(f"the server set COURSE_PROFILE=ci, the setup cell says {text[:200]!r}")
        print(f"    setup cell: {text.splitlines()[0][:120]}", flush=True)
        check.screenshot("00_welcome-setup-cell", check.css(f"{CURRENT} .jp-CodeCell")[0])
    with check.step(f"an audio player appears in {WELCOME}"):
        check.screenshot("00_welcome-audio", check.audio_loaded(WELCOME))


def widget_cell_index(path: str) -> int:
    """Index (among all cells) of the first code cell of ``path`` that builds an ipywidgets control:
    the check runs the notebook up to it, which is what a student does before playing with it."""
    cells = json.loads((ROOT / path).read_text())["cells"]
    for index, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"widgets\.(interactive|interact)\b|\binteract\(", source):
            return index
    raise BrowserCheckError(f"step 'find the widget' failed: no code cell of {path} calls "
                            "ipywidgets' interact/interactive (did the widget move to another notebook?)")


def _sliders(check: Check) -> list:
    return [s for s in check.css(f"{CURRENT} .widget-slider") if s.is_displayed()]


def check_stft_widget(check: Check) -> None:
    from selenium.webdriver.common.keys import Keys

    with check.step(f"open {WIDGET_NOTEBOOK} with the {KERNEL_NAME} kernel, no Select Kernel dialog"):
        check.open_notebook(WIDGET_NOTEBOOK)
    widget_cell = widget_cell_index(WIDGET_NOTEBOOK)
    with check.step(f"Run > Run All Above Selected Cell, then Shift+Enter on cell {widget_cell} "
                    f"(the widget) in {WIDGET_NOTEBOOK}"):
        check.start_cells(WIDGET_NOTEBOOK, upto=widget_cell)
        check.wait_cells(WIDGET_NOTEBOOK, upto=widget_cell)
    state: dict = {}
    with check.step("the ipywidgets sliders render with their plot"):
        sliders = check.wait_for("ipywidgets sliders", lambda: _sliders(check), timeout_s=30)
        widget = sliders[0].find_element("xpath", "ancestor::div[contains(@class,'widget-interact')]")
        state["widget"] = widget
        state["slider"] = sliders[0]
        label = sliders[0].find_element("css selector", ".widget-label").text
        state["readout"] = sliders[0].find_element("css selector", ".widget-readout").text
        images = check.wait_for("the widget's plot", lambda: check.css(".widget-output img", widget))
        state["digest"] = _image_digest(images[0])
        print(f"    {len(sliders)} slider(s); {label!r} reads {state['readout']!r}", flush=True)
        check.screenshot("03_stft-widget-before", widget)
    with check.step("moving the win_length slider redraws the plot"):
        handle = state["slider"].find_element("css selector", ".noUi-handle")
        handle.click()
        handle.send_keys(Keys.ARROW_RIGHT)
        readout = state["slider"].find_element("css selector", ".widget-readout")
        new_value = check.wait_for("the slider's readout to move",
                                   lambda: readout.text if readout.text != state["readout"] else None,
                                   timeout_s=15)

        def redrawn():
            images = check.css(".widget-output img", state["widget"])
            return images and _image_digest(images[0]) != state["digest"]

        check.wait_for(f"a new plot after the slider moved to {new_value}", redrawn)
        print(f"    readout {state['readout']} -> {new_value}; the plot's image changed", flush=True)
        check.screenshot("03_stft-widget-after", state["widget"])
    with check.step(f"an audio player appears in {WIDGET_NOTEBOOK}"):
        check.audio_loaded(WIDGET_NOTEBOOK)


def _digests(paths: list[str]) -> dict[str, str]:
    return {p: hashlib.sha256((ROOT / p).read_bytes()).hexdigest() for p in paths}


def run_check(out: Path, timeout_s: float) -> Check:
    """Start Lab and the browser, run both notebook checks, always shut both down.

    Raises
    ------
    BrowserCheckError
        Naming the failed step, with its screenshot and the server log.
    """
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.png"), out / "jupyterlab.log"]:
        old.unlink(missing_ok=True)
    before = _digests([WELCOME, WIDGET_NOTEBOOK])
    with tempfile.TemporaryDirectory(prefix="course-browser-check-") as scratch:
        t0 = time.monotonic()
        server = start_lab(Path(scratch), out / "jupyterlab.log")
        print(f"  - JupyterLab answers on {server.base_url} ({time.monotonic() - t0:.1f} s; "
              f"log: {server.log_path})", flush=True)
        driver = None
        try:
            try:
                driver = start_browser()
            except Exception as exc:
                raise BrowserCheckError(f"step 'start headless Chromium' failed: {type(exc).__name__}: "
                                        f"{exc}") from exc
            check = Check(driver, server, out, timeout_s)
            start_welcome(check)
            check_stft_widget(check)
            check_welcome(check)
        finally:
            if driver is not None:
                with contextlib.suppress(Exception):
                    driver.quit()
            stop_lab(server)
    changed = [p for p, digest in _digests([WELCOME, WIDGET_NOTEBOOK]).items() if before[p] != digest]
    if changed:
        raise BrowserCheckError(f"step 'leave the checkout alone' failed: {', '.join(changed)} changed "
                                "on disk while Lab had them open (autosave should be off)")
    return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".make" / "browser",
                        help="folder for the screenshots and the server log (default: .make/browser)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds each step may wait for the page (default: 180)")
    parser.add_argument("--install-system-packages", action="store_true",
                        help="apt-get install chromium and chromium-driver when they fail (as root)")
    parser.add_argument("--system-packages-only", action="store_true",
                        help="only check (and with --install-system-packages install) the browser tools")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    print("browser check: JupyterLab in headless Chromium", flush=True)
    try:
        ensure_browser_tools(args.install_system_packages)
    except BrowserCheckError as exc:
        print(f"FAILED {exc}", file=sys.stderr, flush=True)
        return 2
    if args.system_packages_only:
        return 0
    try:
        check = run_check(args.out.resolve(), args.timeout)
    except BrowserCheckError as exc:
        print(f"FAILED after {time.monotonic() - t0:.1f} s: {exc}", file=sys.stderr, flush=True)
        shots = sorted(args.out.resolve().glob("*.png"))
        if shots:
            print("screenshots:\n" + "\n".join(f"  {p}" for p in shots), file=sys.stderr, flush=True)
        return 1
    print(f"PASSED in {time.monotonic() - t0:.1f} s; screenshots:", flush=True)
    for path in check.screenshots:
        print(f"  {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
