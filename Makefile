# The two commands a newcomer needs: `make run` and `make test`.
# Each one creates the virtual environment and installs the project on first use;
# the Delta jars are fetched from Maven Central the first time Spark starts.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := local,bundle,openlineage

.PHONY: run test test-fast test-slow stress lint bench bench-quick bench-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

## Run the example pipeline locally on Spark + Delta.
run: $(STAMP)
	$(BIN)/python pipelines/generate_data.py
	$(BIN)/odibi run pipelines/customer_pipeline.yaml --lineage .odibi/lineage.json --report .odibi/report.html

## Lint, the layer contracts, then the test suite; the slow tests are left to test-slow.
## The Spark Connect suite runs in a second pytest process at the same time: a remote
## session puts the whole process in Connect mode (scripts/run-default-tests.sh).
test: $(STAMP)
	@bash scripts/ensure-chromium.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	@bash scripts/run-default-tests.sh $(BIN)/python

## Only the slow tests: multi-process concurrency, SIGKILL faults.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -v -m "slow and not connect"
	$(BIN)/python -m pytest -v -m "connect and slow" tests/connect

## Only the fast tests: no JVM, no browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not spark and not browser and not connect"

## The concurrency, fault and secret tests, 5 times in a row; stops at the first failure.
STRESS_TESTS := tests/reliability/test_concurrency.py tests/reliability/test_faults.py \
	tests/reliability/test_secrets.py
stress: $(STAMP)
	@for round in 1 2 3 4 5; do \
		echo "stress round $$round of 5"; \
		$(BIN)/python -m pytest -q -p no:cacheprovider $(STRESS_TESTS) || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

## Benchmarks (not run by CI): every scenario, or smaller sizes and fewer pairs.
## Kedro, the baseline of the orchestration rows, comes from the `bench` extra.
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS),bench]"

bench: bench-deps
	$(BIN)/python bench/run.py

bench-quick: bench-deps
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) .odibi .pytest_cache
