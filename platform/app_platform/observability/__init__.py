"""Observability: metrics, dashboards and alerts for the platform and its apps.

One part a module: options, values (the kube-prometheus-stack release), grafana, dashboards,
alertmanager (its receivers' wiring), alerting (the receivers and Alertmanager's
configuration), claims (the volume claims the stack owns), edge_monitoring;
`Observability` (component) puts them together.
"""

from app_platform.observability.alerting import AlertReceivers
from app_platform.observability.claims import STATEFUL_WORKLOADS, volume_claims
from app_platform.observability.component import Observability, ObservabilityArgs
from app_platform.observability.dashboards import (
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    dashboard_config_map,
)
from app_platform.observability.options import ObservabilityOptions

__all__ = [
    "DASHBOARD_LABEL",
    "DASHBOARD_LABEL_VALUE",
    "STATEFUL_WORKLOADS",
    "AlertReceivers",
    "Observability",
    "ObservabilityArgs",
    "ObservabilityOptions",
    "dashboard_config_map",
    "volume_claims",
]
