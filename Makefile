# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates or reuses .venv and installs what it needs from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck imports pytest bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# the demo's last section runs Celery workers (Redis: Debian's redis-server)
$(VENV)/.stamp-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[celery]"
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

$(VENV)/.stamp-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	touch $@

demo: $(VENV)/.stamp-demo
	$(BIN)/python demo/run.py

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench demo

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy

# the layers of pyproject.toml's [tool.importlinter]: every import points down
imports: $(VENV)/.stamp-test
	$(BIN)/lint-imports --no-cache

pytest: $(VENV)/.stamp-test
	$(BIN)/python -m pytest

test: lint typecheck imports pytest

bench: $(VENV)/.stamp-bench
	$(BIN)/python -m bench

# every suite as a smoke test (about a minute in all); the figures are not to be quoted
bench-quick: $(VENV)/.stamp-bench
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
