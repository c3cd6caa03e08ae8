# Omium developer entry points. The stack lives under .omium/ (see infra/localstack).

VENV   := .venv
OMIUM  := $(VENV)/bin/omium
PYTEST := $(VENV)/bin/pytest
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k kafka -x"`.
PYTEST_ARGS ?=

.PHONY: bootstrap up down status test demo lint

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

lint:
	$(VENV)/bin/ruff check .
