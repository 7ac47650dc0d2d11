# unimem: `make lab` opens the notebooks, `make test` runs every test.
# MLX's backend: metal on macOS, cpu on Linux; `make lab MLX_BACKEND=cuda13` for NVIDIA.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UNAME := $(shell uname -s)
MLX_BACKEND ?= $(if $(filter Darwin,$(UNAME)),metal,cpu)
BACKEND_EXTRA := $(if $(filter metal,$(MLX_BACKEND)),,$(MLX_BACKEND),)
STAMP := $(VENV)/.installed-$(MLX_BACKEND)

.PHONY: lab test test-unit test-notebooks test-browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(BACKEND_EXTRA)lab,test]"
	touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

test: test-unit

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not browser"

clean:
	rm -rf $(VENV) tests/artifacts
