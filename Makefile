# Warden: `make run` for the demo, `make test` for the suite. Both start from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint migrate clean sandbox test-tools schema

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

# $(call apt-get,COMMAND,PACKAGES,WHY): install PACKAGES with apt-get when COMMAND is missing and
# we are root, else say WHY it matters. System packages are installed here, never by hand only.
define apt-get
@command -v $(1) >/dev/null 2>&1 || { \
  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
    apt-get install -y -q $(2) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $(2) >/dev/null; }; \
  else \
    echo "$(1) is missing: $(3)"; \
  fi; }
endef
NO_BWRAP := install bubblewrap, or plugin code runs unisolated (refused in production).
NO_STRACE := install strace, or behaviour runs are not observed below Python (tracer: none).
NO_TOOLS := install curl and jq, or the test of the CI snippet (docs/examples/ci-gate.sh) is skipped.
NO_BROWSER := install chromium, or the browser test of the reviewer's day is skipped.

## sandbox: bubblewrap, which plugin code runs in, and strace, which watches it from outside
## (docs/sandbox.md).
sandbox:
	$(call apt-get,bwrap,bubblewrap,$(NO_BWRAP))
	$(call apt-get,strace,strace,$(NO_STRACE))

## run: install, migrate, load the demo, start a django-q2 worker and the web server.
run: migrate sandbox
	$(BIN)/python manage.py attestation_key --if-missing
	$(BIN)/python manage.py tuf_keys
	$(BIN)/python manage.py load_demo
	@echo ""
	@echo "Warden admin: http://$(HOST):$(PORT)/admin/   API schema: http://$(HOST):$(PORT)/api/docs/"
	@echo "Stop with Ctrl-C (the worker stops too)."
	@$(BIN)/python manage.py qcluster & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## test: install what the tests need and run the whole suite.
## test-tools: curl and jq, which docs/examples/ci-gate.sh (run by the suite) needs, and Debian's
## chromium, which the browser test drives through Playwright (never a downloaded browser).
test-tools:
	$(call apt-get,curl,curl jq,$(NO_TOOLS))
	$(call apt-get,jq,curl jq,$(NO_TOOLS))
	$(call apt-get,chromium,chromium,$(NO_BROWSER))

test: $(VENV)/.dev sandbox test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run -v0

## The committed OpenAPI schema: regenerate it after an API change (a test fails until you do).
schema: $(VENV)/.runtime
	DJANGO_SETTINGS_MODULE=config.settings.base $(BIN)/python manage.py spectacular --validate --file docs/openapi.yaml

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
