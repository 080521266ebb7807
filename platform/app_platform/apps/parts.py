"""What every part of an App (workload, routing, monitoring, database) builds on: the spec, the
platform, where child resources go and how they are named and labelled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from app_platform.apps.spec import AppSpec
from app_platform.contract import PlatformContract

CONTAINER_PORT_NAME = "http"
METRICS_PATH = "/metrics"


def labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "app-platform"}


def selector(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app}


@dataclass(frozen=True)
class Parts:
    """One app's building context. `name` prefixes every child's resource name (its URN);
    Kubernetes objects are named after the app (`spec.name`)."""

    name: str
    spec: AppSpec
    platform: PlatformContract
    # Prefix of cloud resource names (the database, the image repository), e.g. `platform-dev`.
    prefix: str
    parent: pulumi.Resource
    # Set once the namespace exists; every namespaced object waits for it.
    namespace: pulumi.Output[str] | None = None
    namespace_resource: pulumi.Resource | None = None

    @property
    def app(self) -> str:
        return self.spec.name

    @property
    def architectures(self) -> tuple[str, ...]:
        """The node architectures the app's image runs on: those it is built for, or those
        its spec names for a pinned image (empty: any)."""
        if self.spec.build:
            return tuple(
                platform.removeprefix("linux/") for platform in self.platform.node_platforms
            )
        return self.spec.architectures

    @property
    def labels(self) -> dict[str, str]:
        return labels(self.app)

    @property
    def selector(self) -> dict[str, str]:
        return selector(self.app)

    def meta(self, object_name: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "name": object_name or self.app,
            "namespace": self.namespace,
            "labels": self.labels,
            **extra,
        }

    def in_namespace(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self.parent,
            provider=self.platform.provider,
            depends_on=[self.namespace_resource] if self.namespace_resource else [],
        )

    def custom_resource(self) -> pulumi.ResourceOptions:
        """For custom resources: they also wait for the CRDs the platform installs."""
        return pulumi.ResourceOptions(
            parent=self.parent,
            provider=self.platform.provider,
            depends_on=[self.namespace_resource, *self.platform.crds_ready],
        )
