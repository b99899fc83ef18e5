# tradecast: `make run` starts the desk, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench doctor sysinfo clean clean-llama

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llama-cpp-python is built portably (AVX2, no -march=native, no AMX) by its own script,
# so a wheel compiled here runs on any other x86-64 host with AVX2.
$(STAMP): pyproject.toml scripts/install-llama.sh | $(BIN)/python
	scripts/install-llama.sh $(BIN)/pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start the desk with its API on the embedded defaults
	$(BIN)/tradecast serve

test: $(STAMP)  ## lint, then every test (slow end-to-end ones included)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

test-fast: $(STAMP)  ## lint, then the quick tests only (for every edit)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)  ## run every benchmark in bench/ and print its figures
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

doctor: $(STAMP)
	$(BIN)/tradecast doctor

sysinfo: $(STAMP)  ## the CPU flags and llama.cpp build that the embedded model runs on
	$(BIN)/python -m tradecast.llm.preflight --system-info

clean:
	rm -rf $(VENV) .tradecast .pytest_cache .ruff_cache

clean-llama:  ## forget the built llama-cpp-python wheels (the next install rebuilds)
	rm -rf $(HOME)/.cache/tradecast/wheels $(STAMP)
