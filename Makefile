# The pipeline as make targets: make setup, make data, make train, make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DATA_DIR ?= data
CHECKPOINTS ?= checkpoints
MODELS_DIR ?= build/models
TRAIN_FLAGS := $(if $(FRESH),--fresh,)

.PHONY: setup data train export validate test clean

setup:  ## a virtual environment with the package, its dependencies and the data sources
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m pip download --quiet --no-deps --no-binary :all: miditok==3.1.0 -d .cache/sources

data:   ## real melody, harmony and dynamics data from the package registries
	$(PY) -m trainer data --profile $(PROFILE) --data-dir $(DATA_DIR)

train:  ## the five models, in sequence (resumes from latest checkpoints)
	$(PY) -m trainer train --profile $(PROFILE) --data-dir $(DATA_DIR) --out $(CHECKPOINTS) $(TRAIN_FLAGS)

export: ## RTNeural JSON, C++ headers and test vectors under build/models/, then validate them
	$(PY) -m exporter export --checkpoints $(CHECKPOINTS) --data-dir $(DATA_DIR) --out $(MODELS_DIR)
	$(PY) -m exporter validate --checkpoints $(CHECKPOINTS) --out $(MODELS_DIR)

validate:  ## check the export against torch, and in RTNeural where it is found (RTNEURAL_DIR)
	$(PY) -m exporter validate --checkpoints $(CHECKPOINTS) --out $(MODELS_DIR)

test:
	$(PY) -m pytest

clean:
	rm -rf build $(CHECKPOINTS) .pytest_cache
