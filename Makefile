# leadmgmt: `make run` brings the whole system up, `make test` runs the suite.
# Options: make run RUN_ARGS='--port 8001'; make test PYTEST_ARGS='-x tests/leadmgmt/test_tenancy.py'; make bench BENCH_ARGS='-n 5000'
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m leadmgmt.embedded run $(RUN_ARGS)

test: $(STAMP)
	$(PY) -m leadmgmt.embedded exec -- $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m leadmgmt.embedded exec -- $(PY) bench/run_all.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .data .pytest_cache staticfiles
