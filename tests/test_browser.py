"""Every widget notebook, opened in JupyterLab in a real Chromium: widgets drawn, and responding.

Headless runs cannot see the commonest student failure, "Error displaying widget: model not
found" (ipywidgets and jupyterlab_widgets out of step, or the extension disabled): the kernel side
works and only the page is broken. These tests look at the page. Without Chromium or Playwright
they skip with install instructions, except under CI=true, where they fail.
Run only them with ``.venv/bin/python -m pytest tests/test_browser.py``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
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


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Debian Chromium with a fresh profile, driven by Playwright."""
    with bs.chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


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


@pytest.fixture(scope="module")
def review_page(tmp_path_factory):
    """`labsupport review` serving a class of three written answers (one hostile), and its URL."""
    # Imported here: only the review test needs the review's test data.
    from tests.test_review import graded_class  # pylint: disable=import-outside-toplevel
    root = tmp_path_factory.mktemp("review")
    grading = graded_class(root, {
        "ana": "The **error rate** was 3 %, above the limit.",
        "bo": "<script>document.title = 'owned'</script>\n\n[see](javascript:document.title="
              "'owned')",
        "cy": "It was slow."})
    with subprocess.Popen([sys.executable, "-m", "labsupport", "review", str(grading), "--root",
                           str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, cwd=root) as server:
        try:
            url = ""
            for line in server.stdout:
                if line.startswith("Review page: "):
                    url = line.split()[2]
                    break
            assert url.startswith("http://127.0.0.1:"), "the review command printed no URL"
            yield url, grading
        finally:
            server.terminate()
            server.wait(30)


def test_written_answers_are_scored_through_the_page_and_kept(browser, review_page):
    url, grading = review_page
    page, other = browser.new_page(), browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(url)
        assert "0 / 3" in page.inner_text("body")
        page.click("text=w1")
        assert "Answer 1 of 3" in page.inner_text("body")
        page.check("input[name=item][value='0']")
        page.fill("textarea[name=comment]", "Say which limit.")
        page.fill("input[name=grader]", "ta1")
        page.click("button[value=next]")
        assert "Answer 2 of 3" in page.inner_text("body")
        # bo's answer: the script and the link are shown, not run.
        assert page.title() != "owned" and not dialogs
        assert "<script>" in page.inner_text(".answer")
        page.click(".answer a")
        assert page.title() != "owned"
        page.goto(url.split("?")[0] + "answer/01_small.ipynb/w1/0")
        page.reload()
        assert page.is_checked("input[name=item][value='0']")
        assert page.input_value("textarea[name=comment]") == "Say which limit."
        assert "Scored 1 by ta1" in page.inner_text("body")
        page.screenshot(path=str(SCREENSHOTS / "review-page.png"), full_page=True)
        # Two assistants open cy's answer at once; ta2 saves first, then ta1's save replaces it.
        other.goto(url)
        other.goto(url.split("?")[0] + "answer/01_small.ipynb/w1/2")
        other.check("input[name=item][value='1']")
        other.fill("input[name=grader]", "ta2")
        page.goto(url.split("?")[0] + "answer/01_small.ipynb/w1/2")
        page.check("input[name=item][value='0']")
        page.fill("input[name=grader]", "ta1")
        other.click("button[value=stay]")
        page.click("button[value=stay]")
        assert "It replaced ta2's score of 1" in page.inner_text("body")
    finally:
        page.close()
        other.close()
    from labsupport.course import review  # pylint: disable=import-outside-toplevel
    store = review.ReviewStore(grading / review.DATABASE)
    assert [(s.student, s.ticked, s.grader) for s in store.scores()] == [
        ("ana", (0,), "ta1"), ("cy", (0,), "ta1")]
    assert [h["grader"] for h in store.history()] == ["ta1", "ta2", "ta1"]
