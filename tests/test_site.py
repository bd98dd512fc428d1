"""The course site (docs/, `make site`) built and opened in headless Chromium.

Two ways to run this file:

- In `make test` it builds the site from the lessons the seed sweep has just executed
  (tests/executed_lessons.py: each lesson's run at the sweep's first seed, outputs and widget
  state saved), with execution off, so the suite pays for a Sphinx build and not for executing
  eight lessons again. This file's tests are dealt last, after the sweep; a lesson whose sweep run
  is not part of the session (this file run alone, or CI's `browser` group) is executed here.
- `make site-test` (the Pages workflow, CI's site job) builds the site with `make site` (the
  lessons executed at their default parameters, cached) and runs this file with
  ``LAB_SITE_DIR=build/site``.

Either way: Sphinx's -n -W fails on any broken internal reference, no link or anchor of a page
points at nothing, every lesson page carries its launch links and shows its figures, the widgets
of every lesson that has them show their first view from the saved state, no page's script throws
an error, and no page asks for anything outside the site (the browser's request log). Screenshots
of every page are kept in artifacts/screenshots/site (the path is printed). Without Chromium the
browser tests skip with install advice, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

from tests import browser_support as bs
from tests import executed_lessons
from tests.notebook_files import ROOT

#: Built from the sweep's executed lessons, so dealt to a worker after every other group.
XDIST_LAST = True
#: Waiting for the sweep, or executing lessons it did not run, then a Sphinx build: more than the
#: suite's 600 s per test on a slow day.
pytestmark = pytest.mark.timeout(1800)
#: Seconds to wait for the sweep's runs of the lessons (they are dealt first; this rarely waits).
SWEEP_WAIT = 1200

SCREENSHOTS = ROOT / "artifacts" / "screenshots" / "site"
LESSONS = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: The lessons whose widgets the executed site must draw from saved state: every lesson that uses
#: widgets (browser_support's rule, the one the JupyterLab widget test uses).
WIDGET_LESSONS = [path.stem for path in bs.widget_notebooks(
    [ROOT / "notebooks" / f"{name}.ipynb" for name in LESSONS])]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _load_labsite():
    spec = importlib.util.spec_from_file_location("labsite", ROOT / "docs" / "_ext" / "labsite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


labsite = _load_labsite()


@dataclass(frozen=True)
class Site:
    """A built site (its folder)."""

    folder: Path

    def pages(self) -> list[str]:
        """Every HTML page of the site but Sphinx's own (search, index of terms)."""
        return sorted(path.relative_to(self.folder).as_posix()
                      for path in self.folder.rglob("*.html")
                      if path.name not in {"search.html", "genindex.html"}
                      and "_static" not in path.parts)


_SWEEP_RUN = re.compile(r"test_notebooks_papermill\.py::test_notebook_runs_under_every_sweep_seed"
                        r"\[([^\]]+)\]")


def _sweep_publishes(session: pytest.Session) -> set[str]:
    """The lessons whose sweep run at ``SITE_SEED`` is part of this session (each publishes its
    executed notebook for this file)."""
    wanted = {f"notebooks/{name}.ipynb" for name in LESSONS}
    found = set()
    for item in session.items:  # under xdist's loadgroup a node id ends in "@" and its group
        match = _SWEEP_RUN.search(item.nodeid)
        parts = set(match.group(1).split("-")) if match else set()
        if f"seed{executed_lessons.SITE_SEED}" in parts:
            found |= {Path(part).stem for part in parts & wanted}
    return found


def executed_lesson_notebooks(session: pytest.Session, folder: Path) -> None:
    """Fill ``folder`` with every lesson executed: the sweep's runs where this session has them
    (waited for), the others executed here the way the sweep runs them."""
    from tests import test_notebooks_papermill as sweep  # pylint: disable=import-outside-toplevel
    published = _sweep_publishes(session)
    for name in LESSONS:
        if name in published:
            continue
        path = ROOT / "notebooks" / f"{name}.ipynb"
        started = time.monotonic()
        parameters = sweep.overrides_for(nbformat.read(path, as_version=4),
                                         f"notebooks/{path.name}", executed_lessons.SITE_SEED)
        executed = sweep.execute(path, parameters, folder / f"{name}.run.ipynb")
        executed_lessons.publish(folder, name, executed)
        print(f"\n{name} executed for the site in {time.monotonic() - started:.1f} s "
              "(its sweep run is not in this session)")
    outcomes = executed_lessons.wait_for(folder, sorted(published), SWEEP_WAIT)
    problems = {name: outcome for name, outcome in outcomes.items() if outcome != "ok"}
    assert not problems, f"the sweep's runs the site is built from did not finish: {problems}"


def _share_cache(project: Path) -> None:
    """Link ``project``/.cache to the lab's (labsite keeps the vendored npm tarballs there, so a
    build of a copied docs/ does not fetch them again)."""
    (ROOT / ".cache").mkdir(exist_ok=True)
    (project / ".cache").symlink_to(ROOT / ".cache")


def stage_docs(executed: Path, target: Path) -> Path:
    """A copy of docs/ in ``target`` whose lessons are the executed notebooks in ``executed``
    (papermill's injected-parameters cell dropped); returns the copy's docs folder."""
    docs = target / "docs"
    shutil.copytree(ROOT / "docs", docs, symlinks=True,
                    ignore=lambda folder, _names: ["lessons"] if Path(folder) == ROOT / "docs"
                    else [])
    (docs / "lessons").mkdir()
    for entry in sorted((ROOT / "notebooks").iterdir()):
        if entry.suffix == ".ipynb" and entry.stem in LESSONS:
            notebook = nbformat.read(executed / entry.name, as_version=4)
            notebook.cells = [cell for cell in notebook.cells
                              if "injected-parameters" not in cell.metadata.get("tags", [])]
            nbformat.write(notebook, docs / "lessons" / entry.name)
        elif not entry.name.startswith("."):
            (docs / "lessons" / entry.name).symlink_to(entry)
    _share_cache(target)
    return docs


def sphinx_build(docs: Path, out: Path) -> subprocess.CompletedProcess:
    """``make site``'s Sphinx command on ``docs`` with execution off, into ``out``."""
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-a", "-n", "-W", "--keep-going", "-q",
         "-d", str(out / "doctrees"), str(docs), str(out / "html")],
        cwd=docs.parent, env={**os.environ, "LAB_SITE_EXECUTE": "off"}, capture_output=True,
        text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def site(request, tmp_path_factory) -> Site:
    """The site in ``LAB_SITE_DIR`` when given, else built from the sweep's executed lessons."""
    given = os.environ.get("LAB_SITE_DIR")
    if given:
        folder = Path(given).resolve()
        assert (folder / "index.html").exists(), f"LAB_SITE_DIR={given} holds no built site"
        return Site(folder)
    executed = executed_lessons.shared_folder(tmp_path_factory)
    executed_lesson_notebooks(request.session, executed)
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    done = sphinx_build(stage_docs(executed, out / "stage"), out)
    assert done.returncode == 0, \
        f"the site build failed:\n{done.stdout[-3000:]}{done.stderr[-5000:]}"
    print(f"\nsite built from the executed lessons in {time.monotonic() - started:.1f} s")
    return Site(out / "html")


def test_the_site_is_built_from_the_sweep_runs_of_the_session():
    """The sweep's node ids as pytest and xdist's loadgroup write them: only lessons (not
    solutions) at SITE_SEED (not a seed that merely starts with its digits) are reused."""
    sweep = "tests/test_notebooks_papermill.py::test_notebook_runs_under_every_sweep_seed"
    seed = executed_lessons.SITE_SEED
    ids = [f"{sweep}[notebooks/{LESSONS[0]}.ipynb-seed{seed}]",
           f"{sweep}[notebooks/{LESSONS[1]}.ipynb-seed{seed}]@tests/test_notebooks_papermill.py::"
           f"/lab/notebooks/{LESSONS[1]}.ipynb",
           f"{sweep}[notebooks/{LESSONS[2]}.ipynb-seed{seed}234]",
           f"{sweep}[solutions/{LESSONS[3]}.ipynb-seed{seed}]",
           f"tests/test_other.py::test_x[notebooks/{LESSONS[4]}.ipynb-seed{seed}]"]
    session = SimpleNamespace(items=[SimpleNamespace(nodeid=nodeid) for nodeid in ids])
    assert _sweep_publishes(session) == {LESSONS[0], LESSONS[1]}


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


class _Anchors(HTMLParser):
    """The ids and the link targets (``<a href>``) of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(values[key])
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])


def broken_internal_links(folder: Path) -> list[str]:
    """Every ``<a href>`` of the HTML pages under ``folder`` that points inside the site at a file
    that is not there, or at an anchor its page lacks, as ``page: href`` (what Sphinx's linkcheck
    does for internal links, without its network)."""
    parsed: dict[Path, _Anchors] = {}

    def anchors(page: Path) -> _Anchors:
        if page not in parsed:
            parsed[page] = _Anchors()
            parsed[page].feed(page.read_text(encoding="utf-8"))
        return parsed[page]

    broken = []
    for page in sorted(folder.rglob("*.html")):
        if "_static" in page.relative_to(folder).parts:
            continue
        for href in anchors(page).links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc:
                continue  # outside the site (the launch links, the repository button)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or not target.resolve().is_relative_to(folder.resolve()):
                broken.append(f"{page.relative_to(folder)}: {href}")
            elif parts.fragment and target.suffix == ".html" \
                    and unquote(parts.fragment) not in anchors(target).ids:
                broken.append(f"{page.relative_to(folder)}: {href} (no such anchor)")
    return broken


def test_no_link_of_the_site_points_at_nothing(site):
    broken = broken_internal_links(site.folder)
    assert not broken, broken


def test_the_link_check_finds_a_missing_page_and_a_missing_anchor(tmp_path):
    (tmp_path / "guide").mkdir()
    (tmp_path / "index.html").write_text(
        '<h1 id="top">Lab</h1><a href="guide/">ok</a> <a href="#top">ok</a> '
        '<a href="guide/index.html#setup">ok</a> <a href="https://example.org/x">outside</a> '
        '<a href="gone.html">missing page</a> <a href="guide/index.html#nowhere">no anchor</a>',
        encoding="utf-8")
    (tmp_path / "guide" / "index.html").write_text(
        '<h2 id="setup">Set-up</h2><a href="../index.html#top">back</a> <a href="../../x.html">'
        'above the site</a>', encoding="utf-8")
    assert broken_internal_links(tmp_path) == [
        "guide/index.html: ../../x.html", "index.html: gone.html",
        "index.html: guide/index.html#nowhere (no such anchor)"]


def test_a_broken_cross_reference_fails_the_site_build(tmp_path):
    """The site's own configuration (nitpicky, MyST's cross-references) under `make site`'s -n -W:
    a page linking to a page that does not exist or to an unknown label fails the build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("conf.py", "_ext", "_static"):
        source = ROOT / "docs" / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, docs / name)
    _share_cache(tmp_path)
    (docs / "index.md").write_text("# Lab\n\n```{toctree}\nguide\n```\n", encoding="utf-8")
    (docs / "guide.md").write_text("# Guide\n\nSee [the grading manual](grading-manual.md) and "
                                   "{ref}`the-late-rule`.\n", encoding="utf-8")
    done = sphinx_build(docs, tmp_path / "out")
    assert done.returncode != 0, "a build with two broken references passed"
    assert "grading-manual.md" in done.stderr and "the-late-rule" in done.stderr, done.stderr
    (docs / "guide.md").write_text("# Guide\n\nNothing broken.\n", encoding="utf-8")
    fixed = sphinx_build(docs, tmp_path / "fixed")
    assert fixed.returncode == 0, fixed.stderr  # the same project builds once the links are fixed


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


def test_the_launch_links_follow_the_repository_the_site_is_built_for(monkeypatch):
    monkeypatch.setenv("LAB_REPOSITORY", "a-university/ml-ops-2027")
    monkeypatch.setenv("LAB_BRANCH", "spring")
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    assert (conf["lab_repository"], conf["lab_branch"]) == ("a-university/ml-ops-2027", "spring")
    assert conf["html_theme_options"]["repository_url"] == \
        "https://github.com/a-university/ml-ops-2027"
    monkeypatch.delenv("LAB_REPOSITORY")
    monkeypatch.delenv("LAB_BRANCH")
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    assert (conf["lab_repository"], conf["lab_branch"]) == ("cicd-ml-lab/cicd-ml-lab", "main")


def test_a_vendored_tarball_that_does_not_match_its_pin_is_refused(tmp_path):
    tarball = tmp_path / "pkg-1.0.0.tgz"
    tarball.write_bytes(b"not the package")
    with pytest.raises(labsite.VendorError, match="does not match the pinned integrity"):
        labsite.fetch_tarball("pkg", "1.0.0", "sha512-AAAA", tmp_path)
    assert not tarball.exists()


def test_without_npm_a_tarball_is_downloaded_from_the_registry_and_checked(tmp_path,
                                                                           monkeypatch):
    asked = []

    class Answer(io.BytesIO):
        """urlopen's answer: bytes to read, a context manager."""

        def __enter__(self):
            return self

    def urlopen(url, timeout):
        asked.append((url, timeout))
        return Answer(b"the package's bytes")

    monkeypatch.setattr(labsite.shutil, "which", lambda _name: None)
    monkeypatch.setattr(labsite.urllib.request, "urlopen", urlopen)
    pinned = "sha512-" + base64.b64encode(hashlib.sha512(b"the package's bytes").digest()).decode()
    tarball = labsite.fetch_tarball("@scope/pkg", "1.2.3", pinned, tmp_path)
    assert asked == [("https://registry.npmjs.org/@scope/pkg/-/pkg-1.2.3.tgz", 300)]
    assert tarball == tmp_path / "scope-pkg-1.2.3.tgz"
    assert tarball.read_bytes() == b"the package's bytes"
    tarball.unlink()
    with pytest.raises(labsite.VendorError, match="does not match the pinned integrity"):
        labsite.fetch_tarball("@scope/pkg", "1.2.3", "sha512-AAAA", tmp_path)
    assert not list(tmp_path.iterdir())


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
    build = next(step for step in jobs["build"] if step.get("run") == "make site-test")
    assert build["env"]["LAB_REPOSITORY"] == "${{ github.repository }}"  # a copy links to itself
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
}""".replace("WIDGET_VIEW", WIDGET_VIEW)
#: Resolves once MathJax has typeset the page (at once where the page has no MathJax).
_TYPESET = """async () => {
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    await window.MathJax.startup.promise;
  }
}"""

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
      hidden: drawn ? Array.from(drawn.querySelectorAll('.widget-label, .widget-html-content, pre'))
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 80)) : [],
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
    #: Its requests, failed loads and uncaught script errors (console messages are not errors:
    #: the console also carries the theme's notices, such as a first visit's empty colour mode).
    log: bs.PageLog | None = None
    state: dict = field(default_factory=dict)
    screenshot: Path | None = None


def _visit(context, base: str, page_name: str, timeout: float = 60.0) -> Visit:
    visit = Visit(page_name)
    page = context.new_page()
    page.set_default_timeout(timeout * 1000)
    visit.log = bs.record(page, ignore_failed=("/favicon.ico",))
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
    outside = {name: visit.log.outside(base) for name, visit in visits.items() if name != "base"}
    assert {name: urls for name, urls in outside.items() if urls} == {}
    failed = {name: visit.log.failed for name, visit in visits.items()
              if name != "base" and visit.log.failed}
    assert failed == {}, "requests that failed or answered 4xx/5xx"
    # The vendored scripts are what the lesson pages load (not a CDN, not nothing).
    lesson = visits[f"lessons/{WIDGET_LESSONS[0]}.html"]
    assert f"{base}_static/vendor/mathjax/tex-chtml.js" in lesson.log.requests


@pytest.mark.browser
def test_no_page_script_fails(visits):
    errors = {name: visit.log.errors for name, visit in visits.items()
              if name != "base" and visit.log.errors}
    assert errors == {}, "scripts of these pages threw"


@pytest.mark.browser
@pytest.mark.parametrize("lesson", WIDGET_LESSONS)
def test_widgets_show_their_first_view_from_saved_state(site, visits, lesson):
    visit = visits[f"lessons/{lesson}.html"]
    widgets = visit.state["widgets"]
    assert widgets, f"{lesson}: no widget on the page (was the widget state saved?)"
    assert not visit.state["errorText"], f"{lesson} shows 'Error displaying widget'"
    for index, widget in enumerate(widgets):
        assert widget["drawn"] and widget["height"] > 50 and widget["controls"], \
            f"{lesson}, widget {index} not drawn from saved state: {widget}; see {visit.screenshot}"
    assert visit.state["notes"] == len(widgets), "each widget says how to get it live"
    hidden = [text for widget in widgets for text in widget["hidden"]]
    assert hidden == [], f"{lesson}: widget text runs past its box (hidden behind a scrollbar)"
    saved = re.search(r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>',
                      (site.folder / "lessons" / f"{lesson}.html").read_text(encoding="utf-8"),
                      re.DOTALL)
    assert saved, f"{lesson}: the page carries no saved widget state"
    if '"ImageModel"' in saved.group(1) or "image/png" in saved.group(1):
        assert any(widget["images"] for widget in widgets), \
            f"{lesson}: the saved state holds a figure (an Image widget or an Output's PNG) " \
            "that no widget draws"


@pytest.mark.browser
@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_page_shows_its_figures(visits, lesson):
    visit = visits[f"lessons/{lesson}.html"]
    assert visit.state["figures"] > 0, f"{lesson}: no figure on the page; see {visit.screenshot}"
    assert visit.state["brokenFigures"] == []
