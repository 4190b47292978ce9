# Two entry points for a fresh machine (see README): `make main` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DVC gets its own environment: its hydra-core/omegaconf pin antlr4-python3-runtime 4.9.*, while Dagster's
# asset-selection parser (`dagster asset materialize --select`) needs 4.13. `$(BIN)/dvc` is a small wrapper that
# runs this DVC with $(BIN) first on the PATH, so an activated .venv finds `dvc` and DVC's stages find `matmcl`.
DVC_VENV ?= .venv-dvc
DVC_SPEC ?= dvc>=3.50,<4
DVC_STAMP := $(DVC_VENV)/.installed

.PHONY: setup main test clean-workspace

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# a .venv made before DVC moved out still holds it (and antlr 4.9): remove it
	@if $(BIN)/python -m pip show --quiet dvc 2>/dev/null; then \
	    $(BIN)/python -m pip uninstall --quiet --yes dvc hydra-core omegaconf; fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(DVC_STAMP): Makefile
	$(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/python -m pip install --quiet "$(DVC_SPEC)"
	touch $(DVC_STAMP)

$(BIN)/dvc: $(STAMP) $(DVC_STAMP)
	printf '#!/bin/sh\n# DVC from %s (see Makefile); its stage commands find matmcl in %s first.\nPATH="%s:$$PATH"\nexport PATH\nexec "%s" "$$@"\n' \
	    "$(DVC_VENV)" "$(VENV)" "$(CURDIR)/$(BIN)" "$(CURDIR)/$(DVC_VENV)/bin/dvc" > $@
	chmod +x $@

## setup: create .venv (matmcl, Dagster, MLflow) and .venv-dvc (DVC), with `dvc` on .venv's PATH
setup: $(STAMP) $(BIN)/dvc

## main: set up, then run the main job on the embedded virtual-lab data (profile from params.yaml)
main: setup
	$(BIN)/matmcl run

## test: set up, then run the test suite
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## clean-workspace: remove generated data, models, run stores and tool scratch folders (keeps reports/, dvc.lock)
clean-workspace:
	rm -rf data models mlflow.db mlflow.db-journal mlruns mlartifacts .dagster dagster_home .tmp_dagster_home_* \
	    dvc_plots .matmcl
