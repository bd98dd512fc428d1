# The lab's two front doors: `make lab` (open the lessons) and `make test` (every check CI runs).
# Both create .venv on first use and refresh it only when the dependency files change.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAB_PORT ?= 8888

# Jupyter, IPython, matplotlib and pre-commit keep their state inside the workspace, never in the
# user's home. MPLBACKEND is deliberately left alone: kernels need the inline backend.
STATE := $(CURDIR)/.cache
export JUPYTER_CONFIG_DIR  := $(STATE)/jupyter/config
export JUPYTER_DATA_DIR    := $(STATE)/jupyter/data
export JUPYTER_RUNTIME_DIR := $(STATE)/jupyter/runtime
export JUPYTER_PLATFORM_DIRS := 1
export IPYTHONDIR          := $(STATE)/ipython
export MPLCONFIGDIR        := $(STATE)/matplotlib
export PRE_COMMIT_HOME     := $(STATE)/pre-commit
export PYTHONDONTWRITEBYTECODE := 1
export DEBIAN_FRONTEND     := noninteractive

# Generous ceilings so that a hung kernel fails the run instead of hanging it. SUITE_TIMEOUT (75 min)
# leaves room for a day 2.5x slower than the usual ~20 minutes, inside .ci/run's 90.
CELL_TIMEOUT     ?= 120
TEST_TIMEOUT     ?= 600
NOTEBOOK_TIMEOUT ?= 600
SUITE_TIMEOUT    ?= 4500
WORKERS          ?= 2

.PHONY: help setup lab test test-group quick lint pytest hooks bench site site-test demo browser-deps system-deps clean

help:
	@echo "make lab    set up .venv if needed, then open JupyterLab on the lessons"
	@echo "make setup  only create or update .venv (Python 3.11; the lab with its dev and docs extras)"
	@echo "make test   for contributors: pylint, hooks, the whole pytest suite (what .ci/run runs;"
	@echo "            15-27 minutes on 2 cores; as root it apt-installs chromium and bubblewrap)"
	@echo "make test GROUP=unit  one of CI's parallel groups: $(TEST_GROUPS)"
	@echo "make quick  while editing: lint, unit tests, and the lesson notebooks changed since main"
	@echo "make site   build the course site (the lessons executed, and the manual) into $(SITE_DIR)"
	@echo "make site-test  make site, then check it in Chromium (CI's site job, the Pages workflow)"
	@echo "make demo LESSON=06  a lesson's widgets as a Voila dashboard, for projecting in class"
	@echo "make bench  every benchmarks/bench_*.py, each against a baseline timed in the same run"
	@echo "make clean  remove .venv and caches"

# --- set-up -------------------------------------------------------------------------------------

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "The lab needs Python 3.11; $(PYTHON) is " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	@mkdir -p $(JUPYTER_CONFIG_DIR) $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR) $(MPLCONFIGDIR)
	@touch $@

setup: $(STAMP)

# Debian's chromium for the in-browser widget test. Installed with apt when we are root (as CI is)
# or have password-less sudo; otherwise the browser test explains how and skips (never under CI).
browser-deps:
	@bash .ci/browser-deps.sh

# Debian's bubblewrap, the sandbox `labsupport grade` runs every student's kernel in; installed the
# same way (root or password-less sudo), otherwise the grading tests explain and skip (never on CI).
system-deps:
	@bash .ci/system-deps.sh

# --- the two README commands ---------------------------------------------------------------------

lab: $(STAMP)
	@echo "Starting JupyterLab on the lessons; open the http://127.0.0.1:$(LAB_PORT)/lab?token=... URL printed below."
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) \
		--ServerApp.root_dir=$(CURDIR) \
		--LabApp.default_url=/lab/tree/notebooks/01_cicd_for_ml.ipynb \
		$(if $(DISPLAY),,--no-browser) \
		$(if $(filter 0,$(shell id -u)),--allow-root,)

# `make test GROUP=name` (or `make test-group GROUP=name`) runs one group of those checks, with
# only the set-up it needs: CI runs the groups as parallel jobs. `lint` is pylint and the hooks;
# the others are the pytest groups of TEST_GROUPS in conftest.py (every test file and lesson
# notebook is in exactly one; tests/test_environment.py checks it).
ifeq ($(strip $(GROUP)),)
test: $(STAMP) system-deps browser-deps lint hooks pytest
else
test: test-group
endif

TEST_GROUPS := lint unit notebooks sweep exercises grading browser
GROUP_SETUP_lint    := lint hooks
GROUP_SETUP_browser := system-deps browser-deps pytest
GROUP_SETUP_sweep   := system-deps browser-deps pytest
GROUP_SETUP          = $(or $(GROUP_SETUP_$(GROUP)),system-deps pytest)

test-group: $(STAMP)
	@if [ -z "$(filter $(TEST_GROUPS),$(GROUP))" ] || [ "$(words $(GROUP))" != 1 ]; then \
		echo "usage: make test-group GROUP=name, one of: $(TEST_GROUPS)"; exit 2; fi
	@echo "Running the $(GROUP) group of make test's checks (make test without GROUP runs all)."
	$(MAKE) --no-print-directory $(GROUP_SETUP) PYTEST_GROUP=$(GROUP)

LINTED := labsupport tests benchmarks conftest.py

lint: $(STAMP)
	$(BIN)/pylint $(LINTED)

# Pre-commit runs the same hooks a contributor's `git commit` runs (pylint is skipped here because
# `lint` above already ran it).
hooks: $(STAMP)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		SKIP=pylint $(BIN)/pre-commit run --all-files --show-diff-on-failure; \
	else \
		echo "Not a git checkout: running the notebook hygiene hook directly."; \
		$(BIN)/nbstripout --verify $(wildcard notebooks/*.ipynb solutions/*.ipynb exercises/*.ipynb); \
	fi

# Unit tests, papermill runs, hygiene, browser, and nbval over every lesson notebook, in one pytest
# session on $(WORKERS) workers. Solutions are not given to nbval: tests/test_exercises.py runs each
# one with its default parameters (and its tests), and the papermill sweep under five seeds.
# --dist loadgroup deals the tests in the groups conftest.py makes: one file, one notebook's cells,
# or one notebook's sweep; --no-loadscope-reorder keeps the order conftest.py gives (longest first).
pytest: $(STAMP)
	timeout --kill-after=30 $(SUITE_TIMEOUT) $(BIN)/python -m pytest tests notebooks \
		--nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) \
		--timeout=$(TEST_TIMEOUT) --notebook-timeout=$(NOTEBOOK_TIMEOUT) \
		-n $(WORKERS) --dist loadgroup --no-loadscope-reorder --durations=10 \
		$(if $(PYTEST_GROUP),--test-group=$(PYTEST_GROUP))

# The quick tier for editing (never CI's): pylint on the Python files changed since main (pylint
# on everything takes minutes: `make lint`), the exercises' sync check, the `unit` group of
# conftest.py's TEST_GROUPS (every test file that is in no heavier group: no seed sweep, exercise
# rehearsal, class grading, lesson run or browser), then nbval over the lesson notebooks that
# differ from main (committed or not). `make test` (or a push, whose CI runs it) before merging.
QUICK_BASE ?= main

quick: $(STAMP)
	@py="$$( { git diff --name-only --diff-filter=d $(QUICK_BASE) -- $(LINTED); \
		git ls-files --others --exclude-standard -- $(LINTED); } 2>/dev/null | grep '\.py$$' | sort -u)"; \
	echo "Python files changed since $(QUICK_BASE): $${py:-none} (make lint: all of them)"; \
	if [ -n "$$py" ]; then $(BIN)/pylint $$py; fi
	$(BIN)/labsupport exercises check --skip-wrong-answers
	$(BIN)/python -m pytest tests --test-group=unit --timeout=$(TEST_TIMEOUT) \
		-n $(WORKERS) --dist loadgroup -q
	@changed="$$( { git diff --name-only $(QUICK_BASE) -- 'notebooks/*.ipynb'; \
		git ls-files --others --exclude-standard -- 'notebooks/*.ipynb'; } 2>/dev/null | sort -u)"; \
	echo "lesson notebooks changed since $(QUICK_BASE): $${changed:-none}"; \
	if [ -n "$$changed" ]; then \
		$(BIN)/python -m pytest $$changed --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) \
			--timeout=$(TEST_TIMEOUT) -n $(WORKERS) --dist loadgroup -q; \
	fi

# --- the course site -----------------------------------------------------------------------------

# Sphinx + MyST-NB: the lessons executed at build time (jupyter-cache in .cache/jupyter-cache, so a
# rebuild re-runs only the notebooks whose code changed), widget state saved, the widget manager
# and MathJax vendored from the npm registry (docs/_ext/labsite.py). -n -W: a broken internal
# reference fails the build; -a rewrites every page, so each sidebar lists pages added since.
# Open $(SITE_DIR)/index.html in a browser, no server needed.
SITE_DIR ?= build/site

site: $(STAMP)
	$(BIN)/sphinx-build -b html -a -n -W --keep-going -q docs $(SITE_DIR)
	@echo "The site is in $(SITE_DIR)/index.html"

# The executed site in Chromium: every widget lesson's widgets drawn from saved state, every lesson's
# figures, no link to nothing, no script error, no request outside the site. Screenshots in
# artifacts/screenshots/site. `make test` runs the same checks on a site built from the seed sweep's
# executed lessons (tests/executed_lessons.py), so it executes nothing twice; it also runs
# tests/test_demo.py (`make demo LESSON=01` opened, a slider moved, no request off the server);
# here the demo test serves lesson 06, the one the guide suggests for class.
site-test: site browser-deps
	LAB_SITE_DIR=$(SITE_DIR) LAB_DEMO_LESSON=06 $(BIN)/python -m pytest tests/test_site.py \
		tests/test_demo.py -q --timeout=$(TEST_TIMEOUT)

# Voilà: one lesson's widgets as a dashboard for projecting in class, code cells hidden; the
# kernel runs the whole notebook first (lesson 06: 158 s on the loaded 2-core machine, see
# docs/lab/ci.md). Quit with Ctrl-C.
# The page loads nothing from the internet (a campus projector may have none): the `offline`
# template in share/jupyter/voila/templates (found through JUPYTER_PATH) is Voilà's `lab`
# template without the icon stylesheets it takes from cdn.jsdelivr.net (Voilà serves the icons).
LESSON    ?=
DEMO_PORT ?= 8866

demo: $(STAMP)
	@notebook="$$(ls notebooks/$(LESSON)_*.ipynb 2>/dev/null | head -n 1)"; \
	if [ -z "$(LESSON)" ] || [ -z "$$notebook" ]; then \
		echo "usage: make demo LESSON=NN, one of: $$(ls notebooks | grep -o '^[0-9][0-9]' | xargs)"; \
		exit 2; \
	fi; \
	echo "Serving $$notebook as a dashboard on http://127.0.0.1:$(DEMO_PORT)/ (Ctrl-C stops)"; \
	JUPYTER_PATH="$(CURDIR)/share/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH}" \
	exec $(BIN)/voila "$$notebook" --no-browser --Voila.ip=127.0.0.1 --port=$(DEMO_PORT) \
		--template=offline --strip_sources=True --show_tracebacks=True

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(STATE) .pytest_cache build *.egg-info artifacts
