"""The throwaway stack's config: the dev stack's, made unique and a little cheaper.

The stack name starts every resource name (`<name>-<stack>`) and is the `stack` default tag, so
a unique stack name makes every resource and the leftover search unique to one run.
"""

from __future__ import annotations

import copy
import secrets
from pathlib import Path
from typing import Any

import yaml

PROJECT = "app-platform"
DEV_STACK = "dev"
# e2e-<6 hex characters>: short, because `<name>-<stack>` must fit AWS's name limits.
STACK_PREFIX = "e2e-"
STACK_SUFFIX_BYTES = 3
# Hosts are <app>.<stack>.app-platform.test: `.test` never resolves on the internet, so the
# checks send the Host header to the load balancer instead.
DOMAIN_PARENT = "app-platform.test"
# Less than dev where it changes nothing the checks exercise.
CHEAPER = {
    f"{PROJECT}:availabilityZoneCount": 2,
    f"{PROJECT}:prometheusVolumeSizeGib": 10,
    f"{PROJECT}:prometheusRetention": "1d",
    # HTTP only: a certificate would be for a real domain, and the hosts here are `.test`.
    f"{PROJECT}:certificateArn": "",
}
TAGS_KEY = "aws:defaultTags"
REGION_KEY = "aws:region"


def new_stack_name() -> str:
    return f"{STACK_PREFIX}{secrets.token_hex(STACK_SUFFIX_BYTES)}"


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def load_config(project_dir: Path, stack: str = DEV_STACK) -> dict[str, Any]:
    """The `config:` map of a stack file, as written."""
    return (yaml.safe_load(stack_file(project_dir, stack).read_text()) or {}).get("config") or {}


def e2e_config(dev: dict[str, Any], stack: str, region: str | None) -> dict[str, Any]:
    """The dev config with the region, the stack tag, the domain and the cheaper settings of
    the e2e stack. Encrypted values are left out: they are encrypted for the dev stack's
    secrets provider, and the program generates every password it is not given."""
    config = {
        key: copy.deepcopy(value)
        for key, value in dev.items()
        if not (isinstance(value, dict) and set(value) == {"secure"})
    }
    if region:
        config[REGION_KEY] = region
    default_tags = config.setdefault(TAGS_KEY, {}).setdefault("tags", {})
    default_tags.setdefault("project", PROJECT)
    default_tags["stack"] = stack
    config[f"{PROJECT}:domain"] = f"{stack}.{DOMAIN_PARENT}"
    config.update(CHEAPER)
    return config


def stack_tags(config: dict[str, Any]) -> dict[str, str]:
    """The default tags that mark the stack's resources: `project` and `stack`."""
    tags = config[TAGS_KEY]["tags"]
    return {key: tags[key] for key in ("project", "stack")}


def prefix(project_dir: Path, config: dict[str, Any], stack: str) -> str:
    """`<name>-<stack>`, the prefix of every resource name and the cluster's name."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    name = config.get(f"{PROJECT}:name", project["config"]["name"]["default"])
    return f"{name}-{stack}"


def write_stack_config(project_dir: Path, stack: str, config: dict[str, Any]) -> Path:
    """Put `config` into the stack's file, keeping what `pulumi stack init` wrote there (the
    passphrase salt, or the secrets provider and its encrypted key)."""
    path = stack_file(project_dir, stack)
    settings = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    settings["config"] = config
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path
