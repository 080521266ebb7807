"""The cluster: API-mode access, private spot nodes, logging, encryption and add-on order."""

import json

import pytest

from app_platform import cluster as cluster_module
from app_platform.cluster import ClusterOptions, NodeGroupOptions
from app_platform.config import ConfigError
from app_platform.options import OptionsError
from app_platform_tools import secrets
from tests.conftest import CLUSTER_AUTOSCALER
from tests.upstream import checks

CLUSTER = "eks:index:Cluster"
NODE_GROUP = "eks:index:ManagedNodeGroup"
ADDON = "aws:eks/addon:Addon"


def test_control_plane_is_logged_encrypted_and_uses_access_entries(dev):
    eks = dev.one(CLUSTER).inputs
    assert eks["name"] == "platform-dev"
    assert eks["version"] == "1.35"
    assert eks["authenticationMode"] == "API"
    assert eks["createOidcProvider"] is True
    assert eks["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    key = dev.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert eks["encryptionConfigKeyArn"] == key.outputs["arn"]


def test_endpoint_is_private_and_public_only_to_configured_cidrs(dev, run_stack):
    eks = dev.one(CLUSTER).inputs
    assert eks["endpointPrivateAccess"] is True
    assert eks["publicAccessCidrs"] == ["0.0.0.0/0"]
    narrowed = run_stack({"publicAccessCidrs": ["203.0.113.7/32"]}).one(CLUSTER).inputs
    assert narrowed["publicAccessCidrs"] == ["203.0.113.7/32"]


def test_admin_roles_get_cluster_admin_access_entries(run_stack):
    arn = "arn:aws:iam::123456789012:role/platform-admins"
    entries = run_stack({"adminRoleArns": [arn]}).one(CLUSTER).inputs["accessEntries"]
    (entry,) = entries.values()
    assert entry["principalArn"] == arn
    (policy,) = entry["accessPolicies"].values()
    assert policy["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    assert policy["accessScope"] == {"type": "cluster"}


def test_only_managed_node_groups_and_managed_addons(dev):
    eks = dev.one(CLUSTER).inputs
    assert eks["skipDefaultNodeGroup"] is True
    assert eks["bootstrapSelfManagedAddons"] is False
    assert eks["corednsAddonOptions"]["enabled"] is False
    assert eks["kubeProxyAddonOptions"]["enabled"] is False


def test_nodes_live_only_in_private_subnets(dev):
    eks = dev.one(CLUSTER).inputs
    assert eks["nodeAssociatePublicIpAddress"] is False
    private_ids = dev.outputs["privateSubnetIds"].value
    for group in dev.of_type(NODE_GROUP):
        assert group.inputs["subnetIds"] == private_ids


def test_with_karpenter_there_is_no_spot_group_and_the_nodes_group_is_tagged(dev):
    assert [g.name for g in dev.of_type(NODE_GROUP)] == ["platform-dev-system"]
    (tag,) = dev.of_type("aws:ec2/tag:Tag")
    eks_cluster = dev.one("eks:index:Cluster")
    assert tag.inputs["key"] == "karpenter.sh/discovery"
    assert tag.inputs["value"] == "platform-dev"
    # The group EKS gives managed nodes whose launch template names none.
    assert tag.inputs["resourceId"] == eks_cluster.outputs["clusterSecurityGroupId"]
    for subnet in dev.of_type("aws:ec2/subnet:Subnet"):
        private = "kubernetes.io/role/internal-elb" in subnet.inputs["tags"]
        assert ("karpenter.sh/discovery" in subnet.inputs["tags"]) is private, subnet.name


def test_spot_group_is_diversified_over_one_size_and_left_to_the_autoscaler(
    dev_cluster_autoscaler,
):
    assert dev_cluster_autoscaler.of_type("aws:ec2/tag:Tag") == []
    spot = dev_cluster_autoscaler.one(NODE_GROUP, "platform-dev-spot").inputs
    assert spot["capacityType"] == "SPOT"
    assert len(set(spot["instanceTypes"])) >= 3
    assert {t.split(".")[1] for t in spot["instanceTypes"]} == {"large"}
    assert spot["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 6}
    assert spot["ignoreScalingChanges"] is True
    assert spot["amiType"] == "AL2023_x86_64_STANDARD"
    assert spot["labels"] == {"node-pool": "spot"}
    assert "taints" not in spot


def test_system_group_is_on_demand_labelled_and_tainted_for_controllers(dev):
    system = dev.one(NODE_GROUP, "platform-dev-system").inputs
    assert system["capacityType"] == "ON_DEMAND"
    assert system["labels"] == cluster_module.SYSTEM_NODE_SELECTOR
    assert system["taints"] == [{"key": "node-pool", "value": "system", "effect": "NO_SCHEDULE"}]
    toleration = cluster_module.SYSTEM_TOLERATIONS[0]
    assert (toleration["key"], toleration["value"]) == ("node-pool", "system")


def test_nodes_require_imdsv2_with_hop_limit_one_and_encrypted_disks(dev):
    for group in dev.of_type(NODE_GROUP):
        template_id = group.inputs["launchTemplate"]["id"]
        (template,) = [
            t
            for t in dev.of_type("aws:ec2/launchTemplate:LaunchTemplate")
            if t.outputs["id"] == template_id
        ]
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        (disk,) = template.inputs["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true"
        assert disk["ebs"]["volumeType"] == "gp3"


def test_addons_match_the_cluster_version_and_start_in_order(dev):
    addons = {a.inputs["addonName"]: a for a in dev.of_type(ADDON)}
    assert {"vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns"} <= set(addons)
    for name, addon in addons.items():
        assert addon.inputs["addonVersion"].endswith(f"+{name}-k8s1.35"), name
    groups = dev.of_type(NODE_GROUP)
    for name in cluster_module.ADDONS_BEFORE_NODES:
        assert all(dev.depends_on(group, addons[name]) for group in groups), name
    assert all(dev.depends_on(addons["coredns"], group) for group in groups)


def test_kubernetes_provider_uses_the_clusters_kubeconfig_as_a_secret(dev):
    provider = dev.one("pulumi:providers:kubernetes")
    assert secrets.SECRET_KEY in provider.inputs["kubeconfig"]
    assert dev.depends_on(provider, dev.one(CLUSTER))


def test_control_plane_logs_go_to_a_group_the_stack_owns_and_expires(dev):
    logs = dev.one("aws:cloudwatch/logGroup:LogGroup", "platform-dev-control-plane")
    assert logs.inputs["name"] == "/aws/eks/platform-dev/cluster"
    assert logs.inputs["retentionInDays"] == 90
    assert dev.depends_on(dev.one(CLUSTER), logs)


def test_network_policies_are_enforced_by_the_vpc_cni(dev):
    vpc_cni = next(a for a in dev.of_type(ADDON) if a.inputs["addonName"] == "vpc-cni")
    assert json.loads(vpc_cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_ebs_csi_driver_needs_no_instance_metadata_and_tags_its_volumes(dev):
    """Nodes allow one IMDS hop, out of reach of the driver's pods: the controller is given its
    region, the node plugin reads its Node object; volumes carry the cluster and claim tags."""
    driver = next(a for a in dev.of_type(ADDON) if a.inputs["addonName"] == "aws-ebs-csi-driver")
    configuration = json.loads(driver.inputs["configurationValues"])
    assert checks.addon_configuration_errors("aws-ebs-csi-driver", configuration) == []
    assert configuration["controller"]["region"] == "us-east-1"
    assert configuration["node"]["metadataSources"] == "kubernetes"
    assert configuration["controller"]["k8sTagClusterId"] == "platform-dev"
    assert configuration["controller"]["extraCreateMetadata"] is True


OPEN = ("0.0.0.0/0",)


def test_options_default_to_a_diversified_spot_group_and_two_system_nodes():
    options = ClusterOptions(public_access_cidrs=OPEN)
    assert options.kubernetes_version == "1.35"
    assert len(set(options.spot.instance_types)) >= 3
    assert (options.spot.min_size, options.spot.max_size) == (2, 6)
    assert options.system == NodeGroupOptions(
        instance_types=("t3.large",), min_size=2, desired_size=2, max_size=2
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, "'public_access_cidrs' is not set"),
        (
            {"kubernetes_version": "1.29"},
            "'kubernetes_version' = \"1.29\" is not valid: expected one of 1.34, 1.35, 1.36",
        ),
        ({"public_access_cidrs": []}, "'public_access_cidrs' = [] is not valid: expected a non"),
        ({"admin_role_arns": ["arn:aws:iam::1:user/x"]}, "expected IAM role ARNs"),
        (
            {
                "spot": {
                    "instance_types": ["m6i.large"],
                    "min_size": 1,
                    "desired_size": 1,
                    "max_size": 2,
                }
            },
            "'spot.instance_types' = [\"m6i.large\"] is not valid: expected at least 3 different",
        ),
        (
            {
                "spot": {
                    "instance_types": ["m6i.large", "m7g.large", "m5.large"],
                    "min_size": 1,
                    "desired_size": 1,
                    "max_size": 2,
                }
            },
            "expected instance types of one architecture, got amd64: ['m6i.large', 'm5.large']; "
            "arm64: ['m7g.large']",
        ),
        (
            {
                "spot": {
                    "instance_types": ["m6i.large", "m6a.large", "m5.large"],
                    "min_size": 3,
                    "desired_size": 1,
                    "max_size": 2,
                }
            },
            "is not valid: expected min_size <= desired_size <= max_size",
        ),
        ({"system_node_count": 0}, "'system_node_count' = 0 is not valid: expected a whole"),
        ({"system_instance_type": "large"}, "expected an instance type such as t3.large"),
    ],
)
def test_options_built_in_code_refuse_what_config_refuses(given, expected):
    with pytest.raises(OptionsError) as raised:
        ClusterOptions(**{"public_access_cidrs": OPEN, **given} if given else {})
    assert expected in str(raised.value)


def test_what_uses_the_cluster_name_waits_for_the_eks_cluster(dev):
    """The name is the EKS cluster's own output, not the string asked for: the load balancer
    controller's values (clusterName) make its release wait for the cluster itself."""
    eks = dev.one(CLUSTER)
    controller = dev.one("kubernetes:helm.sh/v3:Release", "platform-dev-load-balancer-controller")
    assert eks.urn in controller.dependencies
    inner = [urn for urn in controller.dependencies if "$aws:eks/cluster:Cluster::" in urn]
    assert inner == [
        f"{eks.urn.split('::')[0]}::app-platform::{CLUSTER}$aws:eks/cluster:Cluster"
        f"::{eks.name}-eksCluster"
    ]
    assert dev.outputs["clusterName"].value == "platform-dev"


GRAVITON_SPOT = ["m7g.large", "m6g.large", "c7g.large"]


def test_graviton_types_get_the_arm64_ami_one_architecture_per_group(run_stack):
    recording = run_stack(
        {
            **CLUSTER_AUTOSCALER,
            "systemInstanceType": "t4g.medium",
            "spotInstanceTypes": GRAVITON_SPOT,
        }
    )
    system = recording.one(NODE_GROUP, "platform-dev-system").inputs
    spot = recording.one(NODE_GROUP, "platform-dev-spot").inputs
    assert (system["instanceTypes"], system["amiType"]) == (
        ["t4g.medium"],
        "AL2023_ARM_64_STANDARD",
    )
    assert (spot["instanceTypes"], spot["amiType"]) == (GRAVITON_SPOT, "AL2023_ARM_64_STANDARD")


def test_each_group_follows_its_own_architecture(run_stack):
    recording = run_stack({**CLUSTER_AUTOSCALER, "systemInstanceType": "t4g.large"})
    system = recording.one(NODE_GROUP, "platform-dev-system").inputs
    spot = recording.one(NODE_GROUP, "platform-dev-spot").inputs
    assert system["amiType"] == "AL2023_ARM_64_STANDARD"
    assert spot["amiType"] == "AL2023_x86_64_STANDARD"


def test_a_group_mixing_architectures_is_refused_naming_the_key_and_types(parse_config):
    with pytest.raises(ConfigError) as raised:
        parse_config(spotInstanceTypes=["m7g.large", "m6i.large", "m6a.large"])
    assert str(raised.value).count("spotInstanceTypes") == 1
    assert (
        '\'spotInstanceTypes\' = ["m7g.large", "m6i.large", "m6a.large"] is not valid: '
        "expected instance types of one architecture, got amd64: ['m6i.large', 'm6a.large']; "
        "arm64: ['m7g.large']"
    ) in str(raised.value)


def test_a_node_group_built_in_code_refuses_mixed_architectures():
    with pytest.raises(OptionsError, match=r"'instance_types' = .* expected instance types of one"):
        NodeGroupOptions(
            instance_types=["t4g.large", "t3.large"], min_size=1, desired_size=1, max_size=1
        )
    assert cluster_module.ami_type(("t4g.large",)) == "AL2023_ARM_64_STANDARD"
