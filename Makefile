# The README's two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install spark browser java clean

demo: install
	$(BIN)/segkit demo

test: install spark browser java
	$(BIN)/pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The tests also run the project on Apache Spark; `make demo` stays on DuckDB and does not need it.
spark: $(VENV)/.spark-installed

$(VENV)/.spark-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,spark]'
	touch $@

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
	rm -rf $(VENV) target logs dbt_project/dbt_packages segkit.duckdb reports/*.html .spark derby.log
