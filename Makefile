# Everything runs from venv/ (the same virtualenv Pulumi.yaml tells `pulumi` to use).
PYTHON ?= python3
VENV   := venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STACK  ?= dev

.PHONY: setup plan test lint fuzz schema bench bench-engine toolchain e2e clean

## setup: create venv/ with the pinned requirements (what every other target does first)
setup: $(STAMP)

## plan: set up venv/ and write the offline plan of stacks/Pulumi.$(STACK).yaml to build/plan-$(STACK)/
plan: $(STAMP)
	$(PY) -m tools.plan stacks/Pulumi.$(STACK).yaml --out build/plan-$(STACK)

## test: set up venv/ and run the test suite
test: $(STAMP)
	$(PY) -m pytest -q

## lint: ruff (ruff.toml) on everything, mypy --strict (mypy.ini) on meshcore/, components/ and tools/.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m mypy meshcore components tools

## fuzz: the property tests with the long Hypothesis profile (20x the examples, random; tests/conftest.py)
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q tests/test_fuzz.py tests/test_render.py tests/test_schema.py

## schema: regenerate schema/stack.schema.json (the JSON Schema of stack files), README's owned-keys and version tables
## and the charts' key indexes meshcore/chart/keyindex/ (from ../shared/cilium-<version>/)
schema: $(STAMP)
	$(PY) -m tools.schema

## bench: offline plans of full meshes of 2..511 clusters; prints the table and writes docs/benchmarks.md
bench: $(STAMP)
	$(PY) -m tools.bench

## toolchain: build the pinned real Pulumi CLI, Python host, kubernetes provider, kube-apiserver, etcd and
## clustermesh-apiserver (one per Cilium minor, with its CRD registrar)
## (once per machine, outside the checkout: python -m tools.toolchain path)
toolchain: $(STAMP)
	$(PY) -m tools.toolchain build

## e2e: the end-to-end suite: real `pulumi preview/up/destroy` of stacks against a local mesh of API servers
e2e: $(STAMP)
	$(PY) -m pytest -q -x tests/e2e

## bench-engine: real `pulumi preview` of full meshes and `pulumi up` into a local mesh; writes docs/benchmarks.md
bench-engine: $(STAMP)
	$(PY) -m tools.bench_engine

# pip names each package as it gets it; its progress bars only on a terminal (a CI log gets one line a package).
$(STAMP): requirements.txt requirements-dev.txt
	@echo "setting up $(VENV)/: installing the pinned requirements (requirements-dev.txt; about a minute on a fresh machine) ..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check $$([ -t 1 ] || echo --progress-bar off) -r requirements-dev.txt
	touch $(STAMP)
	@echo "$(VENV)/ is set up"

clean:
	rm -rf build .pytest_cache
