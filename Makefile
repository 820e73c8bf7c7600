# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make run    - the whole platform locally on its embedded defaults (Ctrl-C stops it)
#   make test   - the full test suite (unit + integration against real emulator and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup models test-deps run test lint bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (set PYTHON=python3.11)"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

models: setup
	$(PY) -m model_workshop.model_store fetch

test-deps: setup

run: setup models
	$(PY) -m devstack run

test: setup models test-deps
	$(PY) -m pytest

# ruff (lint, import order) and mypy strict on the running code; .ci/run calls it before the tests
lint: setup
	$(PY) -m ruff check services shared devstack
	$(PY) -m mypy services shared devstack

clean:
	rm -rf $(VENV) var

# reporting: the dashboard test drives Debian's chromium through Playwright (never a downloaded browser)
test-deps: /usr/bin/chromium
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# classifiers: the crop-classifier training tests need torch (train-time only, never in requirements.txt)
test-deps: $(VENV)/.train-installed
$(VENV)/.train-installed: requirements-train.txt $(STAMP)
	$(PY) -m pip install --quiet -r requirements-train.txt -c constraints.txt
	touch $@
