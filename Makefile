# The README's two commands: `make demo` and `make test`. Each creates .venv and installs what it needs,
# at the exact versions of constraints.txt (the lock), so one commit installs the same versions anywhere.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := constraints.txt
# PIP_CONSTRAINT also reaches the environments pip builds packages in, so setuptools is pinned there too.
PIP = PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(BIN)/pip

.PHONY: demo test test-fast install spark browser java lock test-newest clean

demo: install
	$(BIN)/segkit demo

test: install spark browser java
	$(BIN)/pytest

# The part a developer runs often: everything but Spark and the tests marked slow (README, "Tests").
test-fast: install browser
	$(BIN)/pytest -m "not spark and not slow"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

# The tests also run the project on Apache Spark; `make demo` stays on DuckDB and does not need it.
spark: $(VENV)/.spark-installed

$(VENV)/.spark-installed: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test,spark]'
	touch $@

# Refresh the lock: the newest versions pyproject.toml's ranges allow, for every extra, on every platform
# and Python from 3.11 (uv's universal resolution), with pip, setuptools, wheel and uv themselves.
lock: install
	$(PIP) install --quiet uv
	printf 'pip\nsetuptools\nwheel\nuv\n' | $(BIN)/uv pip compile pyproject.toml - --all-extras --universal \
		--python-version 3.11 --upgrade --quiet --custom-compile-command "make lock" -o $(LOCK)

# The suite on the newest versions the ranges allow, ignoring the lock, in a venv of its own: finds a
# breaking release on purpose, before a new user does.
NEWEST := .venv-newest
test-newest: browser java
	rm -rf $(NEWEST)
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/pip install --quiet --upgrade pip
	$(NEWEST)/bin/pip install --quiet --upgrade -e '.[test,spark]'
	$(NEWEST)/bin/pip list --format=freeze > $(NEWEST)/versions.txt
	$(NEWEST)/bin/pytest

# Spark needs Java 17 (Debian's package).
java:
	@command -v java >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

# The report tests drive a real headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV) $(NEWEST) target logs dbt_project/dbt_packages segkit.duckdb reports/*.html .spark derby.log
