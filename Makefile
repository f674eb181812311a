# Two commands: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export PATH := $(VENV)/bin:$(PATH)

# Everything the project needs, from the registries, in one place.
DEPS := .[dask,test]

.PHONY: setup demo test bench lint clean prefect-golden

# The JupyterLab panel's sources: the editable install builds them (jlpm, from jupyterlab).
LABEXT_SRC := labextension/package.json labextension/yarn.lock \
	$(wildcard labextension/src/*.ts labextension/src/*/*.ts labextension/style/*)

$(VENV)/.installed: pyproject.toml $(LABEXT_SRC)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet hatchling editables hatch-jupyter-builder "jupyterlab>=4.6,<5"
	$(PIP) install --quiet --no-build-isolation -e "$(DEPS)"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m kernelflow.demo

test: setup
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
	$(PY) -m pytest -q

# Every benchmark in turn (one failing or missing does not stop the others), then
# bench/RESULTS.md written whole from their bench/out/*.json. `make bench QUICK=1`: small n.
BENCH_SCRIPTS := run bench_scale bench_compaction bench_queries bench_widgets \
	bench_deployments bench_kernel bench_concurrency
bench: setup
	$(PY) bench/report.py $(if $(QUICK),--quick) --run $(BENCH_SCRIPTS:%=bench/%.py)

# Record Prefect 3.9.1's output for tests/prefect_docs (creates .bench-venv on first use).
prefect-golden: setup
	$(PY) tests/prefect_docs/golden.py

# Python: ruff; the layers (import-linter, [tool.importlinter] in pyproject.toml) and
# their picture in docs/decisions/layers.md; mypy ([tool.mypy]: strict on the public API).
# The panel's TypeScript: Biome, a devDependency that the editable install's
# `jlpm install` puts into labextension/node_modules.
lint: setup
	$(VENV)/bin/ruff check kernelflow tests bench scripts
	$(VENV)/bin/ruff format --check kernelflow tests bench scripts
	$(VENV)/bin/lint-imports
	$(PY) scripts/layers_picture.py --check docs/decisions/layers.md
	$(VENV)/bin/mypy
	cd labextension && $(VENV)/bin/jlpm lint:check

clean:
	rm -rf $(VENV) .bench-venv
