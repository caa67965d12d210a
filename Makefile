# The two commands of the README. Both install what they need first (idempotent).
PYTHON ?= python3
# the suite runs on both cores, one test file per worker at a time (module fixtures built once),
# files handed out in collection order (tests/conftest.py puts the longest first)
TEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder --durations=15

.PHONY: demo test setup setup-test lint

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

setup-test:
	PYTHON=$(PYTHON) bash scripts/setup.sh test

demo: setup
	brainalign demo

test: setup-test
	$(PYTHON) -m pytest -q $(TEST_ARGS)

lint:
	$(PYTHON) -m ruff check src tests benchmarks examples
