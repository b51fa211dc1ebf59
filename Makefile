# jupyter-repro: `make run` and `make test` do every set-up step on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# jlpm and jupyter come from the venv; hatch-jupyter-builder calls jlpm by name.
export PATH := $(BIN):$(PATH)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

INSTALLED := $(VENV)/.installed
LABEXT_BUILT := jupyter_repro/labextension/static/style.js
LABEXT_SOURCES := $(shell find labextension/src labextension/style labextension/schema -type f 2>/dev/null) \
	labextension/package.json labextension/tsconfig.json labextension/yarn.lock
RUN_ARGS ?=
# Jupyter refuses to run as root without this; containers and CI machines often are root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help run test test-python lint bench bench-tools chromium hub-tools clean

help:
	@echo "make run    install everything into $(VENV) and start JupyterLab on examples/"
	@echo "make test   install what the tests need and run every test: jest, pytest, browser tests"
	@echo "make bench  run benchmarks/ and print ratio tables"
	@echo "make lint   ruff, mypy and the TypeScript linters"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip

# Build requirements first, so the project installs without build isolation (faster, and
# the frontend is built by the venv's own jlpm). Editable install: a development checkout.
$(INSTALLED): pyproject.toml labextension/package.json labextension/yarn.lock | $(BIN)/python
	$(PIP) install "hatchling>=1.21" editables "hatch-jupyter-builder>=0.9" "jupyterlab>=4.6,<5"
	$(PIP) install --no-build-isolation -e ".[test,bench,dev]"
	@# hatchling's editable install skips shared-data: link the labextension and enable the
	@# server extension in the venv, as the wheel does through share/ and etc/.
	$(BIN)/jupyter labextension develop --overwrite . >/dev/null
	$(BIN)/jupyter server extension enable --sys-prefix jupyter_repro >/dev/null
	@# jupytext (a test dependency: the save hook must survive its contents manager) enables
	@# itself on install; it would change the server of every other test and the benchmarks.
	@# The test that needs it enables it in its own server configuration. `jupyter server
	@# extension disable` cannot undo it: it writes jupyter_server_config.d/
	@# jupyterlab_jupytext.json, which sorts before jupytext's own jupytext.json and loses;
	@# the main jupyter_server_config.json is read after every .d file and wins.
	$(BIN)/python -c "from jupyter_server.config_manager import BaseJSONConfigManager as M; \
		M(config_dir='$(CURDIR)/$(VENV)/etc/jupyter').update('jupyter_server_config', \
		{'ServerApp': {'jpserver_extensions': {'jupyterlab_jupytext': False}}})"
	$(BIN)/jupyter labextension disable jupyterlab-jupytext >/dev/null
	touch $@

$(LABEXT_BUILT): $(LABEXT_SOURCES) | $(INSTALLED)
	cd labextension && jlpm install && jlpm build
	touch $@

run: $(INSTALLED) $(LABEXT_BUILT)
	$(BIN)/jupyter lab --no-browser --ServerApp.root_dir="$(CURDIR)/examples" $(ALLOW_ROOT) $(RUN_ARGS)

# Debian's chromium drives the browser tests; Playwright cannot download its own here.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium is missing and this user cannot install it: browser tests will be skipped (they fail under CI=true)"; \
	fi

# JupyterHub's configurable-http-proxy (from the npm registry) for the hub end-to-end tests
# (tests/hub/): the versions pinned by tests/hub/yarn.lock, installed into $(HUB_TOOLS)/ (not
# globally) by the venv's jlpm, so that no npm is needed beside Node.js.
HUB_TOOLS := .hub-tools
HUB_TOOLS_STAMP := $(HUB_TOOLS)/.installed

$(HUB_TOOLS_STAMP): tests/hub/package.json tests/hub/yarn.lock tests/hub/.yarnrc.yml | $(INSTALLED)
	mkdir -p $(HUB_TOOLS)
	cp tests/hub/package.json tests/hub/yarn.lock tests/hub/.yarnrc.yml $(HUB_TOOLS)/
	cd $(HUB_TOOLS) && jlpm install --immutable >/dev/null
	touch $@

hub-tools: $(HUB_TOOLS_STAMP)

test: $(INSTALLED) $(LABEXT_BUILT) chromium hub-tools
	cd labextension && jlpm test --ci
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check jupyter_repro tests benchmarks
	$(BIN)/ruff format --check jupyter_repro tests benchmarks
	$(BIN)/mypy
	cd labextension && jlpm lint:check

# ApacheBench (Debian's apache2-utils) drives the load benchmark from a C client.
bench-tools:
	@if command -v ab >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's apache2-utils (ab) for the load benchmark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null; \
	else \
		echo "ab (apache2-utils) is missing and this user cannot install it: the load benchmark will fail"; \
	fi

bench: $(INSTALLED) $(LABEXT_BUILT) bench-tools
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(HUB_TOOLS) build dist test-artifacts jupyter_repro/labextension \
		labextension/node_modules labextension/lib labextension/tsconfig.tsbuildinfo
