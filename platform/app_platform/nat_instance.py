"""A NAT instance: one small EC2 instance doing what a NAT gateway does, for a fraction of the
price (a part of Network, chosen with `natGateways: instance`).

What it trades away, against a NAT gateway (about $33/month plus $0.045/GB processed):
- one instance in one zone: a single point of failure with no zone redundancy; when it or
  its zone is down, nothing in the private subnets reaches the internet;
- its bandwidth is the instance type's (a t4g.nano: 32 Mbit/s baseline, bursts up to 5 Gbit/s
  while its credits last), where a gateway scales to 100 Gbit/s;
- you own its patching: the AMI is the newest AL2023 when the instance is launched and stays
  until it is replaced (`pulumi up --replace <instance urn>` takes the newest);
- a reboot or a replacement cuts egress for a minute or two (the route, the interface and
  the public address stay: they belong to the network interface, not to the instance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app_platform.instance_types import AMD64, ARM64, architecture

# A Graviton nano: 2 vCPUs, 0.5 GiB (NAT is done in the kernel; the SSM agent fits), 32 Mbit/s
# baseline and bursts up to 5 Gbit/s: enough for a dev stack's image pulls and API calls.
DEFAULT_NAT_INSTANCE_TYPE = "t4g.nano"
# The newest AL2023 AMI of each architecture, as public SSM parameters AWS keeps up to date.
# The launch template names the parameter: EC2 resolves it when it launches the instance, so
# the plan needs no AMI lookup, and a newer AMI does not replace a running instance.
AMI_PARAMETERS = {
    AMD64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    ARM64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
}
# The AL2023 AMI's root snapshot is 8 GiB; the volume cannot be smaller.
ROOT_VOLUME_GIB = 8
# Nothing on the instance needs metadata from a container: one hop, IMDSv2 only.
IMDS_HOP_LIMIT = 1
# Shell access without SSH keys or open ports: SSM Session Manager.
SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
ANYWHERE = "0.0.0.0/0"


def user_data(vpc_cidr: str) -> str:
    """Boot script: forward IPv4 and masquerade what leaves the VPC, both kept across reboots.
    AL2023 has no iptables (AWS's own NAT recipe installs iptables-services); nftables is its
    native firewall, installed from the AL2023 repository when the image lacks it."""
    return f"""#!/bin/bash
set -euo pipefail
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
sysctl --system
dnf install -y nftables
cat > /etc/sysconfig/nftables.conf <<'RULES'
table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {vpc_cidr} ip daddr != {vpc_cidr} masquerade
  }}
}}
RULES
systemctl enable --now nftables
"""


@dataclass(frozen=True)
class NatInstance:
    """What the private routes point at (`interface`) and every resource egress is made of."""

    interface: aws.ec2.NetworkInterface
    instance: aws.ec2.Instance
    resources: list[pulumi.Resource]


def nat_instance(
    name: str,
    *,
    vpc: aws.ec2.Vpc,
    vpc_cidr: str,
    subnet: aws.ec2.Subnet,
    instance_type: str,
    after: list[pulumi.Resource],
    parent: pulumi.Resource,
) -> NatInstance:
    """The instance in `subnet` (a public one), created after `after` (the public subnet's
    route to the internet gateway: its boot script installs nftables from the internet)."""
    child = pulumi.ResourceOptions(parent=parent)
    tags = {"Name": name}
    group = aws.ec2.SecurityGroup(
        name,
        vpc_id=vpc.id,
        description="NAT instance: anything from the VPC, out to the internet; no SSH",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="-1", from_port=0, to_port=0, cidr_blocks=[vpc_cidr]
            )
        ],
        egress=[
            aws.ec2.SecurityGroupEgressArgs(
                protocol="-1", from_port=0, to_port=0, cidr_blocks=[ANYWHERE]
            )
        ],
        tags=tags,
        opts=child,
    )
    # The interface outlives instance replacements, so the routes and the public address
    # never change; it forwards packets addressed to others, which a NAT must.
    interface = aws.ec2.NetworkInterface(
        name,
        subnet_id=subnet.id,
        security_groups=[group.id],
        source_dest_check=False,
        tags=tags,
        opts=child,
    )
    address = aws.ec2.Eip(
        name,
        domain="vpc",
        network_interface=interface.id,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
    template = aws.ec2.LaunchTemplate(
        name,
        image_id=f"resolve:ssm:{AMI_PARAMETERS[architecture(instance_type)]}",
        tags=tags,
        opts=child,
    )
    instance = aws.ec2.Instance(
        name,
        instance_type=instance_type,
        launch_template=aws.ec2.InstanceLaunchTemplateArgs(
            id=template.id, version=template.latest_version.apply(str)
        ),
        primary_network_interface=aws.ec2.InstancePrimaryNetworkInterfaceArgs(
            network_interface_id=interface.id
        ),
        source_dest_check=False,
        # An instance profile's id is its name.
        iam_instance_profile=_instance_profile(name, child).id,
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=IMDS_HOP_LIMIT,
        ),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
            volume_size=ROOT_VOLUME_GIB,
            volume_type="gp3",
            encrypted=True,
            delete_on_termination=True,
            tags=tags,
        ),
        user_data=user_data(vpc_cidr),
        user_data_replace_on_change=True,
        tags=tags,
        # The interface takes one instance at a time: the old one goes first. It boots with
        # its public address, to install nftables.
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[address, *after], delete_before_replace=True
        ),
    )
    return NatInstance(interface, instance, [group, interface, address, instance])


def _instance_profile(name: str, child: pulumi.ResourceOptions) -> aws.iam.InstanceProfile:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = aws.iam.Role(name, assume_role_policy=json.dumps(trust), opts=child)
    ssm = aws.iam.RolePolicyAttachment(
        f"{name}-ssm", role=role.name, policy_arn=SSM_POLICY_ARN, opts=child
    )
    return aws.iam.InstanceProfile(
        name,
        role=role.name,
        opts=pulumi.ResourceOptions(parent=child.parent, depends_on=[ssm]),
    )
