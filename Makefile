# Two commands do all set-up on a fresh machine (Python 3.11+ and make):
#   make demo   - install, then run the bot on embedded defaults (no Slack/GitHub/GCP account)
#   make test   - install, then run the whole test suite (in parallel, with coverage)
# More: `make lint` (ruff + mypy), `make test-fast` (the inner loop: no slow tests),
# `make bench` (benchmarks). `.ci/run` runs `make lint test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Lines of bot/ and handlers/ the suite must execute (90% measured 2026-12-01; raise, never lower).
COVERAGE_FLOOR ?= 89

.PHONY: demo test test-fast bench lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/databot demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n auto --cov=bot --cov=handlers --cov-report=term:skip-covered \
		--cov-fail-under=$(COVERAGE_FLOOR) $(ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -n auto -m "not slow" $(ARGS)

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
