"""Network: the VPC the cluster and its load balancers live in."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator
from pydantic_core.core_schema import ValidationInfo

from app_platform.instance_types import INSTANCE_TYPE_PATTERN
from app_platform.nat_instance import DEFAULT_NAT_INSTANCE_TYPE, nat_instance
from app_platform.options import (
    ConfigBool,
    Options,
    component_inputs,
    matching,
    one_of,
    whole_number,
)

# Kubernetes and the AWS Load Balancer Controller find subnets by these tags: internet-facing
# load balancers go to `elb` subnets, internal ones to `internal-elb` subnets.
PUBLIC_SUBNET_ROLE_TAG = "kubernetes.io/role/elb"
PRIVATE_SUBNET_ROLE_TAG = "kubernetes.io/role/internal-elb"
# Karpenter's EC2NodeClass launches its nodes into the subnets with this tag: the private ones.
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"
FLOW_LOG_RETENTION_DAYS = 30
NAT_MODES = ("single", "perAz", "instance")
# EKS needs subnets in at least two zones for its control plane network interfaces.
MIN_AVAILABILITY_ZONES = 2
MAX_AVAILABILITY_ZONES = 16
# The smallest subnet AWS accepts; a Network Load Balancer also needs 8 free addresses in it.
SMALLEST_SUBNET_PREFIX = 28
DEFAULT_CIDR = "10.0.0.0/16"
DEFAULT_ZONE_COUNT = 3
ANYWHERE = "0.0.0.0/0"


def is_ipv4_network(value: object) -> bool:
    """Whether `value` is an IPv4 network in CIDR form (no host bits set)."""
    try:
        ipaddress.IPv4Network(value, strict=True)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _ids(resources: list[pulumi.Resource], kind: type) -> pulumi.Output[list[str]]:
    return pulumi.Output.all(*[r.id for r in resources if isinstance(r, kind)])


def subnet_plan(vpc_cidr: str, zone_count: int) -> tuple[list[str], list[str]]:
    """Split the VPC into one private and one public subnet per zone.

    The first half of the VPC holds the private subnets, where nodes and pods live (the VPC CNI
    gives every pod a VPC address, so they need the room); the second half holds public subnets
    a quarter of that size, enough for NAT gateways and load balancers.
    """
    vpc = ipaddress.IPv4Network(vpc_cidr, strict=True)
    per_zone_bits = math.ceil(math.log2(zone_count)) if zone_count > 1 else 0
    private_prefix = vpc.prefixlen + 1 + per_zone_bits
    public_prefix = private_prefix + 2
    if public_prefix > SMALLEST_SUBNET_PREFIX:
        raise ValueError(f"public subnets would be /{public_prefix}")
    private_half, public_half = vpc.subnets(prefixlen_diff=1)
    private = list(private_half.subnets(new_prefix=private_prefix))[:zone_count]
    public = list(public_half.subnets(new_prefix=public_prefix))[:zone_count]
    return [str(s) for s in private], [str(s) for s in public]


class NetworkOptions(Options):
    """What a network is made of; the zones themselves come from the region (see NetworkArgs)."""

    # Declared before `cidr`: the CIDR's size is checked against it.
    availability_zone_count: whole_number(MIN_AVAILABILITY_ZONES, MAX_AVAILABILITY_ZONES) = Field(
        DEFAULT_ZONE_COUNT,
        alias="availabilityZoneCount",
        description="How many availability zones of the region to spread subnets and nodes "
        f"over (at least {MIN_AVAILABILITY_ZONES}).",
    )
    cidr: str = Field(
        DEFAULT_CIDR,
        alias="vpcCidr",
        description="IPv4 range of the VPC. Half goes to private subnets (nodes and pods), a "
        "quarter of that per public subnet.",
    )
    nat_mode: one_of(NAT_MODES, f"{', '.join(NAT_MODES[:-1])} or {NAT_MODES[-1]}") = Field(
        "perAz",
        alias="natGateways",
        description="How the private subnets reach the internet. perAz: a NAT gateway per zone "
        "(survives a zone outage; about $33/month each plus $0.045/GB). single: one NAT gateway "
        "for the VPC (egress depends on its zone). instance: one NAT instance (natInstanceType) "
        "in the first zone, about $7/month with its address: a single point of failure with no "
        "zone redundancy, the bandwidth of its type, a reboot cuts egress, and you own its "
        "patching (it runs the AL2023 AMI of its launch until replaced).",
    )
    nat_instance_type: matching(INSTANCE_TYPE_PATTERN, "an instance type such as t4g.nano") = Field(
        DEFAULT_NAT_INSTANCE_TYPE,
        alias="natInstanceType",
        description="Instance type of the NAT instance (natGateways: instance); Graviton or "
        "x86_64, its AMI follows. t4g.nano: 32 Mbit/s baseline, bursts to 5 Gbit/s.",
    )
    flow_logs: ConfigBool = Field(
        False,
        alias="vpcFlowLogs",
        description="Send VPC flow logs (all traffic) to a CloudWatch log group kept "
        f"{FLOW_LOG_RETENTION_DAYS} days.",
    )

    @field_validator("cidr", mode="before")
    @classmethod
    def _fits_the_zones(cls, value: object, info: ValidationInfo) -> str:
        if not is_ipv4_network(value):
            raise ValueError("expected an IPv4 network in CIDR form, e.g. 10.0.0.0/16")
        zones = info.data.get("availability_zone_count")
        if zones is not None:
            try:
                subnet_plan(str(value), zones)
            except ValueError as why:
                raise ValueError(
                    f"expected a network large enough for {zones} private and {zones} public "
                    f"subnets of /{SMALLEST_SUBNET_PREFIX} or larger ({why}); try a /16 to /22"
                ) from None
        return str(value)


@dataclass(frozen=True)
class NetworkArgs:
    """The options, and what comes from elsewhere: the region's zones to use (in order, as many
    as `options.availability_zone_count` asks) and the cluster whose subnets these are."""

    options: NetworkOptions
    availability_zones: Sequence[str]
    cluster_name: pulumi.Input[str]

    def __post_init__(self) -> None:
        wanted = self.options.availability_zone_count
        if len(self.availability_zones) < wanted:
            raise ValueError(
                f"availability_zones: {wanted} zones wanted, {len(self.availability_zones)} given"
            )


class Network(pulumi.ComponentResource):
    """Owns the VPC, a public and a private subnet per zone, the internet gateway, NAT gateways
    (or one NAT instance, nat_instance.py), route tables and, optionally, VPC flow logs to
    CloudWatch.

    Gives `vpc_id`, `public_subnet_ids` and `private_subnet_ids` (in zone order),
    `nat_gateway_ids`, `nat_instance_ids`, `public_route_table_id`, `private_route_table_ids`
    (in zone order), and
    `egress_ready`: the resources the private subnets' path to the internet is made of. Whatever
    runs in the private subnets depends on it, so that it is created once egress works and
    deleted while egress still works (controllers there call AWS APIs to delete what they made).
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    nat_gateway_ids: pulumi.Output[list[str]]
    nat_instance_ids: pulumi.Output[list[str]]
    public_route_table_id: pulumi.Output[str]
    private_route_table_ids: pulumi.Output[list[str]]
    egress_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        inputs = {
            **component_inputs(args.options),
            "availability_zones": list(args.availability_zones),
            "cluster_name": args.cluster_name,
        }
        super().__init__("app-platform:network:Network", name, inputs, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        options = self._options = args.options
        zones = tuple(args.availability_zones[: options.availability_zone_count])
        private_cidrs, public_cidrs = subnet_plan(options.cidr, len(zones))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=options.cidr,
            enable_dns_hostnames=True,  # EKS nodes and private endpoints need DNS names
            enable_dns_support=True,
            tags={"Name": name},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{name}-public"},
            opts=child,
        )
        self._cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        self._cluster_name = args.cluster_name

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        # Private subnet -> its route table -> NAT gateway (or instance) -> public subnet ->
        # public route table -> internet gateway: every link of that path.
        egress: list[pulumi.Resource] = [igw, public_routes]
        for index, zone in enumerate(zones):
            public, public_association = self._public_subnet(
                vpc, zone, public_cidrs[index], public_routes
            )
            public_subnets.append(public)
            egress.append(public_association)
            # perAz: each zone its own gateway; single and instance: the first zone's for all.
            if options.nat_mode == "perAz" or index == 0:
                default_route, nat = self._nat(vpc, zone, public, igw, public_association)
                egress += nat
            private, private_routes, private_association = self._private_subnet(
                vpc, zone, private_cidrs[index], default_route
            )
            private_subnets.append(private)
            private_route_tables.append(private_routes)
            egress += [private_routes, private_association]

        if options.flow_logs:
            self._flow_logs(name, vpc, child)

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.nat_gateway_ids = _ids(egress, aws.ec2.NatGateway)
        self.nat_instance_ids = _ids(egress, aws.ec2.Instance)
        self.public_route_table_id = public_routes.id
        self.private_route_table_ids = pulumi.Output.all(*[t.id for t in private_route_tables])
        self.egress_ready = egress
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "nat_gateway_ids": self.nat_gateway_ids,
                "nat_instance_ids": self.nat_instance_ids,
                "public_route_table_id": self.public_route_table_id,
                "private_route_table_ids": self.private_route_table_ids,
                "egress_ready": pulumi.Output.all(*[r.urn for r in egress]),
            }
        )

    def _public_subnet(
        self, vpc: aws.ec2.Vpc, zone: str, cidr: str, routes: aws.ec2.RouteTable
    ) -> tuple[aws.ec2.Subnet, aws.ec2.RouteTableAssociation]:
        name = f"{self._name}-public-{zone}"
        subnet = self._subnet(name, vpc, zone, cidr, PUBLIC_SUBNET_ROLE_TAG)
        return subnet, self._associate(name, subnet, routes)

    def _nat_gateway(
        self, zone: str, public: aws.ec2.Subnet, igw: aws.ec2.InternetGateway
    ) -> aws.ec2.NatGateway:
        name = f"{self._name}-nat-{zone}"
        eip = aws.ec2.Eip(
            name, domain="vpc", tags={"Name": name}, opts=pulumi.ResourceOptions(parent=self)
        )
        return aws.ec2.NatGateway(
            name,
            subnet_id=public.id,
            allocation_id=eip.id,
            tags={"Name": name},
            # The gateway needs the VPC's internet gateway to reach the internet.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
        )

    def _nat(
        self,
        vpc: aws.ec2.Vpc,
        zone: str,
        public: aws.ec2.Subnet,
        igw: aws.ec2.InternetGateway,
        public_association: aws.ec2.RouteTableAssociation,
    ) -> tuple[aws.ec2.RouteTableRouteArgs, list[pulumi.Resource]]:
        """A NAT in `zone`'s public subnet: the default route through it, and what it is made of."""
        options = self._options
        if options.nat_mode == "instance":
            nat = nat_instance(
                f"{self._name}-nat-{zone}",
                vpc=vpc,
                vpc_cidr=options.cidr,
                subnet=public,
                instance_type=options.nat_instance_type,
                after=[igw, public_association],
                parent=self,
            )
            route = aws.ec2.RouteTableRouteArgs(
                cidr_block=ANYWHERE, network_interface_id=nat.interface.id
            )
            return route, nat.resources
        gateway = self._nat_gateway(zone, public, igw)
        route = aws.ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, nat_gateway_id=gateway.id)
        return route, [gateway]

    def _private_subnet(
        self, vpc: aws.ec2.Vpc, zone: str, cidr: str, default_route: aws.ec2.RouteTableRouteArgs
    ) -> tuple[aws.ec2.Subnet, aws.ec2.RouteTable, aws.ec2.RouteTableAssociation]:
        name = f"{self._name}-private-{zone}"
        subnet = self._subnet(name, vpc, zone, cidr, PRIVATE_SUBNET_ROLE_TAG)
        routes = aws.ec2.RouteTable(
            name,
            vpc_id=vpc.id,
            routes=[default_route],
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return subnet, routes, self._associate(name, subnet, routes)

    def _subnet(
        self, name: str, vpc: aws.ec2.Vpc, zone: str, cidr: str, role_tag: str
    ) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            # Public subnets hold only NAT gateways and load balancers, which get their addresses
            # explicitly: no instance gets a public IP by accident, in any subnet.
            map_public_ip_on_launch=False,
            tags={
                "Name": name,
                role_tag: "1",
                **self._cluster_tag,
                **self._discovery_tag(role_tag),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _discovery_tag(self, role_tag: str) -> dict[str, str]:
        if role_tag != PRIVATE_SUBNET_ROLE_TAG:
            return {}
        return {KARPENTER_DISCOVERY_TAG: self._cluster_name}

    def _associate(
        self, name: str, subnet: aws.ec2.Subnet, routes: aws.ec2.RouteTable
    ) -> aws.ec2.RouteTableAssociation:
        return aws.ec2.RouteTableAssociation(
            name,
            subnet_id=subnet.id,
            route_table_id=routes.id,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, child: pulumi.ResourceOptions) -> None:
        """Every accepted and rejected flow to a CloudWatch log group, kept for a month."""
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", retention_in_days=FLOW_LOG_RETENTION_DAYS, opts=child
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=aws.iam.get_policy_document_output(
                statements=[
                    aws.iam.GetPolicyDocumentStatementArgs(
                        actions=["sts:AssumeRole"],
                        principals=[
                            aws.iam.GetPolicyDocumentStatementPrincipalArgs(
                                type="Service", identifiers=["vpc-flow-logs.amazonaws.com"]
                            )
                        ],
                    )
                ]
            ).json,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=aws.iam.get_policy_document_output(
                statements=[
                    aws.iam.GetPolicyDocumentStatementArgs(
                        actions=[
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams",
                        ],
                        resources=[log_group.arn.apply(lambda arn: f"{arn}:*")],
                    )
                ]
            ).json,
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            opts=child,
        )
