# khabar: `make demo` and `make test` install everything into .venv first.
PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-langid bench-ner bench-normalize train-env train-ner clean

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

bench-ner: install
	$(BIN)/khabar bench-ner

# shekar and parsivar are compared when installed (extras; never needed at run time)
bench-normalize: install
	$(BIN)/python -m pip install --quiet -e '.[shekar,parsivar]'
	$(BIN)/khabar bench-normalize

# Retraining the entity models needs PyTorch (training only; tagging runs on numpy). Its
# CPU wheel on these machines is for Python 3.11, so it gets a venv of its own.
TORCH_PYTHON ?= $(shell command -v python3.11 || command -v python3)
TORCH_VENV := .venv-torch

train-env: $(TORCH_VENV)/.installed

$(TORCH_VENV)/.installed:
	$(TORCH_PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet 'torch==2.13.0' 'numpy>=2,<3' 'gensim==4.4.0'
	@touch $@

train-ner: install train-env
	$(BIN)/python -m pip install --quiet -e '.[train]'
	KHABAR_TORCH_PYTHON=$(TORCH_VENV)/bin/python $(BIN)/python -m khabar.pipeline.train.ner

clean:
	rm -rf out .pytest_cache build *.egg-info
