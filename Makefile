# Herald: `make run` serves the bundled rules; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVING := $(VENV)/.installed-serving
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install install-serving run test lint typecheck unit bench soak clean

# `make run` installs only what serving needs; `make install` (and every target that tests, lints
# or measures) adds the dev extra on top.
install-serving: $(SERVING)

$(SERVING): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(SERVING)

install: $(STAMP)

$(STAMP): $(SERVING)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# PORT=8081 make run serves on another port. The README writes .venv/bin/herald, which works in any
# terminal; activating the environment makes plain `herald` work too.
run: install-serving
	@echo "herald: http://$(HOST):$(PORT)/  (in another terminal: .venv/bin/herald --help," \
		"or source .venv/bin/activate for plain herald)"
	$(BIN)/herald serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy service

# MaxMind's own test databases, from the maxminddb sdist on PyPI, fetched once at install time.
MAXMIND_DATA := $(VENV)/maxmind-test-data/.fetched
$(MAXMIND_DATA): $(STAMP)
	$(BIN)/python -m tests.maxmind_data
	touch $@

unit: install $(MAXMIND_DATA)
	$(BIN)/pytest

test: browser-deps postgres-deps lint unit

# The browser tests drive Debian's Chromium through its ChromeDriver (tests/test_browser.py).
.PHONY: browser-deps
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update && apt-get install -y chromium chromium-driver)

# The audit store tests start their own PostgreSQL server (tests/postgres.py) from Debian's package;
# its postinst may also set up a system cluster: the tests do not use it.
PG_INITDB ?= /usr/lib/postgresql/*/bin/initdb
.PHONY: postgres-deps
postgres-deps:
	@ls $(PG_INITDB) >/dev/null 2>&1 || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)

# Every bench script but the soak (bench/common.py is a helper module, not a bench).
bench: install
	@for script in $(filter-out bench/soak.py bench/common.py,$(wildcard bench/*.py)); do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Load and fault tests against a real server: about 2 minutes; prints a table of what held.
soak: install
	$(BIN)/python bench/soak.py

# Everything a build, a run or the tests leave behind; the rules and the sources stay.
clean:
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
