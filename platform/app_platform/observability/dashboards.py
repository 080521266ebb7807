"""Grafana dashboards: ConfigMaps, from JSON files, that Grafana's sidecar loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# The Grafana sidecar loads every ConfigMap with this label, in any namespace.
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
DASHBOARDS = ("edge", "cluster")


def dashboard_config_map(
    resource_name: str,
    path: Path | Any,
    *,
    namespace: str,
    label: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.ConfigMap:
    """A ConfigMap holding one Grafana dashboard JSON file, labelled for Grafana's sidecar.

    `path` is a file path or an importlib resource; apps call this (or `Observability.dashboard`)
    to ship their own dashboards.
    """
    text = path.read_text()
    file_name = Path(str(path)).name
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata={
            "name": f"dashboard-{Path(file_name).stem}",
            "namespace": namespace,
            "labels": label,
        },
        data={file_name: text},
        opts=opts,
    )


class Dashboards:
    """Dashboards of the Observability (a part of Observability)."""

    def dashboard(self, resource_name: str, path: Path | Any) -> k8s.core.v1.ConfigMap:
        """Provision a Grafana dashboard from a JSON file: a ConfigMap the sidecar loads."""
        return dashboard_config_map(
            resource_name,
            path,
            namespace=self.namespace,
            label=self.dashboard_label,
            opts=self._opts(depends_on=self.crds_ready),
        )
