"""See the lab's widgets the way a student does: JupyterLab in Debian's Chromium.

Headless runs (nbval, papermill) prove the kernel builds every widget; only a browser shows whether
JupyterLab's widget manager draws them. When ``ipywidgets`` and ``jupyterlab_widgets`` do not
belong together, or the extension is disabled, the kernel side still works and every headless test
stays green while the student sees "Error displaying widget: model not found" or a bare
``VBox(children=...)`` line. tests/test_browser.py uses this module to start a private JupyterLab,
run each widget notebook in it, count the widget views it draws, move a slider and watch the
output change.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"
#: What ipywidgets' front end writes into an output it cannot draw.
RENDER_ERROR = "Error displaying widget"

#: Flags for Debian's Chromium on a machine whose only network is loopback (without the
#: background-networking ones it keeps trying to reach Google and gets refused).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
VIEWPORT = {"width": 1280, "height": 1400}

INSTALL_ADVICE = (
    "Install it with `make browser-deps` (as root, or with password-less sudo), or by hand:\n"
    "    sudo apt-get install chromium        (Debian / Ubuntu)\n"
    "Playwright itself comes with the venv (`make setup`); it never downloads a browser here."
)

#: A code cell that brings in widgets: ipywidgets directly, or the lab's own widget package.
_WIDGET_IMPORT = re.compile(
    r"^\s*(?:import|from)\s+(?:ipywidgets|labsupport\.widgets)\b"
    r"|^\s*from\s+labsupport\s+import\s+[^\n]*\bwidgets\b",
    re.MULTILINE,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Lab settings for an unattended check. Autosave off: the lessons are opened from the repository
#: and must never be saved back with outputs. Windowing off: every cell stays in the page, so
#: every widget can be counted. News off: no pop-up, and no request to the internet.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
}

#: Helpers installed in every page before JupyterLab loads. They read JupyterLab's own models
#: (exposed by ``--LabApp.expose_app_in_browser``) and the page it draws.
_PAGE_HELPERS = """
window.__labCheck = {
  panel(path) {
    const app = window.jupyterapp;
    if (!app || !app.shell) return null;
    for (const widget of app.shell.widgets('main')) {
      if (widget.context && widget.context.path === path && widget.sessionContext) return widget;
    }
    return null;
  },
  kernel(path) {
    const panel = this.panel(path);
    const session = panel && panel.sessionContext.session;
    const kernel = session && session.kernel;
    return kernel ? {id: kernel.id, status: kernel.status,
                     connection: kernel.connectionStatus} : null;
  },
  runAll(path) {
    const app = window.jupyterapp;
    app.shell.activateById(this.panel(path).id);
    this.run = {done: false, ok: null, error: null};
    app.commands.execute('notebook:run-all-cells').then(
      ok => { this.run = {done: true, ok: ok === true, error: null}; },
      error => { this.run = {done: true, ok: false, error: String(error)}; });
  },
  state(path) {
    const panel = this.panel(path);
    const cells = [];
    panel.content.widgets.forEach((cell, index) => {
      if (cell.model.type !== 'code') return;
      cell.node.setAttribute('data-lab-check-cell', String(index));
      const json = cell.model.toJSON();
      const outputs = json.outputs || [];
      const children = cell.node.querySelectorAll('.jp-Cell-outputArea > .jp-OutputArea-child');
      const counts = {expected: 0, drawn: 0, asText: 0, failed: []};
      const controls = [];
      outputs.forEach((output, k) => {
        if (!output.data || !output.data[WIDGET_MIME]) return;
        counts.expected++;
        const area = children[k] && children[k].querySelector(':scope > .jp-OutputArea-output');
        const root = area && area.querySelector(':scope > .jupyter-widgets');
        if (root) {
          counts.drawn++;
          const id = index + '-' + k;
          root.setAttribute('data-lab-check-root', id);
          if (!root.querySelector('.widget-output')) return;
          if (root.querySelector('.widget-slider .noUi-handle')) controls.push([id, 'slider']);
          else if (root.querySelector('.widget-dropdown select')) controls.push([id, 'dropdown']);
        } else if (area && area.innerText.includes(RENDER_ERROR)) {
          counts.failed.push(area.innerText.trim());  // the widget renderer gave up
        } else if (area && area.getAttribute('data-mime-type')) {
          counts.asText++;  // no widget renderer: JupyterLab fell back to the text/plain repr
        }  // else still "Loading widget...".
      });
      cells.push({
        index: index,
        executed: cell.model.executionCount !== null,
        tags: (json.metadata && json.metadata.tags) || [],
        expected: counts.expected,
        drawn: counts.drawn,
        asText: counts.asText,
        failed: counts.failed,
        views: cell.node.querySelectorAll('.jp-Cell-outputArea .jupyter-widgets').length,
        errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
        controls: controls,
      });
    });
    return {cells: cells, renderError: document.body.innerText.includes(RENDER_ERROR)};
  },
  outputOf(rootId) {
    const root = document.querySelector('[data-lab-check-root="' + rootId + '"]');
    if (!root) return null;
    const parts = [];
    for (const output of root.querySelectorAll('.widget-output')) {
      parts.push(output.innerText);
      for (const image of output.querySelectorAll('img')) parts.push(image.src);
      for (const svg of output.querySelectorAll('svg')) parts.push(svg.outerHTML);
    }
    return parts.join('\\n');
  },
};
""".replace("WIDGET_MIME", json.dumps(WIDGET_MIME)).replace("RENDER_ERROR",
                                                            json.dumps(RENDER_ERROR))


class BrowserCheckError(RuntimeError):
    """The check could not get as far as looking at the widgets (server, page or kernel stuck)."""


# --- what to check -------------------------------------------------------------------------------


def uses_widgets(path: Path) -> bool:
    """True when a code cell of the notebook imports ipywidgets or ``labsupport.widgets``."""
    notebook = nbformat.read(path, as_version=4)
    return any(cell.cell_type == "code" and _WIDGET_IMPORT.search(cell.source)
               for cell in notebook.cells)


def widget_notebooks(paths: list[Path]) -> list[Path]:
    """The notebooks among ``paths`` that use widgets, in the given order."""
    return [path for path in paths if uses_widgets(path)]


def find_chromium() -> str | None:
    """Debian's ``/usr/bin/chromium``, else a Chromium or Chrome on ``PATH``, else None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot_name(path: Path, root: Path) -> str:
    """The screenshot file name: ``01_x.png`` for ``notebooks/01_x.ipynb``, else folder-prefixed.

    ``solutions/01_x.ipynb`` becomes ``solutions-01_x.png``, so lesson and solution never clash.

    Parameters
    ----------
    path
        The notebook.
    root
        The folder the notebook's own folder is relative to (the repository).
    """
    folder = path.parent.relative_to(root).as_posix().replace("/", "-")
    return f"{path.stem}.png" if folder == "notebooks" else f"{folder}-{path.stem}.png"


def unavailable(what: str) -> None:
    """Skip loudly with install advice, or fail when running under CI (CI=true)."""
    rule = "#" * 90
    message = f"\n{rule}\n## BROWSER TEST NOT RUN: {what}.\n{INSTALL_ADVICE}\n{rule}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "\n(CI=true: a missing browser is a failure, not a skip.)",
                    pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def chromium_context(profile: Path):
    """A Playwright context of headless Debian Chromium with a fresh profile in ``profile``.

    Calls :func:`unavailable` (skip, or fail under CI) when Chromium or Playwright is missing.
    """
    chromium = find_chromium()
    if chromium is None:
        unavailable("no Chromium found (/usr/bin/chromium, chromium-browser, google-chrome)")
    try:
        from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
    except ImportError:
        unavailable("the playwright package is not installed in this environment")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, args=list(CHROMIUM_FLAGS), headless=True,
            viewport=VIEWPORT, timeout=60_000)
        try:
            yield context
        finally:
            context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Serve without a line on stderr per request."""


@contextlib.contextmanager
def serve_folder(folder: Path):
    """Serve ``folder`` over HTTP on a free loopback port; yields the base URL (ends in ``/``)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- an isolated JupyterLab ----------------------------------------------------------------------


def jupyter_env(state_dir: Path) -> dict[str, str]:
    """This process's environment with the Jupyter, IPython and matplotlib dirs in ``state_dir``.

    Nothing is read from or written to the user's home; ``MPLBACKEND`` is left alone (the kernel
    needs its inline backend).
    """
    env = dict(os.environ)
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                      ("MPLCONFIGDIR", "matplotlib")):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(state_dir / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def write_lab_settings(state_dir: Path) -> None:
    """Write :data:`LAB_SETTINGS` as the user settings of the JupyterLab using ``state_dir``."""
    settings_dir = state_dir / "config" / "lab" / "user-settings"
    for relative, values in LAB_SETTINGS.items():
        target = settings_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values, indent=2), encoding="utf-8")


def disable_extension(state_dir: Path, name: str = WIDGET_MANAGER) -> None:
    """Disable a lab extension for the JupyterLab using ``state_dir``, as a student might have.

    Writes the file ``jupyter labextension disable --level=user NAME`` writes
    (``labconfig/page_config.json`` in the config dir), without the seconds that command spends
    importing JupyterLab.
    """
    page_config = state_dir / "config" / "labconfig" / "page_config.json"
    page_config.parent.mkdir(parents=True, exist_ok=True)
    page_config.write_text(json.dumps({"disabledExtensions": {name: True}}, indent=2),
                           encoding="utf-8")


def run_jupyter(args: list[str], state_dir: Path, timeout: float = 120.0) -> str:
    """Run ``python -m jupyter ARGS`` from this venv with the isolated dirs; return its output.

    Standard output and error are returned together, without colour codes.
    """
    done = subprocess.run([sys.executable, "-m", "jupyter", *args], env=jupyter_env(state_dir),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)
    output = _ANSI.sub("", done.stdout + done.stderr)
    if done.returncode != 0:
        raise BrowserCheckError(f"`jupyter {' '.join(args)}` exited {done.returncode}:\n{output}")
    return output


def extension_status(listing: str, name: str = WIDGET_MANAGER) -> tuple[str, str] | None:
    """``(enabled|disabled, OK|...)`` for ``name`` in ``jupyter labextension list`` output.

    Returns None when the extension is not listed at all.
    """
    match = re.search(rf"^\s*{re.escape(name)}\s+v\S+\s+(enabled|disabled)\s+(\S+)",
                      listing, re.MULTILINE)
    return (match.group(1), match.group(2)) if match else None


@dataclass
class PageLog:
    """What a page asked for and what went wrong, recorded by :func:`record`."""

    requests: list[str]
    #: Requests that failed or were answered 4xx/5xx, each with its reason.
    failed: list[str]
    #: Exceptions the page's scripts threw and did not catch.
    errors: list[str]

    def outside(self, base: str) -> list[str]:
        """The requested URLs that are not under ``base`` (nor data: or blob: URLs)."""
        return sorted({url for url in self.requests
                       if not url.startswith((base, "data:", "blob:"))})


def record(page, ignore_failed: tuple[str, ...] = ()) -> PageLog:
    """Record every request of a Playwright ``page``, the failed ones (except URLs ending in one
    of ``ignore_failed``) and its uncaught script errors, from now on."""
    log = PageLog([], [], [])
    page.on("request", lambda request: log.requests.append(request.url))
    page.on("requestfailed", lambda request: log.failed.append(
        f"{request.url} ({request.failure})"))
    page.on("response", lambda response: log.failed.append(
        f"{response.url} (HTTP {response.status})")
        if response.status >= 400 and not response.url.endswith(ignore_failed) else None)
    page.on("pageerror", lambda error: log.errors.append(str(error)))
    return log


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class LabServer:
    """A JupyterLab started by :func:`start_lab`; :meth:`stop` it when done."""

    process: subprocess.Popen
    base_url: str
    token: str
    state_dir: Path
    log_path: Path

    def api(self, path: str, method: str = "GET", timeout: float = 10.0) -> Any:
        """Call the Jupyter REST API (``/api/...``) and return the decoded JSON (None if empty)."""
        request = urllib.request.Request(f"{self.base_url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log, for failure messages."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def kernel_pids(self) -> list[int]:
        """PIDs of the kernels this server started (their connection files are in its runtime dir).

        Kernels run in their own process group, so killing the server's group misses them.
        """
        marker = str(self.state_dir / "runtime").encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and b"ipykernel" in cmdline:
                pids.append(int(entry.name))
        return pids

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once ``/api/status`` answers.

        Raises
        ------
        BrowserCheckError
            When the server exits or does not answer within ``timeout`` seconds (with its log);
            the server is stopped first.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserCheckError(f"JupyterLab exited with {self.process.returncode}:\n"
                                        f"{self.log_tail()}")
            try:
                self.api("/api/status", timeout=2)
                return
            except (OSError, ValueError):
                time.sleep(0.25)
        self.stop()
        raise BrowserCheckError(f"JupyterLab did not answer /api/status within {timeout:.0f} s:"
                                f"\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the kernels and the server down; kill whatever is left, by PID and process group."""
        if self.process.poll() is None:
            try:
                for session in self.api("/api/sessions", timeout=5):
                    self.api(f"/api/sessions/{session['id']}", method="DELETE", timeout=10)
            except (OSError, ValueError):
                pass
        kernels = self.kernel_pids()
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        for pid in kernels + self.kernel_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def launch_lab(root_dir: Path, state_dir: Path) -> LabServer:
    """Start JupyterLab from this venv on a free loopback port, serving ``root_dir``; don't wait.

    All its state lives in ``state_dir`` (see :func:`jupyter_env`; settings from
    :func:`write_lab_settings` must already be there). It runs in its own process group. Call
    :meth:`LabServer.wait_ready` before use, and :meth:`LabServer.stop` in every case.
    """
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        "--LabApp.expose_app_in_browser=True",
        # JupyterLab checkpoints every notebook it opens: keep those out of the repository too.
        f"--FileCheckpoints.checkpoint_dir={state_dir / 'checkpoints'}",
    ]
    if os.getuid() == 0:
        command.append("--allow-root")
    log_path = state_dir / "jupyterlab.log"
    with open(log_path, "wb") as log:
        # Not a `with`: the server outlives this function; LabServer.stop() ends it.
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            command, env=jupyter_env(state_dir), cwd=root_dir, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return LabServer(process, f"http://127.0.0.1:{port}", token, state_dir, log_path)


def start_lab(root_dir: Path, state_dir: Path, timeout: float = 60.0) -> LabServer:
    """:func:`launch_lab`, then :meth:`LabServer.wait_ready`: a server that answers."""
    server = launch_lab(root_dir, state_dir)
    server.wait_ready(timeout)
    return server


# --- the check -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidgetCell:
    """One code cell that displayed widgets, as the page shows it.

    ``expected`` widget outputs came from the kernel; ``drawn`` of them became widget views,
    ``failed`` ones show the renderer's error (e.g. "Error displaying widget: model not found"),
    ``as_text`` ones fell back to their plain-text repr (no widget renderer: the extension is
    missing or disabled). ``views`` counts every ``.jupyter-widgets`` element, children included.
    """

    index: int
    expected: int
    drawn: int
    failed: int
    as_text: int
    views: int


@dataclass(frozen=True)
class Interaction:
    """A control moved in the browser and whether the widget's output changed as a result."""

    cell: int
    control: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        """True when the displayed output differs after the move."""
        return self.before != self.after


@dataclass(frozen=True)
class WidgetCheck:
    """What the browser showed for one notebook; ``ok`` when ``problems`` is empty."""

    notebook: str
    cells: tuple[WidgetCell, ...]
    interactions: tuple[Interaction, ...]
    problems: tuple[str, ...]
    screenshot: Path

    @property
    def ok(self) -> bool:
        """True when every widget was drawn and a moved control changed its output."""
        return not self.problems

    def render(self) -> str:
        """A readable summary for assertion messages."""
        verdict = "ok" if self.ok else "PROBLEMS"
        lines = [f"{self.notebook}: {verdict} (screenshot {self.screenshot})"]
        lines += [f"  cell {c.index}: {c.drawn} of {c.expected} widget(s) drawn, {c.failed} "
                  f"failed, {c.as_text} shown as text ({c.views} widget views in all)"
                  for c in self.cells]
        lines += [f"  cell {i.cell}: moved a {i.control}; output "
                  f"{'changed' if i.changed else 'did NOT change'}: {i.before[:60]!r} -> "
                  f"{i.after[:60]!r}" for i in self.interactions]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def _poll(condition, timeout: float, interval: float = 0.25) -> Any:
    """Call ``condition()`` until it returns something truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _kernel_ready(page, server: LabServer, path: str) -> dict | None:
    """Accept a kernel-selection dialog if one is up; return the kernel once idle and connected.

    Idle and connected means both: the page's own kernel connection, and the server's view
    (``/api/kernels/<id>``: ``execution_state`` idle, at least one websocket connection).
    """
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    if accept.count():
        accept.first.click()
        return None
    kernel = page.evaluate("path => window.__labCheck.kernel(path)", path)
    if not kernel or kernel["status"] != "idle" or kernel["connection"] != "connected":
        return None
    try:
        model = server.api(f"/api/kernels/{kernel['id']}")
        sessions = server.api("/api/sessions")
    except (OSError, ValueError):
        return None
    listed = any(s["path"] == path and s["kernel"]["id"] == kernel["id"] for s in sessions)
    if listed and model["execution_state"] == "idle" and model["connections"] >= 1:
        return kernel
    return None


def _move(page, root_id: str, control: str) -> None:
    """Move the first slider of a widget far from where it is, or pick another dropdown entry."""
    root = page.locator(f'[data-lab-check-root="{root_id}"]')
    root.scroll_into_view_if_needed(timeout=10_000)
    if control == "dropdown":
        select = root.locator(".widget-dropdown select").first
        options = select.locator("option").evaluate_all("els => els.map(e => e.value)")
        current = select.input_value()
        select.select_option(next(value for value in options if value != current))
        return
    handle = root.locator(".widget-slider .noUi-handle").first.bounding_box()
    track = root.locator(".widget-slider .noUi-target").first.bounding_box()
    if not handle or not track:
        raise BrowserCheckError(f"the slider of widget {root_id} is not visible")
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    fraction = 0.85 if x < track["x"] + track["width"] / 2 else 0.15
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], y, steps=8)
    page.mouse.up()


def _output_of(page, root_id: str) -> str:
    """What the Output widget(s) inside a widget show: text, plus image sources and SVG."""
    return page.evaluate("id => window.__labCheck.outputOf(id)", root_id) or ""


def _interact(page, cells: list[dict], timeout: float) -> list[Interaction]:
    """Move one control per widget cell (one next to an Output) and record the output it leaves."""
    done = []
    for cell in cells:
        if not cell["controls"]:
            continue
        root_id, control = cell["controls"][0]
        before = _output_of(page, root_id)
        _move(page, root_id, control)
        _poll(lambda rid=root_id, old=before: _output_of(page, rid) not in (old, ""), timeout)
        done.append(Interaction(cell["index"], control, before, _output_of(page, root_id)))
    return done


def _why(cell: dict) -> str:
    """Why a cell's widget outputs were not drawn, as far as the page tells."""
    reasons = [f"shows {text!r}" for text in cell["failed"]]
    if cell["asText"]:
        reasons.append(f"{cell['asText']} shown as plain text: is {WIDGET_MANAGER} installed "
                       "and enabled?")
    return "; ".join(reasons) or "still 'Loading widget...'"


def _problems(state: dict, interactions: list[Interaction]) -> list[str]:
    """Everything that a student would see as broken, from the page state and the moved controls."""
    found = []
    if state["renderError"]:
        found.append(f"the page shows {RENDER_ERROR!r}")
    for cell in state["cells"]:
        if not cell["executed"]:
            found.append(f"cell {cell['index']} was not executed (an earlier cell failed?)")
        if cell["errors"] and "raises-exception" not in cell["tags"]:
            found.append(f"cell {cell['index']} raised {cell['errors'][0]}")
        if cell["drawn"] < cell["expected"]:
            found.append(f"cell {cell['index']}: the kernel displayed {cell['expected']} "
                         f"widget(s) but the page drew {cell['drawn']} ({_why(cell)})")
    if not any(cell["expected"] for cell in state["cells"]):
        found.append("no cell displayed a widget, although the notebook imports widgets")
    if not interactions:
        found.append("found no slider or dropdown next to an Output widget to move")
    found += [f"cell {i.cell}: moving its {i.control} did not change the widget's output "
              f"(still {i.before[:80]!r})" for i in interactions if not i.changed]
    return found


def check_notebook(context, server: LabServer, path: str, screenshot: Path,
                   timeout: float = 120.0) -> WidgetCheck:
    """Open ``path`` in JupyterLab, run all cells, count widget views, move a control, screenshot.

    Parameters
    ----------
    context
        A Playwright browser context (one Chromium with a fresh profile).
    server
        The JupyterLab to use; ``path`` is relative to its root dir, with ``/`` separators.
    screenshot
        Where to save a PNG of the notebook after the check.
    timeout
        Seconds allowed for each stage (loading, kernel start, running all cells).

    Raises
    ------
    BrowserCheckError
        When the page, the kernel or the run did not get ready in time.
    """
    page = context.new_page()
    page.set_default_timeout(timeout * 1000)
    page.add_init_script(_PAGE_HELPERS)
    kernel = None
    try:
        workspace = "check-" + secrets.token_hex(4)
        page.goto(f"{server.base_url}/lab/workspaces/{workspace}/tree/{path}?token={server.token}")
        page.wait_for_function("path => window.__labCheck.panel(path) !== null", arg=path)
        kernel = _poll(lambda: _kernel_ready(page, server, path), timeout)
        if not kernel:
            raise BrowserCheckError(f"the kernel of {path} was not idle and connected within "
                                    f"{timeout:.0f} s:\n{server.log_tail()}")
        page.evaluate("path => window.__labCheck.runAll(path)", path)
        page.wait_for_function("() => window.__labCheck.run.done")
        run = page.evaluate("() => window.__labCheck.run")
        if run["error"]:
            raise BrowserCheckError(f"'Run All' failed in the page: {run['error']}")
        _poll(lambda: server.api(f"/api/kernels/{kernel['id']}")["execution_state"] == "idle",
              timeout)
        state = _poll(lambda: _drawn(page, path), min(timeout, 30.0)) or _state(page, path)
        interactions = _interact(page, [c for c in state["cells"] if c["expected"]],
                                 min(timeout, 20.0))
        state = _state(page, path)
        problems = _problems(state, interactions)
        first = next((c["index"] for c in state["cells"] if c["expected"]), None)
        if first is not None:
            page.locator(f'[data-lab-check-cell="{first}"]').scroll_into_view_if_needed()
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        cells = tuple(WidgetCell(c["index"], c["expected"], c["drawn"], len(c["failed"]),
                                 c["asText"], c["views"]) for c in state["cells"] if c["expected"])
        return WidgetCheck(path, cells, tuple(interactions), tuple(problems), screenshot)
    finally:
        page.close()
        if kernel:
            _shut_down_sessions(server, path)


def _shut_down_sessions(server: LabServer, path: str) -> None:
    """Shut the kernel of ``path`` down now (best effort: the server's stop() mops up the rest)."""
    try:
        for session in server.api("/api/sessions"):
            if session["path"] == path:
                server.api(f"/api/sessions/{session['id']}", method="DELETE", timeout=30)
    except (OSError, ValueError):
        pass


def _state(page, path: str) -> dict:
    return page.evaluate("path => window.__labCheck.state(path)", path)


def _drawn(page, path: str) -> dict | None:
    """The page state once no widget output is still loading (drawn, failed, or shown as text)."""
    state = _state(page, path)
    settled = all(c["drawn"] + len(c["failed"]) + c["asText"] >= c["expected"]
                  for c in state["cells"])
    return state if settled else None


#: The model id the control notebook's last cell points at, which no kernel ever created.
GHOST_MODEL_ID = "0" * 32


def control_notebook() -> nbformat.NotebookNode:
    """A notebook with two good widgets and one whose model does not exist.

    The good ones follow the lab's widget convention (a VBox holding the controls and an
    ``Output``), once by hand and once through ``ipywidgets.interactive``: a healthy lab draws
    them and they respond, a lab without the widget extension shows them as text. The last cell
    displays a widget view of a model no kernel holds, as a notebook saved with widget output and
    reopened does: even a healthy lab shows "Error displaying widget: model not found" for it.
    So the checks run before any lesson uses widgets, and each way they can fail is seen to fail.
    """
    cells = [
        nbformat.v4.new_markdown_cell("Control notebook of tests/test_browser.py (generated)."),
        nbformat.v4.new_code_cell("import ipywidgets\n\nSEED = 0",
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "slider = ipywidgets.IntSlider(value=2, min=0, max=10, description='n')\n"
            "output = ipywidgets.Output()\n\n\n"
            "def show(_change=None):\n"
            "    output.clear_output(wait=True)\n"
            "    with output:\n"
            "        print(f'n squared is {slider.value ** 2}')\n\n\n"
            "slider.observe(show, 'value')\n"
            "show()\n"
            "ipywidgets.VBox([slider, output])"),
        nbformat.v4.new_code_cell(
            "def halve(x):\n"
            "    print(f'half of {x} is {x / 2}')\n\n\n"
            "ipywidgets.interactive(halve, x=ipywidgets.IntSlider(value=4, min=0, max=20))"),
        nbformat.v4.new_code_cell(
            "from IPython.display import display\n\n"
            f"view = {{'model_id': '{GHOST_MODEL_ID}', 'version_major': 2, 'version_minor': 0}}\n"
            "display({'application/vnd.jupyter.widget-view+json': view,\n"
            "         'text/plain': 'a widget of a kernel that is gone'}, raw=True)"),
    ]
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
