"""Routes: every host the platform serves is one HTTPRoute on the shared Gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class Route:
    """One host sent to one Service port: the route's name and namespace (the Service's), the
    host, the Service and its port."""

    name: str
    namespace: str
    host: str
    service: str
    port: int


def http_route_spec(
    gateway_name: str, gateway_namespace: str, host: str, service: str, port: int
) -> dict[str, Any]:
    """An HTTPRoute spec sending every path of `host` to one Service port."""
    return {
        "parentRefs": [{"name": gateway_name, "namespace": gateway_namespace}],
        "hostnames": [host],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": service, "port": port}],
            }
        ],
    }


def http_route(
    resource_name: str,
    route: Route,
    *,
    gateway_name: pulumi.Input[str],
    gateway_namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """The HTTPRoute attaching `route` to the Gateway (its namespace must carry the Gateway's
    route labels, `Edge.route_namespace_labels`)."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version="gateway.networking.k8s.io/v1",
        kind="HTTPRoute",
        metadata={"name": route.name, "namespace": route.namespace},
        spec=http_route_spec(
            gateway_name, gateway_namespace, route.host, route.service, route.port
        ),
        opts=opts,
    )
