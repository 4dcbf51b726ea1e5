# mia-pipeline — every entry point. Each target installs what it needs on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV_VERSION := 0.13.8
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed

export MIA_DATA_DIR ?= $(CURDIR)/data
# The Dagster instance lives under the data root (`mia` writes its dagster.yaml there): the UI, every
# `mia` command and the disk talk about the same data, whatever the working directory.
export DAGSTER_HOME := $(abspath $(MIA_DATA_DIR))/.dagster
PORT ?= 3000
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never
# Byte-compile what is installed (the environment may set PYTHONDONTWRITEBYTECODE): without .pyc files every
# `mia` command and run re-compiles Dagster and Great Expectations from source (GX alone: 2 s more per import).
export UV_COMPILE_BYTECODE := 1

.PHONY: install demo test test-fast lint check audit ui bench clean help

help:
	@echo "make demo   - run the main job on embedded defaults (installs first)"
	@echo "make test   - run the test suite (installs first)"
	@echo "make ui     - Dagster UI on http://127.0.0.1:\$$PORT (default 3000; make ui PORT=3001)"
	@echo "make bench  - run benchmarks/ (figure, baseline, ratio)"
	@echo "make check  - ruff + dg check defs"
	@echo "make audit  - known vulnerabilities of the pinned packages (pip-audit)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

# uv.lock pins every package; --frozen refuses to resolve anything new.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mia demo
	$(VENV)/bin/mia health

test: $(STAMP)
	$(VENV)/bin/pytest -q

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check mia_pipeline mia_pipeline_tests benchmarks

check: lint
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg check defs

# Known vulnerabilities of the pinned packages (pip-audit, pinned, in the tools venv). Says UNVERIFIED when the
# vulnerability service cannot be reached: never a pass it did not make.
PIP_AUDIT_VERSION := 2.10.1
audit: $(STAMP)
	@$(TOOLS)/bin/python -c "import pip_audit" 2>/dev/null || $(TOOLS)/bin/pip install -q --disable-pip-version-check pip-audit==$(PIP_AUDIT_VERSION)
	$(TOOLS)/bin/python scripts/audit_pins.py

ui: $(STAMP)
	$(VENV)/bin/mia init
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg dev --host 127.0.0.1 --port $(PORT)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
