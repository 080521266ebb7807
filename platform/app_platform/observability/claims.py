"""The volume claims of Prometheus and Alertmanager, which the stack owns (volumes.py)."""

from __future__ import annotations

from typing import Any

from app_platform.observability.values import RELEASE
from app_platform.volumes import Claim

# The StatefulSets the Prometheus Operator makes for the chart's Prometheus and Alertmanager
# (`<kind>-<custom resource name>`; the chart names the resources `<release>-<kind>`), with
# where their volume template sits in the values. A template's claims are named
# `<template name>-<statefulset>-<ordinal>`, the template name defaulting to
# `<statefulset>-db` (prometheus-operator pkg/prometheus/common.go and
# pkg/alertmanager/statefulset.go @v0.93.0; chart templates/_helpers.tpl @88.5.3).
STATEFUL_WORKLOADS = {
    "prometheus": ("prometheusSpec", "storageSpec", f"prometheus-{RELEASE}-prometheus"),
    "alertmanager": ("alertmanagerSpec", "storage", f"alertmanager-{RELEASE}-alertmanager"),
}
# Prometheus stops at this share of its volume even before the retention time is up, so a full
# disk never stops it.


def volume_claims(values: dict[str, Any]) -> list[Claim]:
    """Every claim the operator's StatefulSets will mount, as the chart `values` configure them.

    Alertmanager has no volume: its state is silences and the notification log, and a zonal
    volume would tie the one alerting pod to one zone. A volume given to it here gets its claims
    like Prometheus's."""
    claims: list[Claim] = []
    for workload, (spec_key, storage_key, statefulset) in STATEFUL_WORKLOADS.items():
        spec = values.get(workload, {}).get(spec_key, {})
        template = (spec.get(storage_key) or {}).get("volumeClaimTemplate")
        if not template:
            continue
        if spec.get("shards", 1) != 1:
            raise ValueError(f"{workload}: claims of sharded StatefulSets are not supported")
        template_name = (template.get("metadata") or {}).get("name") or f"{statefulset}-db"
        claims += [
            Claim(
                key=f"{workload}-volume-{ordinal}",
                name=f"{template_name}-{statefulset}-{ordinal}",
                spec=template["spec"],
            )
            for ordinal in range(spec.get("replicas", 1))
        ]
    return claims
