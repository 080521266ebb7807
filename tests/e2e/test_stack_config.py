"""The throwaway stack's config: the dev stack's, unique to the run, and a valid program."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from app_platform_tools import offline
from tests.e2e import checks, stack_config

ROOT = Path(__file__).resolve().parents[2]
STACK = "e2e-1a2b3c"


@pytest.fixture(scope="module")
def dev_config():
    return stack_config.load_config(ROOT)


@pytest.fixture(scope="module")
def e2e_recording(dev_config):
    """The program run offline as the e2e stack: its config, its stack name."""
    config = offline.load_stack_config(
        ROOT, "dev", stack_config.e2e_config(dev_config, STACK, "eu-central-1")
    )
    # As `make plan` does: the mocks build no image and the clone may have no origin.
    return offline.run_function(
        offline.program(ROOT), config, stack=STACK, stand_ins=offline.offline_stand_ins()
    )


def test_stack_names_are_short_random_and_valid_pulumi_and_aws_names():
    names = {stack_config.new_stack_name() for _ in range(20)}
    assert len(names) == 20
    assert all(re.fullmatch(r"e2e-[0-9a-f]{6}", name) for name in names)


def test_the_stack_tag_region_and_domain_are_the_runs_and_the_rest_is_devs(dev_config):
    config = stack_config.e2e_config(dev_config, STACK, "eu-central-1")

    assert config["aws:region"] == "eu-central-1"
    assert config["aws:defaultTags"]["tags"] == {
        **dev_config["aws:defaultTags"]["tags"],
        "stack": STACK,
    }
    assert stack_config.stack_tags(config) == {"project": "app-platform", "stack": STACK}
    assert config["app-platform:domain"] == f"{STACK}.app-platform.test"
    assert config["app-platform:availabilityZoneCount"] == 2
    changed = {"aws:region", "aws:defaultTags", "app-platform:domain", *stack_config.CHEAPER}
    assert {k: v for k, v in config.items() if k not in changed} == {
        k: v for k, v in dev_config.items() if k not in changed
    }
    # The dev config itself is left as it was.
    assert dev_config["aws:defaultTags"]["tags"]["stack"] == "dev"


def test_without_aws_region_the_dev_stacks_region_is_kept(dev_config):
    assert stack_config.e2e_config(dev_config, STACK, None)["aws:region"] == "us-east-1"


def test_encrypted_values_of_dev_are_left_out():
    dev = {"aws:region": "us-east-1", "app-platform:grafanaAdminPassword": {"secure": "v1:abc"}}

    config = stack_config.e2e_config(dev, STACK, None)

    assert "app-platform:grafanaAdminPassword" not in config
    assert config["aws:defaultTags"]["tags"] == {"project": "app-platform", "stack": STACK}


def test_the_config_goes_into_the_stack_file_beside_what_stack_init_wrote(tmp_path):
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text("encryptionsalt: v1:salt\n")

    path = stack_config.write_stack_config(tmp_path, STACK, {"aws:region": "eu-west-1"})

    assert yaml.safe_load(path.read_text()) == {
        "encryptionsalt": "v1:salt",
        "config": {"aws:region": "eu-west-1"},
    }


def test_the_prefix_is_the_name_default_and_the_stack(dev_config):
    assert stack_config.prefix(ROOT, dev_config, STACK) == f"platform-{STACK}"
    assert stack_config.prefix(ROOT, {"app-platform:name": "shop"}, STACK) == f"shop-{STACK}"


def test_the_e2e_stack_is_a_valid_program_whose_names_all_derive_from_its_prefix(e2e_recording):
    prefix = f"platform-{STACK}"
    assert [r.name for r in e2e_recording.resources if not r.name.startswith(prefix)] == []
    assert e2e_recording.outputs["clusterName"].value == prefix
    assert e2e_recording.outputs["region"].value == "eu-central-1"
    assert len(e2e_recording.outputs["privateSubnetIds"].value) == 2


def test_the_checks_find_their_hosts_in_the_stacks_outputs(e2e_recording):
    # Only what is not secret: the run never reads a secret output.
    outputs = checks.plain_outputs(e2e_recording.outputs)

    target = checks.Target.from_outputs(outputs)

    domain = f"{STACK}.app-platform.test"
    assert target.address == outputs["loadBalancerHostname"]
    assert (target.comments, target.grafana, target.argocd) == (
        f"comments.{domain}",
        f"grafana.{domain}",
        f"argocd.{domain}",
    )
