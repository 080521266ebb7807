"""The repository settings the bootstrap stack's outputs call for, as commands to paste.

    python -m ci_access.repository OUTPUTS.json [STACK ...]

OUTPUTS.json is `pulumi stack output --json` of the bootstrap stack; each STACK is a stack of
the platform project to create in the new backend. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

# Secrets CI no longer reads: stack secrets are decrypted through KMS now. Deleted from the
# repository and from each environment (the e2e one held a passphrase of its own).
RETIRED_SECRETS = ("PULUMI_CONFIG_PASSPHRASE",)


def _q(value: str) -> str:
    return shlex.quote(str(value))


def environment_commands(repository: str, environment: str) -> list[str]:
    """Create the environment; only the default branch may deploy into it."""
    policy = {
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}
    }
    return [
        f"echo {_q(json.dumps(policy))} | gh api --method PUT "
        f"{_q(f'repos/{repository}/environments/{environment}')} --input -",
    ]


def branch_policy_command(repository: str, environment: str, branch: str) -> str:
    path = f"repos/{repository}/environments/{environment}/deployment-branch-policies"
    return f"gh api --method POST {_q(path)} -f name={_q(branch)} -f type=branch"


def commands(outputs: dict[str, Any], stacks: list[str] | None = None) -> list[str]:
    repository = outputs["repository"]
    repo = f"--repo {_q(repository)}"
    lines = ["# Repository settings (GitHub CLI, as a repository admin):"]
    for environment in outputs["environmentVariables"]:
        lines += environment_commands(repository, environment)
        lines.append(branch_policy_command(repository, environment, outputs["defaultBranch"]))
    for name, value in outputs["repositoryVariables"].items():
        lines.append(f"gh variable set {name} {repo} --body {_q(value)}")
    for environment, variables in outputs["environmentVariables"].items():
        for name, value in variables.items():
            lines.append(
                f"gh variable set {name} {repo} --env {_q(environment)} --body {_q(value)}"
            )
    for scope in ["", *(f" --env {_q(env)}" for env in outputs["environmentVariables"])]:
        lines += [
            f"gh secret delete {name} {repo}{scope} 2>/dev/null || true" for name in RETIRED_SECRETS
        ]
    lines += stack_commands(outputs, stacks or [])
    return lines


def stack_commands(outputs: dict[str, Any], stacks: list[str]) -> list[str]:
    """Create the platform's stacks in the new backend, their secrets under the KMS key."""
    variables = outputs["repositoryVariables"]
    lines = [
        "# The stacks, in the new backend (then commit the secretsprovider and encryptedkey",
        "# lines this adds to each Pulumi.<stack>.yaml):",
        f"pulumi login {_q(variables['PULUMI_BACKEND_URL'])}",
    ]
    provider = _q(variables["PULUMI_SECRETS_PROVIDER"])
    lines += [f"pulumi stack init {_q(stack)} --secrets-provider {provider}" for stack in stacks]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outputs", type=Path, help="pulumi stack output --json of the bootstrap")
    parser.add_argument("stacks", nargs="*", help="stacks of the platform project to create")
    args = parser.parse_args(argv)
    outputs = json.loads(args.outputs.read_text())
    sys.stdout.write("\n".join(commands(outputs, args.stacks)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
