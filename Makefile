# Two commands a newcomer needs: `make run` and `make test`. Everything else is for the team.
SHELL := /bin/bash
DEV := bash scripts/dev.sh

.PHONY: run test fuzz lint format bench load bootstrap services-stop clean

run:            ## bootstrap, migrate, load the demo, serve web + worker + beat
	@$(DEV) run

test:           ## bootstrap, then the whole suite against real PostgreSQL, Redis and Chromium
	@$(DEV) test

fuzz:           ## the API, body and form fuzzers run long: FUZZ_EXAMPLES (default 100) each
	@$(DEV) fuzz

bootstrap:      ## only the virtualenv and the services
	@$(DEV) bootstrap

lint:           ## ruff (lint and format check)
	@$(DEV) lint

format:
	@.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:          ## benchmark scripts under bench/, figures against a baseline in the same run
	@$(DEV) bench

load:           ## 60 s of a realistic mix against gunicorn and a worker: throughput, p50/p99, errors
	@$(DEV) load

services-stop:  ## stop the project-local PostgreSQL and Redis started by the bootstrap
	@$(DEV) stop

clean: services-stop
	rm -rf .venv .data artifacts
