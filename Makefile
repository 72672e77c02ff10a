# Kiln: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PIPFLAGS := --disable-pip-version-check --quiet
CONSTRAINTS := requirements/constraints.txt

.PHONY: demo test lint typecheck bench install install-dev browser lock clean
CHROMIUM ?= /usr/bin/chromium

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIPFLAGS) -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install $(PIPFLAGS) -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## demo: run the platform with the virtual factory at http://127.0.0.1:8000
demo: install
	$(VENV)/bin/kiln demo $(DEMO_ARGS)

## test: lint, type-check and run the whole test suite (what CI runs)
# Most tests wait on servers, brokers and subprocesses, so pytest-xdist runs them in
# $(TEST_WORKERS) processes, one per core (`make test TEST_WORKERS=N` for another count);
# worksteal evens out the slow end-to-end files. Tests marked `alone` time latency or loop
# stalls, which another test on the same CPU would distort: they run afterwards, by themselves
# (exit 5: a PYTEST_ARGS selection held none of them).
TEST_WORKERS ?= 2
test: install-dev browser lint typecheck
	@# Kiln's modules byte-compiled once: where PYTHONDONTWRITEBYTECODE is set (CI machines
	@# here set it), each of the tests' `kiln` subprocesses would compile them all again.
	$(PY) -m compileall -q src >/dev/null
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m 'not alone' $(PYTEST_ARGS)
	$(PY) -m pytest -m alone $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The browser test drives Debian's Chromium (never a downloaded browser); install it when we can.
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    || echo "make: could not install chromium; the browser test will say so"; \
	fi

lint: install-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

typecheck: install-dev
	$(VENV)/bin/mypy

## bench: run the benchmarks, one JSON object per line (BENCH_ARGS=--quick for a smoke run)
bench: install-dev
	$(PY) -m benchmarks $(BENCH_ARGS)

## lock: re-pin every dependency (run after changing pyproject.toml)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install $(PIPFLAGS) -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^kiln' > $(CONSTRAINTS)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
