"""The app's monitoring: a ServiceMonitor on `/metrics`, its Grafana dashboard (a ConfigMap the
Grafana sidecar loads) and its alerts (a PrometheusRule)."""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

from app_platform.apps.parts import CONTAINER_PORT_NAME, METRICS_PATH, Parts
from app_platform.apps.spec import AppSpec

SCRAPE_INTERVAL = "30s"
# Alert windows: long enough to ride out a single bad scrape, short enough to page in minutes.
ALERT_RATE_WINDOW = "5m"
ALERT_FOR = "10m"
NO_REPLICAS_FOR = "5m"


def _monitor_labels(parts: Parts) -> dict[str, str]:
    # Extra labels (e.g. `release`) for a Prometheus that selects its monitors and rules.
    return {**parts.labels, **parts.platform.monitor_labels}


def service_monitor(parts: Parts) -> None:
    endpoint = {"port": CONTAINER_PORT_NAME, "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}
    k8s.apiextensions.CustomResource(
        f"{parts.name}-service-monitor",
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        metadata=parts.meta(labels=_monitor_labels(parts)),
        spec={"selector": {"matchLabels": parts.selector}, "endpoints": [endpoint]},
        opts=parts.custom_resource(),
    )


def dashboard(parts: Parts) -> None:
    if not parts.spec.dashboard:
        return
    dashboard_labels = {**parts.labels, **parts.platform.dashboard_labels}
    k8s.core.v1.ConfigMap(
        f"{parts.name}-dashboard",
        metadata=parts.meta(f"{parts.app}-dashboard", labels=dashboard_labels),
        data={f"{parts.app}.json": parts.spec.dashboard},
        opts=parts.in_namespace(),
    )


def alerts(parts: Parts) -> None:
    rules = alert_rules(parts.app, parts.spec, namespace=parts.app)
    if not rules:
        return
    k8s.apiextensions.CustomResource(
        f"{parts.name}-alerts",
        api_version="monitoring.coreos.com/v1",
        kind="PrometheusRule",
        metadata=parts.meta(labels=_monitor_labels(parts)),
        spec={"groups": [{"name": f"{parts.app}.rules", "rules": rules}]},
        opts=parts.custom_resource(),
    )


def _title(app: str) -> str:
    return app.replace("-", " ").title().replace(" ", "")


def _annotations(spec: AppSpec, summary: str, description: str, anchor: str) -> dict[str, str]:
    notes = {"summary": summary, "description": description}
    if spec.runbook_url:
        notes["runbook_url"] = f"{spec.runbook_url}#{anchor}"
    return notes


def _error_ratio(app: str, spec: AppSpec, selector: str) -> dict[str, Any]:
    metric, ratio = spec.metrics.requests, spec.alerts.error_ratio
    total = f"sum(rate({metric}{{{selector}}}[{ALERT_RATE_WINDOW}]))"
    errors = f'sum(rate({metric}{{{selector},{spec.metrics.status}=~"5.."}}[{ALERT_RATE_WINDOW}]))'
    return {
        "alert": f"{_title(app)}HighErrorRatio",
        "expr": f"({errors} / {total}) > {ratio:g}",
        "for": ALERT_FOR,
        "labels": {"severity": "critical", "app": app},
        "annotations": _annotations(
            spec,
            f"{app}: more than {ratio:.0%} of requests fail with 5xx",
            f"{{{{ $value | humanizePercentage }}}} of {app} requests returned a 5xx "
            f"status over the last {ALERT_RATE_WINDOW}.",
            "high-error-ratio",
        ),
    }


def _latency(app: str, spec: AppSpec, selector: str) -> dict[str, Any]:
    histogram, seconds = spec.metrics.latency, spec.alerts.p99_latency_seconds
    p99 = (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate({histogram}_bucket{{{selector}}}[{ALERT_RATE_WINDOW}])))"
    )
    return {
        "alert": f"{_title(app)}HighLatency",
        "expr": f"{p99} > {seconds:g}",
        "for": ALERT_FOR,
        "labels": {"severity": "warning", "app": app},
        "annotations": _annotations(
            spec,
            f"{app}: p99 latency above {seconds:g}s",
            f"The 99th percentile of {app} request latency is "
            f"{{{{ $value | humanizeDuration }}}} over the last {ALERT_RATE_WINDOW}.",
            "high-latency",
        ),
    }


def _no_ready_replicas(app: str, spec: AppSpec, namespace: str, selector: str) -> dict[str, Any]:
    return {
        "alert": f"{_title(app)}NoReadyReplicas",
        # `or on() vector(0)`: a Deployment with no series at all is down too.
        "expr": (
            f'(sum(kube_deployment_status_replicas_ready{{{selector},deployment="{app}"}}) '
            "or on() vector(0)) < 1"
        ),
        "for": NO_REPLICAS_FOR,
        "labels": {"severity": "critical", "app": app},
        "annotations": _annotations(
            spec,
            f"{app}: no ready replicas",
            f"Deployment {namespace}/{app} has had no ready pod for {NO_REPLICAS_FOR}: "
            "the app is down.",
            "no-ready-replicas",
        ),
    }


def alert_rules(app: str, spec: AppSpec, namespace: str) -> list[dict[str, Any]]:
    """The app's alerts: 5xx ratio and p99 latency (when its metrics are named), and no ready
    replicas (always; from kube-state-metrics)."""
    selector = f'namespace="{namespace}"'
    rules = []
    if spec.metrics.requests:
        rules.append(_error_ratio(app, spec, selector))
    if spec.metrics.latency:
        rules.append(_latency(app, spec, selector))
    rules.append(_no_ready_replicas(app, spec, namespace, selector))
    return rules
