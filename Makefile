# Omium developer entry points. The stack lives under .omium/ (see infra/localstack).

VENV   := .venv
OMIUM  := $(VENV)/bin/omium
PYTEST := $(VENV)/bin/pytest
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k kafka -x"`.
PYTEST_ARGS ?=

.PHONY: bootstrap up down status test demo lint chart-test

# The Helm chart offline: lint, render, validate against the Kubernetes API (helm/test-chart.sh).
chart-test:
	bash helm/test-chart.sh

bootstrap:
	bash infra/bootstrap.sh

up:
	$(OMIUM) up --profile full

down:
	$(OMIUM) down

status:
	$(OMIUM) status

test: bootstrap
	$(OMIUM) up --profile full
	$(PYTEST) $(PYTEST_ARGS)

demo: bootstrap
	$(OMIUM) up --profile full
	$(OMIUM) demo

# Style, formatting, the import layers (pyproject.toml [tool.importlinter]), mypy --strict, and
# the generated sync client (omium/sdk/client/_sync.py) matching its async source.
lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/python tools/generate_sync_client.py --check
