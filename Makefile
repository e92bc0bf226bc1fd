# Two commands set everything up: `make run` (the bot) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# Python 3.11 or newer, checked before anything is installed. The venv carries a stamp naming the version
# that made it: one made by another interpreter (an older Python's failed first try) is made afresh.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import platform; print(platform.python_version())' 2>/dev/null)
ifneq ($(shell $(PYTHON) -c 'import sys; print(sys.version_info >= (3, 11))' 2>/dev/null),True)
$(error Python 3.11 or newer is needed; $(PYTHON) is $(if $(PYTHON_VERSION),Python $(PYTHON_VERSION),not found). Name another with PYTHON=python3.11 (or newer))
endif
MADE_BY := $(VENV)/.made-by-python-$(PYTHON_VERSION)

.PHONY: run test bench bench-check sync check lint lock lock-check translations mutation mutation-smoke

# Installs come from the lock files, exact versions checked against their hashes: requirements.txt holds
# what the bot runs on, requirements-dev.txt that and the test and development tools. `make lock` writes
# both from pyproject.toml. The bot runs from this folder; the project itself is not installed.
INSTALL := $(PY) -m pip install --quiet --require-hashes --no-deps

$(MADE_BY):
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	touch $@

$(VENV)/.runtime: requirements.txt $(MADE_BY)
	$(INSTALL) -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(MADE_BY)
	$(INSTALL) -r requirements-dev.txt
	touch $@

# Universal locks (every platform, Python 3.11 up); the runtime one is held to the versions of the other.
# Pins already in them are kept unless pyproject.toml no longer allows them (`make lock UPGRADE=--upgrade`).
COMPILE = $(VENV)/bin/uv --quiet pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--no-annotate --custom-compile-command "make lock" $(UPGRADE)
lock: $(VENV)/.dev
	$(COMPILE) --extra test --extra dev -o requirements-dev.txt
	$(COMPILE) -c requirements-dev.txt -o requirements.txt

# CI: the locks are what `make lock` writes from pyproject.toml now (none was forgotten after an edit).
lock-check: $(VENV)/.dev
	rm -rf build/lock && mkdir -p build/lock && cp requirements.txt requirements-dev.txt build/lock/
	$(COMPILE) --extra test --extra dev -o build/lock/requirements-dev.txt
	$(COMPILE) -c build/lock/requirements-dev.txt -o build/lock/requirements.txt
	diff -u requirements-dev.txt build/lock/requirements-dev.txt && diff -u requirements.txt build/lock/requirements.txt

run: $(VENV)/.runtime
	$(PY) bot.py

sync: $(VENV)/.runtime
	$(PY) bot.py sync

check: $(VENV)/.runtime
	$(PY) bot.py check

test: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(PY) -m bench $(BENCH_ARGS)

# The regression guard: a quick run whose ratios (each over a floor measured in the same run) may not be more
# than 20 % above bench/baseline.json's. After a change meant to move one: `make bench-check CHECK_ARGS=--write`.
bench-check: $(VENV)/.dev
	$(PY) -m bench.check $(CHECK_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Re-extract the member-facing words into services/text/locales/retouch.pot and merge them into every catalog;
# `make translations LANGUAGE=fr` first starts a French catalog. Then translate the new entries of the .po.
# No source locations: they would change with every edit of words.py and make catalogs conflict in merges.
LOCALES := services/text/locales
translations: $(VENV)/.dev
	$(VENV)/bin/pybabel --quiet extract -F babel.cfg -k _ -k _n:1,2 --no-default-keywords --no-location --project=Retouch \
		-o $(LOCALES)/retouch.pot services cogs
	$(if $(LANGUAGE),test -f $(LOCALES)/$(LANGUAGE)/LC_MESSAGES/retouch.po || \
		$(VENV)/bin/pybabel --quiet init -D retouch -i $(LOCALES)/retouch.pot -d $(LOCALES) -l $(LANGUAGE))
	$(VENV)/bin/pybabel --quiet update -D retouch -i $(LOCALES)/retouch.pot -d $(LOCALES) --ignore-pot-creation-date

# Mutation testing of the services with their unit tests (configured in pyproject.toml, [tool.mutmut]).
# A bounded set by default; `make mutation MUTATE='services.*'` for all. With RETOUCH_TEST_POSTGRES_URL
# set (eval "$$(bash .ci/postgres.sh)"), the PostgreSQL half of the store tests counts too. It fails when
# the score is under MUTATION_FLOOR percent.
MUTATE ?= services.storage.quota.* services.outside.modelhub.* services.domain.pacing.* services.imaging.images.*
MUTATION_FLOOR ?= 85

mutation: $(VENV)/.dev
	$(VENV)/bin/mutmut run --max-children 2 $(foreach name,$(MUTATE),"$(name)")
	$(PY) tools/mutation_score.py $(VENV)/bin/mutmut --fail-under $(MUTATION_FLOOR)

# CI: one small module, so that the command itself cannot break unnoticed (a few minutes; 10 at most).
mutation-smoke: $(VENV)/.dev
	timeout 600 $(MAKE) mutation MUTATE='services.domain.pacing.*'
