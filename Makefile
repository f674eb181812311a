# Two commands: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export PATH := $(VENV)/bin:$(PATH)

# Everything the project needs, from the registries, in one place.
DEPS := .[notebook,dask,test]

.PHONY: setup demo test bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet hatchling editables
	$(PIP) install --quiet --no-build-isolation -e "$(DEPS)"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m kernelflow.demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py

lint: setup
	$(VENV)/bin/ruff check kernelflow tests bench
	$(VENV)/bin/ruff format --check kernelflow tests bench

clean:
	rm -rf $(VENV) .bench-venv
