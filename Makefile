# Two set-up commands for a fresh machine with only Python 3.11+ and make:
#   make demo   install into .venv and run every bundled pipeline on the embedded default
#   make test   install with dev dependencies and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# Whole files per worker (module fixtures set up once), in the order tests/conftest.py gives
# (slowest first), and the 15 slowest tests at the end.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder --durations=15

.PHONY: install demo test check bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "lakebox needs Python 3.11+, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ml]'
	@touch $(STAMP)

# The suite also needs the heavy extras the demo does without: pyspark (it ships Spark's
# jars) and `lakebox serve`'s Dagster set. The MLflow UI is the full mlflow package, whose
# metadata asks for pyarrow<26 though it runs with our pin: installed without its deps.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ml,spark,serve]'
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt mlflow mlflow-tracing gunicorn huey
	@touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lakebox demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(TEST_STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src/lakebox

bench: $(STAMP)
	$(BIN)/lakebox bench --record docs/benchmarks.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .lakebox
