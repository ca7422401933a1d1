# rxws — the whole set-up is `make demo` and `make test` on a fresh machine.
PYTHON ?= python3
VENV := .venv
VENV_AIO := .venv-aio
PY := $(VENV)/bin/python
PY_AIO := $(VENV_AIO)/bin/python
DURATION ?= 8
MINUTES ?= 10
SEED ?= 1

.PHONY: demo test lint types unit unit-aio notebooks services bench soak clean venv

# .venv: reactivex 6.x with the dev, fast (orjson), bench and redis extras.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,fast,bench,redis,proxy,prometheus,otel,pandas,auth]'
	touch $@

# .venv-aio: aioreactive pins reactivex 4.1; the suite runs there too (stdlib json, no orjson).
$(VENV_AIO)/.installed: pyproject.toml
	test -x $(PY_AIO) || $(PYTHON) -m venv $(VENV_AIO)
	$(PY_AIO) -m pip install -q --upgrade pip
	$(PY_AIO) -m pip install -q -e '.[dev,aio,proxy,prometheus,otel,pandas,auth]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/rxws demo --duration $(DURATION)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check rxws tests benchmarks examples
	$(VENV)/bin/ruff format --check rxws tests benchmarks examples

types: $(VENV)/.installed
	$(VENV)/bin/mypy --strict rxws

# A real Redis server for the shared rate-limit ledger tests (they start their own
# redis-server on a free loopback port). Installed from Debian's packages when missing.
services:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (for the shared-ledger tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

unit: $(VENV)/.installed services
	$(PY) -m pytest -q -p no:cacheprovider

# The wall-clock tests (a 30 s soak, pacing under jitter, a 200-subscription burst) exercise the same
# code under reactivex 6 in `unit`; here they are deselected (not skipped) to keep `make test` short.
unit-aio: $(VENV_AIO)/.installed
	$(PY_AIO) -m pytest -q -p no:cacheprovider -m "not wallclock"

notebooks: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider --nbmake notebooks

test: lint types unit unit-aio notebooks

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

# Chaos soak: requests + streams through FaultProxy with random faults for $(MINUTES) minutes;
# prints the counts and fails when an invariant breaks (see benchmarks/soak.py).
soak: $(VENV)/.installed
	$(PY) benchmarks/soak.py --minutes $(MINUTES) --seed $(SEED)

clean:
	rm -rf $(VENV) $(VENV_AIO) .pytest_cache .mypy_cache .ruff_cache
