# smda: make demo | make test | make test-all | make test-nojit | make wheel-check | make bench | make lint
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NP     ?= 2
# Use the system MPI when there is one (clusters); otherwise the mpich wheel from PyPI.
comma  := ,
EXTRAS := $(if $(shell command -v mpiexec 2>/dev/null),test$(comma)all,test$(comma)all$(comma)mpich)
RUNENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1

.PHONY: demo test test-all test-nojit wheel-check bench lint docs clean

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

# The kernel tests with numba off: as plain Python, numpy checks every index that compiled code does not.
# The few tests that take minutes uncompiled are left out.
NOJIT_TESTS := tests/test_rtm_dielectric.py tests/test_rtm_emission.py tests/test_lsm_soil.py tests/test_lsm_physics.py \
	tests/test_vegetation.py tests/test_grid.py tests/test_qc.py tests/test_operator.py tests/test_streams.py \
	tests/test_filters_localization.py tests/test_filters_analysis.py tests/test_filters_eakf.py
NOJIT_SLOW  := tests/test_streams.py::test_distributions tests/test_filters_analysis.py::test_chi2_and_desroziers_consistency \
	tests/test_filters_eakf.py::test_l96_short
test-nojit: $(STAMP)
	$(RUNENV) NUMBA_DISABLE_JIT=1 $(PY) -m pytest -m "not slow" -q $(NOJIT_TESTS) \
		$(addprefix --deselect ,$(NOJIT_SLOW))

# Build the sdist, the wheel from it, install it in a fresh venv outside the repository, run and validate a short case.
wheel-check: $(STAMP)
	$(RUNENV) $(PY) .ci/wheel_check.py

bench: $(STAMP)
	for b in benchmarks/[a-z]*.py; do $(RUNENV) $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .

docs: $(STAMP)
	$(VENV)/bin/smda info namelists/osse_default.yaml --keys > namelists/README.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
