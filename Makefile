# The two commands of the README. Both install what they need first (idempotent).
PYTHON ?= python3
# the suite runs on both cores, one test file per worker at a time (module fixtures built once),
# files handed out in collection order (tests/conftest.py puts the longest first)
TEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder --durations=15

.PHONY: demo test test-zoo setup setup-test lint

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

setup-test:
	PYTHON=$(PYTHON) bash scripts/setup.sh test

demo: setup
	brainalign demo

test: setup-test
	$(PYTHON) -m pytest -q $(TEST_ARGS)

# The zoo extra's vision models (torchvision, timm, open_clip): PyPI's torchvision does not import
# beside the CPU torch 2.13 and no CPU build of a matching pair is on the index, so they get their
# own environment with the pair that imports here (torch 2.14.1 + torchvision 0.29.1, a CUDA build
# of ~6 GB that runs on the CPU; ~6 minutes the first time). CI runs it after `make test`.
ZOO_VENV ?= .venv-zoo
test-zoo:
	python3 -m venv --clear $(ZOO_VENV)
	$(ZOO_VENV)/bin/python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(ZOO_VENV)/bin/python -m pip install -q --disable-pip-version-check -e ".[test,zoo]"
	$(ZOO_VENV)/bin/python -c "import torchvision, timm, open_clip"
	$(ZOO_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/features/test_torchvision_models.py

lint:
	$(PYTHON) -m ruff check src tests benchmarks examples
