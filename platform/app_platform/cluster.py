"""Cluster: the EKS control plane, its nodes and the Kubernetes provider everything else uses."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s
from pydantic import AfterValidator, Field, model_validator

from app_platform.network import is_ipv4_network
from app_platform.options import Options, StringList, component_inputs, one_of, whole_number
from app_platform.volumes import BlockStorage

# EKS versions in standard support that every pinned chart supports (Envoy Gateway 1.9 needs
# 1.33+). Standard support lasts 14 months from each version's EKS release; drop a version here
# when it leaves standard support, and add a new one once the charts list it.
SUPPORTED_KUBERNETES_VERSIONS = ("1.34", "1.35", "1.36")
DEFAULT_KUBERNETES_VERSION = "1.35"
DEFAULT_SPOT_INSTANCE_TYPES = ("m6i.large", "m6a.large", "m5.large", "m5a.large", "m7i.large")
DEFAULT_SPOT_SIZES = {"min_size": 2, "desired_size": 2, "max_size": 6}
MIN_SPOT_INSTANCE_TYPES = 3
MAX_NODES = 100
DEFAULT_SYSTEM_INSTANCE_TYPE = "t3.large"
DEFAULT_SYSTEM_NODE_COUNT = 2
MAX_SYSTEM_NODES = 10
DEFAULT_DISK_GIB = 40
MIN_DISK_GIB = 20
MAX_DISK_GIB = 1000
INSTANCE_TYPE_PATTERN = re.compile(
    r"^(?P<series>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z-]*)\.(?P<size>[a-z0-9]+)$"
)
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")

CONTROL_PLANE_LOG_TYPES = ["api", "audit", "authenticator"]
# EKS would create the log group itself, kept forever and left behind by destroy; ours expires.
CONTROL_PLANE_LOG_RETENTION_DAYS = 90
AMI_TYPE = "AL2023_x86_64_STANDARD"
CLUSTER_ADMIN_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_MANAGED_POLICIES = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    # Shell access through SSM Session Manager instead of SSH keys and open ports.
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
]
KMS_DELETION_WINDOW_DAYS = 7
# A pod is one network hop further than its node: a hop limit of 1 keeps pods (outside the host
# network) from reaching the instance metadata service and borrowing the node's IAM role. What
# the add-ons would read from it is given to them instead: the EBS CSI driver's region and
# metadata source (`ebs_csi_configuration`), the Load Balancer Controller's region and VPC
# (edge.py), the Cluster Autoscaler's region (autoscaling.py). The VPC CNI, kube-proxy and the
# Pod Identity agent run on the host network, within the limit. Pods get AWS credentials from
# the Pod Identity agent or IRSA, not from instance metadata.
IMDS_HOP_LIMIT = 1

# Add-ons the nodes need before they can become Ready, and those that need Ready nodes to run.
ADDONS_BEFORE_NODES = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]
ADDONS_AFTER_NODES = ["coredns"]
# The VPC CNI enforces NetworkPolicies only when told to (its network policy agent is off by
# default); without it every app's NetworkPolicy would be silently ignored.
ADDON_CONFIGURATION = {"vpc-cni": {"enableNetworkPolicy": "true"}}
# EBS volumes (Prometheus) go through the CSI driver; its controller gets its AWS permissions
# through EKS Pod Identity (the agent add-on runs before nodes).
EBS_CSI_ADDON = "aws-ebs-csi-driver"
# The driver's only metadata source its node pods can reach with IMDS_HOP_LIMIT: their Node
# object (provider ID, instance type and zone labels).
EBS_CSI_NODE_METADATA_SOURCES = "kubernetes"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
# EKS has no gp3 class (and since 1.30 no default class); this one becomes the default.
GP3_STORAGE_CLASS = "gp3"

# The on-demand system nodes carry this label and taint; controllers that must not be
# interrupted by a spot reclaim select the label and tolerate the taint.
NODE_POOL_LABEL = "node-pool"
SYSTEM_POOL = "system"
SPOT_POOL = "spot"
SYSTEM_NODE_SELECTOR = {NODE_POOL_LABEL: SYSTEM_POOL}
SYSTEM_TOLERATIONS = [
    {"key": NODE_POOL_LABEL, "operator": "Equal", "value": SYSTEM_POOL, "effect": "NoSchedule"}
]


class NodeGroupOptions(Options):
    """A managed node group: its instance types and how many nodes it keeps."""

    instance_types: StringList = Field(
        alias="instanceTypes", description="Instance types the group launches."
    )
    min_size: whole_number(0, MAX_NODES) = Field(alias="minSize", description="Fewest nodes.")
    desired_size: whole_number(0, MAX_NODES) = Field(
        alias="desiredSize",
        description="Nodes at creation; afterwards the Cluster Autoscaler sets it and `pulumi "
        "up` leaves it alone.",
    )
    max_size: whole_number(1, MAX_NODES) = Field(alias="maxSize", description="Most nodes.")

    @model_validator(mode="after")
    def _ordered(self) -> NodeGroupOptions:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("expected min_size <= desired_size <= max_size")
        return self


def _spot_instance_types(types: tuple[str, ...]) -> tuple[str, ...]:
    """Spot capacity is diversified over several types of one size, all x86_64."""
    if len(set(types)) < MIN_SPOT_INSTANCE_TYPES:
        raise ValueError(
            f"expected at least {MIN_SPOT_INSTANCE_TYPES} different instance types of one size"
        )
    parsed = [INSTANCE_TYPE_PATTERN.match(t) for t in types]
    if not all(parsed):
        raise ValueError("expected instance type names such as m6i.large")
    sizes = {m["size"] for m in parsed if m}
    if len(sizes) > 1:
        raise ValueError(f"expected instance types of one size, got sizes {sorted(sizes)}")
    # Nodes run x86_64 AL2023 images; Graviton families (m7g, c6gn, ...) need ARM images.
    arm = [t for t, m in zip(types, parsed, strict=True) if m and "g" in m["attributes"]]
    if arm:
        raise ValueError(f"expected x86_64 instance types (no Graviton: {arm})")
    return types


def _cidrs(cidrs: tuple[str, ...]) -> tuple[str, ...]:
    if not cidrs or not all(map(is_ipv4_network, cidrs)):
        raise ValueError(
            "expected a non-empty list of IPv4 CIDRs allowed to reach the public API endpoint, "
            'e.g. ["203.0.113.7/32"]'
        )
    return cidrs


def _role_arns(arns: tuple[str, ...]) -> tuple[str, ...]:
    bad = [arn for arn in arns if not ROLE_ARN_PATTERN.fullmatch(arn)]
    if bad:
        raise ValueError(f"expected IAM role ARNs (not: {bad})")
    return arns


def _instance_type(value: str) -> str:
    if not INSTANCE_TYPE_PATTERN.fullmatch(value):
        raise ValueError("expected an instance type such as t3.large")
    return value


KubernetesVersion = one_of(
    SUPPORTED_KUBERNETES_VERSIONS,
    f"one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)} (EKS standard support)",
)


class SpotGroupOptions(NodeGroupOptions):
    """A spot group: diversified over several instance types of one size, all x86_64."""

    instance_types: Annotated[StringList, AfterValidator(_spot_instance_types)] = Field(
        alias="instanceTypes",
        description=f"Instance types, at least {MIN_SPOT_INSTANCE_TYPES}, all of one size, x86_64.",
    )


class ClusterOptions(Options):
    """The control plane's version and access, and the two node groups."""

    public_access_cidrs: Annotated[StringList, AfterValidator(_cidrs)] = Field(
        alias="publicAccessCidrs",
        description="CIDRs allowed to reach the cluster's public API endpoint (required; nodes "
        "use the private endpoint).",
    )
    kubernetes_version: KubernetesVersion = Field(
        DEFAULT_KUBERNETES_VERSION,
        alias="kubernetesVersion",
        description="EKS Kubernetes version; one in EKS standard support that every pinned "
        f"chart supports ({', '.join(SUPPORTED_KUBERNETES_VERSIONS[:-1])} or "
        f"{SUPPORTED_KUBERNETES_VERSIONS[-1]}).",
    )
    admin_role_arns: Annotated[StringList, AfterValidator(_role_arns)] = Field(
        (),
        alias="adminRoleArns",
        description="IAM role ARNs given cluster-admin through EKS access entries, besides the "
        "identity that creates the cluster (which EKS makes admin itself; the program refuses "
        "it here).",
    )
    spot: SpotGroupOptions = Field(
        SpotGroupOptions(instance_types=DEFAULT_SPOT_INSTANCE_TYPES, **DEFAULT_SPOT_SIZES),
        title="Spot",
        description="The spot node group the workloads run on.",
    )
    system_instance_type: Annotated[str, AfterValidator(_instance_type)] = Field(
        DEFAULT_SYSTEM_INSTANCE_TYPE,
        alias="systemInstanceType",
        description="Instance type of the on-demand system node group (controllers that must "
        "not be interrupted).",
    )
    system_node_count: whole_number(1, MAX_SYSTEM_NODES) = Field(
        DEFAULT_SYSTEM_NODE_COUNT,
        alias="systemNodeCount",
        description="Nodes in the on-demand system node group.",
    )
    node_disk_size_gib: whole_number(MIN_DISK_GIB, MAX_DISK_GIB) = Field(
        DEFAULT_DISK_GIB,
        alias="nodeDiskSizeGib",
        description="Encrypted gp3 root volume size of every node, in GiB.",
    )

    @property
    def system(self) -> NodeGroupOptions:
        """The system group has a fixed size: nothing scales it."""
        count = self.system_node_count
        return NodeGroupOptions(
            instance_types=(self.system_instance_type,),
            min_size=count,
            desired_size=count,
            max_size=count,
        )


@dataclass(frozen=True)
class ClusterArgs:
    """The options, and what comes from elsewhere: the cluster's name (every AWS name starts
    with it), the region, and the network it runs in."""

    options: ClusterOptions
    cluster_name: str
    region: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[list[str]]
    private_subnet_ids: pulumi.Input[list[str]]
    # The private subnets' path to the internet (Network.egress_ready): the control plane and
    # the nodes wait for it, so on destroy everything in the cluster goes while it still works.
    egress_ready: Sequence[pulumi.Resource] = field(default_factory=list)


class Cluster(pulumi.ComponentResource):
    """Owns the EKS control plane (API authentication with access entries, OIDC provider,
    control-plane logs, secrets encrypted with a rotating KMS key), the node IAM role, a managed
    node group on spot capacity and a small on-demand system node group, the EKS managed add-ons,
    the EBS CSI driver with a default gp3 StorageClass, and a Kubernetes provider for the cluster.

    Gives `provider`, `cluster_name`, `kubeconfig` (secret), `oidc_provider_arn`, `oidc_issuer`,
    `node_security_group_id`, `spot_node_group_name`, and `nodes_ready`: resources to depend on
    when something needs schedulable nodes and cluster DNS; `block_storage` for workloads with
    persistent volumes (volumes.py).
    """

    provider: k8s.Provider
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    nodes_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "app-platform:cluster:Cluster",
            name,
            {
                **component_inputs(args.options),
                "cluster_name": args.cluster_name,
                "region": args.region,
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)

        self.eks = self._control_plane(name, args, child)
        # The EKS cluster's own name output, not the name asked for: whatever uses it waits
        # for the cluster to exist.
        self.cluster_name = self.eks.eks_cluster.name

        before_nodes = [self._addon(name, addon, args, []) for addon in ADDONS_BEFORE_NODES]
        node_role, node_policies = self._node_role(name, child)
        # Nodes start after, and are deleted before, their permissions, the add-ons they need
        # to become Ready and the egress they pull images and join the cluster through.
        after = [*before_nodes, *node_policies, *args.egress_ready]
        self.system_node_group = self._node_group(
            name, SYSTEM_POOL, "ON_DEMAND", args.options.system, args, node_role, after
        )
        self.spot_node_group = self._node_group(
            name, SPOT_POOL, "SPOT", args.options.spot, args, node_role, after
        )
        node_groups = [self.system_node_group, self.spot_node_group]
        after_nodes = [self._addon(name, addon, args, node_groups) for addon in ADDONS_AFTER_NODES]
        self.nodes_ready = [*node_groups, *after_nodes]

        self.kubeconfig = pulumi.Output.secret(self.eks.kubeconfig_json)
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True, opts=child
        )
        self.block_storage = self._block_storage(name, args, node_groups)
        self.oidc_provider_arn = self.eks.oidc_provider_arn
        self.oidc_issuer = self.eks.oidc_issuer
        self.node_security_group_id = self.eks.node_security_group_id
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
                "node_security_group_id": self.node_security_group_id,
            }
        )

    def _control_plane(
        self, name: str, args: ClusterArgs, child: pulumi.ResourceOptions
    ) -> eks.Cluster:
        """The EKS control plane, its secrets key and its log group."""
        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Encrypts Kubernetes secrets of EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{args.cluster_name}-secrets",
            target_key_id=secrets_key.key_id,
            opts=child,
        )

        # The group EKS writes control-plane logs to, made first so it is ours: it expires old
        # logs and goes with the stack.
        control_plane_logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=CONTROL_PLANE_LOG_RETENTION_DAYS,
            opts=child,
        )
        return eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.options.kubernetes_version,
            vpc_id=args.vpc_id,
            public_subnet_ids=args.public_subnet_ids,
            private_subnet_ids=args.private_subnet_ids,
            node_associate_public_ip_address=False,
            endpoint_private_access=True,
            endpoint_public_access=True,
            public_access_cidrs=list(args.options.public_access_cidrs),
            # Access entries instead of the aws-auth ConfigMap. Whoever creates the cluster is
            # made admin by EKS itself; the roles below are the team's other admins (CI, SSO).
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                f"admin-{index}": eks.AccessEntryArgs(
                    principal_arn=arn,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=CLUSTER_ADMIN_POLICY_ARN,
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                                type="cluster"
                            ),
                        )
                    },
                )
                for index, arn in enumerate(args.options.admin_role_arns)
            },
            create_oidc_provider=True,
            enabled_cluster_log_types=CONTROL_PLANE_LOG_TYPES,
            encryption_config_key_arn=secrets_key.arn,
            # Only managed node groups, and every add-on as an EKS managed add-on we version.
            skip_default_node_group=True,
            skip_default_security_groups=True,
            bootstrap_self_managed_addons=False,
            use_default_vpc_cni=True,
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=False),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[control_plane_logs, *args.egress_ready]
            ),
        )

    def _block_storage(
        self, name: str, args: ClusterArgs, node_groups: list[pulumi.Resource]
    ) -> BlockStorage:
        """The EBS CSI driver add-on (Pod Identity role) and a default, encrypted gp3 class."""
        role = aws.iam.Role(
            f"{name}-ebs-csi",
            # EKS Pod Identity also tags the session with the pod's namespace and account.
            assume_role_policy=service_trust_policy(
                "pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=role.name,
            policy_arn=EBS_CSI_POLICY_ARN,
            opts=pulumi.ResourceOptions(parent=self),
        )
        driver = self._addon(
            name,
            EBS_CSI_ADDON,
            args,
            [*node_groups, attachment],
            pod_identity=[
                aws.eks.AddonPodIdentityAssociationArgs(
                    role_arn=role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT
                )
            ],
            configuration=ebs_csi_configuration(args.region, args.cluster_name),
        )
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={
                "name": GP3_STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            # Create the volume in the zone the pod is scheduled to, not a random one.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[driver]),
        )
        return BlockStorage(
            storage_class_name=GP3_STORAGE_CLASS,
            cluster_name=args.cluster_name,
            region=args.region,
            ready=[driver, storage_class],
        )

    def _addon(
        self,
        name: str,
        addon: str,
        args: ClusterArgs,
        after: list[pulumi.Resource],
        pod_identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
        configuration: dict | None = None,
    ) -> aws.eks.Addon:
        """An EKS managed add-on at the version EKS makes the default for this cluster version:
        it follows the cluster's version, and does not move with every new add-on release."""
        version = aws.eks.get_addon_version_output(
            addon_name=addon, kubernetes_version=args.options.kubernetes_version, most_recent=False
        )
        configuration = configuration or ADDON_CONFIGURATION.get(addon)
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=args.cluster_name,
            addon_name=addon,
            addon_version=version.version,
            configuration_values=json.dumps(configuration) if configuration else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            pod_identity_associations=pod_identity,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.eks, *after]),
        )

    def _node_role(
        self, name: str, child: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        """The nodes' role and its policy attachments, which node groups must depend on: a role
        without them cannot join the cluster, pull images or run the VPC CNI."""
        role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com", "sts:AssumeRole"),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy_arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=policy_arn,
                opts=child,
            )
            for policy_arn in NODE_MANAGED_POLICIES
        ]
        return role, attachments

    def _node_group(
        self,
        name: str,
        pool: str,
        capacity_type: str,
        sizes: NodeGroupOptions,
        args: ClusterArgs,
        role: aws.iam.Role,
        after: list[pulumi.Resource],
    ) -> eks.ManagedNodeGroup:
        # Our own launch template: IMDSv2 with hop limit 1 and an encrypted gp3 root volume.
        # EKS still writes the AL2023 node bootstrap into it because it names no AMI.
        template = aws.ec2.LaunchTemplate(
            f"{name}-{pool}",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.options.node_disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags={"Name": f"{args.cluster_name}-{pool}"}
                )
                for kind in ("instance", "volume")
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        is_system = pool == SYSTEM_POOL
        return eks.ManagedNodeGroup(
            f"{name}-{pool}",
            cluster=self.eks,
            node_group_name_prefix=f"{args.cluster_name}-{pool}-",
            version=args.options.kubernetes_version,
            capacity_type=capacity_type,
            instance_types=list(sizes.instance_types),
            ami_type=AMI_TYPE,
            node_role_arn=role.arn,
            subnet_ids=args.private_subnet_ids,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=sizes.min_size, desired_size=sizes.desired_size, max_size=sizes.max_size
            ),
            # The Cluster Autoscaler owns the desired size once it runs; `up` must not reset it.
            ignore_scaling_changes=not is_system,
            labels={NODE_POOL_LABEL: pool},
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=NODE_POOL_LABEL, value=SYSTEM_POOL, effect="NO_SCHEDULE"
                )
            ]
            if is_system
            else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )


def ebs_csi_configuration(region: str, cluster_name: str) -> dict:
    """The EBS CSI driver add-on's configuration: keys of the driver's Helm chart values, which
    the add-on's configuration schema follows (checked in tests/upstream).

    - `controller.region`: with AWS_REGION set, the controller reads no instance metadata at
      all (cmd/main.go); without it, it would try IMDS, which IMDS_HOP_LIMIT puts out of reach.
    - `node.metadataSources`: the node plugin needs its instance ID, type and zone; it reads them
      from its Node object instead of trying IMDS first and waiting for it to time out
      (docs/install.md "Metadata"). It then counts one ENI and the root volume as attached
      when working out how many volumes fit on a node.
    - `controller.k8sTagClusterId` and `extraCreateMetadata`: every volume it creates is tagged
      with the cluster and its claim's namespace and name, which is how destroy finds the
      volumes of the stack's claims (volumes.VolumeCleanup).
    """
    return {
        "controller": {
            "region": region,
            "k8sTagClusterId": cluster_name,
            "extraCreateMetadata": True,
        },
        "node": {"metadataSources": EBS_CSI_NODE_METADATA_SOURCES},
    }


def service_trust_policy(service: str, *actions: str) -> str:
    """A trust policy letting one AWS service principal assume the role."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def service_account_role(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy: dict,
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """An IAM role only `namespace/service_account` of this cluster can assume (IRSA), with
    `policy` inline. Callers depend on the returned policy so the workload never starts without
    its permissions, and on destroy is removed before them."""

    def trust(args: list[str]) -> str:
        provider_arn, issuer = args
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider_arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{issuer}:sub": f"system:serviceaccount:{namespace}:"
                                f"{service_account}",
                                f"{issuer}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )

    role = aws.iam.Role(
        name,
        assume_role_policy=pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(trust),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    inline = aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=json.dumps(policy, separators=(",", ":")),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return role, inline
