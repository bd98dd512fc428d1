"""`make demo LESSON=NN`: a lesson's widgets served by Voilà, opened in Chromium, a slider moved.

The dashboard is projected in classrooms whose network may not reach the internet, so the page
must load everything from the local server: every request it makes is recorded, and none may
leave it or fail (Voilà's own template asks cdn.jsdelivr.net for icon stylesheets; `make demo`
uses the lab's share/jupyter/voila/templates/offline, which does not). Voilà runs the whole
notebook before the page is complete, which is most of this test's time, so `make test` serves
lesson 01 (the quickest lesson with a slider over an Output); `make site-test` (the Pages
workflow, CI's site job) sets ``LAB_DEMO_LESSON=06``, the dashboard the guide suggests for class,
whose notebook starts real model servers and takes several times as long. Without Chromium it
skips with install advice, except under CI=true.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

import pytest

from tests import browser_support as bs
from tests.notebook_files import ROOT

pytestmark = pytest.mark.browser

#: The lesson served: 01 in `make test`, 06 in `make site-test`.
LESSON = os.environ.get("LAB_DEMO_LESSON", "01")
SCREENSHOT = ROOT / "artifacts" / "screenshots" / "site" / f"demo-{LESSON}.png"

#: The first widget holding a slider and an Output: move the slider, return the output before.
_MOVE = """() => {
  for (const root of document.querySelectorAll('.jupyter-widgets.widget-vbox, .widget-vbox')) {
    const handle = root.querySelector('.widget-slider .noUi-handle');
    const output = root.querySelector('.widget-output');
    if (!handle || !output) continue;
    root.setAttribute('data-demo-check', '1');
    handle.focus();
    return output.innerHTML;
  }
  return null;
}"""
_OUTPUT = """() => {
  const root = document.querySelector('[data-demo-check="1"]');
  return root ? root.querySelector('.widget-output').innerHTML : null;
}"""


@pytest.fixture
def demo(tmp_path):
    """`make demo LESSON=<LESSON>` on a free loopback port, its Jupyter state in ``tmp_path``."""
    port = bs.free_port()
    env = bs.jupyter_env(tmp_path)
    overrides = [f"{name}={env[name]}" for name in
                 ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                  "MPLCONFIGDIR")]
    log_path = tmp_path / "voila.log"
    with open(log_path, "wb") as log:
        # -o: never reinstall the venv from here (`make test` or `make site` has set it up).
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            ["make", "-o", ".venv/.installed", "demo", f"LESSON={LESSON}", f"DEMO_PORT={port}",
             *overrides], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    server = bs.LabServer(process, f"http://127.0.0.1:{port}", "", tmp_path, log_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if b"http://127.0.0.1" in log_path.read_bytes() and _answers(server.base_url):
                break
            time.sleep(0.5)
        assert process.poll() is None, f"make demo exited:\n{server.log_tail()}"
        yield server
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/voila/static/", timeout=2):
            return True
    except OSError as error:
        return getattr(error, "code", None) is not None  # an HTTP error: the server is up


def test_the_demo_dashboard_shows_the_widgets_and_a_slider_moves_them(demo, tmp_path_factory):
    with bs.chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.new_page()
        page.set_default_timeout(300_000)
        log = bs.record(page)
        # Voilà streams the page while the kernel runs the notebook: "load" comes at the end.
        page.goto(demo.base_url + "/", wait_until="load")
        page.wait_for_function("() => document.querySelector('.widget-slider .noUi-handle') "
                               "&& document.querySelector('.widget-output table, "
                               ".widget-output pre')")
        assert page.locator(".jp-InputArea-editor, .cm-editor, .CodeMirror").count() == 0, \
            "the dashboard shows code cells"
        before = page.evaluate(_MOVE)
        assert before is not None, "no widget with a slider and an Output on the dashboard"
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(f"before => ({_OUTPUT})() !== before", arg=before,
                               timeout=60_000)
        page.locator('[data-demo-check="1"]').scroll_into_view_if_needed()
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        print(f"\nscreenshot of the dashboard: {SCREENSHOT}")
        assert bs.RENDER_ERROR not in page.inner_text("body")
    outside = log.outside(demo.base_url + "/")
    assert not outside, f"the dashboard asks for files outside the local server: {outside}"
    assert not log.failed, \
        f"requests of the dashboard that failed or answered 4xx/5xx: {log.failed}"
    assert any("/voila/static/" in url for url in log.requests), log.requests  # recorder saw them
