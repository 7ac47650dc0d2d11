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
# The optional native capture module (native/, `unimem_native`): rebuilt when its sources change.
NATIVE_STAMP := $(VENV)/.native-$(MLX_BACKEND)
NATIVE_SOURCES := $(wildcard native/pyproject.toml native/CMakeLists.txt native/src/* \
	native/unimem_native/*.py)
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

# Built against exactly the MLX installed above, hence --no-build-isolation (an isolated
# build would compile against whatever MLX pip fetches for it); so nanobind 3.x (the ABI of
# mlx.core's wheel) and scikit-build-core go in first. Optional: without a C++ compiler,
# CMake >= 3.25 or Ninja it warns, and unimem keeps its pure-Python capture; the stamp is
# then not written, so the next make tries again.
$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	@if $(call timed,native capture module) { \
		$(PY) -m pip install --quiet "nanobind>=3.1,<4" scikit-build-core && \
		$(PY) -m pip install --quiet --no-build-isolation ./native; }; then touch $@; \
	else echo "WARNING: native/ did not build (see above): unimem falls back to its" \
		"pure-Python capture. It needs a C++20 compiler, CMake >= 3.25 and Ninja;" \
		"retry with: $(PY) -m pip install --no-build-isolation ./native"; fi

# Extra JupyterLab arguments pass through: make lab LAB_ARGS="--no-browser --port=8890"
LAB_ARGS ?=
lab: $(STAMP) $(NATIVE_STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) $(LAB_ARGS) notebooks/

test: test-unit test-notebooks test-browser test-binder

test-unit: $(STAMP) $(NATIVE_STAMP)
	@$(call timed,unit tests) $(PY) -m pytest -q tests -m "not browser and not binder and not rerun"

# UNIMEM_CI=1: the notebooks pick their CI-sized workloads. Then every notebook runs twice
# more: an untagged cell must print the same both times (tests/test_notebooks_rerun.py).
test-notebooks: $(STAMP) $(NATIVE_STAMP)
	@if ! ls notebooks/*.ipynb >/dev/null 2>&1; then echo "==> no notebooks/*.ipynb yet"; exit 0; fi; \
	$(call timed,notebooks under nbval) UNIMEM_CI=1 $(PY) -m pytest -q $(NBVAL) notebooks; \
	$(call timed,notebooks run twice) UNIMEM_CI=1 $(PY) -m pytest -q tests/test_notebooks_rerun.py -m rerun

test-browser: $(STAMP) $(NATIVE_STAMP)
	@$(call timed,browser tests) UNIMEM_CI=1 $(PY) -m pytest -q tests/browser -m browser

test-binder: $(STAMP)
	@$(call timed,Binder recipe) UNIMEM_CI=1 $(PY) -m pytest -q tests/test_binder.py -m binder

clean:
	rm -rf $(VENV) tests/artifacts native/build
