"""The course site (docs/, `make site`) built and opened in headless Chromium.

Two ways to run this file:

- In `make test` it builds the site itself with execution off (the lessons' stored notebooks,
  which have no outputs): Sphinx's -n -W fails on any broken internal reference, every lesson page
  must carry its launch links, and no page may ask for anything outside the site (the browser's
  request log). Executing the eight lessons takes minutes, more than the suite can spare.
- `make site-test` (the Pages workflow, CI's site job) builds the executed site with `make site`
  and runs this file with ``LAB_SITE_DIR=build/site``: then lessons 06 and 07's widgets must show
  their first view from the saved state, and every lesson page must show its figures, as well.

Screenshots of every page are kept in artifacts/screenshots/site (the path is printed). Without
Chromium the browser tests skip with install advice, except under CI=true, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests import browser_support as bs
from tests.notebook_files import ROOT

#: A Sphinx build, then Chromium: dealt to a worker first (conftest.py).
XDIST_FIRST = True

SCREENSHOTS = ROOT / "artifacts" / "screenshots" / "site"
LESSONS = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: The lessons whose widgets the executed site must draw from saved state.
WIDGET_LESSONS = [name for name in LESSONS if name.startswith(("06_", "07_"))]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _load_labsite():
    spec = importlib.util.spec_from_file_location("labsite", ROOT / "docs" / "_ext" / "labsite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


labsite = _load_labsite()


@dataclass(frozen=True)
class Site:
    """A built site: its folder, and whether the lessons were executed for it."""

    folder: Path
    executed: bool

    def pages(self) -> list[str]:
        """Every HTML page of the site but Sphinx's own (search, index of terms)."""
        return sorted(path.relative_to(self.folder).as_posix()
                      for path in self.folder.rglob("*.html")
                      if path.name not in {"search.html", "genindex.html"}
                      and "_static" not in path.parts)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    """The executed site in ``LAB_SITE_DIR`` when given, else a build with execution off."""
    given = os.environ.get("LAB_SITE_DIR")
    if given:
        folder = Path(given).resolve()
        assert (folder / "index.html").exists(), f"LAB_SITE_DIR={given} holds no built site"
        return Site(folder, executed=True)
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-n", "-W", "--keep-going", "-q",
         "-d", str(out / "doctrees"), "docs", str(out / "html")],
        cwd=ROOT, env={**os.environ, "LAB_SITE_EXECUTE": "off"}, capture_output=True, text=True,
        timeout=600, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, \
        f"the site build failed:\n{done.stdout[-3000:]}{done.stderr[-5000:]}"
    print(f"\nsite built with execution off in {time.monotonic() - started:.1f} s")
    return Site(out / "html", executed=False)


def test_every_lesson_and_the_front_page_are_built(site):
    pages = site.pages()
    assert "index.html" in pages
    assert [f"lessons/{name}.html" for name in LESSONS] == [p for p in pages
                                                            if p.startswith("lessons/")]


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_page_says_how_to_run_it_live(site, lesson):
    text = (site.folder / "lessons" / f"{lesson}.html").read_text(encoding="utf-8")
    notebook = f"notebooks%2F{lesson}.ipynb"
    assert re.search(rf'href="https://mybinder\.org/v2/gh/[^"]+\?labpath={notebook}"', text)
    assert re.search(rf"/hub/user-redirect/git-pull\?repo=[^<\"]+urlpath=lab%2Ftree%2F[^<\"]+"
                     rf"{notebook}", text)
    assert f"make lab   # then open notebooks/{lesson}.ipynb" in text


def test_pages_reference_only_files_of_the_site(site):
    """No <script src>, stylesheet or image points outside the site (the browser test below also
    watches what a page fetches at run time, such as fonts or modules loaded by scripts)."""
    remote = re.compile(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"')
    found = {page: remote.findall((site.folder / page).read_text(encoding="utf-8"))
             for page in site.pages()}
    assert {page: urls for page, urls in found.items() if urls} == {}


def test_launch_links_fill_the_hub_when_one_is_configured():
    config = SimpleNamespace(lab_repository="org/lab", lab_branch="main",
                             lab_jupyterhub_url="https://hub.example.edu/")
    links = labsite.launch_links(config, "notebooks/06_x.ipynb")
    assert links["binder"] == ("https://mybinder.org/v2/gh/org/lab/main?"
                               "labpath=notebooks%2F06_x.ipynb")
    assert links["jupyterhub"] == (
        "https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2F"
        "org%2Flab&branch=main&urlpath=lab%2Ftree%2Flab%2Fnotebooks%2F06_x.ipynb")
    assert "<your-hub>" in labsite.launch_links(
        SimpleNamespace(**{**vars(config), "lab_jupyterhub_url": ""}), "n.ipynb")["jupyterhub"]


def test_a_vendored_tarball_that_does_not_match_its_pin_is_refused(tmp_path):
    tarball = tmp_path / "pkg-1.0.0.tgz"
    tarball.write_bytes(b"not the package")
    with pytest.raises(labsite.VendorError, match="does not match the pinned integrity"):
        labsite.fetch_tarball("pkg", "1.0.0", "sha512-AAAA", tmp_path)
    assert not tarball.exists()


def _steps(workflow_file: str) -> tuple[dict[str, list[dict]], dict]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / workflow_file).read_text())
    return {name: job.get("steps", []) for name, job in workflow["jobs"].items()}, workflow


def test_pages_workflow_checks_and_publishes_the_site_from_main():
    jobs, workflow = _steps("pages.yml")
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads `on:` as True
    assert any(step.get("run") == "make site-test" for step in jobs["build"])
    upload = next(s for s in jobs["build"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "build/site"
    assert [s["uses"].split("@")[0] for s in jobs["deploy"]] == ["actions/deploy-pages"]
    assert workflow["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}


def test_ci_uploads_the_built_site_on_pull_requests():
    jobs, workflow = _steps("ci.yml")
    site_job = workflow["jobs"]["site"]
    assert "pull_request" in site_job["if"]
    assert any(step.get("run") == "make site-test" for step in jobs["site"])
    upload = next(s for s in jobs["site"] if "upload-artifact" in s.get("uses", ""))
    assert "build/site/" in upload["with"]["path"]


# --- in the browser ------------------------------------------------------------------------------

#: True once every widget view is drawn (or there is none) and the page has loaded.
_SETTLED = """() => {
  const views = document.querySelectorAll('script[type="WIDGET_VIEW"]');
  const drawn = Array.from(views).every(s => {
    const area = s.previousElementSibling;
    return area && area.classList.contains('widget-subarea') && area.children.length > 0;
  });
  return (drawn || views.length === 0) && document.readyState === 'complete';
}"""
#: Resolves once MathJax has typeset the page (at once where the page has no MathJax).
_TYPESET = """async () => {
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    await window.MathJax.startup.promise;
  }
}""".replace("WIDGET_VIEW", WIDGET_VIEW)

_INSPECT = """() => {
  const views = Array.from(document.querySelectorAll('script[type="WIDGET_VIEW"]'));
  const widgets = views.map(s => {
    const area = s.previousElementSibling;
    const drawn = area && area.classList.contains('widget-subarea') ? area : null;
    return {
      drawn: !!(drawn && drawn.querySelector('.jupyter-widgets')),
      height: drawn ? drawn.getBoundingClientRect().height : 0,
      controls: drawn ? drawn.querySelectorAll('input, button, select, .widget-slider').length : 0,
      images: drawn ? drawn.querySelectorAll('img').length : 0,
      text: drawn ? drawn.innerText.slice(0, 200) : '',
    };
  });
  const figures = Array.from(document.querySelectorAll('.cell_output img'))
    .filter(i => !i.closest('.widget-subarea'));
  return {
    widgets: widgets,
    figures: figures.length,
    brokenFigures: figures.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    notes: document.querySelectorAll('.lab-widget-note').length,
    errorText: document.body.innerText.includes('Error displaying widget'),
  };
}""".replace("WIDGET_VIEW", WIDGET_VIEW)


@dataclass
class Visit:
    """What one page did in the browser."""

    page: str
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    screenshot: Path | None = None


def _visit(context, base: str, page_name: str, timeout: float = 60.0) -> Visit:
    visit = Visit(page_name)
    page = context.new_page()
    page.set_default_timeout(timeout * 1000)
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on("requestfailed", lambda request: visit.failed.append(request.url))
    page.on("response", lambda response: visit.failed.append(response.url)
            if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
    try:
        page.goto(base + page_name, wait_until="load")
        page.evaluate(_TYPESET)
        page.wait_for_function(_SETTLED)
        visit.state = page.evaluate(_INSPECT)
        if page_name.startswith("lessons/") or page_name == "index.html":  # the manual: text only
            for selector in (".widget-subarea", ".cell_output img"):  # a widget, else a figure
                if page.locator(selector).count():
                    page.locator(selector).first.scroll_into_view_if_needed()
                    break
            visit.screenshot = SCREENSHOTS / (page_name.replace("/", "-").removesuffix(".html")
                                              + ".png")
            visit.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(visit.screenshot))
    finally:
        page.close()
    return visit


@pytest.fixture(scope="module")
def visits(site, tmp_path_factory) -> dict[str, Visit]:
    """Every page of the site, opened once in Chromium through a loopback HTTP server."""
    with bs.chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context, \
            bs.serve_folder(site.folder) as base:
        started = time.monotonic()
        found = {name: _visit(context, base, name) for name in site.pages()}
        found["base"] = base
        print(f"\n{len(found) - 1} site pages opened in {time.monotonic() - started:.1f} s; "
              f"screenshots in {SCREENSHOTS}")
    return found


@pytest.mark.browser
def test_no_page_asks_for_anything_outside_the_site(visits):
    base = visits["base"]
    outside = {name: sorted({url for url in visit.requests
                             if not url.startswith((base, "data:", "blob:"))})
               for name, visit in visits.items() if name != "base"}
    assert {name: urls for name, urls in outside.items() if urls} == {}
    failed = {name: visit.failed for name, visit in visits.items()
              if name != "base" and visit.failed}
    assert failed == {}, "requests that failed or answered 4xx/5xx"
    # The vendored scripts are what the lesson pages load (not a CDN, not nothing).
    lesson = visits[f"lessons/{WIDGET_LESSONS[0]}.html"]
    assert f"{base}_static/vendor/mathjax/tex-chtml.js" in lesson.requests


def _executed_only(site) -> None:
    if not site.executed:
        pytest.skip("needs the executed site: `make site-test` builds it and runs this file "
                    "(the Pages workflow and CI's site job do)")


@pytest.mark.browser
@pytest.mark.parametrize("lesson", WIDGET_LESSONS)
def test_widgets_show_their_first_view_from_saved_state(site, visits, lesson):
    _executed_only(site)
    visit = visits[f"lessons/{lesson}.html"]
    widgets = visit.state["widgets"]
    assert widgets, f"{lesson}: no widget on the page (was the widget state saved?)"
    assert not visit.state["errorText"], f"{lesson} shows 'Error displaying widget'"
    for index, widget in enumerate(widgets):
        assert widget["drawn"] and widget["height"] > 50 and widget["controls"], \
            f"{lesson}, widget {index} not drawn from saved state: {widget}; see {visit.screenshot}"
    assert visit.state["notes"] == len(widgets), "each widget says how to get it live"
    assert any(widget["images"] for widget in widgets), \
        f"{lesson}: no widget shows its figure (the Output widget's saved state)"


@pytest.mark.browser
@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_page_shows_its_figures(site, visits, lesson):
    _executed_only(site)
    visit = visits[f"lessons/{lesson}.html"]
    assert visit.state["figures"] > 0, f"{lesson}: no figure on the page; see {visit.screenshot}"
    assert visit.state["brokenFigures"] == []
