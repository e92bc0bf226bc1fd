# Two commands set everything up: `make run` (the bot) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test bench sync lint mutation

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) bot.py

sync: $(VENV)/.installed
	$(PY) bot.py --sync

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Mutation testing of the services with the unit tests (configured in pyproject.toml, [tool.mutmut]).
# A bounded set by default; `make mutation MUTATE='services.*'` for all. With RETOUCH_TEST_POSTGRES_URL
# set (eval "$$(bash .ci/postgres.sh)"), the PostgreSQL half of the store tests counts too.
MUTATE ?= services.quota.* services.modelhub.* services.pacing.* services.images.*

mutation: $(VENV)/.installed
	$(VENV)/bin/mutmut run --max-children 2 $(foreach name,$(MUTATE),"$(name)")
	$(PY) tools/mutation_score.py $(VENV)/bin/mutmut
