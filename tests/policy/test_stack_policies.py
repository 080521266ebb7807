"""The stack rules: bad stacks rejected, good ones (the dev stack, a stack with TLS) passed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "kubernetes:core/v1:Service"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
NLB = "service.beta.kubernetes.io/aws-load-balancer-"
EDGE = "envoy-gateway-system"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f9d4a5e-3b6c-4d7e-8f90-a1b2c3d4e5f6"


def nlb(ssl_ports: str | None = "443") -> dict[str, Any]:
    annotations = {f"{NLB}scheme": "internet-facing", f"{NLB}ssl-cert": CERTIFICATE}
    if ssl_ports is not None:
        annotations[f"{NLB}ssl-ports"] = ssl_ports
    return {
        "metadata": {"name": "public-nlb", "namespace": EDGE, "annotations": annotations},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"gateway.envoyproxy.io/owning-gateway-name": "public"},
            "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
        },
    }


def gateway(http_from: str = "Same") -> dict[str, Any]:
    selector = {"from": "Selector", "selector": {"matchLabels": {"routes": "allowed"}}}
    return {
        "metadata": {"name": "public", "namespace": EDGE},
        "spec": {
            "listeners": [
                {"name": "http", "port": 80, "allowedRoutes": {"namespaces": {"from": http_from}}},
                {"name": "https", "port": 443, "allowedRoutes": {"namespaces": selector}},
            ]
        },
    }


def redirect(**ref: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "https-redirect", "namespace": EDGE},
        "spec": {
            "parentRefs": [{"name": "public", "namespace": EDGE, "sectionName": "http", **ref}],
            "rules": [
                {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]}
            ],
        },
    }


def backend_route(namespace: str = EDGE, **ref: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "public", "namespace": EDGE, **ref}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }


def stack(*resources: tuple[str, dict[str, Any]]):
    return list(resources)


GOOD_EDGE = stack((SERVICE, nlb()), (GATEWAY, gateway()), (HTTP_ROUTE, redirect()))

BAD = [
    (
        "a listener on port 80 taking other namespaces' routes",
        stack((SERVICE, nlb()), (GATEWAY, gateway("Selector")), (HTTP_ROUTE, redirect())),
        "takes routes from other namespaces (from: Selector)",
    ),
    (
        "a route with a backend on port 80",
        [*GOOD_EDGE, (HTTP_ROUTE, backend_route(sectionName="http"))],
        "route envoy-gateway-system/web on Gateway public listener http (plain port 80) does "
        "more than redirect",
    ),
    (
        "a route without sectionName in the Gateway's namespace",
        [*GOOD_EDGE, (HTTP_ROUTE, backend_route())],
        "does more than redirect to https",
    ),
    (
        "a redirect to plain http",
        stack(
            (SERVICE, nlb()),
            (GATEWAY, gateway()),
            (
                HTTP_ROUTE,
                {
                    **redirect(),
                    "spec": {
                        **redirect()["spec"],
                        "rules": [
                            {
                                "filters": [
                                    {
                                        "type": "RequestRedirect",
                                        "requestRedirect": {"scheme": "http", "port": 8080},
                                    }
                                ]
                            }
                        ],
                    },
                },
            ),
        ),
        "does more than redirect to https",
    ),
    (
        "a plain port that reaches no Gateway",
        stack((SERVICE, nlb())),
        "its port 80 is plain and reaches no Gateway listener",
    ),
]

GOOD = [
    ("the edge: redirect on 80, routes on 443", GOOD_EDGE),
    (
        "app routes on the https listener",
        [*GOOD_EDGE, (HTTP_ROUTE, backend_route("shop", sectionName="https"))],
    ),
    ("every port TLS (no ssl-ports)", stack((SERVICE, nlb(None)))),
    (
        "no TLS at all: plain HTTP is the only way in",
        stack(
            (SERVICE, {**nlb(), "metadata": {"name": "public-nlb", "namespace": EDGE}}),
            (GATEWAY, gateway("Selector")),
            (HTTP_ROUTE, backend_route()),
        ),
    ),
]


@pytest.fixture(scope="module")
def rule(rules):
    (spec,) = [spec for spec in rules.POLICIES if spec.name == "plain-http-only-redirects"]
    assert spec.stack
    return spec


def resources(rules, entries):
    return [rules.StackResource(t, copy.deepcopy(props)) for t, props in entries]


@pytest.mark.parametrize(("what", "entries", "expected"), BAD, ids=[c[0] for c in BAD])
def test_plain_http_rule_rejects_a_bad_stack(rules, rule, what, entries, expected):
    messages = rule.check_stack(resources(rules, entries))
    assert any(expected in m for m in messages), messages


@pytest.mark.parametrize(("what", "entries"), GOOD, ids=[c[0] for c in GOOD])
def test_plain_http_rule_passes_a_good_stack(rules, rule, what, entries):
    assert rule.check_stack(resources(rules, entries)) == []


def recorded(rules, recording, as_policy_props):
    return [rules.StackResource(r.type, as_policy_props(r.inputs)) for r in recording.resources]


def test_the_dev_stack_passes_every_stack_rule(
    rules, dev_stack, dev_policy_config, as_policy_props
):
    stacked = [spec for spec in rules.POLICIES if spec.stack]
    assert stacked
    for spec in stacked:
        assert (
            spec.check_stack(
                recorded(rules, dev_stack, as_policy_props), dev_policy_config.get(spec.name)
            )
            == []
        )


@pytest.mark.parametrize(
    "overrides",
    [{"hostedZone": "example.com", "domain": "dev.example.com"}, {"certificateArn": CERTIFICATE}],
    ids=["hosted zone", "given certificate"],
)
def test_stacks_with_tls_pass_and_the_rule_sees_their_edge(rules, rule, as_policy_props, overrides):
    recording = offline.run(ROOT, "dev", overrides)
    found = recorded(rules, recording, as_policy_props)
    assert rule.check_stack(found) == []
    # The same stack with the port-80 listener opened to app namespaces is refused.
    for resource in found:
        if resource.resource_type == GATEWAY:
            resource.props["spec"]["listeners"][0]["allowedRoutes"] = {
                "namespaces": {"from": "All"}
            }
    assert any("from: All" in m for m in rule.check_stack(found))
