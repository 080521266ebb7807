"""Monitoring of the edge: the Envoy proxies' PodMonitor and the edge alert rules."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from app_platform.observability.values import NAMESPACE

# Edge alerts: a route failing this share of requests for this long pages someone.
EDGE_5XX_RATIO = 0.05
EDGE_ALERT_FOR = "10m"


class EdgeMonitoring:
    """The Observability's monitoring of the edge (a part of Observability)."""

    def _edge_monitoring(self, name: str) -> None:
        args = self._args
        k8s.apiextensions.CustomResource(
            f"{name}-envoy-proxies",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": "envoy-proxies", "namespace": NAMESPACE},
            spec={
                "namespaceSelector": {"matchNames": [args.proxy_namespace]},
                "selector": {"matchLabels": args.proxy_labels},
                # Envoy Gateway names the proxies' stats port `metrics` (19001).
                "podMetricsEndpoints": [{"port": "metrics", "path": "/stats/prometheus"}],
            },
            opts=self._opts(depends_on=self.crds_ready),
        )
        route_5xx = (
            'sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx{envoy_cluster_name=~"'
            'httproute/.*",envoy_response_code_class="5"}[5m])) / sum by (envoy_cluster_name) '
            '(rate(envoy_cluster_upstream_rq_total{envoy_cluster_name=~"httproute/.*"}[5m]))'
        )
        k8s.apiextensions.CustomResource(
            f"{name}-edge-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": "edge", "namespace": NAMESPACE},
            spec={
                "groups": [
                    {
                        "name": "edge",
                        "rules": [
                            {
                                "alert": "RouteServerErrors",
                                "expr": f"{route_5xx} > {EDGE_5XX_RATIO}",
                                "for": EDGE_ALERT_FOR,
                                "labels": {"severity": "warning"},
                                "annotations": {
                                    "summary": "{{ $labels.envoy_cluster_name }} answers more "
                                    f"than {EDGE_5XX_RATIO:.0%} of requests with 5xx"
                                },
                            },
                            {
                                "alert": "EdgeProxiesDown",
                                "expr": f'absent(up{{namespace="{args.proxy_namespace}"}} == 1)',
                                "for": EDGE_ALERT_FOR,
                                "labels": {"severity": "critical"},
                                "annotations": {
                                    "summary": "No Envoy proxy of the shared Gateway is up"
                                },
                            },
                        ],
                    }
                ]
            },
            opts=self._opts(depends_on=self.crds_ready),
        )
