"""The apps in the stacks: the dev platform stack runs the comments API on its own platform, and
an app stack runs its apps on a platform stack's outputs (a StackReference, mocked with the
dev stack's offline outputs)."""

from __future__ import annotations

import re

from app_platform_tools import secrets

APP = "app-platform:app:App"


def test_dev_runs_the_comments_api_on_its_platform(dev):
    dev.one(APP, "platform-dev-comments")
    assert dev.outputs["appUrls"].value == {"comments": "http://comments.dev.app-platform.test"}
    route = dev.one(
        "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "platform-dev-comments-route"
    )
    gateway = dev.one("kubernetes:gateway.networking.k8s.io/v1:Gateway")
    assert route.inputs["spec"]["parentRefs"] == [
        {
            "name": gateway.inputs["metadata"]["name"],
            "namespace": gateway.inputs["metadata"]["namespace"],
        }
    ]
    # Routes wait for the Gateway API CRDs and monitors for the Prometheus Operator's.
    releases = dev.of_type("kubernetes:helm.sh/v3:Release")
    assert any(dev.depends_on(route, release) for release in releases)


def test_dev_builds_the_comments_image_and_runs_it_by_digest(dev):
    """A first `up` needs no published image: the stack builds apps/comments itself."""
    build = dev.one("docker-build:index:Image")
    assert build.inputs["context"] == {"location": "apps/comments"}
    repository = dev.one("aws:ecr/repository:Repository").outputs["repositoryUrl"]
    deployment = dev.one("kubernetes:apps/v1:Deployment", "platform-dev-comments-deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{repository}@{build.outputs['digest']}"
    assert re.fullmatch(r".+@sha256:[0-9a-f]{64}", container["image"])


def test_comments_database_on_rds_lives_in_the_platform_network(dev_rds):
    db = dev_rds.one("aws:rds/instance:Instance").inputs
    subnets = dev_rds.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"]
    assert subnets == dev_rds.outputs["privateSubnetIds"].value
    rule = dev_rds.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").inputs
    assert rule["referencedSecurityGroupId"] == dev_rds.outputs["nodeSecurityGroupId"].value
    assert db["storageEncrypted"] is True and db["backupRetentionPeriod"] == 7
    # A throwaway database: no deletion protection and no final snapshot, as configured.
    assert db["deletionProtection"] is False and db["skipFinalSnapshot"] is True


def test_the_dev_stack_keeps_the_comments_database_in_the_cluster(dev):
    """dev's database is the in-cluster one (Pulumi.dev.yaml): no RDS to pay for."""
    assert dev.of_type("aws:rds/instance:Instance") == []
    server = dev.one("kubernetes:apps/v1:Deployment", "platform-dev-comments-postgres-server")
    pod = server.inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node-pool": "system"}
    claim = dev.one(
        "kubernetes:core/v1:PersistentVolumeClaim", "platform-dev-comments-postgres-data"
    )
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "5Gi"
    # The app reaches it through DATABASE_URL in its Secret, waiting for the server.
    env = dev.one("kubernetes:core/v1:Secret", "platform-dev-comments-env")
    assert dev.depends_on(env, server)


def test_comments_pods_admit_only_the_platforms_proxies_and_prometheus(dev):
    policy = dev.one(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy", "platform-dev-comments-ingress"
    ).inputs["spec"]
    allowed = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in policy["ingress"]
        for peer in rule["from"]
    }
    assert allowed == {
        dev.outputs["proxyNamespace"].value,
        dev.outputs["monitoringNamespace"].value,
    }


def test_platform_stack_exports_what_app_stacks_read(dev):
    for key in (
        "kubeconfig",
        "gatewayName",
        "gatewayNamespace",
        "domain",
        "urlScheme",
        "proxyNamespace",
        "monitoringNamespace",
        "routeNamespaceLabels",
        "vpcId",
        "privateSubnetIds",
        "nodeSecurityGroupId",
    ):
        assert key in dev.outputs, key
    assert dev.outputs["kubeconfig"].secret is True


def test_app_stack_deploys_only_its_apps(podinfo):
    types = set(podinfo.count_by_type())
    assert not any(t.startswith(("aws:", "eks:")) for t in types)
    assert "kubernetes:helm.sh/v3:Release" not in types
    assert [r.name for r in podinfo.of_type(APP)] == ["platform-podinfo-podinfo"]


def test_app_stack_uses_the_platform_stacks_outputs(dev, podinfo):
    route = podinfo.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute").inputs["spec"]
    assert route["parentRefs"] == [
        {
            "name": dev.outputs["gatewayName"].value,
            "namespace": dev.outputs["gatewayNamespace"].value,
        }
    ]
    assert route["hostnames"] == ["podinfo.dev.app-platform.test"]
    assert podinfo.outputs["appUrls"].value == {"podinfo": "http://podinfo.dev.app-platform.test"}
    namespace = podinfo.one("kubernetes:core/v1:Namespace").inputs["metadata"]["labels"]
    assert dev.outputs["routeNamespaceLabels"].value.items() <= namespace.items()


def test_app_stack_reaches_the_cluster_with_the_secret_kubeconfig(podinfo):
    provider = podinfo.one("pulumi:providers:kubernetes").inputs
    assert secrets.SECRET_KEY in str(provider["kubeconfig"])
    app = podinfo.one(APP)
    assert all(r.type.startswith("kubernetes:") for r in podinfo.descendants(app))


def test_fixed_replicas_app_has_no_autoscaler(podinfo):
    assert podinfo.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler") == []
    deployment = podinfo.one("kubernetes:apps/v1:Deployment").inputs["spec"]
    assert deployment["replicas"] == 2
