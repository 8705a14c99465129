# khabar: `make demo` and `make test` install everything into .venv first.
PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-langid clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "khabar needs Python >= 3.12 (hazm >= 0.11 does); set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(STAMP)

demo: install
	$(BIN)/khabar run --input seeds/ --output out/demo --overwrite
	$(BIN)/khabar inspect out/demo

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/khabar bench

bench-langid: install
	$(BIN)/khabar bench-langid

clean:
	rm -rf out .pytest_cache build *.egg-info
