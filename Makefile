# The two commands a newcomer needs: `make run` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run services test lint format bench compose-check compose-check-runs clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed  ## the whole local stack: PostgreSQL, connector API (live), dagster dev
	$(BIN)/wind-stack $(ARGS)

services: $(BIN)/.installed  ## PostgreSQL and the connector API only: run `dagster dev` yourself
	$(BIN)/wind-stack --no-dagster $(ARGS)

test: $(BIN)/.installed  ## the whole test suite plus ruff
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.installed  ## every benchmark; prints medians and ratios to floors
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# docker-compose.yml for real, from a fresh clone of HEAD: up --build --wait, every service
# healthy, a partition through the daemon and the code server, target rows checked, down -v.
# Minutes, and a Docker engine (DOCKER_HOST); not part of `make test`.
compose-check: $(BIN)/.installed
	$(BIN)/python docker/compose_check.py $(ARGS)

# The same with docker-compose.runs.yml (DockerRunLauncher): a backfill's runs in parallel containers.
compose-check-runs: $(BIN)/.installed
	$(BIN)/python docker/compose_check.py --runs $(ARGS)

clean:  ## removes .venv, the stack's data (.wind) and the .env it wrote
	rm -rf $(VENV) .wind .pytest_cache
	if head -1 .env 2>/dev/null | grep -q '^# Written by wind-stack'; then rm .env; fi
