# Warden: `make run` for the demo, `make test` for the suite. Both start from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint migrate clean sandbox test-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput -v0

## sandbox: bubblewrap, which plugin code runs in, and strace, which watches it from outside
## (docs/sandbox.md); apt-get when root, else a warning.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }; \
	  else \
	    echo "bubblewrap (bwrap) is missing: install it, or plugin code runs unisolated (refused in production)."; \
	  fi; }
	@command -v strace >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q strace >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q strace >/dev/null; }; \
	  else \
	    echo "strace is missing: install it, or behaviour runs are not observed below Python (tracer: none)."; \
	  fi; }

## run: install, migrate, load the demo, start a django-q2 worker and the web server.
run: migrate sandbox
	$(BIN)/python manage.py load_demo
	@echo ""
	@echo "Warden admin: http://$(HOST):$(PORT)/admin/   API schema: http://$(HOST):$(PORT)/api/docs/"
	@echo "Stop with Ctrl-C (the worker stops too)."
	@$(BIN)/python manage.py qcluster & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## test: install what the tests need and run the whole suite.
## test-tools: curl and jq, which docs/examples/ci-gate.sh (run by the suite) needs; apt-get when root.
test-tools:
	@command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q curl jq >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q curl jq >/dev/null; }; \
	  else \
	    echo "curl or jq is missing: the test of the CI snippet (docs/examples/ci-gate.sh) is skipped."; \
	  fi; }

test: $(VENV)/.dev sandbox test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run -v0

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
