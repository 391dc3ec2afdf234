# The two commands a user needs: `make example` and `make test`.
PYTHON ?= python3
EXECUTOR ?= $(PYTHON) -m executor
PYTEST_ARGS ?=

.PHONY: help install engine registry images deploy-images compose-up example server test unit integration lint typecheck check bench clean-docker

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

install: ## Install the executor and its development tools
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'

engine: ## Make sure a Docker engine answers (installs docker.io and starts dockerd when needed)
	bash scripts/ensure-docker.sh

registry: ## Install Debian's docker-registry and htpasswd for the registry tests (starts nothing)
	bash scripts/ensure-registry.sh

images: install engine ## Build the local images (busybox, debian, python) that are missing or stale
	$(EXECUTOR) images build

deploy-images: images ## Build the images of compose.yaml: the executor itself, postgres, redis (no registry)
	$(EXECUTOR) images build executor postgres redis

compose-up: deploy-images ## Start compose.yaml (needs EXECUTOR_TOKEN, EXECUTOR_WORKER_TOKEN, EXECUTOR_DB_PASSWORD; README "Deploy")
	DOCKER_GID=$${DOCKER_GID:-$$(stat -c %g /var/run/docker.sock)} docker-compose up --detach

example: images ## Run the example flow examples/etl_csv.yaml end to end
	$(EXECUTOR) run examples/etl_csv.yaml

server: images ## Serve Kestra's REST API on http://127.0.0.1:8080 (Ctrl-C stops it; see README "Server mode")
	$(EXECUTOR) server

test: install ## Run the whole test suite against the real engine (starts what it needs, stops what it started)
	PYTHON=$(PYTHON) bash scripts/run-tests.sh $(PYTEST_ARGS)

unit: install ## Run only the unit tests (no engine needed)
	$(PYTHON) -m pytest tests/unit $(PYTEST_ARGS)

lint: install ## ruff
	$(PYTHON) -m ruff check executor tests bench
	$(PYTHON) -m ruff format --check executor tests bench

typecheck: install ## mypy --strict
	$(PYTHON) -m mypy

check: lint typecheck test ## lint, types and the whole test suite

bench: images ## Benchmarks: the executor against a container per task and raw docker exec
	$(PYTHON) bench/bench_exec.py
	$(PYTHON) bench/bench_control_flow.py
	$(PYTHON) bench/bench_workspace_size.py
	$(PYTHON) bench/bench_workspace.py
	$(PYTHON) bench/bench_logs.py
	BENCH_LOOP_N=30 $(PYTHON) bench/bench_server.py 300 4
	$(PYTHON) bench/bench_workers.py
	$(PYTHON) bench/bench_purge.py 10000
	$(PYTHON) bench/bench_history.py --size 20000
