# smda: make demo | make test | make test-all | make bench | make lint
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Use the system MPI when there is one (clusters); otherwise the mpich wheel from PyPI.
EXTRAS := $(if $(shell command -v mpiexec 2>/dev/null),test,test,mpich)

.PHONY: demo test test-all bench lint docs clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/smda run namelists/osse_default.yaml

test: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -q

bench: $(STAMP)
	for b in benchmarks/*.py; do PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .

docs: $(STAMP)
	$(VENV)/bin/smda info namelists/osse_default.yaml --keys > namelists/README.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
