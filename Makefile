# unimem: `make lab` opens the notebooks, `make test` runs every test.
#
# MLX's backend is an extra of this package: metal (plain `mlx`) on macOS, cpu on
# Linux. On an NVIDIA machine: `make lab MLX_BACKEND=cuda13`. Switching backend
# rebuilds .venv, because MLX's backend packages cannot be installed side by side.

PYTHON ?= python3
VENV ?= .venv
MLX_BACKEND ?= $(if $(filter Darwin,$(shell uname -s)),metal,cpu)
ifeq ($(filter metal cpu cuda13,$(MLX_BACKEND)),)
$(error MLX_BACKEND=$(MLX_BACKEND): use metal (macOS), cpu or cuda13 (Linux))
endif

BIN := $(VENV)/bin
PY := $(BIN)/python
EXTRAS := $(if $(filter metal,$(MLX_BACKEND)),,$(MLX_BACKEND),)lab,test
STAMP := $(VENV)/.installed-$(MLX_BACKEND)
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

# Recipes run in bash so that `$(call timed,NAME) cmd` prints how long cmd took.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
timed = echo '==> $(1)'; TIMEFORMAT='==> $(1): %1R s'; time

.PHONY: lab test test-unit test-notebooks test-browser test-binder clean

# Re-installs when pyproject.toml changes (the stamp is older than it).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
		|| { echo "unimem needs Python >= 3.10: make PYTHON=/path/to/python3.1x"; exit 1; }
	@if ls $(VENV)/.installed-* 2>/dev/null | grep -qv '$(STAMP)'; then \
		echo "MLX backend changed to $(MLX_BACKEND): rebuilding $(VENV)"; rm -rf $(VENV); fi
	@$(call timed,install for $(MLX_BACKEND)) { \
		$(PYTHON) -m venv $(VENV) && \
		$(PY) -m pip install --quiet --upgrade pip && \
		$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"; }
	@touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/

test: test-unit test-notebooks test-browser test-binder

test-unit: $(STAMP)
	@$(call timed,unit tests) $(PY) -m pytest -q tests -m "not browser and not binder and not rerun"

# UNIMEM_CI=1: the notebooks pick their CI-sized workloads. Then every notebook runs twice
# more: an untagged cell must print the same both times (tests/test_notebooks_rerun.py).
test-notebooks: $(STAMP)
	@if ! ls notebooks/*.ipynb >/dev/null 2>&1; then echo "==> no notebooks/*.ipynb yet"; exit 0; fi; \
	$(call timed,notebooks under nbval) UNIMEM_CI=1 $(PY) -m pytest -q $(NBVAL) notebooks; \
	$(call timed,notebooks run twice) UNIMEM_CI=1 $(PY) -m pytest -q tests/test_notebooks_rerun.py -m rerun

test-browser: $(STAMP)
	@$(call timed,browser tests) UNIMEM_CI=1 $(PY) -m pytest -q tests/browser -m browser

test-binder: $(STAMP)
	@$(call timed,Binder recipe) UNIMEM_CI=1 $(PY) -m pytest -q tests/test_binder.py -m binder

clean:
	rm -rf $(VENV) tests/artifacts
