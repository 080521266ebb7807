"""App: one HTTP service on the platform, rendered the same way for every app.

`AppSpec` is what an app's owner writes (from the stack config's `apps` map); `PlatformRefs`
(`contract.PlatformContract`) is what the platform gives every app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform.contract import PlatformContract
from app_platform.database import Database, DatabaseArgs, DatabaseSpec, sql_identifier
from app_platform.image import AppImage, AppImageArgs

# What an app gets from the platform: the contract (`app_platform.contract`), by its old name.
PlatformRefs = PlatformContract

CONTAINER_PORT_NAME = "http"
METRICS_PATH = "/metrics"
SCRAPE_INTERVAL = "30s"
# The image's own user (comments: 10001); a high UID never matches a host user.
RUN_AS_USER = 10001
TMP_VOLUME_SIZE = "64Mi"

# Probes. Startup allows STARTUP_PERIOD * STARTUP_FAILURES seconds to start (schema migration
# included) before liveness takes over; readiness drops a pod from the Service after two misses.
STARTUP_PERIOD_SECONDS = 2
STARTUP_FAILURES = 30
READINESS_PERIOD_SECONDS = 5
READINESS_FAILURES = 2
LIVENESS_PERIOD_SECONDS = 10
LIVENESS_FAILURES = 3
PROBE_TIMEOUT_SECONDS = 2

# On termination the pod's endpoint is removed while the container keeps serving: the preStop
# sleep holds SIGTERM back until the Gateway's proxies have dropped the endpoint, so no request
# is sent to a closing process. `sleep` is a kubelet action (GA in Kubernetes 1.34), so it works
# on images without a shell. The app then gets SHUTDOWN_SECONDS to finish in-flight requests.
PRE_STOP_SLEEP_SECONDS = 10
SHUTDOWN_SECONDS = 30
TERMINATION_GRACE_SECONDS = PRE_STOP_SLEEP_SECONDS + SHUTDOWN_SECONDS

ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
# Keep old pods until new ones are ready, adding at most a quarter more during a rollout.
MAX_SURGE = "25%"
# A drain or spot reclaim may take one pod at a time.
PDB_MAX_UNAVAILABLE = 1
HPA_SCALE_DOWN_WINDOW_SECONDS = 300

# Pod Security Standards: the strictest profile, which every app pod here satisfies.
POD_SECURITY_LEVEL = "restricted"

# Alert windows: long enough to ride out a single bad scrape, short enough to page in minutes.
ALERT_RATE_WINDOW = "5m"
ALERT_FOR = "10m"
NO_REPLICAS_FOR = "5m"


@dataclass(frozen=True)
class HealthPaths:
    startup: str
    readiness: str
    liveness: str


@dataclass(frozen=True)
class Resources:
    """Kubernetes quantities, e.g. cpu `250m`, memory `256Mi`."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class AlertThresholds:
    error_ratio: float = 0.05
    p99_latency_seconds: float = 1.0


@dataclass(frozen=True)
class Observability:
    """The app's own dashboard and alerts. Metric names are the app's; queries are templates
    with `{namespace}` filled in. Leave a query empty to skip that alert or panel."""

    dashboard_json: str | None = None
    requests_metric: str = ""
    latency_histogram: str = ""
    status_label: str = "status"
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    runbook_url: str = ""


@dataclass(frozen=True)
class AppSpec:
    name: str
    # A pinned image reference; empty when the stack builds the image (`build`).
    image: str
    port: int
    min_replicas: int
    max_replicas: int
    resources: Resources
    health: HealthPaths
    # A fixed replica count instead of autoscaling when min == max.
    cpu_target_percent: int = 70
    env: Mapping[str, str] = field(default_factory=dict)
    # Values go into the app's Kubernetes Secret, never into the Deployment.
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    database: DatabaseSpec | None = None
    observability: Observability = field(default_factory=Observability)
    # Build the image from this directory of the project (holding a Dockerfile) instead of
    # naming one: the App then owns an `AppImage` and runs it by digest.
    build: str | None = None

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas


@dataclass(frozen=True)
class AppArgs:
    spec: AppSpec
    platform: PlatformRefs
    # Prefix of cloud resource names (the database), e.g. `platform-dev`.
    prefix: str


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "app-platform"}


def _selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


class App(pulumi.ComponentResource):
    """Owns the app's namespace (Pod Security `restricted`), service account, Secret (secret
    env and DATABASE_URL), Deployment, Service, HTTPRoute on the shared Gateway at
    `<name>.<domain>`, HorizontalPodAutoscaler (when min < max), PodDisruptionBudget,
    ServiceMonitor, NetworkPolicy (only the Gateway's proxies and Prometheus get in), an optional
    PostgreSQL `Database`, an `AppImage` when the spec says to build (the Deployment then runs
    it by digest), and optional dashboard ConfigMap and PrometheusRule.

    Gives `url` (`http(s)://<name>.<domain>`), `namespace`, `hostname`, `database` and `image`
    (each None when not owned).
    """

    url: pulumi.Output[str]
    hostname: pulumi.Output[str]
    namespace: pulumi.Output[str]
    database: Database | None
    image: AppImage | None

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("app-platform:app:App", name, None, opts)
        spec, platform = args.spec, args.platform
        app = spec.name
        if bool(spec.image) == bool(spec.build):
            raise ValueError(
                f"app {app}: image = {spec.image!r}, build = {spec.build!r}: expected exactly "
                "one, a pinned image reference or a directory to build it from"
            )
        self.image = None
        image: pulumi.Input[str] = spec.image
        if spec.build:
            self.image = AppImage(
                f"{name}-image",
                AppImageArgs(spec.build, f"{args.prefix}-{app}", platform.node_platform),
                opts=pulumi.ResourceOptions(parent=self),
            )
            image = self.image.image_ref
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=platform.provider)
        labels = _labels(app)
        self.hostname = pulumi.Output.concat(app, ".", platform.domain)
        self.url = pulumi.Output.concat(platform.url_scheme, "://", self.hostname)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": app,
                "labels": pulumi.Output.from_input(platform.route_namespace_labels).apply(
                    lambda route_labels: {
                        **labels,
                        **(route_labels or {}),
                        "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
                        "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
                    }
                ),
            },
            opts=k8s_opts,
        )
        self.namespace = namespace.metadata.name
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=platform.provider, depends_on=[namespace]
        )

        def meta(object_name: str = app, **extra: Any) -> dict[str, Any]:
            return {"name": object_name, "namespace": self.namespace, "labels": labels, **extra}

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=meta(),
            # The app does not call the Kubernetes API; no token is mounted.
            automount_service_account_token=False,
            opts=in_namespace,
        )

        self.database = None
        secret_env: dict[str, pulumi.Input[str]] = dict(spec.secret_env)
        if spec.database is not None:
            if (
                platform.vpc_id is None
                or platform.private_subnet_ids is None
                or platform.node_security_group_id is None
            ):
                raise ValueError(f"app {app} wants a database: the platform must give the network")
            self.database = Database(
                f"{args.prefix}-{app}",
                DatabaseArgs(
                    spec=spec.database,
                    database_name=sql_identifier(app),
                    vpc_id=platform.vpc_id,
                    subnet_ids=platform.private_subnet_ids,
                    client_security_group_id=platform.node_security_group_id,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            secret_env["DATABASE_URL"] = self.database.url

        env_from: list[dict[str, Any]] = []
        if secret_env:
            secret = k8s.core.v1.Secret(
                f"{name}-env",
                metadata=meta(f"{app}-env"),
                type="Opaque",
                string_data={key: pulumi.Output.secret(value) for key, value in secret_env.items()},
                opts=in_namespace,
            )
            env_from.append({"secretRef": {"name": secret.metadata.name}})

        env = [{"name": "PORT", "value": str(spec.port)}]
        env += [{"name": key, "value": value} for key, value in sorted(spec.env.items())]

        def probe(path: str, period: int, failures: int) -> dict[str, Any]:
            return {
                "httpGet": {"path": path, "port": CONTAINER_PORT_NAME},
                "periodSeconds": period,
                "failureThreshold": failures,
                "timeoutSeconds": PROBE_TIMEOUT_SECONDS,
            }

        container = {
            "name": app,
            "image": image,
            # Pinned tags are re-checked against the registry at every start, so a moved tag
            # cannot silently keep running an old cached image on some nodes.
            "imagePullPolicy": "Always",
            "ports": [{"name": CONTAINER_PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
            "env": env,
            "envFrom": env_from,
            "resources": {
                "requests": {
                    "cpu": spec.resources.cpu_request,
                    "memory": spec.resources.memory_request,
                },
                "limits": {"cpu": spec.resources.cpu_limit, "memory": spec.resources.memory_limit},
            },
            "startupProbe": probe(spec.health.startup, STARTUP_PERIOD_SECONDS, STARTUP_FAILURES),
            "readinessProbe": probe(
                spec.health.readiness, READINESS_PERIOD_SECONDS, READINESS_FAILURES
            ),
            "livenessProbe": probe(
                spec.health.liveness, LIVENESS_PERIOD_SECONDS, LIVENESS_FAILURES
            ),
            "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "runAsUser": RUN_AS_USER,
                "runAsGroup": RUN_AS_USER,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            # The root filesystem is read-only; /tmp is the one writable place (metrics files).
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
        }

        def spread(key: str) -> dict[str, Any]:
            # ScheduleAnyway: a zone short of spot capacity must not leave pods pending; the
            # scheduler still prefers the least loaded zone and node. pod-template-hash keeps
            # old and new ReplicaSets from skewing each other during a rollout.
            return {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": _selector(app)},
                "matchLabelKeys": ["pod-template-hash"],
            }

        deployment_spec: dict[str, Any] = {
            "selector": {"matchLabels": _selector(app)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": MAX_SURGE},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": service_account.metadata.name,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [spread(ZONE_KEY), spread(HOST_KEY)],
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_VOLUME_SIZE}}],
                },
            },
        }
        if not spec.autoscaled:
            # With autoscaling the HPA owns the replica count; setting it here would fight it.
            deployment_spec["replicas"] = spec.min_replicas
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=meta(), spec=deployment_spec, opts=in_namespace
        )

        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(),
            spec={
                "type": "ClusterIP",
                "selector": _selector(app),
                "ports": [
                    {
                        "name": CONTAINER_PORT_NAME,
                        "port": spec.port,
                        "targetPort": CONTAINER_PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
            opts=in_namespace,
        )

        crd_opts = pulumi.ResourceOptions(
            parent=self,
            provider=platform.provider,
            depends_on=[namespace, *platform.crds_ready],
        )
        # Metrics are for Prometheus, inside the cluster: the Gateway answers /metrics itself.
        hide_metrics = k8s.apiextensions.CustomResource(
            f"{name}-hide-metrics",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="HTTPRouteFilter",
            metadata=meta("hide-metrics"),
            spec={
                "directResponse": {
                    "statusCode": 404,
                    "contentType": "text/plain",
                    "body": {"type": "Inline", "inline": "not found\n"},
                }
            },
            opts=crd_opts,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=meta(),
            spec={
                "parentRefs": [
                    {"name": platform.gateway_name, "namespace": platform.gateway_namespace}
                ],
                "hostnames": [self.hostname],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": METRICS_PATH}}],
                        "filters": [
                            {
                                "type": "ExtensionRef",
                                "extensionRef": {
                                    "group": "gateway.envoyproxy.io",
                                    "kind": "HTTPRouteFilter",
                                    "name": hide_metrics.metadata["name"],
                                },
                            }
                        ],
                    },
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [{"name": service.metadata.name, "port": spec.port}],
                    },
                ],
            },
            opts=crd_opts,
        )

        if spec.autoscaled:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-autoscaler",
                metadata=meta(),
                spec={
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": deployment.metadata.name,
                    },
                    "minReplicas": spec.min_replicas,
                    "maxReplicas": spec.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": spec.cpu_target_percent,
                                },
                            },
                        }
                    ],
                    # Scale up at once, down slowly: a short lull should not cost capacity.
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": HPA_SCALE_DOWN_WINDOW_SECONDS}
                    },
                },
                opts=in_namespace,
            )

        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=meta(),
            spec={
                "maxUnavailable": PDB_MAX_UNAVAILABLE,
                "selector": {"matchLabels": _selector(app)},
            },
            opts=in_namespace,
        )

        monitor_labels = {**labels, **platform.monitor_labels}
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=meta(labels=monitor_labels),
            spec={
                "selector": {"matchLabels": _selector(app)},
                "endpoints": [
                    {
                        "port": CONTAINER_PORT_NAME,
                        "path": METRICS_PATH,
                        "interval": SCRAPE_INTERVAL,
                    }
                ],
            },
            opts=crd_opts,
        )

        def from_namespace(ns: pulumi.Input[str]) -> dict[str, Any]:
            return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}

        k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata=meta(),
            spec={
                "podSelector": {"matchLabels": _selector(app)},
                "policyTypes": ["Ingress"],
                # Traffic comes only through the Gateway's proxies; Prometheus scrapes directly.
                "ingress": [
                    {
                        "from": [
                            from_namespace(platform.proxy_namespace),
                            from_namespace(platform.monitoring_namespace),
                        ],
                        "ports": [{"port": spec.port, "protocol": "TCP"}],
                    }
                ],
            },
            opts=in_namespace,
        )

        observability = spec.observability
        if observability.dashboard_json:
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard",
                metadata=meta(f"{app}-dashboard", labels={**labels, **platform.dashboard_labels}),
                data={f"{app}.json": observability.dashboard_json},
                opts=in_namespace,
            )
        rules = alert_rules(app, spec, namespace=app)
        if rules:
            k8s.apiextensions.CustomResource(
                f"{name}-alerts",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=meta(labels=monitor_labels),
                spec={"groups": [{"name": f"{app}.rules", "rules": rules}]},
                opts=crd_opts,
            )

        self.register_outputs(
            {"url": self.url, "hostname": self.hostname, "namespace": self.namespace}
        )


def alert_rules(app: str, spec: AppSpec, namespace: str) -> list[dict[str, Any]]:
    """The app's alerts: 5xx ratio and p99 latency (when its metrics are named), and no ready
    replicas (always; from kube-state-metrics)."""
    observability = spec.observability
    thresholds = observability.alerts
    selector = f'namespace="{namespace}"'

    def annotations(summary: str, description: str, anchor: str) -> dict[str, str]:
        notes = {"summary": summary, "description": description}
        if observability.runbook_url:
            notes["runbook_url"] = f"{observability.runbook_url}#{anchor}"
        return notes

    title = app.replace("-", " ").title().replace(" ", "")
    rules: list[dict[str, Any]] = []
    if observability.requests_metric:
        total = f"sum(rate({observability.requests_metric}{{{selector}}}[{ALERT_RATE_WINDOW}]))"
        errors = (
            f"sum(rate({observability.requests_metric}"
            f'{{{selector},{observability.status_label}=~"5.."}}[{ALERT_RATE_WINDOW}]))'
        )
        rules.append(
            {
                "alert": f"{title}HighErrorRatio",
                "expr": f"({errors} / {total}) > {thresholds.error_ratio:g}",
                "for": ALERT_FOR,
                "labels": {"severity": "critical", "app": app},
                "annotations": annotations(
                    f"{app}: more than {thresholds.error_ratio:.0%} of requests fail with 5xx",
                    f"{{{{ $value | humanizePercentage }}}} of {app} requests returned a 5xx "
                    f"status over the last {ALERT_RATE_WINDOW}.",
                    "high-error-ratio",
                ),
            }
        )
    if observability.latency_histogram:
        p99 = (
            "histogram_quantile(0.99, sum by (le) "
            f"(rate({observability.latency_histogram}_bucket{{{selector}}}[{ALERT_RATE_WINDOW}])))"
        )
        rules.append(
            {
                "alert": f"{title}HighLatency",
                "expr": f"{p99} > {thresholds.p99_latency_seconds:g}",
                "for": ALERT_FOR,
                "labels": {"severity": "warning", "app": app},
                "annotations": annotations(
                    f"{app}: p99 latency above {thresholds.p99_latency_seconds:g}s",
                    f"The 99th percentile of {app} request latency is "
                    f"{{{{ $value | humanizeDuration }}}} over the last {ALERT_RATE_WINDOW}.",
                    "high-latency",
                ),
            }
        )
    rules.append(
        {
            "alert": f"{title}NoReadyReplicas",
            # `or on() vector(0)`: a Deployment with no series at all is down too.
            "expr": (
                f'(sum(kube_deployment_status_replicas_ready{{{selector},deployment="{app}"}}) '
                "or on() vector(0)) < 1"
            ),
            "for": NO_REPLICAS_FOR,
            "labels": {"severity": "critical", "app": app},
            "annotations": annotations(
                f"{app}: no ready replicas",
                f"Deployment {namespace}/{app} has had no ready pod for {NO_REPLICAS_FOR}: "
                "the app is down.",
                "no-ready-replicas",
            ),
        }
    )
    return rules
