# smda: make demo | make test | make test-all | make bench | make lint
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NP     ?= 2
# Use the system MPI when there is one (clusters); otherwise the mpich wheel from PyPI.
comma  := ,
EXTRAS := $(if $(shell command -v mpiexec 2>/dev/null),test,test$(comma)mpich)
RUNENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1

.PHONY: demo test test-all bench lint docs clean

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(RUNENV) mpiexec -n $(NP) $(VENV)/bin/smda run namelists/osse_default.yaml

test: $(STAMP)
	$(RUNENV) $(PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(RUNENV) $(PY) -m pytest -q

bench: $(STAMP)
	for b in benchmarks/[a-z]*.py; do $(RUNENV) $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .

docs: $(STAMP)
	$(VENV)/bin/smda info namelists/osse_default.yaml --keys > namelists/README.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
