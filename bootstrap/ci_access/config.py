"""The bootstrap stack's settings: read once, every problem reported at once.

Defaults live in ../Pulumi.yaml; this module only says what is valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

PROJECT = "app-platform-bootstrap"
# GitHub's rules for owner and repository names.
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# Branch and environment names that need no quoting in a trust policy or an OIDC subject.
REF_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens.
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ALIAS_PATTERN = re.compile(r"^(?!aws/)[A-Za-z0-9/_-]{1,200}$")
# Role names get "-preview", "-drift", "-deploy" or "-e2e" (7 characters at most); IAM allows 64.
ROLE_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,57}$")
OIDC_PROVIDER_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)


class ConfigError(pulumi.RunError):
    """Every configuration mistake found, one per line."""


@dataclass(frozen=True)
class Settings:
    repository: str
    default_branch: str
    deploy_environment: str
    e2e_environment: str
    state_bucket: str
    secrets_key_alias: str
    role_prefix: str
    oidc_provider_arn: str | None
    region: str


def _check(problems: list[str], key: str, value: str, pattern: re.Pattern[str], accepted: str):
    if not pattern.match(value):
        problems.append(f"{PROJECT}:{key} = {value!r} is not valid: {accepted}")


def parse(raw: Mapping[str, str], *, account_id: str, region: str) -> Settings:
    """Settings from the raw config values (key without namespace -> string)."""
    problems: list[str] = []
    repository = raw.get("githubRepository", "")
    _check(problems, "githubRepository", repository, REPOSITORY_PATTERN, "expected owner/name")
    for key in ("defaultBranch", "deployEnvironment", "e2eEnvironment"):
        _check(problems, key, raw.get(key, ""), REF_NAME_PATTERN, "letters, digits, . _ / -")
    # Each environment holds one role's ARN: a shared one would hold only the last.
    e2e_environment = raw.get("e2eEnvironment", "")
    if e2e_environment and e2e_environment == raw.get("deployEnvironment"):
        problems.append(
            f"{PROJECT}:e2eEnvironment = {e2e_environment!r} is not valid: "
            "an environment other than deployEnvironment's"
        )
    bucket = raw.get("stateBucket") or f"app-platform-state-{account_id}-{region}"
    _check(problems, "stateBucket", bucket, BUCKET_PATTERN, "3-63 of a-z 0-9 . - (S3's rules)")
    alias = raw.get("secretsKeyAlias", "")
    _check(problems, "secretsKeyAlias", alias, ALIAS_PATTERN, "a KMS alias without alias/")
    prefix = raw.get("rolePrefix", "")
    _check(problems, "rolePrefix", prefix, ROLE_PREFIX_PATTERN, "1-57 IAM name characters")
    provider = raw.get("oidcProviderArn") or None
    if provider is not None:
        _check(
            problems,
            "oidcProviderArn",
            provider,
            OIDC_PROVIDER_ARN_PATTERN,
            "the ARN of the token.actions.githubusercontent.com provider, or empty",
        )
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(
        repository=repository,
        default_branch=raw["defaultBranch"],
        deploy_environment=raw["deployEnvironment"],
        e2e_environment=e2e_environment,
        state_bucket=bucket,
        secrets_key_alias=alias,
        role_prefix=prefix,
        oidc_provider_arn=provider,
        region=region,
    )


KEYS = (
    "githubRepository",
    "defaultBranch",
    "deployEnvironment",
    "e2eEnvironment",
    "stateBucket",
    "secretsKeyAlias",
    "rolePrefix",
    "oidcProviderArn",
)


def load(account_id: str) -> Settings:
    """The stack's config, as the Pulumi CLI hands it to the program."""
    config = pulumi.Config(PROJECT)
    raw = {key: config.get(key) or "" for key in KEYS}
    return parse(raw, account_id=account_id, region=pulumi.Config("aws").require("region"))
