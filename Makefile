# Two entry points for a fresh machine (see README): `make main` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup main test clean-workspace

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## setup: create .venv and install matmcl with its dependencies
setup: $(STAMP)

## main: set up, then run the main job on the embedded virtual-lab data (profile from params.yaml)
main: setup
	$(BIN)/matmcl run

## test: set up, then run the test suite
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## clean-workspace: remove generated data, models and the MLflow store (keeps reports/)
clean-workspace:
	rm -rf data models mlflow.db mlartifacts .dagster
