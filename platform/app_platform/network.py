"""Network: the VPC the cluster and its load balancers live in."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app_platform.config import subnet_plan

# Kubernetes and the AWS Load Balancer Controller find subnets by these tags: internet-facing
# load balancers go to `elb` subnets, internal ones to `internal-elb` subnets.
PUBLIC_SUBNET_ROLE_TAG = "kubernetes.io/role/elb"
PRIVATE_SUBNET_ROLE_TAG = "kubernetes.io/role/internal-elb"
FLOW_LOG_RETENTION_DAYS = 30


@dataclass(frozen=True)
class NetworkArgs:
    cidr: str
    availability_zones: tuple[str, ...]
    # "single": one NAT gateway for the whole VPC (cheap, one zone's outage cuts egress);
    # "perAz": one per zone (each private subnet keeps egress if another zone fails).
    nat_mode: str
    flow_logs: bool
    cluster_name: str


class Network(pulumi.ComponentResource):
    """Owns the VPC, a public and a private subnet per zone, the internet gateway, NAT gateways,
    route tables and, optionally, VPC flow logs to CloudWatch.

    Gives `vpc_id`, `public_subnet_ids` and `private_subnet_ids` (in zone order),
    `nat_gateway_ids`, `public_route_table_id`, `private_route_table_ids` (in zone order), and
    `egress_ready`: the resources the private subnets' path to the internet is made of. Whatever
    runs in the private subnets depends on it, so that it is created once egress works and
    deleted while egress still works (controllers there call AWS APIs to delete what they made).
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    nat_gateway_ids: pulumi.Output[list[str]]
    public_route_table_id: pulumi.Output[str]
    private_route_table_ids: pulumi.Output[list[str]]
    egress_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("app-platform:network:Network", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        private_cidrs, public_cidrs = subnet_plan(args.cidr, len(args.availability_zones))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
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

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nat_gateways: list[aws.ec2.NatGateway] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        # Private subnet -> its route table -> NAT gateway -> public subnet -> public route table
        # -> internet gateway: every link of that path.
        egress: list[pulumi.Resource] = [igw, public_routes]
        for index, zone in enumerate(args.availability_zones):
            public, public_association = self._public_subnet(
                vpc, zone, public_cidrs[index], public_routes
            )
            public_subnets.append(public)
            egress.append(public_association)
            if args.nat_mode == "perAz" or index == 0:
                nat_gateways.append(self._nat_gateway(zone, public, igw))
                egress.append(nat_gateways[-1])
            private, private_routes, private_association = self._private_subnet(
                vpc, zone, private_cidrs[index], nat_gateways[-1]
            )
            private_subnets.append(private)
            private_route_tables.append(private_routes)
            egress += [private_routes, private_association]

        if args.flow_logs:
            self._flow_logs(name, vpc, child)

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.nat_gateway_ids = pulumi.Output.all(*[n.id for n in nat_gateways])
        self.public_route_table_id = public_routes.id
        self.private_route_table_ids = pulumi.Output.all(*[t.id for t in private_route_tables])
        self.egress_ready = egress
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "nat_gateway_ids": self.nat_gateway_ids,
                "public_route_table_id": self.public_route_table_id,
                "private_route_table_ids": self.private_route_table_ids,
                "egress_ready": pulumi.Output.all(*[r.urn for r in egress]),
            }
        )

    def _public_subnet(
        self, vpc: aws.ec2.Vpc, zone: str, cidr: str, routes: aws.ec2.RouteTable
    ) -> tuple[aws.ec2.Subnet, aws.ec2.RouteTableAssociation]:
        name = f"{self._name}-public-{zone}"
        subnet = aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            # Nothing is launched here but NAT gateways and load balancers, which get their
            # addresses explicitly; instances never get a public IP by accident.
            map_public_ip_on_launch=False,
            tags={"Name": name, PUBLIC_SUBNET_ROLE_TAG: "1", **self._cluster_tag},
            opts=pulumi.ResourceOptions(parent=self),
        )
        association = aws.ec2.RouteTableAssociation(
            name,
            subnet_id=subnet.id,
            route_table_id=routes.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return subnet, association

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

    def _private_subnet(
        self, vpc: aws.ec2.Vpc, zone: str, cidr: str, nat: aws.ec2.NatGateway
    ) -> tuple[aws.ec2.Subnet, aws.ec2.RouteTable, aws.ec2.RouteTableAssociation]:
        name = f"{self._name}-private-{zone}"
        subnet = aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            map_public_ip_on_launch=False,
            tags={"Name": name, PRIVATE_SUBNET_ROLE_TAG: "1", **self._cluster_tag},
            opts=pulumi.ResourceOptions(parent=self),
        )
        routes = aws.ec2.RouteTable(
            name,
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self),
        )
        association = aws.ec2.RouteTableAssociation(
            name,
            subnet_id=subnet.id,
            route_table_id=routes.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return subnet, routes, association

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
