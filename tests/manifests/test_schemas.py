"""Every Kubernetes object the program builds is valid for the cluster's Kubernetes version
(strict: unknown fields are errors), and every custom resource for its CRD."""

from __future__ import annotations

import copy

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from app_platform import cluster
from app_platform_tools import render
from tests.upstream import checks

# Every stack file in the repository: the platform stack and the example app stack.
STACKS = ("dev", "podinfo")

# Pulumi.yaml's default cluster version; kubernetes-validate 1.37.0 ships schemas up to 1.37.
KUBERNETES_VERSION = "1.35"
CUSTOM = set(checks.known_custom_resources())


def schema_errors(obj: dict) -> list[str]:
    if (obj["apiVersion"], obj["kind"]) in CUSTOM:
        return checks.crd_errors(obj)
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [str(error)]
    return []


def test_the_validated_version_is_the_clusters():
    assert KUBERNETES_VERSION in cluster.SUPPORTED_KUBERNETES_VERSIONS
    assert f"{KUBERNETES_VERSION}.0" in kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_is_valid(manifests, stack):
    problems = {
        f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}": errors
        for obj in manifests[stack]
        if (errors := schema_errors(obj))
    }
    assert problems == {}


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_all_have_a_crd_to_check_against(manifests, stack):
    builtin_groups = (
        "v1",
        "apps/",
        "policy/",
        "networking.k8s.io/",
        "autoscaling/",
        "storage.",
        "rbac.authorization.k8s.io/",
    )
    unchecked = {
        (obj["apiVersion"], obj["kind"])
        for obj in manifests[stack]
        if (obj["apiVersion"], obj["kind"]) not in CUSTOM
        and not obj["apiVersion"].startswith(builtin_groups)
    }
    assert unchecked == set()


def test_comments_app_renders_the_objects_an_app_needs(recordings):
    dev = recordings["dev"]
    app = dev.one("app-platform:app:App", "platform-dev-comments")
    kinds = sorted(
        (obj["kind"], obj["metadata"]["name"]) for obj in render.manifests(dev, under=app)
    )
    # The dev stack's database runs in the cluster (comments-postgres).
    assert kinds == [
        ("ConfigMap", "comments-dashboard"),
        ("Deployment", "comments"),
        ("Deployment", "comments-postgres"),
        ("HTTPRoute", "comments"),
        ("HTTPRouteFilter", "hide-metrics"),
        ("HorizontalPodAutoscaler", "comments"),
        ("Namespace", "comments"),
        ("NetworkPolicy", "comments"),
        ("NetworkPolicy", "comments-postgres"),
        ("PersistentVolumeClaim", "comments-postgres"),
        ("PodDisruptionBudget", "comments"),
        ("PrometheusRule", "comments"),
        ("Secret", "comments-env"),
        ("Secret", "comments-postgres"),
        ("Service", "comments"),
        ("Service", "comments-postgres"),
        ("ServiceAccount", "comments"),
        ("ServiceMonitor", "comments"),
    ]


def _deployment(manifests: dict) -> dict:
    return copy.deepcopy(next(o for o in manifests["dev"] if o["kind"] == "Deployment"))


def test_validation_catches_unknown_fields(manifests):
    broken = _deployment(manifests)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    assert schema_errors(broken)


def test_validation_catches_wrong_types(manifests):
    broken = _deployment(manifests)
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "forty"
    assert schema_errors(broken)


def test_crd_check_catches_a_bad_backend_weight(manifests):
    route = copy.deepcopy(next(o for o in manifests["dev"] if o["kind"] == "HTTPRoute"))
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = "heavy"
    assert schema_errors(route)


def test_rendered_secrets_are_redacted(manifests):
    secret = next(o for o in manifests["dev"] if o["metadata"]["name"] == "comments-env")
    assert secret["stringData"] == {"DATABASE_URL": render.SECRET_PLACEHOLDER}
    text = render.to_yaml(manifests["dev"])
    assert "postgresql://" not in text
