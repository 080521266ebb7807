# Everyday commands. `make plan` and `make test` need only Python 3.11+; the targets that talk to
# AWS need the Pulumi CLI and AWS credentials, and say so when they are missing.

SHELL := /bin/bash
STACK ?= dev
# The folder of the Pulumi project to plan: the platform, or an examples/<name> project.
PROJECT ?= .
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
# The same virtualenv Pulumi uses (Pulumi.yaml: runtime.options.virtualenv); the bootstrap
# project uses it too.
READY := $(VENV)/.installed
# The policy pack runs in its own virtualenv (policy/PulumiPolicy.yaml).
POLICY_READY := policy/venv/.installed
# checkov cannot share ./venv (it pins packaging 23.2, Pulumi needs 26+).
CHECKOV_VENV := build/checkov-venv
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_READY := $(CHECKOV_VENV)/.installed
# The bootstrap stack keeps its own state on this machine: it creates the bucket the others use.
BOOTSTRAP_STACK ?= ci
BOOTSTRAP_STATE := bootstrap/.pulumi-state
REGION ?= us-east-1
# Every stack file of the platform project, for the commands `make bootstrap` prints.
STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))

.PHONY: help setup test lint format plan cost cli preview up destroy kubeconfig hosts outputs bootstrap e2e

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(READY): requirements.txt tests/requirements.txt apps/comments/requirements.txt platform/pyproject.toml tools/pyproject.toml bootstrap/requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r tests/requirements.txt -r apps/comments/requirements.txt -r bootstrap/requirements.txt
	touch $@

$(POLICY_READY): policy/requirements.txt
	test -x policy/venv/bin/python || $(PYTHON) -m venv policy/venv
	policy/venv/bin/python -m pip install --quiet -r policy/requirements.txt
	touch $@

$(CHECKOV_READY): tests/manifests/checkov-requirements.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tests/manifests/checkov-requirements.txt
	touch $@

setup: $(READY) $(POLICY_READY) $(CHECKOV_READY) ## Build every virtualenv the other targets use (program and tools, policy pack, checkov); needs PyPI once

plan: $(READY) ## Offline plan of STACK (default dev) of PROJECT (default .): no cloud account needed; JSON=plan.json also writes JSON
	$(BIN)/python -m app_platform_tools.plan --project $(PROJECT) --stack $(STACK) $(if $(JSON),--json $(JSON))

cost: $(READY) ## Monthly cost estimate of STACK from its offline plan; BASE=plan.json: the difference from it; WRITE_README=1: rewrite README's table
	$(BIN)/python -m app_platform_tools.cost --project $(PROJECT) --stack $(STACK) $(if $(BASE),--base $(BASE)) $(if $(WRITE_README),--write-readme)

test: setup ## Run every test, offline once setup has run (PostgreSQL tests need its server binaries)
	CHECKOV=$(CHECKOV) $(BIN)/python -m pytest

lint: $(READY) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(READY) ## Format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Checked before anything is installed, so a missing tool is said at once.
cli:
	@command -v pulumi >/dev/null || { echo "This target needs the Pulumi CLI: https://www.pulumi.com/docs/iac/download-install/ (then 'pulumi login')"; exit 1; }
	@command -v aws >/dev/null || { echo "This target needs the AWS CLI v2 with credentials (aws sts get-caller-identity)"; exit 1; }

POLICY := --policy-pack policy $(if $(wildcard policy/config.$(STACK).json),--policy-pack-config policy/config.$(STACK).json)

preview: cli $(READY) $(POLICY_READY) ## pulumi preview of STACK, with the policy pack enforced
	pulumi preview --stack $(STACK) --diff $(POLICY)

up: cli $(READY) $(POLICY_READY) ## pulumi up of STACK, with the policy pack enforced
	pulumi up --stack $(STACK) $(POLICY)

destroy: cli ## pulumi destroy of STACK
	pulumi destroy --stack $(STACK)

outputs: cli ## Show STACK's outputs
	pulumi stack output --stack $(STACK)

hosts: cli $(READY) ## Map the stack's hostnames to its load balancer in /etc/hosts (asks for sudo)
	pulumi stack output --json --stack $(STACK) > .stack-outputs.json
	@trap 'rm -f .stack-outputs.json' EXIT; \
	  $(BIN)/python -m app_platform_tools.hosts --outputs .stack-outputs.json && \
	  sudo $(BIN)/python -m app_platform_tools.hosts --outputs .stack-outputs.json --write

kubeconfig: cli ## Write the cluster's kubeconfig into ~/.kube/config (aws eks update-kubeconfig)
	$$(pulumi stack output kubeconfigCommand --stack $(STACK))

# Once per AWS account, with credentials that may create IAM roles, a KMS key and a bucket. The
# stack's state stays in bootstrap/.pulumi-state (keep it); it holds no secrets, hence the empty
# passphrase. Prints the repository settings and stack commands to paste.
bootstrap: cli $(READY) ## Create the state bucket, secrets key, OIDC provider and CI roles; print the settings (REPO=<owner>/<name>)
	@[[ "$(REPO)" == */* ]] || { echo "Name the GitHub repository: make bootstrap REPO=<owner>/<name>"; exit 1; }
	mkdir -p $(BOOTSTRAP_STATE)
	export PULUMI_BACKEND_URL="file://$(CURDIR)/$(BOOTSTRAP_STATE)" PULUMI_CONFIG_PASSPHRASE=""; \
	  cd bootstrap && \
	  pulumi stack select --create $(BOOTSTRAP_STACK) && \
	  pulumi config set aws:region $(REGION) && \
	  pulumi config set githubRepository $(REPO) && \
	  pulumi up && \
	  pulumi stack output --json > .outputs.json && \
	  PYTHONPATH=. ../$(BIN)/python -m ci_access.repository .outputs.json $(STACKS)

# A real-account check, never part of `make test`: skipped (exit 0, reason printed) without AWS
# credentials or the Pulumi CLI. AWS_REGION picks the region, PULUMI_BACKEND_URL the state and
# PULUMI_SECRETS_PROVIDER the secrets provider (else a passphrase made for local state).
e2e: $(READY) ## Throwaway stack on AWS: up, calls through its NLB, destroy, no leftovers (~1 h)
	$(BIN)/python -m tests.e2e.run
