"""The app's route: an HTTPRoute on the shared Gateway at `<name>.<domain>`, with `/metrics`
answered 404 by the Gateway itself (an Envoy Gateway HTTPRouteFilter)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from app_platform.apps.parts import METRICS_PATH, Parts

NOT_FOUND = {
    "statusCode": 404,
    "contentType": "text/plain",
    "body": {"type": "Inline", "inline": "not found\n"},
}


def hide_metrics(parts: Parts) -> k8s.apiextensions.CustomResource:
    """Metrics are for Prometheus, inside the cluster: the Gateway answers /metrics itself."""
    return k8s.apiextensions.CustomResource(
        f"{parts.name}-hide-metrics",
        api_version="gateway.envoyproxy.io/v1alpha1",
        kind="HTTPRouteFilter",
        metadata=parts.meta("hide-metrics"),
        spec={"directResponse": NOT_FOUND},
        opts=parts.custom_resource(),
    )


def route(
    parts: Parts, hostname: pulumi.Input[str], service: k8s.core.v1.Service
) -> k8s.apiextensions.CustomResource:
    platform = parts.platform
    metrics_filter = hide_metrics(parts)
    hidden = {
        "matches": [{"path": {"type": "PathPrefix", "value": METRICS_PATH}}],
        "filters": [
            {
                "type": "ExtensionRef",
                "extensionRef": {
                    "group": "gateway.envoyproxy.io",
                    "kind": "HTTPRouteFilter",
                    "name": metrics_filter.metadata["name"],
                },
            }
        ],
    }
    served = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"name": service.metadata.name, "port": parts.spec.port}],
    }
    return k8s.apiextensions.CustomResource(
        f"{parts.name}-route",
        api_version="gateway.networking.k8s.io/v1",
        kind="HTTPRoute",
        metadata=parts.meta(),
        spec={
            "parentRefs": [
                {"name": platform.gateway_name, "namespace": platform.gateway_namespace}
            ],
            "hostnames": [hostname],
            "rules": [hidden, served],
        },
        opts=parts.custom_resource(),
    )
