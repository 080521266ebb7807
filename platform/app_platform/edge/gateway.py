"""Envoy Gateway: its Helm release, the proxies' settings (EnvoyProxy), the GatewayClass and the
one shared Gateway."""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

EG_NAMESPACE = "envoy-gateway-system"
EG_RELEASE = "envoy-gateway"
EG_CONTROLLER_REPLICAS = 2
# The controller name gateway-helm configures (values `config.envoyGateway.gateway.controllerName`).
EG_CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"

# The shared Gateway's listeners.
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"
HTTP_PORT = 80
HTTPS_PORT = 443
PROXY_REPLICAS = 2
PROXY_MIN_AVAILABLE = 1
PROXY_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}

# Labels Envoy Gateway puts on every proxy pod (internal/infrastructure/kubernetes/proxy/
# resource.go `EnvoyAppLabel`, internal/gatewayapi/translator.go owning-gateway labels).
PROXY_APP_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
}
OWNING_GATEWAY_NAME_LABEL = "gateway.envoyproxy.io/owning-gateway-name"
OWNING_GATEWAY_NAMESPACE_LABEL = "gateway.envoyproxy.io/owning-gateway-namespace"
# Namespaces labelled so may attach routes to the shared Gateway; nothing else can claim its
# hostnames.
ROUTES_LABEL = "app-platform.io/gateway-routes"
ROUTES_LABEL_VALUE = "allowed"


class EnvoyGateway:
    """The Edge's Envoy Gateway, proxy settings, GatewayClass and Gateway (a part of Edge)."""

    def envoy_gateway_values(self) -> dict[str, Any]:
        return {
            "deployment": {
                # Leader election lets a second controller take over at once. It runs on the
                # workload nodes (cluster.ON_SYSTEM_NODES says why): the proxies keep their
                # last configuration while it moves.
                "replicas": EG_CONTROLLER_REPLICAS,
            },
            "podDisruptionBudget": {"minAvailable": 1},
        }

    def envoy_proxy_spec(self) -> dict[str, Any]:
        """The proxies' settings, as an EnvoyProxy referenced by our GatewayClass.

        Why an EnvoyProxy resource rather than chart values (`config.envoyGateway.envoyProxy`):
        the controller watches it and applies changes at once, while the chart value sits in a
        ConfigMap the controller reads at start; and it is checked against its CRD like any
        other custom resource of ours.

        The proxies' own Service stays ClusterIP: the internet-facing NLB is a Service of ours
        (see `_load_balancer`), so that Pulumi itself waits for the NLB on create and destroy.
        """
        return {
            "provider": {
                "type": "Kubernetes",
                "kubernetes": {
                    "envoyService": {"type": "ClusterIP"},
                    "envoyDeployment": {
                        "replicas": PROXY_REPLICAS,
                        "container": {"resources": PROXY_RESOURCES},
                        "pod": {
                            # Spread over zones so one zone (or one spot reclaim) takes at most
                            # part of the edge.
                            "topologySpreadConstraints": [
                                {
                                    "maxSkew": 1,
                                    "topologyKey": "topology.kubernetes.io/zone",
                                    "whenUnsatisfiable": "ScheduleAnyway",
                                    "labelSelector": {"matchLabels": PROXY_APP_LABELS},
                                }
                            ]
                        },
                    },
                    "envoyPDB": {"minAvailable": PROXY_MIN_AVAILABLE},
                },
            },
        }

    def gateway_spec(self, gateway_class: str) -> dict[str, Any]:
        allowed = {
            "namespaces": {
                "from": "Selector",
                "selector": {"matchLabels": self.route_namespace_labels},
            }
        }
        http = {"name": HTTP_LISTENER, "port": HTTP_PORT, "protocol": "HTTP"}
        if not self.tls:
            return {
                "gatewayClassName": gateway_class,
                "listeners": [{**http, "allowedRoutes": allowed}],
            }
        # TLS ends at the NLB (ACM certificate); the https listener gets the decrypted traffic of
        # port 443. Port 80 takes routes of this namespace only, where the one route is the
        # redirect: app routes (with or without sectionName) can attach to https alone.
        https = {"name": HTTPS_LISTENER, "port": HTTPS_PORT, "protocol": "HTTP"}
        return {
            "gatewayClassName": gateway_class,
            "listeners": [
                {**http, "allowedRoutes": {"namespaces": {"from": "Same"}}},
                {**https, "allowedRoutes": allowed},
            ],
        }

    def _gateway(self, name: str) -> k8s.apiextensions.CustomResource:
        proxy_config = k8s.apiextensions.CustomResource(
            f"{name}-proxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata={"name": f"{name}-proxy", "namespace": EG_NAMESPACE},
            spec=self.envoy_proxy_spec(),
            opts=self._opts(depends_on=self.crds_ready),
        )
        gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-envoy",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata={"name": f"{name}-envoy"},
            spec={
                "controllerName": EG_CONTROLLER_NAME,
                "parametersRef": {
                    "group": "gateway.envoyproxy.io",
                    "kind": "EnvoyProxy",
                    "name": f"{name}-proxy",
                    "namespace": EG_NAMESPACE,
                },
            },
            opts=self._opts(depends_on=[*self.crds_ready, proxy_config]),
        )
        return k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata={"name": self.gateway_name, "namespace": self.gateway_namespace},
            spec=self.gateway_spec(f"{name}-envoy"),
            opts=self._opts(depends_on=[*self.crds_ready, gateway_class]),
        )
