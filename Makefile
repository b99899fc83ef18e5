# tradecast: `make run` starts the desk, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench doctor clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start the desk with its API on the embedded defaults
	$(BIN)/tradecast serve

test: $(STAMP)  ## lint, then every test (slow end-to-end ones included)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest

test-fast: $(STAMP)  ## lint, then the quick tests only (for every edit)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)  ## run every benchmark in bench/ and print its figures
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

doctor: $(STAMP)
	$(BIN)/tradecast doctor

clean:
	rm -rf $(VENV) .tradecast .pytest_cache .ruff_cache
