"""The network: subnets spread over zones, tagged for load balancers, private egress via NAT."""

import pytest

from app_platform.network import (
    PRIVATE_SUBNET_ROLE_TAG,
    PUBLIC_SUBNET_ROLE_TAG,
    Network,
    NetworkArgs,
    NetworkOptions,
)
from app_platform.options import OptionsError
from app_platform_tools import offline

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def subnets(recording, kind):
    return [s for s in recording.of_type(SUBNET) if f"-{kind}-" in s.name]


@pytest.mark.parametrize(
    "kind,tag", [("public", PUBLIC_SUBNET_ROLE_TAG), ("private", PRIVATE_SUBNET_ROLE_TAG)]
)
def test_one_subnet_per_zone_tagged_for_load_balancers(dev, kind, tag):
    found = subnets(dev, kind)
    assert sorted(s.inputs["availabilityZone"] for s in found) == [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    ]
    assert all(s.inputs["tags"][tag] == "1" for s in found)
    assert all(s.inputs["tags"]["kubernetes.io/cluster/platform-dev"] == "shared" for s in found)
    assert not any(s.inputs["mapPublicIpOnLaunch"] for s in found)


def test_subnet_cidrs_are_carved_from_the_vpc(dev):
    vpc = dev.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    cidrs = [s.inputs["cidrBlock"] for s in dev.of_type(SUBNET)]
    assert len(set(cidrs)) == 6
    assert all(c.startswith("10.0.") for c in cidrs)


def test_dev_has_a_single_nat_gateway_shared_by_every_private_route(dev):
    (nat,) = dev.of_type(NAT)
    assert nat.inputs["subnetId"] == dev.one(SUBNET, "platform-dev-public-us-east-1a").outputs["id"]
    private_tables = [t for t in dev.of_type(ROUTE_TABLE) if "-private-" in t.name]
    assert len(private_tables) == 3
    assert {t.inputs["routes"][0]["natGatewayId"] for t in private_tables} == {nat.outputs["id"]}


def test_per_az_nat_gives_each_private_subnet_its_own_gateway(run_stack):
    recording = run_stack({"natGateways": "perAz"})
    gateways = recording.of_type(NAT)
    assert len(gateways) == 3
    private_tables = [t for t in recording.of_type(ROUTE_TABLE) if "-private-" in t.name]
    assert len({t.inputs["routes"][0]["natGatewayId"] for t in private_tables}) == 3


def test_public_subnets_route_to_the_internet_gateway(dev):
    igw = dev.one("aws:ec2/internetGateway:InternetGateway")
    public = dev.one(ROUTE_TABLE, "platform-dev-public")
    assert public.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": igw.outputs["id"]}]


def test_flow_logs_are_off_by_default_and_complete_when_on(dev, run_stack):
    assert dev.of_type("aws:ec2/flowLog:FlowLog") == []
    recording = run_stack({"vpcFlowLogs": True})
    flow_log = recording.one("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    log_group = recording.one("aws:cloudwatch/logGroup:LogGroup", "platform-dev-flow-logs")
    assert log_group.inputs["retentionInDays"] == 30


def test_every_network_resource_belongs_to_the_network_component(dev):
    network = dev.one("app-platform:network:Network")
    owned = {r.urn for r in dev.descendants(network)}
    for type_ in (SUBNET, NAT, ROUTE_TABLE, "aws:ec2/vpc:Vpc"):
        assert all(r.urn in owned for r in dev.of_type(type_)), type_


def test_egress_ready_is_every_link_of_the_private_subnets_path_out():
    built = {}

    def program():
        built["network"] = Network(
            "net",
            NetworkArgs(
                NetworkOptions(availability_zone_count=2, nat_mode="perAz"),
                availability_zones=("us-east-1a", "us-east-1b"),
                cluster_name="demo",
            ),
        )

    recording = offline.run_function(program)
    path_out = (NAT, ROUTE_TABLE, ASSOCIATION, "aws:ec2/internetGateway:InternetGateway")
    expected = {
        (r.type.rsplit(":", 1)[1], r.name) for r in recording.resources if r.type in path_out
    }
    assert len(expected) == 2 + 3 + 4 + 1  # NAT gateways, route tables, associations, IGW
    assert {(type(r).__name__, r._name) for r in built["network"].egress_ready} == expected


def test_options_default_to_a_three_zone_network_with_a_nat_per_zone():
    options = NetworkOptions()
    assert (options.cidr, options.availability_zone_count, options.nat_mode) == (
        "10.0.0.0/16",
        3,
        "perAz",
    )
    assert options.flow_logs is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"nat_mode": "perAZ"}, "'nat_mode' = \"perAZ\" is not valid: expected single or perAz"),
        ({"cidr": "10.0.0.1/16"}, "'cidr' = \"10.0.0.1/16\" is not valid: expected an IPv4"),
        (
            {"cidr": "10.0.0.0/25"},
            "'cidr' = \"10.0.0.0/25\" is not valid: expected a network large enough for 3",
        ),
        (
            {"availability_zone_count": 1},
            "'availability_zone_count' = 1 is not valid: expected a whole number from 2 to 16",
        ),
        ({"flow_logs": "yes"}, "'flow_logs' = \"yes\" is not valid: expected true or false"),
    ],
)
def test_options_built_in_code_refuse_what_config_refuses(given, expected):
    with pytest.raises(OptionsError) as raised:
        NetworkOptions(**given)
    assert expected in str(raised.value)


def test_options_from_config_name_the_keys_and_take_config_strings():
    assert NetworkOptions.from_config({"vpcFlowLogs": "true", "availabilityZoneCount": "2"}) == (
        NetworkOptions(flow_logs=True, availability_zone_count=2)
    )
    with pytest.raises(OptionsError) as raised:
        NetworkOptions.from_config({"natGateways": "none", "vpcCidr": "10.0.0.0/33"})
    assert [p.where for p in raised.value.problems] == ["vpcCidr", "natGateways"]


def test_args_need_as_many_zones_as_the_options_ask_for():
    with pytest.raises(ValueError, match="3 zones wanted, 2 given"):
        NetworkArgs(NetworkOptions(), ("us-east-1a", "us-east-1b"), cluster_name="demo")


def test_the_component_records_its_options_and_zones_as_inputs(dev):
    inputs = dev.one("app-platform:network:Network").inputs
    assert inputs["nat_mode"] == "single" and inputs["cidr"] == "10.0.0.0/16"
    assert inputs["availability_zones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
