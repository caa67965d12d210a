# The two commands of the README. Both install what they need first (idempotent).
PYTHON ?= python3

.PHONY: demo test setup setup-test lint

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

setup-test:
	PYTHON=$(PYTHON) bash scripts/setup.sh test

demo: setup
	brainalign demo

test: setup-test
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check src tests benchmarks
