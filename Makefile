# Every target bootstraps .venv from nothing but python3.11 and the package registries.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/silverexport serve --demo

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/eventlog.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/metrics_cost.py

soak: $(STAMP)
	SILVEREXPORT_SOAK=1 $(BIN)/python -m pytest -q tests/reliability

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
