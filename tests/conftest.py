"""Shared fixtures: the program's stacks run offline once per test session."""

import json
import os
from pathlib import Path

import pytest
import yaml

from app_platform import config, preflight
from app_platform_tools import offline

ROOT = Path(__file__).resolve().parent.parent
# The platform stack the app stacks' config names.
PLATFORM_STACK = "organization/app-platform/dev"
# The zones the config tests pretend the region has.
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
# What the config tests pretend the machine says: Docker running, a checkout with an origin.
ENVIRONMENT = preflight.Environment(
    git_origin=preflight.GitOrigin("https://github.com/example/app-platform.git")
)


@pytest.fixture(scope="session")
def dev() -> offline.Recording:
    """Everything the real dev stack registers, run offline under mocks."""
    return offline.run(ROOT, "dev")


# The platform as it was before Karpenter: the spot node group and the Cluster Autoscaler.
CLUSTER_AUTOSCALER = {"nodeProvisioner": "clusterAutoscaler"}


@pytest.fixture(scope="session")
def dev_cluster_autoscaler() -> offline.Recording:
    """The dev stack with `nodeProvisioner: clusterAutoscaler`, run offline."""
    return offline.run(ROOT, "dev", CLUSTER_AUTOSCALER)


# The comments database on RDS, as a stack that does not choose `inCluster` has it (the dev
# stack keeps it in the cluster to cost less).
RDS_DATABASE = {
    "instanceClass": "db.t4g.micro",
    "storageGib": 20,
    "backupRetentionDays": 7,
    "deletionProtection": False,
    "finalSnapshot": False,
}


def with_rds_database() -> dict:
    """Stack config overrides: the dev stack's apps, the comments database on RDS."""
    dev_config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    apps = dev_config["app-platform:apps"]
    apps["comments"]["database"] = RDS_DATABASE
    return {"apps": apps}


@pytest.fixture(scope="session")
def dev_rds() -> offline.Recording:
    """The dev stack with the comments database on RDS, run offline."""
    return offline.run(ROOT, "dev", with_rds_database())


@pytest.fixture(scope="session")
def platform_references(dev: offline.Recording) -> dict[str, dict]:
    """What an app stack's StackReference to the dev platform stack reads: the dev stack's own
    offline outputs, for `offline.run(..., stack_references=platform_references)`."""
    return {PLATFORM_STACK: {name: output.value for name, output in dev.outputs.items()}}


@pytest.fixture(scope="session")
def podinfo(platform_references: dict[str, dict]) -> offline.Recording:
    """The podinfo app stack (Pulumi.podinfo.yaml) on the dev platform stack's outputs."""
    return offline.run(ROOT, "podinfo", stack_references=platform_references)


@pytest.fixture
def run_stack():
    """Run the program with some stack config changed: `run_stack({"natGateways": "perAz"})`."""

    def run(overrides: dict | None = None, stack: str = "dev", **kwargs) -> offline.Recording:
        return offline.run(ROOT, stack, overrides, **kwargs)

    return run


@pytest.fixture
def parse_config():
    """Validate the dev stack's config with some keys changed, as the CLI would hand them over:
    `parse_config(natGateways="perAz", spotInstanceTypes=[...])`; None unsets a key.
    `environment=` replaces what the machine is said to answer (`ENVIRONMENT`)."""

    def parse(
        environment: preflight.Environment | None = None, **changes
    ) -> config.PlatformSettings:
        values = offline.load_stack_config(ROOT, "dev").values
        raw = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("app-platform:")}
        raw.update(
            {k: v if isinstance(v, str) or v is None else json.dumps(v) for k, v in changes.items()}
        )
        return config.parse(
            raw,
            stack="dev",
            region="us-east-1",
            zones=ZONES,
            base_dir=ROOT,
            environment=environment or ENVIRONMENT,
        )

    return parse


@pytest.fixture
def config_error(parse_config):
    """The message of the ConfigError that the dev config with these changes raises."""

    def error(environment: preflight.Environment | None = None, **changes) -> str:
        with pytest.raises(config.ConfigError) as raised:
            parse_config(environment, **changes)
        return str(raised.value)

    return error


@pytest.fixture(scope="session")
def tool_missing():
    """Call with what is missing when a test's tool is absent: the test skips on a laptop and
    fails under CI=true, where `make setup` has installed every tool."""

    def missing(message: str) -> None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} (CI=true: a missing tool fails the run)")
        pytest.skip(message)

    return missing
