# Tillbridge — every target sets up what it needs (virtualenv, pip packages, Azurite via npm) first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_INFRA := .venv-infra
VENV_SDK := .venv-sdk
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: demo test serve serve-demo host azurite setup setup-infra setup-sdk lint typecheck unit contract integration e2e bench bench-sales clean

demo: setup            ## run the customer scenario on the local stack and print what reached the CRM
	$(PY) -m devstack.demo

test: setup setup-infra setup-sdk  ## every test: tracked files, lint, types, unit, contract, integration, end-to-end
	.ci/check-tracked
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -p no:cacheprovider

serve: setup           ## start Azurite, both emulators and the host, and keep them serving (empty)
	$(PY) -m devstack.serve_stack

serve-demo: setup      ## the same, with the demo's customers and store day loaded (console, CLI, timelines)
	$(PY) -m devstack.serve_stack --demo

host: setup            ## the local function host alone, on 127.0.0.1:7071, with local.settings.json
	$(PY) -m devstack.host --port 7071

azurite: setup         ## Azurite alone on its default ports (for `make host` or `func start`)
	node_modules/.bin/azurite --silent --inMemoryPersistence --skipApiVersionCheck --loose --disableTelemetry

bench: setup           ## benchmark figures (see bench/RESULTS.md)
	$(PY) -m bench.bench_customers

bench-sales: setup     ## store-activity benchmark figures (see bench/RESULTS.md)
	$(PY) -m bench.bench_sales

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest -p no:cacheprovider tests/unit

contract: setup
	$(PY) -m pytest -p no:cacheprovider tests/contract

integration: setup
	$(PY) -m pytest -p no:cacheprovider tests/integration tests/e2e

setup: $(VENV)/.installed node_modules/.installed   ## the app's virtualenv and Azurite (what every target needs)

setup-infra: $(VENV_INFRA)/.installed                ## checkov's own virtualenv (only the infra tests use it)

setup-sdk: $(VENV_SDK)/.installed                    ## Microsoft's Dataverse SDK in its own virtualenv (its contract test)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version' 
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

$(VENV_INFRA)/.installed: requirements-infra.txt
	@test -x $(VENV_INFRA)/bin/python || $(PYTHON) -m venv $(VENV_INFRA)
	$(VENV_INFRA)/bin/python -m pip install --quiet -r requirements-infra.txt
	@touch $@

$(VENV_SDK)/.installed: requirements-sdk.txt
	@test -x $(VENV_SDK)/bin/python || $(PYTHON) -m venv $(VENV_SDK)
	$(VENV_SDK)/bin/python -m pip install --quiet -r requirements-sdk.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18+ (apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean:
	rm -rf $(VENV) $(VENV_INFRA) $(VENV_SDK) node_modules artifacts .mypy_cache .ruff_cache
