"""Observability options: Prometheus retention and volume size, Grafana's admin password."""

from __future__ import annotations

import re

from pydantic import Field

from app_platform.options import (
    SECRET,
    AdminPassword,
    Options,
    matching,
    whole_number,
)

# Prometheus durations (e.g. 15d, 12h); one unit, as the Prometheus CRD expects.
RETENTION_PATTERN = re.compile(r"^[1-9][0-9]*(h|d|w|y)$")
RETENTION_ACCEPTED = "a duration in hours, days, weeks or years, such as 15d"
DEFAULT_RETENTION = "15d"
DEFAULT_VOLUME_GIB = 50
MIN_VOLUME_GIB = 10
MAX_VOLUME_GIB = 1000


class ObservabilityOptions(Options):
    """How long and how much Prometheus keeps, and Grafana's admin login."""

    retention: matching(RETENTION_PATTERN, RETENTION_ACCEPTED) = Field(
        DEFAULT_RETENTION,
        alias="prometheusRetention",
        description="How long Prometheus keeps samples (h, d, w or y); it also stops at 85% of "
        "its volume.",
    )
    volume_size_gib: whole_number(MIN_VOLUME_GIB, MAX_VOLUME_GIB) = Field(
        DEFAULT_VOLUME_GIB,
        alias="prometheusVolumeSizeGib",
        description="Size of Prometheus's gp3 volume, in GiB.",
    )
    grafana_admin_password: AdminPassword = Field(
        None,
        alias="grafanaAdminPassword",
        description="Grafana admin password (set it with --secret); empty: one is generated and "
        "exported as the secret output grafanaAdminPassword.",
        json_schema_extra=SECRET,
    )
