# Two commands do all the set-up on a fresh machine: `make bench` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
REPEAT ?= 3
ARGS   ?=

.PHONY: bench test setup engine bases report list clean-venv

bench: setup engine  ## build and measure every variant; prints the table
	$(BIN)/harness run --repeat $(REPEAT) $(ARGS)

test: setup engine  ## every test, against a real engine
	$(BIN)/pytest $(ARGS)

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

engine:  ## start a Docker engine if none answers (as root on Debian)
	bash scripts/ensure-engine.sh

bases: setup engine  ## show how base images resolve; build missing stand-ins
	$(BIN)/harness bases --build

report: setup  ## regenerate the newest run's table and chart (no engine needed)
	$(BIN)/harness report

list: setup
	$(BIN)/harness list

clean-venv:
	rm -rf $(VENV)
