"""The app's workload: namespace, service account, env Secret, Deployment, Service,
HorizontalPodAutoscaler, PodDisruptionBudget and the NetworkPolicy that admits only the
Gateway's proxies and Prometheus."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform.apps.parts import CONTAINER_PORT_NAME, Parts

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
ARCH_KEY = "kubernetes.io/arch"
HOST_KEY = "kubernetes.io/hostname"
# Keep old pods until new ones are ready, adding at most a quarter more during a rollout.
MAX_SURGE = "25%"
# A drain or spot reclaim may take one pod at a time.
PDB_MAX_UNAVAILABLE = 1
HPA_SCALE_DOWN_WINDOW_SECONDS = 300

# Pod Security Standards: the strictest profile, which every app pod here satisfies.
POD_SECURITY_LEVEL = "restricted"


def namespace(parts: Parts) -> k8s.core.v1.Namespace:
    """The app's own namespace, with the labels the Gateway wants before it accepts routes."""
    return k8s.core.v1.Namespace(
        f"{parts.name}-namespace",
        metadata={
            "name": parts.app,
            "labels": pulumi.Output.from_input(parts.platform.route_namespace_labels).apply(
                lambda route_labels: {
                    **parts.labels,
                    **(route_labels or {}),
                    "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
                    "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
                }
            ),
        },
        # Every other object of the app lives in this namespace, so waits for it.
        opts=pulumi.ResourceOptions(
            parent=parts.parent,
            provider=parts.platform.provider,
            depends_on=list(parts.platform.nodes_ready),
        ),
    )


def service_account(parts: Parts) -> k8s.core.v1.ServiceAccount:
    return k8s.core.v1.ServiceAccount(
        f"{parts.name}-service-account",
        metadata=parts.meta(),
        # The app does not call the Kubernetes API; no token is mounted.
        automount_service_account_token=False,
        opts=parts.in_namespace(),
    )


def env_secret(parts: Parts, values: Mapping[str, pulumi.Input[str]]) -> list[dict[str, Any]]:
    """The app's secret variables in a Secret of its own; gives the pod's `envFrom`."""
    if not values:
        return []
    secret = k8s.core.v1.Secret(
        f"{parts.name}-env",
        metadata=parts.meta(f"{parts.app}-env"),
        type="Opaque",
        string_data={key: pulumi.Output.secret(value) for key, value in values.items()},
        opts=parts.in_namespace(),
    )
    return [{"secretRef": {"name": secret.metadata.name}}]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": CONTAINER_PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": PROBE_TIMEOUT_SECONDS,
    }


def _probes(parts: Parts) -> dict[str, Any]:
    paths = parts.spec.health_paths
    return {
        "startupProbe": _probe(paths.startup, STARTUP_PERIOD_SECONDS, STARTUP_FAILURES),
        "readinessProbe": _probe(paths.readiness, READINESS_PERIOD_SECONDS, READINESS_FAILURES),
        "livenessProbe": _probe(paths.liveness, LIVENESS_PERIOD_SECONDS, LIVENESS_FAILURES),
    }


def container(
    parts: Parts,
    image: pulumi.Input[str],
    env: Mapping[str, pulumi.Input[str]],
    env_from: list[dict[str, Any]],
) -> dict[str, Any]:
    """The app's one container: unprivileged, read-only root, probes on the health paths."""
    spec = parts.spec
    user = spec.run_as_user
    entrypoint = {
        key: list(value) for key, value in (("command", spec.command), ("args", spec.args)) if value
    }
    return {
        "name": parts.app,
        "image": image,
        # Pinned tags are re-checked against the registry at every start, so a moved tag
        # cannot silently keep running an old cached image on some nodes.
        "imagePullPolicy": "Always",
        **entrypoint,
        "ports": [{"name": CONTAINER_PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        "env": [{"name": "PORT", "value": str(spec.port)}]
        + [{"name": key, "value": value} for key, value in sorted(env.items())],
        "envFrom": env_from,
        "resources": {
            "requests": {"cpu": spec.cpu.request, "memory": spec.memory.request},
            "limits": {"cpu": spec.cpu.limit, "memory": spec.memory.limit},
        },
        **_probes(parts),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": user,
            "runAsGroup": user,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # The root filesystem is read-only; /tmp is the one writable place (metrics files).
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }


def _spread(parts: Parts, key: str) -> dict[str, Any]:
    # ScheduleAnyway: a zone short of spot capacity must not leave pods pending; the scheduler
    # still prefers the least loaded zone and node. pod-template-hash keeps old and new
    # ReplicaSets from skewing each other during a rollout.
    return {
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": parts.selector},
        "matchLabelKeys": ["pod-template-hash"],
    }


def _architecture_affinity(parts: Parts) -> dict[str, Any]:
    requirement = {"key": ARCH_KEY, "operator": "In", "values": list(parts.architectures)}
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [requirement]}]
        }
    }


def deployment(
    parts: Parts, account: k8s.core.v1.ServiceAccount, app_container: dict[str, Any]
) -> k8s.apps.v1.Deployment:
    user = parts.spec.run_as_user
    spec: dict[str, Any] = {
        "selector": {"matchLabels": parts.selector},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": MAX_SURGE},
        },
        "template": {
            "metadata": {"labels": parts.labels},
            "spec": {
                "serviceAccountName": account.metadata.name,
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": user,
                    "runAsGroup": user,
                    "fsGroup": user,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "topologySpreadConstraints": [_spread(parts, ZONE_KEY), _spread(parts, HOST_KEY)],
                "containers": [app_container],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_VOLUME_SIZE}}],
            },
        },
    }
    if parts.architectures:
        # Nodes of an architecture the image lacks would fail to start it (exec format error);
        # Karpenter reads this requirement and launches nodes that have it.
        spec["template"]["spec"]["affinity"] = {"nodeAffinity": _architecture_affinity(parts)}
    if not parts.spec.autoscaled:
        # With autoscaling the HPA owns the replica count; setting it here would fight it.
        spec["replicas"] = parts.spec.min_replicas
    return k8s.apps.v1.Deployment(
        f"{parts.name}-deployment", metadata=parts.meta(), spec=spec, opts=parts.in_namespace()
    )


def service(parts: Parts) -> k8s.core.v1.Service:
    port = {
        "name": CONTAINER_PORT_NAME,
        "port": parts.spec.port,
        "targetPort": CONTAINER_PORT_NAME,
        "protocol": "TCP",
    }
    return k8s.core.v1.Service(
        f"{parts.name}-service",
        metadata=parts.meta(),
        spec={"type": "ClusterIP", "selector": parts.selector, "ports": [port]},
        opts=parts.in_namespace(),
    )


def autoscaler(parts: Parts, workload: k8s.apps.v1.Deployment) -> None:
    """CPU-based autoscaling between minReplicas and maxReplicas (only when they differ)."""
    spec = parts.spec
    if not spec.autoscaled:
        return
    cpu = {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": spec.cpu_target_percent},
    }
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{parts.name}-autoscaler",
        metadata=parts.meta(),
        spec={
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": workload.metadata.name,
            },
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [{"type": "Resource", "resource": cpu}],
            # Scale up at once, down slowly: a short lull should not cost capacity.
            "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": HPA_SCALE_DOWN_WINDOW_SECONDS}
            },
        },
        opts=parts.in_namespace(),
    )


def disruption_budget(parts: Parts) -> None:
    k8s.policy.v1.PodDisruptionBudget(
        f"{parts.name}-disruption-budget",
        metadata=parts.meta(),
        spec={
            "maxUnavailable": PDB_MAX_UNAVAILABLE,
            "selector": {"matchLabels": parts.selector},
        },
        opts=parts.in_namespace(),
    )


def _from_namespace(namespace_name: pulumi.Input[str]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace_name}}}


def network_policy(parts: Parts) -> None:
    platform = parts.platform
    k8s.networking.v1.NetworkPolicy(
        f"{parts.name}-ingress",
        metadata=parts.meta(),
        spec={
            "podSelector": {"matchLabels": parts.selector},
            "policyTypes": ["Ingress"],
            # Traffic comes only through the Gateway's proxies; Prometheus scrapes directly.
            "ingress": [
                {
                    "from": [
                        _from_namespace(platform.proxy_namespace),
                        _from_namespace(platform.monitoring_namespace),
                    ],
                    "ports": [{"port": parts.spec.port, "protocol": "TCP"}],
                }
            ],
        },
        opts=parts.in_namespace(),
    )
