"""Autoscaling: metrics-server for HPAs, the Cluster Autoscaler for the spot nodes."""

import json

import pytest

from app_platform import autoscaling, charts
from app_platform.cluster import SUPPORTED_KUBERNETES_VERSIONS
from app_platform.options import OptionsError
from tests.conftest import CLUSTER_AUTOSCALER
from tests.upstream import checks

RELEASE = "kubernetes:helm.sh/v3:Release"


def release(recording, name):
    return recording.one(RELEASE, f"platform-dev-{name}")


def test_metrics_server_is_pinned_redundant_and_on_workload_nodes(dev):
    metrics = release(dev, "metrics-server")
    assert (metrics.inputs["chart"], metrics.inputs["version"]) == ("metrics-server", "3.13.1")
    values = metrics.inputs["values"]
    assert checks.unknown_values_keys("metrics-server", values) == []
    assert values["replicas"] >= 2 and values["podDisruptionBudget"]["enabled"] is True
    assert "nodeSelector" not in values


def test_with_karpenter_only_metrics_server_is_installed(dev):
    assert [r.name for r in dev.of_type(RELEASE) if "autoscaler" in r.name] == []
    assert release(dev, "metrics-server")
    component = dev.one("app-platform:autoscaling:Autoscaling")
    assert component.inputs["cluster_autoscaler"] is False


def test_cluster_autoscaler_discovers_this_clusters_groups_on_system_nodes(
    dev_cluster_autoscaler,
):
    dev = dev_cluster_autoscaler
    ca = release(dev, "cluster-autoscaler")
    assert (ca.inputs["chart"], ca.inputs["version"]) == ("cluster-autoscaler", "9.59.0")
    assert ca.inputs["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    values = ca.inputs["values"]
    assert checks.unknown_values_keys("cluster-autoscaler", values) == []
    assert values["autoDiscovery"] == {"clusterName": "platform-dev"}
    assert values["awsRegion"] == "us-east-1"
    assert values["nodeSelector"] == {"node-pool": "system"}
    assert values["tolerations"][0]["value"] == "system"
    for group in dev.of_type("eks:index:ManagedNodeGroup"):
        assert dev.depends_on(ca, group)


@pytest.mark.parametrize(
    ("version", "tag"), [("1.34", "v1.34.5"), ("1.35", "v1.35.2"), ("1.36", "v1.36.1")]
)
def test_cluster_autoscaler_image_matches_the_cluster_minor(run_stack, version, tag):
    stack = run_stack({"kubernetesVersion": version, **CLUSTER_AUTOSCALER})
    values = release(stack, "cluster-autoscaler").inputs["values"]
    assert values["image"] == {
        "repository": "registry.k8s.io/autoscaling/cluster-autoscaler",
        "tag": tag,
    }


def test_every_supported_kubernetes_version_has_an_autoscaler_image():
    assert set(SUPPORTED_KUBERNETES_VERSIONS) == set(charts.CLUSTER_AUTOSCALER_IMAGE_TAGS)


def test_an_unsupported_kubernetes_version_is_refused_naming_the_argument():
    with pytest.raises(OptionsError) as raised:
        autoscaling.AutoscalingArgs(
            provider=None,
            cluster_name="demo",
            kubernetes_version="1.29",
            region="us-east-1",
            oidc_provider_arn="arn",
            oidc_issuer="issuer",
        )
    assert str(raised.value).splitlines() == [
        "invalid AutoscalingArgs:",
        "  - 'kubernetes_version' = \"1.29\" is not valid: expected one of 1.34, 1.35, 1.36 "
        "(EKS standard support)",
    ]


def test_cluster_autoscaler_role_is_least_privilege_and_scoped_to_the_cluster(
    dev_cluster_autoscaler,
):
    dev = dev_cluster_autoscaler
    role = dev.one("aws:iam/role:Role", "platform-dev-cluster-autoscaler")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    subjects = [v for k, v in trust["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == ["system:serviceaccount:kube-system:cluster-autoscaler"]
    values = release(dev, "cluster-autoscaler").inputs["values"]
    annotations = values["rbac"]["serviceAccount"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].endswith("platform-dev-cluster-autoscaler")
    policy = json.loads(
        dev.one("aws:iam/rolePolicy:RolePolicy", "platform-dev-cluster-autoscaler").inputs["policy"]
    )
    describe, scale = policy["Statement"]
    assert all(":Describe" in a or ":Get" in a for a in describe["Action"])
    assert sorted(scale["Action"]) == [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    assert scale["Condition"] == {
        "Null": {"aws:ResourceTag/k8s.io/cluster-autoscaler/platform-dev": "false"}
    }
    assert autoscaling.cluster_autoscaler_policy("x") != autoscaling.cluster_autoscaler_policy("y")
