# Two entry points (see README): `make samples` grades the bundled sample submissions,
# `make test` runs the whole test suite. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# nbgrader shells out to alembic, which lives in the venv.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup samples test lint reference-models exercises clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,nbgrader,dask]'
	touch $(STAMP)

samples: $(STAMP)
	$(BIN)/ptgrade batch samples/ --output build/samples --cell-timeout 15

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

reference-models: $(STAMP)
	$(BIN)/python reference_models/regenerate.py

exercises: $(STAMP)
	$(BIN)/python tools/release_exercises.py

clean:
	rm -rf build .pytest_cache
