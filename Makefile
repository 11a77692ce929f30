# Every target bootstraps .venv from nothing but python3.11 and the package registries.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := constraints.txt
SYSTEM := $(VENV)/.system-packages
PYTEST_ARGS ?=

.PHONY: run test lint bench soak clean lock

# Python packages at the versions $(LOCK) pins. A dependency it does not list yet still
# installs, at the newest version pyproject.toml allows, until `make lock` lists it.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(LOCK) --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test,dev,bench]'
	touch $(STAMP)

# System packages the suites start for real (the list is in the script). The stamp is
# written once all are present, so they are checked, never reinstalled, on later runs.
$(SYSTEM): .ci/system-packages
	.ci/system-packages $@

run: $(STAMP)
	$(BIN)/silverexport serve --demo

# pytest's own exit code: 5 (no test collected) fails too.
test: $(STAMP) $(SYSTEM) lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/eventlog.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/http_serve.py
	$(BIN)/python bench/finished_jobs.py
	$(BIN)/python bench/metrics_cost.py
	$(BIN)/python bench/cli_export.py
	$(BIN)/python bench/parquet.py
	$(BIN)/python bench/eventlog_pg.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/nodes.py
	$(BIN)/python bench/silver_pg.py
	$(BIN)/python bench/silver_ingest.py

soak: $(STAMP) $(SYSTEM)
	SILVEREXPORT_SOAK=1 $(BIN)/python -m pytest -q tests/reliability

# Regenerate $(LOCK) from a fresh venv: the newest versions pyproject.toml allows.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test,dev,bench]'
	{ echo "# make lock wrote this from a fresh venv; make installs with pip -c $(LOCK)."; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable \
	    | grep -v -e '^setuptools==' -e '^wheel=='; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .lock-venv
