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
from tests.conftest import ROOT

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def subnets(recording, kind):
    return [s for s in recording.of_type(SUBNET) if f"-{kind}-" in s.name]


@pytest.fixture(scope="module")
def three_zones():
    """The dev stack over three zones with one NAT gateway (dev itself runs two zones and a NAT
    instance, for cost)."""
    return offline.run(ROOT, "dev", {"availabilityZoneCount": 3, "natGateways": "single"})


@pytest.mark.parametrize(
    "kind,tag", [("public", PUBLIC_SUBNET_ROLE_TAG), ("private", PRIVATE_SUBNET_ROLE_TAG)]
)
def test_one_subnet_per_zone_tagged_for_load_balancers(three_zones, kind, tag):
    found = subnets(three_zones, kind)
    assert sorted(s.inputs["availabilityZone"] for s in found) == [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    ]
    assert all(s.inputs["tags"][tag] == "1" for s in found)
    assert all(s.inputs["tags"]["kubernetes.io/cluster/platform-dev"] == "shared" for s in found)
    assert not any(s.inputs["mapPublicIpOnLaunch"] for s in found)


def test_subnet_cidrs_are_carved_from_the_vpc(three_zones):
    vpc = three_zones.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    cidrs = [s.inputs["cidrBlock"] for s in three_zones.of_type(SUBNET)]
    assert len(set(cidrs)) == 6
    assert all(c.startswith("10.0.") for c in cidrs)


def test_a_single_nat_gateway_is_shared_by_every_private_route(three_zones):
    (nat,) = three_zones.of_type(NAT)
    assert (
        nat.inputs["subnetId"]
        == three_zones.one(SUBNET, "platform-dev-public-us-east-1a").outputs["id"]
    )
    private_tables = [t for t in three_zones.of_type(ROUTE_TABLE) if "-private-" in t.name]
    assert len(private_tables) == 3
    assert {t.inputs["routes"][0]["natGatewayId"] for t in private_tables} == {nat.outputs["id"]}


def test_per_az_nat_gives_each_private_subnet_its_own_gateway(run_stack):
    recording = run_stack({"natGateways": "perAz", "availabilityZoneCount": 3})
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


def two_zone_network(nat_mode: str) -> tuple[offline.Recording, Network]:
    """A Network over two zones, built alone, and what it registered."""
    built = {}

    def program():
        built["network"] = Network(
            "net",
            NetworkArgs(
                NetworkOptions(availability_zone_count=2, nat_mode=nat_mode),
                availability_zones=("us-east-1a", "us-east-1b"),
                cluster_name="demo",
            ),
        )

    return offline.run_function(program), built["network"]


def test_egress_ready_is_every_link_of_the_private_subnets_path_out():
    recording, network = two_zone_network("perAz")
    path_out = (NAT, ROUTE_TABLE, ASSOCIATION, "aws:ec2/internetGateway:InternetGateway")
    expected = {
        (r.type.rsplit(":", 1)[1], r.name) for r in recording.resources if r.type in path_out
    }
    assert len(expected) == 2 + 3 + 4 + 1  # NAT gateways, route tables, associations, IGW
    assert {(type(r).__name__, r._name) for r in network.egress_ready} == expected


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
        (
            {"nat_mode": "perAZ"},
            "'nat_mode' = \"perAZ\" is not valid: expected single, perAz or instance",
        ),
        (
            {"nat_instance_type": "t4g"},
            "'nat_instance_type' = \"t4g\" is not valid: expected an instance type such as t4g",
        ),
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


def test_the_component_records_its_options_and_zones_as_inputs(three_zones):
    inputs = three_zones.one("app-platform:network:Network").inputs
    assert inputs["nat_mode"] == "single" and inputs["cidr"] == "10.0.0.0/16"
    assert inputs["availability_zones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]


# --- natGateways: instance -----------------------------------------------------------------

INSTANCE = "aws:ec2/instance:Instance"
INTERFACE = "aws:ec2/networkInterface:NetworkInterface"
EIP = "aws:ec2/eip:Eip"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"


@pytest.fixture(scope="module")
def nat_instance_stack():
    return offline.run(ROOT, "dev", {"natGateways": "instance", "availabilityZoneCount": 3})


def test_a_nat_instance_replaces_the_gateways_in_the_first_public_subnet(nat_instance_stack):
    recording = nat_instance_stack
    assert recording.of_type(NAT) == []
    (instance,) = recording.of_type(INSTANCE)
    (interface,) = recording.of_type(INTERFACE)
    first_public = recording.one(SUBNET, "platform-dev-public-us-east-1a")
    assert interface.inputs["subnetId"] == first_public.outputs["id"]
    assert instance.inputs["primaryNetworkInterface"] == {
        "networkInterfaceId": interface.outputs["id"]
    }
    # A NAT forwards packets addressed to others: the check is off on the interface it uses.
    assert interface.inputs["sourceDestCheck"] is False
    assert instance.inputs["sourceDestCheck"] is False
    (address,) = [e for e in recording.of_type(EIP) if e.inputs.get("networkInterface")]
    assert address.inputs["networkInterface"] == interface.outputs["id"]


def test_every_private_route_goes_out_through_the_nat_instances_interface(nat_instance_stack):
    interface = nat_instance_stack.one(INTERFACE)
    private_tables = [t for t in nat_instance_stack.of_type(ROUTE_TABLE) if "-private-" in t.name]
    assert len(private_tables) == 3
    for table in private_tables:
        assert table.inputs["routes"] == [
            {"cidrBlock": "0.0.0.0/0", "networkInterfaceId": interface.outputs["id"]}
        ]


def test_the_nat_instance_is_small_graviton_imdsv2_and_encrypted(nat_instance_stack):
    instance = nat_instance_stack.one(INSTANCE).inputs
    assert instance["instanceType"] == "t4g.nano"
    assert instance["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    root = instance["rootBlockDevice"]
    assert (root["volumeType"], root["encrypted"], root["volumeSize"]) == ("gp3", True, 8)
    template = nat_instance_stack.one(
        "aws:ec2/launchTemplate:LaunchTemplate", "platform-dev-nat-us-east-1a"
    )
    assert instance["launchTemplate"]["id"] == template.outputs["id"]
    # EC2 resolves the public parameter at launch: no AMI lookup at plan time.
    assert template.inputs["imageId"] == (
        "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    )


def test_the_nat_instance_forwards_and_masquerades_only_the_vpc(nat_instance_stack):
    script = nat_instance_stack.one(INSTANCE).inputs["userData"]
    assert "net.ipv4.ip_forward = 1" in script
    assert "ip saddr 10.0.0.0/16 ip daddr != 10.0.0.0/16 masquerade" in script
    assert "systemctl enable --now nftables" in script
    assert nat_instance_stack.one(INSTANCE).inputs["userDataReplaceOnChange"] is True


def test_the_nat_instance_admits_only_the_vpc_and_has_no_ssh(nat_instance_stack):
    interface = nat_instance_stack.one(INTERFACE)
    (group,) = [
        g
        for g in nat_instance_stack.of_type(SECURITY_GROUP)
        if g.outputs["id"] in interface.inputs["securityGroups"]
    ]
    assert group.inputs["ingress"] == [
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/16"]}
    ]
    assert nat_instance_stack.one(INSTANCE).inputs.get("keyName") is None


def test_the_nat_instance_gets_shell_access_through_ssm_only(nat_instance_stack):
    profile = nat_instance_stack.one(INSTANCE).inputs["iamInstanceProfile"]
    (role_profile,) = [
        p
        for p in nat_instance_stack.of_type("aws:iam/instanceProfile:InstanceProfile")
        if p.outputs["id"] == profile
    ]
    attached = [
        a.inputs["policyArn"]
        for a in nat_instance_stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role_profile.inputs["role"]
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]


def test_an_x86_nat_instance_type_gets_the_x86_image(run_stack):
    recording = run_stack({"natGateways": "instance", "natInstanceType": "t3.nano"})
    template = recording.one("aws:ec2/launchTemplate:LaunchTemplate", "platform-dev-nat-us-east-1a")
    assert template.inputs["imageId"].endswith("/al2023-ami-kernel-default-x86_64")
    assert recording.one(INSTANCE).inputs["instanceType"] == "t3.nano"


def test_egress_ready_holds_the_nat_instance_and_every_link_out():
    recording, network = two_zone_network("instance")
    kinds = sorted(type(r).__name__ for r in network.egress_ready)
    assert kinds == sorted(
        ["InternetGateway", "RouteTable"]  # the public route table
        + ["RouteTableAssociation"] * 4
        + ["RouteTable"] * 2
        + ["SecurityGroup", "NetworkInterface", "Eip", "Instance"]
    )
    assert recording.of_type(NAT) == []
