# Two commands: `make run` and `make test`. Both install what they need first.
# `make test-fast` is the development loop: everything but the browser and worker tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# System libraries: WeasyPrint (pango, harfbuzz, fontconfig) and fonts for Latin, Cyrillic
# and Arabic script; poppler (pdftoppm) for the documents' thumbnails; Chromium for the tests,
# ClamAV's clamd for the antivirus tests (a test starts it with a one-signature database), and
# pg_dump (postgresql-client) for the test that dumps the database looking for a document's words.
# gettext (xgettext, msgfmt) for the test that finds every message missing from a catalogue.
RUN_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig \
            fonts-noto-core fonts-dejavu-core poppler-utils
TEST_DEBS := $(RUN_DEBS) chromium clamav-daemon postgresql-client gettext

# The whole suite runs on pytest-xdist, one process per core. Each worker has its own test
# database (pytest-django names it test_<name>_gw<n>) and its own Redis database (the base
# number of REDIS_URL plus the worker's index, tests/conftest.py); live servers and clamd take
# a free port each; the browser tests all go to one worker (tests/conftest.py). `make test
# XDIST=` runs serially.
XDIST ?= -n auto --dist loadgroup
# The fast loop keeps its test databases between runs (migrate still applies new migrations).
# Without the browser tests there is no group to keep on one worker: an idle worker takes
# pending tests from the other one's queue (worksteal), so that neither waits at the end.
FAST_XDIST ?= -n auto --dist worksteal --reuse-db
# Compiled modules are kept (__pycache__/, ignored by git) even where the environment asks
# Python not to write them: each test process rewrites and compiles every test module it
# collects, 9 s of CPU without the cache and 3 s with it, and every manage.py the tests start
# compiles the project again.
TEST_ENV = services="$$($(PY) scripts/test_services.py)" || exit 1; \
	env -u PYTHONDONTWRITEBYTECODE DMP_ENV=test DJANGO_ALLOW_ASYNC_UNSAFE=true $$services

.PHONY: run test test-fast venv deps-run deps-test deps-node system-run system-test lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-installed: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

deps-run: $(VENV)/.run-installed
deps-test: $(VENV)/.test-installed

# The offline validator of the International Patient Summary (Node 20.19+ and npm): the HL7 IPS
# 2.0.0 profiles and @medplum/core, pinned by the lock file. tests/test_fhir_ips.py runs it; in
# CI a missing validator fails those tests.
NODE_VALIDATOR := scripts/fhir-validate
$(NODE_VALIDATOR)/node_modules/.installed: $(NODE_VALIDATOR)/package.json $(NODE_VALIDATOR)/package-lock.json
	cd $(NODE_VALIDATOR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@
deps-node: $(NODE_VALIDATOR)/node_modules/.installed

system-run:
	@DEBS="$(RUN_DEBS)" sh scripts/system_deps.sh

system-test:
	@DEBS="$(TEST_DEBS)" sh scripts/system_deps.sh

run: deps-run system-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

test: deps-test system-test deps-node
	$(VENV)/bin/ruff check .
	@$(TEST_ENV) $(PY) -m pytest $(XDIST) --durations=25 $(PYTEST_ARGS)

# 2,060 tests in 1 min 13 s to 1 min 18 s on two quiet cores (six runs of `make test-fast`
# itself; 1 min 52 s to 1 min 59 s of CPU in pytest's processes); 1 min 43 s to 1 min 54 s
# the same morning before the last round, 2 min 53 s to 3 min 14 s a session earlier. The personas'
# world is built once per process and committed, each test seeing it in its own transaction
# (tests/personas.py); tests write their files under /dev/shm; the query-plan tests fill their
# tables once per file; the refused production configurations start from one forked interpreter
# (tests/fresh_starts.py); one IPS validator per process; what a process imported is frozen out
# of the garbage collector, a transactional test's rows are deleted rather than every table
# truncated, and the test client's login writes its session once (tests/conftest.py);
# PostgreSQL is reached through its Unix socket (scripts/test_services.py); the demo is seeded
# once for the three checks that read it. In the application: the record-access query is
# compiled once per shape (dmp/policy.py), parsed PDF stylesheets are kept (dmp/pdf.py), one
# Redis client per pool (dmp/cache.py), the login writes the idle timeout with the session, the
# audit head moves by written SQL (dmp/audit.py), the account's own and represented records are
# read by two plain branches (dmp/policy.py).
# Under a minute is still to do: what is left is spread over the tests' own requests (Django
# compiling SQL is the largest part, then templates, PostgreSQL, WeasyPrint, schemathesis), not
# any setup.
# Markers (pyproject.toml): browser, worker, slow; another subset with e.g.
# `make test-fast MARKERS="not browser and not worker and not slow"`.
MARKERS ?= not browser and not worker
test-fast: deps-test deps-node
	@$(TEST_ENV) $(PY) -m pytest -m "$(MARKERS)" $(FAST_XDIST) $(PYTEST_ARGS)

lint: deps-test
	$(VENV)/bin/ruff check .
