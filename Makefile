# Two commands set everything up: `make run` (the bot) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test bench sync check lint translations mutation

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) bot.py

sync: $(VENV)/.installed
	$(PY) bot.py sync

check: $(VENV)/.installed
	$(PY) bot.py check

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Re-extract the member-facing words into services/locales/retouch.pot and merge them into every catalog;
# `make translations LANGUAGE=fr` first starts a French catalog. Then translate the new entries of the .po.
# No source locations: they would change with every edit of words.py and make catalogs conflict in merges.
LOCALES := services/locales
translations: $(VENV)/.installed
	$(VENV)/bin/pybabel --quiet extract -F babel.cfg -k _ --no-default-keywords --no-location --project=Retouch \
		-o $(LOCALES)/retouch.pot services cogs
	$(if $(LANGUAGE),test -f $(LOCALES)/$(LANGUAGE)/LC_MESSAGES/retouch.po || \
		$(VENV)/bin/pybabel --quiet init -D retouch -i $(LOCALES)/retouch.pot -d $(LOCALES) -l $(LANGUAGE))
	$(VENV)/bin/pybabel --quiet update -D retouch -i $(LOCALES)/retouch.pot -d $(LOCALES) --ignore-pot-creation-date

# Mutation testing of the services with the unit tests (configured in pyproject.toml, [tool.mutmut]).
# A bounded set by default; `make mutation MUTATE='services.*'` for all. With RETOUCH_TEST_POSTGRES_URL
# set (eval "$$(bash .ci/postgres.sh)"), the PostgreSQL half of the store tests counts too.
MUTATE ?= services.quota.* services.modelhub.* services.pacing.* services.images.*

mutation: $(VENV)/.installed
	$(VENV)/bin/mutmut run --max-children 2 $(foreach name,$(MUTATE),"$(name)")
	$(PY) tools/mutation_score.py $(VENV)/bin/mutmut
