# make run   - start glance-registry and glance-api on SQLite + files, state in .state/
# make stop  - stop them
# make test  - lint and the whole test suite
# make unit  - the unit tests alone (SQLite, no server), in seconds: the inner loop (PYTEST_ARGS=... as for test)
# make bench - measure glance-lite against the machine's ceilings (~10 min; BENCH_ARGS=--with-4gib,
#              or BENCH_ARGS="--db postgresql" for the registry on PostgreSQL)
# make bench-smoke - the same bench with tiny sizes (under 30 s), as CI runs it
PYTHON ?= python3
# Python's default: byte-code caches, pytest's rewritten test modules among them (some
# environments turn them off, which costs every test run a second or more per process)
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: run stop test unit lint format venv bench bench-smoke bench-store

$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@bash tools/local.sh start

stop:
	@bash tools/local.sh stop

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(VENV)/bin/python -m pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

unit: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist worksteal -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

$(BENCH_STAMP): $(STAMP) setup.cfg
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.run --smoke $(BENCH_ARGS)

bench-store: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.stores --store $(STORE) $(BENCH_ARGS)
