# The pipeline as make targets: make setup, make data, make train, make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DATA_DIR ?= data
CHECKPOINTS ?= checkpoints
MODELS_DIR ?= build/models
TRAIN_FLAGS := $(if $(FRESH),--fresh,)

.PHONY: help setup data train export import validate bench benchmark report regress lint format test clean
.DEFAULT_GOAL := help

help:  ## list the targets (a bare `make` does this; `make setup` installs)
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):[^#]*## /  \1\t/' | expand -t 14

APT_PACKAGES := g++ g++-aarch64-linux-gnu g++-arm-linux-gnueabihf gcc-arm-none-eabi libnewlib-arm-none-eabi \
	libstdc++-arm-none-eabi-newlib qemu-user qemu-system-arm nlohmann-json3-dev libeigen3-dev valgrind clang-format \
	llvm openssh-server openssh-client
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

setup:  ## toolchains (apt), a virtual environment with the package and its dependencies, PlatformIO offline
	@missing=$$(dpkg-query -W -f='$${Status} $${Package}\n' $(APT_PACKAGES) 2>&1 | grep -v '^install ok installed' | wc -l); \
	if [ "$$missing" != 0 ]; then $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_PACKAGES); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip download --quiet --no-deps --no-binary :all: miditok==3.1.0 -d .cache/sources
	$(PY) -m bench.pio_core
	$(PY) -m common.deps

data:   ## real melody, harmony and dynamics data from the package registries
	$(PY) -m trainer data --profile $(PROFILE) --data-dir $(DATA_DIR)

train:  ## the five models, in sequence (resumes from latest checkpoints)
	$(PY) -m trainer train --profile $(PROFILE) --data-dir $(DATA_DIR) --out $(CHECKPOINTS) $(TRAIN_FLAGS)

export: ## RTNeural JSON, C++ headers, test vectors and manifest.json under build/models/ (from the checkpoints alone), then validate them
	$(PY) -m exporter export --checkpoints $(CHECKPOINTS) --out $(MODELS_DIR)
	$(PY) -m exporter validate --checkpoints $(CHECKPOINTS) --out $(MODELS_DIR)

# make import FILES="amp.json pedal.nam" [NAME=name] [RATE=sample|block]: added to the models there
import:  ## model files of other projects (RTNeural JSON, AIDA-X, GuitarML, NAM, TorchScript) into build/models, validated
	$(PY) -m exporter import $(FILES) --out $(MODELS_DIR) $(if $(NAME),--name $(NAME),) $(if $(RATE),--rate $(RATE),)

validate:  ## check the export against torch, and in RTNeural where it is found (RTNEURAL_DIR)
	$(PY) -m exporter validate --checkpoints $(CHECKPOINTS) --out $(MODELS_DIR)

TARGET ?= x86
ENGINE ?= all
bench: $(MODELS_DIR)/manifest.json  ## build, run and measure the harness on TARGET (x86, aarch64, armv7, cortex-m7) for ENGINE (trains and exports first where build/models has none)
	$(VENV)/bin/bench run --target $(TARGET) --engine $(ENGINE)

report:  ## reports/README.md, index.html and plots, from the results in reports/runs
	$(VENV)/bin/bench report

REGRESS_DIR := build/regress
$(MODELS_DIR)/manifest.json:
	$(MAKE) data train export

# The gate: quick runs whose figures do not depend on the machine's load (x86 instructions from
# callgrind, Cortex-M7 from QEMU's instruction clock, binary sections, heap, parity), every engine
# this machine has, compared with reports/baseline; the report of these runs lands in build/regress.
# The layer set's runs are for their counts (per layer and generated engine: callgrind on x86, QEMU's
# instruction clock on Cortex-M7): the timed part is kept to a token 0.05 s, and RTNeural's own layer
# benchmark is skipped (nothing of it is gated).
regress: $(MODELS_DIR)/manifest.json  ## compare quick x86 and Cortex-M7 runs with reports/baseline (exit 1 on a regression)
	rm -rf $(REGRESS_DIR)
	$(VENV)/bin/bench run --target x86 --blocks 200 --warmup 20 --models-dir $(MODELS_DIR) --out $(REGRESS_DIR)/runs
	$(VENV)/bin/bench run --target cortex-m7 --blocks 200 --warmup 20 --models-dir $(MODELS_DIR) --out $(REGRESS_DIR)/runs
	$(VENV)/bin/bench run --target cortex-m7-2mb --blocks 200 --warmup 20 --models-dir $(MODELS_DIR) --out $(REGRESS_DIR)/runs
	$(VENV)/bin/bench layers --seconds 0.05 --rounds 1 --no-rtneural-bench --out $(REGRESS_DIR)/layers
	$(VENV)/bin/bench layers --target cortex-m7 --out $(REGRESS_DIR)/layers
	$(VENV)/bin/bench report $(REGRESS_DIR)/runs --layers $(REGRESS_DIR)/layers --out $(REGRESS_DIR)/report
	$(VENV)/bin/bench compare reports/baseline $(REGRESS_DIR)/runs $(REGRESS_DIR)/layers \
		--markdown $(REGRESS_DIR)/gate.md --junit $(REGRESS_DIR)/junit.xml

benchmark:  ## pytest-benchmark: forward() of the exported models through the cffi bindings
	MODELS_DIR=$(MODELS_DIR) $(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,stddev,rounds

CXX_SOURCES := $(shell git ls-files '*.cpp' '*.h')
lint:  ## ruff (lint and format) for the Python, clang-format for the C++
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	clang-format --dry-run --Werror $(CXX_SOURCES)

format:  ## rewrite the sources as lint wants them
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	clang-format -i $(CXX_SOURCES)

test:  ## the test suite (pytest): what CI runs after lint
	$(PY) -m pytest

clean:  ## remove build/, the checkpoints and pytest's cache
	rm -rf build $(CHECKPOINTS) .pytest_cache

# Every target but setup, help and clean runs in the virtual environment: without one, say so.
data train export import validate bench report regress benchmark lint format test: | $(PY)
$(PY):
	@echo "error: $(PY) not found: run make setup first" >&2; exit 1
