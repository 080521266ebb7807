"""App: one HTTP service on the platform, rendered the same way for every app."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi

from app_platform.apps import monitoring, routing, workload
from app_platform.apps.database import database
from app_platform.apps.environment import environment, secret_value
from app_platform.apps.parts import Parts
from app_platform.apps.spec import AppSpec
from app_platform.contract import PlatformContract
from app_platform.database import Database
from app_platform.image import AppImage, AppImageArgs
from app_platform.in_cluster_database import InClusterDatabase


@dataclass(frozen=True)
class AppArgs:
    spec: AppSpec
    platform: PlatformContract
    # Prefix of cloud resource names (the database), e.g. `platform-dev`.
    prefix: str


class App(pulumi.ComponentResource):
    """Owns the app's namespace (Pod Security `restricted`), service account, Secret (secret
    env and DATABASE_URL), Deployment, Service, HTTPRoute on the shared Gateway at
    `<name>.<domain>`, HorizontalPodAutoscaler (when min < max), PodDisruptionBudget,
    ServiceMonitor, NetworkPolicy (only the Gateway's proxies and Prometheus get in), an optional
    PostgreSQL `Database` on RDS (or `InClusterDatabase` with `database.inCluster`), an
    `AppImage` when the spec says to build (the Deployment then runs it by digest), and optional
    dashboard ConfigMap and PrometheusRule.

    Gives `url` (`http(s)://<name>.<domain>`), `namespace`, `hostname`, `database` and `image`
    (each None when not owned).
    """

    url: pulumi.Output[str]
    hostname: pulumi.Output[str]
    namespace: pulumi.Output[str]
    database: Database | InClusterDatabase | None
    image: AppImage | None

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None):
        spec, platform = args.spec, args.platform
        # Read first: a secret missing from the stack config stops the app before any resource.
        secrets = {key: secret_value(source) for key, source in spec.secret_env.items()}
        # The spec as recorded inputs: secret variables by name only (their values or config keys
        # stay out of plans and state).
        inputs = {
            "spec": {
                **spec.model_dump(mode="json", exclude={"secret_env"}),
                "secret_env": sorted(spec.secret_env),
            }
        }
        super().__init__("app-platform:app:App", name, inputs, opts)
        parts = Parts(name, spec, platform, args.prefix, parent=self)
        image = self._image(parts)
        self.hostname = pulumi.Output.concat(spec.name, ".", platform.domain)
        self.url = pulumi.Output.concat(platform.url_scheme, "://", self.hostname)

        namespace = workload.namespace(parts)
        self.namespace = namespace.metadata.name
        parts = replace(parts, namespace=self.namespace, namespace_resource=namespace)
        account = workload.service_account(parts)
        self.database = database(parts)
        env = environment(
            spec,
            secrets,
            {
                "port": str(spec.port),
                "databaseUrl": self.database.url if self.database else None,
                "hostname": self.hostname,
                "url": self.url,
                "namespace": self.namespace,
            },
        )
        env_from = workload.env_secret(parts, env.secret)
        container = workload.container(parts, image, env.plain, env_from)
        deployment = workload.deployment(parts, account, container)
        service = workload.service(parts)
        routing.route(parts, self.hostname, service)
        workload.autoscaler(parts, deployment)
        workload.disruption_budget(parts)
        monitoring.service_monitor(parts)
        workload.network_policy(parts)
        monitoring.dashboard(parts)
        monitoring.alerts(parts)

        self.register_outputs(
            {"url": self.url, "hostname": self.hostname, "namespace": self.namespace}
        )

    def _image(self, parts: Parts) -> pulumi.Input[str]:
        """The pinned image, or the one this app builds (then run by digest)."""
        spec = parts.spec
        self.image = None
        if not spec.build:
            return spec.image
        self.image = AppImage(
            f"{parts.name}-image",
            AppImageArgs(spec.build, f"{parts.prefix}-{spec.name}", parts.platform.node_platforms),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return self.image.image_ref
