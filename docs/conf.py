"""Sphinx configuration of the course site: the executed lessons as a book, and the manual.

Built by ``make site`` into build/site. The lessons are read from notebooks/ through the
``lessons`` symlink (never copied), executed at build time and cached with jupyter-cache in
.cache/jupyter-cache, so a rebuild re-executes only the notebooks that changed. Everything the
pages load is served by the site itself: the widget manager and MathJax are vendored from the npm
registry at build time (_ext/labsite.py), never fetched from a CDN by the reader's browser.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "CI/CD for machine learning"
author = "the cicd-ml-lab contributors"
copyright = "the cicd-ml-lab contributors"  # pylint: disable=redefined-builtin

extensions = ["myst_nb", "sphinx_book_theme", "labsite"]

exclude_patterns = ["_build", "lessons/workflows", "**.ipynb_checkpoints", "README.md"]

# --- the lessons: executed at build time, cached -------------------------------------------------
# "cache": jupyter-cache re-executes a notebook only when its code cells changed. LAB_SITE_EXECUTE
# overrides it ("off" renders the stored, output-free notebooks: a quick check of the pages only).
nb_execution_mode = os.environ.get("LAB_SITE_EXECUTE", "cache")
nb_execution_cache_path = str(ROOT / ".cache" / "jupyter-cache")
nb_execution_timeout = int(os.environ.get("CELL_TIMEOUT", "120"))
# Cells tagged raises-exception (the pytest and pylint lessons) may raise; no other cell may.
nb_execution_allow_errors = False
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# The widget manager, vendored into _static/vendor by labsite (no require.js: embed.js is the
# self-contained build, and the lab's widgets are all ipywidgets' own controls).
nb_ipywidgets_js = {"vendor/html-manager/embed.js": {}}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
mathjax_path = "vendor/mathjax/tex-chtml.js"

# Broken internal references fail the build (-W -n in the Makefile and the site test).
nitpicky = True
suppress_warnings = ["mystnb.unknown_mime_type"]

# --- how to open a lesson live (labsite adds the box to each lesson page) ------------------------
# The repository and branch the launch links and the repository button open: the lab's own unless
# LAB_REPOSITORY / LAB_BRANCH say otherwise (pages.yml sets them to the repository it runs in, so
# a course's copy, such as a `labsupport release` of the lab, links to itself).
lab_repository = os.environ.get("LAB_REPOSITORY") or "cicd-ml-lab/cicd-ml-lab"
lab_branch = os.environ.get("LAB_BRANCH") or "main"
# A campus JupyterHub with nbgitpuller installed; set LAB_JUPYTERHUB_URL when building the site
# for a course that has one. Without it the page shows the link as a template to fill in.
lab_jupyterhub_url = os.environ.get("LAB_JUPYTERHUB_URL", "")

# --- the book -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "CI/CD for ML — a Jupyter lab"
html_static_path = ["_static"]
html_css_files = ["labsite.css"]
html_theme_options = {
    "repository_url": f"https://github.com/{lab_repository}",
    "repository_branch": lab_branch,
    "path_to_docs": "docs",
    "use_repository_button": True,
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
html_last_updated_fmt = ""
# The book theme's download button links to each page's source: copy them, under their own names
# (a lesson's .ipynb, stored without outputs, is the notebook to run).
html_copy_source = True
html_sourcelink_suffix = ""
