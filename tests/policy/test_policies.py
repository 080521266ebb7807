"""Each policy rejects what it exists to stop, and the dev stack passes every policy."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32


def deployment(**container_changes: Any) -> dict[str, Any]:
    """A Deployment that satisfies every workload rule; keyword arguments replace container keys
    (None removes one)."""
    probe = {"httpGet": {"path": "/healthz", "port": 8000}}
    container = {
        "name": "api",
        "image": "ghcr.io/acme/comments:1.4.2",
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    for key, value in container_changes.items():
        if value is None:
            container.pop(key, None)
        else:
            container[key] = value
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "comments", "namespace": "comments"},
        "spec": {
            "template": {
                "spec": {"securityContext": {"runAsNonRoot": True}, "containers": [container]}
            }
        },
    }


def service(type_: str, namespace: str | None) -> dict[str, Any]:
    metadata = {"name": "web"} | ({"namespace": namespace} if namespace else {})
    return {"metadata": metadata, "spec": {"type": type_, "ports": [{"port": 80}]}}


def route(hostnames: list[str], backend: str, path: str = "/") -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "monitoring"},
        "spec": {
            "hostnames": hostnames,
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                    "backendRefs": [{"name": backend, "port": 80}],
                }
            ],
        },
    }


def ingress(host: str, backend: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "i"},
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


def kps(values: dict[str, Any], namespace: str = "monitoring") -> dict[str, Any]:
    return {
        "name": "monitoring",
        "chart": "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack",
        "version": "88.5.3",
        "namespace": namespace,
        "values": values,
    }


def with_pod(props: dict[str, Any], **pod_changes: Any) -> dict[str, Any]:
    props = copy.deepcopy(props)
    props["spec"]["template"]["spec"].update(pod_changes)
    return props


MNG = "eks:index:ManagedNodeGroup"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SERVICE = "kubernetes:core/v1:Service"
RELEASE = "kubernetes:helm.sh/v3:Release"
HTTPROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
EKS = "eks:index:Cluster"
AWS_EKS = "aws:eks/cluster:Cluster"
RDS = "aws:rds/instance:Instance"

# (policy, resource type, props, policy config, a fragment of the expected message)
BAD: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    # Spot node groups need several instance types.
    (
        "spot-instance-diversity",
        MNG,
        {"capacityType": "SPOT", "instanceTypes": ["m5.large"]},
        {},
        "1 instance type",
    ),
    (
        "spot-instance-diversity",
        NODE_GROUP,
        {"capacityType": "SPOT", "instanceTypes": ["m5.large", "m5.large", "m6i.large"]},
        {},
        "2 instance type",
    ),
    ("spot-instance-diversity", NODE_GROUP, {"capacityType": "SPOT"}, {}, "0 instance type"),
    (
        "spot-instance-diversity",
        MNG,
        {"capacityType": "SPOT", "instanceTypes": ["a.large", "b.large", "c.large"]},
        {"minInstanceTypes": 4},
        "at least 4",
    ),
    # Load balancers only at the edge.
    (
        "load-balancers-only-at-edge",
        SERVICE,
        service("LoadBalancer", "comments"),
        {},
        "comments/web is of type LoadBalancer",
    ),
    ("load-balancers-only-at-edge", SERVICE, service("LoadBalancer", None), {}, "default/web"),
    (
        "load-balancers-only-at-edge",
        SERVICE,
        service("LoadBalancer", "envoy-gateway-system"),
        {"edgeNamespace": "edge"},
        "outside the edge namespace edge",
    ),
    (
        "load-balancers-only-at-edge",
        RELEASE,
        {
            "name": "argocd",
            "namespace": "argocd",
            "values": {"server": {"service": {"type": "LoadBalancer"}}},
        },
        {},
        "server.service.type = LoadBalancer",
    ),
    # Prometheus and Alertmanager stay private.
    (
        "no-public-prometheus-or-alertmanager",
        HTTPROUTE,
        route(["metrics.example.com"], "kube-prometheus-stack-prometheus"),
        {},
        "backend Service kube-prometheus-stack-prometheus",
    ),
    (
        "no-public-prometheus-or-alertmanager",
        HTTPROUTE,
        route(["alertmanager.dev.example.com"], "web"),
        {},
        "hostname alertmanager.dev.example.com",
    ),
    (
        "no-public-prometheus-or-alertmanager",
        HTTPROUTE,
        route(["ops.example.com"], "web", "/prometheus"),
        {},
        "path /prometheus",
    ),
    (
        "no-public-prometheus-or-alertmanager",
        INGRESS,
        ingress("ops.example.com", "prometheus-operated"),
        {},
        "backend Service prometheus-operated",
    ),
    (
        "no-public-prometheus-or-alertmanager",
        INGRESS,
        ingress("prometheus.example.com", "web"),
        {},
        "host prometheus.example.com",
    ),
    (
        "no-public-prometheus-or-alertmanager",
        RELEASE,
        kps({"prometheus": {"route": {"main": {"enabled": True}}}}),
        {},
        "prometheus.route.main.enabled",
    ),
    (
        "no-public-prometheus-or-alertmanager",
        RELEASE,
        kps({"alertmanager": {"ingress": {"enabled": True}}}),
        {},
        "alertmanager.ingress.enabled",
    ),
    # Deployments: probes, requests and limits, non-root.
    (
        "deployment-hardened",
        DEPLOYMENT,
        deployment(readinessProbe=None),
        {},
        "has no readinessProbe",
    ),
    ("deployment-hardened", DEPLOYMENT, deployment(livenessProbe=None), {}, "has no livenessProbe"),
    (
        "deployment-hardened",
        DEPLOYMENT,
        deployment(resources={"limits": {"memory": "1Gi"}}),
        {},
        "no resources.requests for cpu, memory",
    ),
    (
        "deployment-hardened",
        DEPLOYMENT,
        deployment(resources={"requests": {"cpu": "1", "memory": "1Gi"}}),
        {},
        "no resources.limits.memory",
    ),
    (
        "deployment-hardened",
        DEPLOYMENT,
        with_pod(deployment(), securityContext={}),
        {},
        "may run as root",
    ),
    (
        "deployment-hardened",
        DEPLOYMENT,
        deployment(securityContext={"runAsNonRoot": False}),
        {},
        "may run as root",
    ),
    (
        "deployment-hardened",
        DEPLOYMENT,
        with_pod(
            deployment(),
            initContainers=[
                {"name": "migrate", "image": "x:1", "securityContext": {"runAsNonRoot": False}}
            ],
        ),
        {},
        "container migrate may run as root",
    ),
    # Images on a digest or an explicit version.
    (
        "images-pinned",
        DEPLOYMENT,
        deployment(image="ghcr.io/acme/comments:latest"),
        {},
        "floating tag :latest",
    ),
    ("images-pinned", DEPLOYMENT, deployment(image="ghcr.io/acme/comments"), {}, "no tag"),
    ("images-pinned", DEPLOYMENT, deployment(image="localhost:5000/comments"), {}, "no tag"),
    (
        "images-pinned",
        DEPLOYMENT,
        deployment(image="ghcr.io/acme/comments:main"),
        {},
        "floating tag :main",
    ),
    (
        "images-pinned",
        DEPLOYMENT,
        deployment(image="ghcr.io/acme/comments@sha256:abc"),
        {},
        "malformed digest",
    ),
    (
        "images-pinned",
        "kubernetes:batch/v1:CronJob",
        {
            "metadata": {"name": "job"},
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
                    }
                }
            },
        },
        {},
        "CronJob job container c image busybox",
    ),
    # The EKS endpoint is not open to the internet unless waived.
    (
        "eks-endpoint-not-open-to-anywhere",
        EKS,
        {"name": "c", "endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]},
        {},
        "open to 0.0.0.0/0",
    ),
    (
        "eks-endpoint-not-open-to-anywhere",
        EKS,
        {"name": "c", "publicAccessCidrs": ["10.0.0.0/8", "::/0"]},
        {},
        "open to ::/0",
    ),
    (
        "eks-endpoint-not-open-to-anywhere",
        AWS_EKS,
        {"name": "c", "vpcConfig": {"subnetIds": ["s"]}},
        {},
        "0.0.0.0/0 (the default)",
    ),
    (
        "eks-endpoint-not-open-to-anywhere",
        AWS_EKS,
        {
            "name": "c",
            "vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]},
        },
        {"allowPublicEndpointFromAnywhere": False},
        "open to 0.0.0.0/0",
    ),
    # RDS encrypted and private.
    (
        "rds-encrypted-and-private",
        RDS,
        {"identifier": "db", "storageEncrypted": False},
        {},
        "does not set storageEncrypted",
    ),
    ("rds-encrypted-and-private", RDS, {"identifier": "db"}, {}, "does not set storageEncrypted"),
    (
        "rds-encrypted-and-private",
        RDS,
        {"identifier": "db", "storageEncrypted": True, "publiclyAccessible": True},
        {},
        "publiclyAccessible",
    ),
]

GOOD: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "spot-instance-diversity",
        MNG,
        {"capacityType": "SPOT", "instanceTypes": ["m6i.large", "m5.large", "m5a.large"]},
        {},
    ),
    (
        "spot-instance-diversity",
        NODE_GROUP,
        {"capacityType": "ON_DEMAND", "instanceTypes": ["t3.large"]},
        {},
    ),
    # A multi-language component reaches policies without inputs; its child is judged instead.
    ("spot-instance-diversity", MNG, {}, {}),
    ("load-balancers-only-at-edge", SERVICE, service("LoadBalancer", "envoy-gateway-system"), {}),
    (
        "load-balancers-only-at-edge",
        SERVICE,
        service("LoadBalancer", "edge"),
        {"edgeNamespace": "edge"},
    ),
    ("load-balancers-only-at-edge", SERVICE, service("ClusterIP", "comments"), {}),
    (
        "load-balancers-only-at-edge",
        RELEASE,
        {
            "name": "eg",
            "namespace": "envoy-gateway-system",
            "values": {"service": {"type": "LoadBalancer"}},
        },
        {},
    ),
    (
        "load-balancers-only-at-edge",
        RELEASE,
        {
            "name": "lbc",
            "namespace": "kube-system",
            "values": {"loadBalancerClass": "service.k8s.aws/nlb"},
        },
        {},
    ),
    (
        "no-public-prometheus-or-alertmanager",
        HTTPROUTE,
        route(["grafana.dev.example.com"], "kube-prometheus-stack-grafana"),
        {},
    ),
    (
        "no-public-prometheus-or-alertmanager",
        HTTPROUTE,
        route(["comments.dev.example.com"], "comments"),
        {},
    ),
    (
        "no-public-prometheus-or-alertmanager",
        INGRESS,
        ingress("grafana.example.com", "monitoring-prometheus-node-exporter"),
        {},
    ),
    (
        "no-public-prometheus-or-alertmanager",
        RELEASE,
        kps(
            {
                "grafana": {"route": {"main": {"enabled": True}}},
                "prometheus": {
                    "ingress": {"enabled": False},
                    "route": {"main": {"enabled": False}},
                },
            }
        ),
        {},
    ),
    ("deployment-hardened", DEPLOYMENT, deployment(), {}),
    # Non-root set on every container instead of the pod.
    (
        "deployment-hardened",
        DEPLOYMENT,
        with_pod(deployment(securityContext={"runAsNonRoot": True}), securityContext={}),
        {},
    ),
    ("images-pinned", DEPLOYMENT, deployment(image="ghcr.io/acme/comments:sha-0123abc"), {}),
    ("images-pinned", DEPLOYMENT, deployment(image=f"ghcr.io/acme/comments@{DIGEST}"), {}),
    ("images-pinned", DEPLOYMENT, deployment(image=f"ghcr.io/acme/comments:1.4.2@{DIGEST}"), {}),
    ("images-pinned", DEPLOYMENT, deployment(image="localhost:5000/comments:2026.1"), {}),
    ("eks-endpoint-not-open-to-anywhere", EKS, {"publicAccessCidrs": ["203.0.113.7/32"]}, {}),
    (
        "eks-endpoint-not-open-to-anywhere",
        EKS,
        {"endpointPublicAccess": False, "publicAccessCidrs": ["0.0.0.0/0"]},
        {},
    ),
    ("eks-endpoint-not-open-to-anywhere", EKS, {}, {}),
    (
        "eks-endpoint-not-open-to-anywhere",
        AWS_EKS,
        {"vpcConfig": {"endpointPublicAccess": False}},
        {},
    ),
    (
        "eks-endpoint-not-open-to-anywhere",
        AWS_EKS,
        {"vpcConfig": {"publicAccessCidrs": ["0.0.0.0/0"]}},
        {"allowPublicEndpointFromAnywhere": True},
    ),
    ("rds-encrypted-and-private", RDS, {"storageEncrypted": True, "publiclyAccessible": False}, {}),
    (
        "rds-encrypted-and-private",
        RDS,
        {"replicateSourceDb": "arn:aws:rds:us-east-1:1:db:main"},
        {},
    ),
]


@pytest.fixture(scope="module")
def policies(rules) -> dict[str, Any]:
    """The policies judging one resource at a time (stack rules: test_stack_policies.py)."""
    return {spec.name: spec for spec in rules.POLICIES if not spec.stack}


def _id(case: tuple) -> str:
    return f"{case[0]}:{case[1].rsplit(':', 1)[-1]}"


@pytest.mark.parametrize("case", BAD, ids=[_id(c) for c in BAD])
def test_each_policy_rejects_a_bad_resource(policies, case):
    policy, resource_type, props, config, expected = case
    messages = policies[policy].check(resource_type, props, config)
    assert messages, f"{policy} let through {props}"
    assert any(expected in m for m in messages), messages


@pytest.mark.parametrize("case", GOOD, ids=[_id(c) for c in GOOD])
def test_each_policy_passes_a_good_resource(policies, case):
    policy, resource_type, props, config = case
    assert policies[policy].check(resource_type, props, config) == []


def test_every_policy_has_bad_and_good_cases(policies):
    assert {c[0] for c in BAD} == set(policies) == {c[0] for c in GOOD}


@pytest.mark.parametrize("stack", ["dev_stack", "dev_rds_stack"])
def test_the_dev_stack_passes_every_policy_with_its_policy_config(
    rules, stack, dev_policy_config, as_policy_props, request
):
    violations = [
        f"{spec.name}: {r.type} {r.name}: {message}"
        for r in request.getfixturevalue(stack).resources
        for spec in rules.POLICIES
        if not spec.stack
        for message in spec.check(
            r.type, as_policy_props(r.inputs), dev_policy_config.get(spec.name)
        )
    ]
    assert violations == []


def test_the_dev_stack_needs_its_waiver_for_the_open_endpoint(policies, dev_stack, as_policy_props):
    """Pulumi.dev.yaml opens the API endpoint to 0.0.0.0/0; only the dev policy config allows it."""
    endpoint = policies["eks-endpoint-not-open-to-anywhere"]
    flagged = [
        r.name for r in dev_stack.resources if endpoint.check(r.type, as_policy_props(r.inputs))
    ]
    assert flagged == [dev_stack.one(EKS).name]


def test_the_dev_stack_policies_see_its_spot_group(
    policies, dev_cluster_autoscaler, as_policy_props
):
    """The rules look at the resource types the program really registers (the spot node group
    exists with nodeProvisioner clusterAutoscaler)."""
    spot = [
        r for r in dev_cluster_autoscaler.of_type(MNG) if r.inputs.get("capacityType") == "SPOT"
    ]
    assert spot, "the dev stack has no spot managed node group"
    assert policies["spot-instance-diversity"].check(MNG, as_policy_props(spot[0].inputs)) == []
    narrowed = {**as_policy_props(spot[0].inputs), "instanceTypes": ["m5.large"]}
    assert policies["spot-instance-diversity"].check(MNG, narrowed)


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("nginx", "no tag"),
        ("nginx:latest", "floating tag"),
        ("nginx:LATEST", "floating tag"),
        ("registry:5000/team/app", "no tag"),
        ("nginx:1.27.3-alpine", None),
        ("registry:5000/team/app:v2", None),
        (f"nginx@{DIGEST}", None),
    ],
)
def test_image_references_are_read_like_a_registry_does(rules, image, why):
    result = rules.floating_tag(image)
    assert (result is None) if why is None else (why in result)


def _set(props: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path (list indexes as numbers); None removes the key."""
    *parents, last = path.split(".")
    for key in parents:
        props = props[int(key)] if isinstance(props, list) else props.setdefault(key, {})
    if value is None:
        del props[last]
    else:
        props[last] = value


# (policy, resource type, a marker the resource's props contain, path to change, bad value)
REAL_MUTATIONS = [
    ("load-balancers-only-at-edge", SERVICE, "ClusterIP", "spec.type", "LoadBalancer"),
    ("no-public-prometheus-or-alertmanager", RELEASE, "kube-prometheus-stack",
     "values.prometheus.route", {"main": {"enabled": True}}),
    ("no-public-prometheus-or-alertmanager", HTTPROUTE, "grafana",
     "spec.rules.0.backendRefs.0.name", "kube-prometheus-stack-prometheus"),
    ("deployment-hardened", DEPLOYMENT, "comments",
     "spec.template.spec.containers.0.livenessProbe", None),
    ("deployment-hardened", DEPLOYMENT, "comments",
     "spec.template.spec.containers.0.securityContext.runAsNonRoot", False),
    ("images-pinned", DEPLOYMENT, "comments",
     "spec.template.spec.containers.0.image", "ghcr.io/app-platform/comments:latest"),
    ("rds-encrypted-and-private", RDS, "postgres", "publiclyAccessible", True),
    ("rds-encrypted-and-private", RDS, "postgres", "storageEncrypted", False),
]  # fmt: skip


@pytest.mark.parametrize("case", REAL_MUTATIONS, ids=[f"{c[0]}:{c[3]}" for c in REAL_MUTATIONS])
def test_the_rules_read_the_dev_stacks_real_resources(
    policies, dev_policy_config, as_policy_props, case, request
):
    """A violation planted in a resource the program really registers is caught: the rules
    read the shapes the components produce, not only hand-written examples."""
    policy, resource_type, marker, path, value = case
    # The dev stack keeps its database in the cluster; its RDS variant has the instance.
    stack = request.getfixturevalue("dev_rds_stack" if resource_type == RDS else "dev_stack")
    candidates = [r for r in stack.of_type(resource_type) if marker in json.dumps(r.inputs)]
    assert candidates, f"the dev stack has no {resource_type} mentioning {marker}"
    props = copy.deepcopy(as_policy_props(candidates[0].inputs))
    spec = policies[policy]
    config = dev_policy_config.get(policy)
    assert spec.check(resource_type, props, config) == []
    _set(props, path, value)
    assert spec.check(resource_type, props, config), f"{policy} missed {path} = {value}"


def test_a_stack_with_a_nat_instance_passes_every_policy(rules, dev_policy_config, as_policy_props):
    recording = offline.run(ROOT, "dev", {"natGateways": "instance"})
    assert recording.of_type("aws:ec2/instance:Instance")
    violations = [
        f"{spec.name}: {r.type} {r.name}: {message}"
        for r in recording.resources
        for spec in rules.POLICIES
        if not spec.stack
        for message in spec.check(
            r.type, as_policy_props(r.inputs), dev_policy_config.get(spec.name)
        )
    ]
    assert violations == []
