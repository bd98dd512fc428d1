"""Every widget notebook, opened in JupyterLab in a real Chromium: widgets drawn, and responding.

Headless runs cannot see the commonest student failure, "Error displaying widget: model not
found" (ipywidgets and jupyterlab_widgets out of step, or the extension disabled): the kernel side
works and only the page is broken. These tests look at the page. Without Chromium or Playwright
they skip with install instructions, except under CI=true, where they fail.
Run only them with ``.venv/bin/python -m pytest tests/test_browser.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from tests import browser_support as bs
from tests.notebook_files import ROOT, executable_notebooks

pytestmark = pytest.mark.browser
#: Minutes in all (a JupyterLab server and Chromium): dealt to a worker first (conftest.py).
XDIST_FIRST = True

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
WIDGET_NOTEBOOKS = bs.widget_notebooks(executable_notebooks())


def _unavailable(what: str) -> None:
    """Skip loudly with install advice, or fail when running under CI."""
    rule = "#" * 90
    message = f"\n{rule}\n## BROWSER TEST NOT RUN: {what}.\n{bs.INSTALL_ADVICE}\n{rule}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "\n(CI=true: a missing browser is a failure, not a skip.)",
                    pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Debian Chromium with a fresh profile, driven by Playwright."""
    chromium = bs.find_chromium()
    if chromium is None:
        _unavailable("no Chromium found (/usr/bin/chromium, chromium-browser, google-chrome)")
    try:
        from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
    except ImportError:
        _unavailable("the playwright package is not installed in this environment")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium,
            args=list(bs.CHROMIUM_FLAGS), headless=True, viewport=bs.VIEWPORT, timeout=60_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def lab_state(tmp_path_factory) -> Path:
    """Private Jupyter, IPython and matplotlib dirs, with settings for an unattended lab."""
    state = tmp_path_factory.mktemp("jupyter-state")
    bs.write_lab_settings(state)
    return state


@pytest.fixture(scope="module")
def control_dir():
    """A folder inside the repository (git-ignored artifacts/) holding the control notebook."""
    parent = ROOT / "artifacts" / "browser-check"
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="control-", dir=parent))
    nbformat.write(bs.control_notebook(), folder / "control_widgets.ipynb")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def servers(browser, lab_state, control_dir, tmp_path_factory):  # pylint: disable=unused-argument
    """Two JupyterLabs from this venv, started side by side once Chromium is known to be there.

    ``lab`` serves the repository as a student runs it; ``disabled`` serves the control notebook
    with the widget manager extension disabled, the broken lab the check must catch.
    """
    disabled_state = tmp_path_factory.mktemp("jupyter-state-disabled")
    bs.write_lab_settings(disabled_state)
    bs.disable_extension(disabled_state)
    started = {}
    try:
        started["lab"] = bs.launch_lab(ROOT, lab_state)
        started["disabled"] = bs.launch_lab(control_dir, disabled_state)
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def lab(servers):
    """The healthy JupyterLab, serving the repository."""
    return servers["lab"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_widget_manager_extension_is_enabled_and_ok(lab_state):
    listing = bs.run_jupyter(["labextension", "list"], lab_state)
    assert bs.extension_status(listing) == ("enabled", "OK"), listing


@pytest.mark.parametrize("notebook", WIDGET_NOTEBOOKS,
                         ids=[p.relative_to(ROOT).as_posix() for p in WIDGET_NOTEBOOKS])
def test_lesson_widgets_render_and_respond(browser, lab, notebook):
    before, checkpoints = _digest(notebook), notebook.parent / ".ipynb_checkpoints"
    had_checkpoints = checkpoints.exists()
    check = bs.check_notebook(browser, lab, notebook.relative_to(ROOT).as_posix(),
                              SCREENSHOTS / bs.screenshot_name(notebook, ROOT))
    assert check.ok, check.render()
    assert _digest(notebook) == before, "the browser check saved the notebook: autosave is on?"
    assert had_checkpoints or not checkpoints.exists(), "checkpoints written into the repository"


def test_control_widgets_render_and_respond_and_a_missing_model_is_caught(browser, lab,
                                                                          control_dir):
    check = bs.check_notebook(browser, lab,
                              (control_dir / "control_widgets.ipynb").relative_to(ROOT).as_posix(),
                              SCREENSHOTS / "control-widgets.png")
    assert [(cell.drawn, cell.failed) for cell in check.cells] == [(1, 0), (1, 0), (0, 1)], \
        check.render()
    assert [interaction.changed for interaction in check.interactions] == [True, True]
    ghost = check.cells[-1].index
    assert check.problems == (
        f"the page shows {bs.RENDER_ERROR!r}",
        f"cell {ghost}: the kernel displayed 1 widget(s) but the page drew 0 "
        f"(shows '{bs.RENDER_ERROR}: model not found')"), check.render()


def test_check_fails_when_the_widget_manager_is_disabled(browser, servers):
    check = bs.check_notebook(browser, servers["disabled"], "control_widgets.ipynb",
                              SCREENSHOTS / "control-widgets-extension-disabled.png")
    assert not check.ok
    assert [(cell.drawn, cell.as_text) for cell in check.cells] == [(0, 1)] * 3, check.render()
    assert any("shown as plain text" in problem for problem in check.problems), check.render()
