# rxws — the whole set-up is `make demo` and `make test` on a fresh machine.
PYTHON ?= python3
VENV := .venv
VENV_AIO := .venv-aio
PY := $(VENV)/bin/python
PY_AIO := $(VENV_AIO)/bin/python
DURATION ?= 8

.PHONY: demo test lint types unit unit-aio bench clean venv

# .venv: reactivex 6.x with the dev, fast (orjson), bench and redis extras.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,fast,bench,redis]'
	touch $@

# .venv-aio: aioreactive pins reactivex 4.1; the suite runs there too (stdlib json, no orjson).
$(VENV_AIO)/.installed: pyproject.toml
	test -x $(PY_AIO) || $(PYTHON) -m venv $(VENV_AIO)
	$(PY_AIO) -m pip install -q --upgrade pip
	$(PY_AIO) -m pip install -q -e '.[dev,aio]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/rxws demo --duration $(DURATION)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check rxws tests benchmarks examples
	$(VENV)/bin/ruff format --check rxws tests benchmarks examples

types: $(VENV)/.installed
	$(VENV)/bin/mypy --strict rxws

unit: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider

unit-aio: $(VENV_AIO)/.installed
	$(PY_AIO) -m pytest -q -p no:cacheprovider

test: lint types unit unit-aio

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(VENV_AIO) .pytest_cache .mypy_cache .ruff_cache
