# The two entry points of the project (see README.md):
#   make run   - set everything up, then run the main job
#   make test  - set everything up, then run the whole test suite
# Everything else here is the set-up they share.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup clean

run: setup
	$(BIN)/lpn experiment all

test: setup
	$(BIN)/python -m pytest -n 2 tests

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache
