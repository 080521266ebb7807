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

    Gives `vpc_id`, `public_subnet_ids` and `private_subnet_ids` (in zone order).
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("app-platform:network:Network", name, None, opts)
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
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nat_gateways: list[aws.ec2.NatGateway] = []
        for index, zone in enumerate(args.availability_zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[index],
                availability_zone=zone,
                # Nothing is launched here but NAT gateways and load balancers, which get their
                # addresses explicitly; instances never get a public IP by accident.
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{zone}", PUBLIC_SUBNET_ROLE_TAG: "1", **cluster_tag},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            public_subnets.append(public)

            if args.nat_mode == "perAz" or index == 0:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{zone}",
                    domain="vpc",
                    tags={"Name": f"{name}-nat-{zone}"},
                    opts=child,
                )
                nat_gateways.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{zone}",
                        subnet_id=public.id,
                        allocation_id=eip.id,
                        tags={"Name": f"{name}-nat-{zone}"},
                        # The gateway needs the VPC's internet gateway to reach the internet.
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                    )
                )

            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={
                    "Name": f"{name}-private-{zone}",
                    PRIVATE_SUBNET_ROLE_TAG: "1",
                    **cluster_tag,
                },
                opts=child,
            )
            private_routes = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=[
                    aws.ec2.RouteTableRouteArgs(
                        cidr_block="0.0.0.0/0", nat_gateway_id=nat_gateways[-1].id
                    )
                ],
                tags={"Name": f"{name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=private.id,
                route_table_id=private_routes.id,
                opts=child,
            )
            private_subnets.append(private)

        if args.flow_logs:
            self._flow_logs(name, vpc, child)

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
            }
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
