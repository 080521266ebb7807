"""Config validation: every mistake stops the program before anything is registered, and says
which key, which value, and what is accepted."""

from pathlib import Path

import pytest
import yaml

from app_platform import config, preflight
from app_platform.cluster import MIN_SPOT_INSTANCE_TYPES
from app_platform.network import subnet_plan
from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]


def test_dev_defaults_are_valid(parse_config):
    settings = parse_config()
    assert settings.prefix == "platform-dev"
    # Two zones: dev keeps one load balancer address less (README: What it costs).
    assert settings.availability_zones == ("us-east-1a", "us-east-1b")
    assert len(settings.cluster.spot.instance_types) >= MIN_SPOT_INSTANCE_TYPES


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"natGateways": "double"},
            "'natGateways' = \"double\" is not valid: expected single, perAz or instance",
        ),
        ({"availabilityZoneCount": "4"}, "expected at most 3, the zones region us-east-1 has"),
        (
            {"availabilityZoneCount": "1"},
            "'availabilityZoneCount' = \"1\" is not valid: expected a whole number from 2",
        ),
        ({"availabilityZoneCount": "three"}, "'availabilityZoneCount' = \"three\" is not valid"),
        (
            {"vpcCidr": "10.0.0.0/33"},
            "'vpcCidr' = \"10.0.0.0/33\" is not valid: expected an IPv4 network",
        ),
        ({"vpcCidr": "10.0.0.1/16"}, "'vpcCidr' = \"10.0.0.1/16\" is not valid"),
        (
            {"vpcCidr": "10.0.0.0/25", "availabilityZoneCount": 3},
            "expected a network large enough for 3 private and 3 public subnets",
        ),
        (
            {"spotInstanceTypes": []},
            "'spotInstanceTypes' = [] is not valid: expected at least 3 different",
        ),
        (
            {"spotInstanceTypes": ["m6i.large", "m6i.xlarge", "m5.large"]},
            "expected instance types of one size, got sizes ['large', 'xlarge']",
        ),
        ({"spotInstanceTypes": ["m6i.large", "m6i.large", "m5.large"]}, "at least 3 different"),
        (
            {"spotInstanceTypes": ["m6i.large", "m7g.large", "m5.large"]},
            '\'spotInstanceTypes\' = ["m6i.large", "m7g.large", "m5.large"] is not valid: '
            "expected instance types of one architecture, got amd64: ['m6i.large', 'm5.large']; "
            "arm64: ['m7g.large']",
        ),
        (
            {"natGateways": "nat-instance"},
            "'natGateways' = \"nat-instance\" is not valid: expected single, perAz or instance",
        ),
        (
            {"natInstanceType": "nano"},
            "'natInstanceType' = \"nano\" is not valid: expected an instance type such as t4g.nano",
        ),
        (
            {"spotInstanceTypes": ["m6i.large", "bogus", "m5.large"]},
            "instance type names such as m6i.large",
        ),
        (
            {"spotInstanceTypes": "m6i.large"},
            "'spotInstanceTypes' = \"m6i.large\" is not valid: expected a list",
        ),
        (
            {"spotMinSize": "5", "spotDesiredSize": "5", "spotMaxSize": "3"},
            "'spotMinSize' = 5, 'spotDesiredSize' = 5, 'spotMaxSize' = 3 are not valid",
        ),
        ({"spotDesiredSize": "9"}, "expected spotMinSize <= spotDesiredSize <= spotMaxSize"),
        (
            {"kubernetesVersion": "1.29"},
            "'kubernetesVersion' = \"1.29\" is not valid: expected one of 1.34, 1.35, 1.36",
        ),
        (
            {"publicAccessCidrs": []},
            "'publicAccessCidrs' = [] is not valid: expected a non-empty list",
        ),
        (
            {"publicAccessCidrs": ["203.0.113.0/33"]},
            "'publicAccessCidrs' = [\"203.0.113.0/33\"] is not valid",
        ),
        ({"publicAccessCidrs": None}, "config 'publicAccessCidrs' is not set"),
        ({"adminRoleArns": ["arn:aws:iam::123:user/bob"]}, "expected IAM role ARNs"),
        ({"name": "Platform"}, "'name' = \"Platform\" is not valid"),
        ({"vpcFlowLogs": "yes"}, "'vpcFlowLogs' = \"yes\" is not valid: expected true or false"),
        (
            {"systemNodeCount": "0"},
            "'systemNodeCount' = \"0\" is not valid: expected a whole number from 1 to 10",
        ),
    ],
)
def test_each_mistake_names_key_value_and_what_is_accepted(config_error, changes, expected):
    assert expected in config_error(**changes)


def test_all_mistakes_are_reported_at_once(config_error):
    message = config_error(natGateways="double", kubernetesVersion="1.20", spotInstanceTypes=[])
    assert "natGateways" in message and "kubernetesVersion" in message
    assert "spotInstanceTypes" in message


def test_bad_config_stops_the_program_before_any_resource(run_stack):
    recording = offline.Recording(project="app-platform", stack="dev")
    with pytest.raises(config.ConfigError, match="natGateways"):
        run_stack({"natGateways": "none"}, recording=recording)
    assert recording.resources == []


def test_more_zones_than_the_region_has_is_refused(run_stack):
    with pytest.raises(config.ConfigError, match="at most 2, the zones region us-west-1 has"):
        run_stack({"aws:region": "us-west-1", "availabilityZoneCount": 3})


def test_missing_region_is_refused(run_stack):
    with pytest.raises(config.ConfigError, match="aws:region"):
        run_stack({"aws:region": None})


def test_valid_admin_role_arns_pass(parse_config):
    arns = [
        "arn:aws:iam::123456789012:role/platform-admins",
        "arn:aws:iam::123456789012:role/ci/deploy",
    ]
    assert parse_config(adminRoleArns=arns).cluster.admin_role_arns == tuple(arns)


def test_subnet_plan_fits_the_vpc_without_overlap():
    import ipaddress

    private, public = subnet_plan("10.0.0.0/16", 3)
    networks = [ipaddress.ip_network(c) for c in private + public]
    vpc = ipaddress.ip_network("10.0.0.0/16")
    assert all(n.subnet_of(vpc) for n in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    assert all(n.prefixlen == 19 for n in networks[:3]) and all(
        n.prefixlen == 21 for n in networks[3:]
    )


def test_pulumi_yaml_declares_every_key_the_program_reads():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    project_keys = {k: v for k, v in declared.items() if ":" not in k}
    assert set(project_keys) == set(config.KEYS)
    for key, spec in project_keys.items():
        assert spec["type"] == config.KEYS[key], key
        assert spec.get("description"), f"{key} has no description"


def test_readme_config_reference_lists_every_key():
    readme = (ROOT / "README.md").read_text()
    missing = [key for key in config.KEYS if f"`{key}`" not in readme]
    assert missing == []


def dev_raw(**changes) -> dict:
    raw = {k.split(":", 1)[1]: v for k, v in offline.load_stack_config(ROOT, "dev").values.items()}
    return {**raw, **changes}


def parse_as(stack: str, **changes) -> config.PlatformSettings:
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    origin = preflight.GitOrigin("https://github.com/example/app-platform.git")
    return config.parse(
        dev_raw(**changes),
        stack=stack,
        region="us-east-1",
        zones=zones,
        base_dir=ROOT,
        environment=preflight.Environment(git_origin=origin),
    )


def test_a_prefix_too_long_for_aws_names_is_refused():
    assert parse_as("production", name="platform-svc").prefix == "platform-svc-production"
    with pytest.raises(config.ConfigError, match="'platform-services-x-production' must be at"):
        parse_as("production", name="platform-services-x")


@pytest.mark.parametrize("stack", ["Prod", "prod_eu", "prod.eu"])
def test_a_stack_name_unfit_for_resource_names_is_refused(stack):
    with pytest.raises(config.ConfigError, match=f"stack name '{stack}' is not valid"):
        parse_as(stack)
