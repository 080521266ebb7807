# Everyday commands. `make plan` and `make test` need only Python 3.11+; the targets that talk to
# AWS need the Pulumi CLI and AWS credentials, and say so when they are missing.

SHELL := /bin/bash
STACK ?= dev
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
# The same virtualenv Pulumi uses (Pulumi.yaml: runtime.options.virtualenv).
READY := $(VENV)/.installed

.PHONY: help setup test lint format plan preview up destroy kubeconfig hosts outputs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(READY): requirements.txt tests/requirements.txt apps/comments/requirements.txt platform/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r tests/requirements.txt -r apps/comments/requirements.txt
	touch $@

setup: $(READY) ## Create ./venv with the program, the library and the test tools

plan: $(READY) ## Offline plan of STACK (default dev): no cloud account needed; JSON=plan.json also writes JSON
	$(BIN)/python -m app_platform.plan --stack $(STACK) $(if $(JSON),--json $(JSON))

test: $(READY) ## Run every test (offline; PostgreSQL tests need its server binaries)
	$(BIN)/python -m pytest

lint: $(READY) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(READY) ## Format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

define need_pulumi
	@command -v pulumi >/dev/null || { echo "This target needs the Pulumi CLI: https://www.pulumi.com/docs/iac/download-install/ (then 'pulumi login')"; exit 1; }
	@command -v aws >/dev/null || { echo "This target needs the AWS CLI v2 with credentials (aws sts get-caller-identity)"; exit 1; }
endef

preview: $(READY) ## pulumi preview of STACK
	$(need_pulumi)
	pulumi preview --stack $(STACK) --diff

up: $(READY) ## pulumi up of STACK
	$(need_pulumi)
	pulumi up --stack $(STACK)

destroy: ## pulumi destroy of STACK
	$(need_pulumi)
	pulumi destroy --stack $(STACK)

outputs: ## Show STACK's outputs
	$(need_pulumi)
	pulumi stack output --stack $(STACK)

hosts: $(READY) ## Map the stack's hostnames to its load balancer in /etc/hosts (asks for sudo)
	$(need_pulumi)
	pulumi stack output --json --stack $(STACK) > .stack-outputs.json
	@trap 'rm -f .stack-outputs.json' EXIT; \
	  $(BIN)/python -m app_platform.hosts --outputs .stack-outputs.json && \
	  sudo $(BIN)/python -m app_platform.hosts --outputs .stack-outputs.json --write

kubeconfig: ## Write the cluster's kubeconfig into ~/.kube/config (aws eks update-kubeconfig)
	$(need_pulumi)
	$$(pulumi stack output kubeconfigCommand --stack $(STACK))
