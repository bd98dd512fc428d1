"""The course site's Sphinx extension: vendored JavaScript, launch links, and a note under widgets.

Three jobs, each small:

- **Vendoring.** The widget manager (``@jupyter-widgets/html-manager``, its self-contained
  ``embed.js`` and fonts) and MathJax are fetched from the npm registry at build time (with
  ``npm pack`` where npm is installed, else downloaded directly), checked against the integrity
  pinned below, unpacked into ``_static/vendor`` of the built site, and patched where a
  vendored file expects an older MathJax (:data:`PATCHES`). The pages reference them there, so
  a reader's browser asks nothing of a CDN. The tarballs are kept in .cache/npm-vendor, so a
  rebuild does not reach the registry again.
- **Launch links.** Every lesson page opens with a box saying how to run it live: Binder (from
  environment.yml), a campus JupyterHub through nbgitpuller, and the local ``make lab``.
- **Widget notes.** Under each widget the static page shows its first view only (the state saved
  at build time); a one-line note says how to get it live.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import shutil
import subprocess
import tarfile
import urllib.request
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import quote, urlencode

from docutils import nodes

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

#: npm package -> (version, the registry's sha512 integrity, files of the package to ship,
#: the folder under _static/vendor). ipywidgets 8.1.9 / jupyterlab_widgets 3.0.17 (pyproject.toml)
#: pair with html-manager 1.0.15 (the same @jupyter-widgets/base 6 and controls 5).
VENDORED = {
    "@jupyter-widgets/html-manager": (
        "1.0.15",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        ("LICENSE", "dist/embed.js", "dist/embed.js.LICENSE.txt", "dist/*.woff2", "dist/*.woff",
         "dist/*.ttf", "dist/*.eot", "dist/*.svg"),
        "html-manager",
    ),
    "mathjax": (
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        ("LICENSE", "es5/tex-chtml.js", "es5/input/tex/extensions/*.js",
         "es5/output/chtml/fonts/woff-v2/*", "es5/ui/*.js", "es5/a11y/*.js"),
        "mathjax",
    ),
}


class VendorError(RuntimeError):
    """A vendored package could not be fetched or did not match its pinned integrity."""


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


#: Where a tarball is downloaded from when npm is not installed (npm's own setting, if any).
REGISTRY = os.environ.get("npm_config_registry") or "https://registry.npmjs.org/"


def tarball_url(package: str, version: str, registry: str = REGISTRY) -> str:
    """The registry's address of ``package@version``'s tarball (scoped packages included)."""
    return f"{registry.rstrip('/')}/{package}/-/{package.split('/')[-1]}-{version}.tgz"


def fetch_tarball(package: str, version: str, integrity: str, cache: Path) -> Path:
    """The npm tarball of ``package@version`` in ``cache``: packed by ``npm pack`` if missing (it
    honours the machine's npm configuration), or downloaded from :data:`REGISTRY` where npm is not
    installed. Either way it must match ``integrity``.

    Raises
    ------
    VendorError
        When the download or npm fails, or the tarball's sha512 is not ``integrity``.
    """
    cache.mkdir(parents=True, exist_ok=True)
    name = f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    tarball = cache / name
    if not tarball.exists():
        npm = shutil.which("npm")
        if npm is None:
            url = tarball_url(package, version)
            try:
                with urllib.request.urlopen(url, timeout=300) as answer:
                    data = answer.read()
            except OSError as error:
                raise VendorError(f"could not download {url} (npm is not installed either): "
                                  f"{error}") from error
            partial = cache / f"{name}.partial"
            partial.write_bytes(data)
            partial.replace(tarball)
        else:
            done = subprocess.run([npm, "pack", "--json", "--pack-destination", str(cache),
                                   f"{package}@{version}"], capture_output=True, text=True,
                                  timeout=300, check=False, stdin=subprocess.DEVNULL)
            if done.returncode != 0 or not tarball.exists():
                raise VendorError(f"`npm pack {package}@{version}` failed:\n{done.stderr[-2000:]}")
    if _integrity(tarball) != integrity:
        tarball.unlink()
        raise VendorError(f"{name} does not match the pinned integrity {integrity}")
    return tarball


def unpack(tarball: Path, patterns: tuple[str, ...], target: Path) -> list[Path]:
    """Extract the members of ``tarball`` matching ``patterns`` (under package/) flat-ish.

    A member ``package/dist/embed.js`` matched by ``dist/*`` lands at ``target/embed.js``; the
    part of the path before the pattern's first folder is dropped only for ``dist/`` and ``es5/``
    (the published builds), so MathJax keeps its ``input/``, ``output/`` layout it loads from.
    """
    written = []
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            inner = member.name.removeprefix("package/")
            if not member.isfile() or not any(fnmatch(inner, p) for p in patterns):
                continue
            relative = inner.split("/", 1)[1] if inner.startswith(("dist/", "es5/")) else inner
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            destination.write_bytes(source.read())
            written.append(destination)
    return written


#: Edits to vendored files, as (file under _static/vendor, text, replacement, times it occurs).
#: html-manager 1.0 typesets a widget's label with MathJax 2's ``MathJax.Hub.Queue``; the site
#: loads MathJax 3, which has no ``Hub``, so every widget page threw a TypeError. MathJax 3's call
#: is ``typesetPromise``; before MathJax has loaded there is nothing to call, and MathJax typesets
#: the whole page (widgets included) once it starts.
PATCHES = (
    ("html-manager/embed.js",
     'void 0!==window.MathJax&&MathJax.Hub.Queue(["Typeset",MathJax.Hub,e])',
     "void 0!==window.MathJax&&void 0!==window.MathJax.typesetPromise&&"
     "window.MathJax.typesetPromise([e])",
     2),
)


def patch(static: Path) -> None:
    """Apply :data:`PATCHES` under ``static``; each text must occur exactly as often as listed
    (a new vendored version that moved it fails the build instead of shipping unpatched)."""
    for name, text, replacement, times in PATCHES:
        path = static / name
        source = path.read_text(encoding="utf-8")
        if source.count(text) != times:
            raise VendorError(f"{name}: expected {times} occurrence(s) of {text!r} to patch, "
                              f"found {source.count(text)}")
        path.write_text(source.replace(text, replacement), encoding="utf-8")


def vendor(app) -> None:
    """Unpack every :data:`VENDORED` package into the built site's ``_static/vendor`` and apply
    :data:`PATCHES`."""
    cache = Path(app.confdir).parent / ".cache" / "npm-vendor"
    static = Path(app.outdir) / "_static" / "vendor"
    for package, (version, integrity, patterns, folder) in VENDORED.items():
        tarball = fetch_tarball(package, version, integrity, cache)
        target = static / folder
        if target.exists():
            shutil.rmtree(target)
        if not unpack(tarball, patterns, target):
            raise VendorError(f"{package}@{version}: no file matched {patterns}")
    patch(static)


def _vendor_when_building(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        vendor(app)


# --- launch links --------------------------------------------------------------------------------


def launch_links(config, notebook: str) -> dict[str, str]:
    """Binder, JupyterHub (nbgitpuller) and local ways to open ``notebook`` (repo-relative path).

    ``jupyterhub`` is a URL when ``lab_jupyterhub_url`` is set, else a template with ``<your-hub>``.
    """
    repository, branch = config.lab_repository, config.lab_branch
    binder = (f"https://mybinder.org/v2/gh/{repository}/{branch}?"
              + urlencode({"labpath": notebook}))
    folder = repository.split("/")[-1]
    puller = urlencode({"repo": f"https://github.com/{repository}", "branch": branch,
                        "urlpath": f"lab/tree/{folder}/{notebook}"}, quote_via=quote)
    hub = config.lab_jupyterhub_url.rstrip("/") or "https://<your-hub>"
    return {"binder": binder, "jupyterhub": f"{hub}/hub/user-redirect/git-pull?{puller}",
            "local": f"make lab   # then open {notebook}"}


def launch_box(config, notebook: str) -> str:
    """The HTML box at the top of a lesson page."""
    links = launch_links(config, notebook)
    hub = html.escape(links["jupyterhub"])
    hub_item = (f'<a class="reference external" href="{hub}">your course\'s JupyterHub</a>'
                if config.lab_jupyterhub_url else
                f"a campus JupyterHub with nbgitpuller: <code>{hub}</code>")
    return (
        '<div class="lab-launch" id="run-this-lesson">'
        "<p><strong>Run this lesson live</strong> (this page shows it executed, widgets frozen "
        "at their first view):</p><ul>"
        f'<li><a class="reference external" href="{html.escape(links["binder"])}">Binder</a> '
        "(in the browser, nothing to install; its first start builds the environment, which "
        "can take several minutes)</li>"
        f"<li>{hub_item}</li>"
        f'<li>on your machine, from the lab\'s folder: <code>{html.escape(links["local"])}'
        "</code></li></ul></div>")


def _lesson_notebook(app, pagename: str) -> str | None:
    """``notebooks/NN_x.ipynb`` for a lesson page, else None."""
    if not pagename.startswith("lessons/"):
        return None
    source = Path(app.env.doc2path(pagename))
    return f"notebooks/{source.name}" if source.suffix == ".ipynb" else None


def _add_launch_box(app, pagename, _templatename, context, _doctree) -> None:
    notebook = _lesson_notebook(app, pagename)
    if notebook and "body" in context:
        context["body"] = launch_box(app.config, notebook) + context["body"]


# --- a note under every widget -------------------------------------------------------------------

#: The one line under each widget of a lesson page.
WIDGET_NOTE = ('<p class="lab-widget-note">This widget shows its first view only; to move it, run '
               'the lesson live (<code>make lab</code>, Binder or your JupyterHub: '
               '<a href="#run-this-lesson">how</a>).</p>')


def _note_widgets(_app, doctree, docname) -> None:
    """Put :data:`WIDGET_NOTE` after each widget output of a lesson page."""
    if not docname.startswith("lessons/"):
        return
    for raw in list(doctree.findall(nodes.raw)):
        if WIDGET_VIEW in raw.astext():
            raw.parent.insert(raw.parent.index(raw) + 1,
                              nodes.raw("", WIDGET_NOTE, format="html"))


def setup(app):
    """Register the configuration values and the event handlers."""
    app.add_config_value("lab_repository", "cicd-ml-lab/cicd-ml-lab", "html")
    app.add_config_value("lab_branch", "main", "html")
    app.add_config_value("lab_jupyterhub_url", "", "html")
    app.connect("html-page-context", _add_launch_box)
    app.connect("doctree-resolved", _note_widgets)
    app.connect("build-finished", _vendor_when_building)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
