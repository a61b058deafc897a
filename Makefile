# Two entry points (see README): `make samples` grades the bundled sample submissions,
# `make test` runs the whole test suite. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# nbgrader shells out to alembic, which lives in the venv.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup samples test lint reference-models exercises wheel course-wheel smoke-installed clean

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

# The file students install (README, Students): dist/ptgrade-<version>-py3-none-any.whl.
wheel: $(STAMP)
	$(BIN)/python -m pip wheel . --no-deps -q -w dist

# The instructor's wheel: the same kit plus solutions/ and the hidden checks (setup.py), for
# `ptgrade init-course` and `gradescope-bundle`. Never hand it to students.
course-wheel: $(STAMP)
	PTGRADE_WHEEL=course $(BIN)/python -m pip wheel . --no-deps -q -w dist/course

# The kit as users get it: the wheel in a fresh venv outside the checkout, with bubblewrap and
# without (tests/test_installed_kit.py runs this in `make test`).
smoke-installed: $(STAMP)
	$(BIN)/python tools/smoke_installed.py

clean:
	rm -rf build dist .pytest_cache
