"""The platform contract: what an app gets from the platform, and the stack outputs that carry
it from a platform stack to an app stack.

`PlatformContract` is built either from the platform's components in the same stack
(`stack.build_platform`) or from a platform stack's outputs
(`PlatformContract.from_stack_reference`). `OUTPUTS` is the one list of the outputs a platform
stack exports for that (`PlatformContract.outputs`, which the program exports) and an app stack
reads back; the offline tools fake a platform stack from the same list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform.image import DEFAULT_PLATFORM
from app_platform.volumes import BlockStorage

# Where apps attach and who may reach them, unless the platform says otherwise.
DEFAULT_PROXY_NAMESPACE = "envoy-gateway-system"
DEFAULT_MONITORING_NAMESPACE = "monitoring"
DEFAULT_URL_SCHEME = "http"
# kube-prometheus-stack's Grafana sidecar loads ConfigMaps carrying this label, from any namespace.
DEFAULT_DASHBOARD_LABELS = {"grafana_dashboard": "1"}


@dataclass(frozen=True)
class PlatformContract:
    """Everything an app needs from the platform, as plain values or outputs.

    The fields named in `OUTPUTS` travel between stacks; the others (the provider, built from
    the kubeconfig; `crds_ready`, `nodes_ready`, `block_storage`, `node_platforms` and the
    monitoring labels) only exist in the stack that has them, and an app stack gets their
    defaults.
    """

    provider: k8s.Provider
    gateway_name: pulumi.Input[str]
    gateway_namespace: pulumi.Input[str]
    domain: pulumi.Input[str]
    proxy_namespace: pulumi.Input[str] = DEFAULT_PROXY_NAMESPACE
    monitoring_namespace: pulumi.Input[str] = DEFAULT_MONITORING_NAMESPACE
    # Resources that install the CRDs apps use (Gateway API, Prometheus Operator).
    crds_ready: Sequence[pulumi.Resource] = ()
    # What an app's objects are created after and deleted before: the nodes and NodePools its
    # pods run on (`stack.workload_nodes_ready`). Deleting a NodePool drains its nodes, which
    # pods guarded by a PodDisruptionBudget would hold up while the app still exists.
    nodes_ready: Sequence[pulumi.Resource] = ()
    # The cluster's EBS storage, for an app's in-cluster database (`database.inCluster`).
    block_storage: BlockStorage | None = None
    vpc_id: pulumi.Input[str] | None = None
    private_subnet_ids: pulumi.Input[Sequence[str]] | None = None
    node_security_group_id: pulumi.Input[str] | None = None
    url_scheme: pulumi.Input[str] = DEFAULT_URL_SCHEME
    # The OS/architecture of every node apps may run on (`stack.node_architectures`): images
    # built by the stack are built for each, as one multi-arch image.
    node_platforms: tuple[str, ...] = (DEFAULT_PLATFORM,)
    # Labels the Gateway's listeners require on a namespace before they accept its routes.
    route_namespace_labels: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    # Extra labels for ServiceMonitor/PrometheusRule (e.g. `release`), if Prometheus selects them.
    monitor_labels: Mapping[str, str] = field(default_factory=dict)
    dashboard_labels: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_DASHBOARD_LABELS)
    )
    # The cluster's kubeconfig (a secret): what an app stack builds its provider from.
    kubeconfig: pulumi.Input[Any] | None = None

    def outputs(self) -> dict[str, pulumi.Input[Any]]:
        """The stack outputs an app stack reads back, by name: the program exports each."""
        missing = [o.field for o in OUTPUTS if getattr(self, o.field) is None]
        if missing:
            raise ValueError(f"the platform contract cannot be exported without {missing}")
        values = {o.name: getattr(self, o.field) for o in OUTPUTS}
        secret = {o.name for o in OUTPUTS if o.secret}
        return {
            name: pulumi.Output.secret(value) if name in secret else value
            for name, value in values.items()
        }

    @staticmethod
    def from_stack_reference(name: str, platform_stack: str) -> PlatformContract:
        """The contract a platform stack exported (`<org>/<project>/<stack>`); outputs an older
        platform stack does not have get their defaults."""
        ref = pulumi.StackReference(name, stack_name=platform_stack)
        values = {o.field: _read(ref, o) for o in OUTPUTS}
        kubeconfig = pulumi.Output.secret(values.pop("kubeconfig")).apply(
            lambda value: value if isinstance(value, str) else json.dumps(value)
        )
        provider = k8s.Provider(name, kubeconfig=kubeconfig)
        return PlatformContract(provider=provider, kubeconfig=kubeconfig, **values)


# Marks an output every platform stack must have.
REQUIRED: Any = object()


@dataclass(frozen=True)
class ContractOutput:
    """One stack output of the contract: its name, the `PlatformContract` field it carries,
    whether it is secret, and the value an app stack assumes when it is absent."""

    name: str
    field: str
    secret: bool = False
    fallback: Any = REQUIRED


OUTPUTS: tuple[ContractOutput, ...] = (
    ContractOutput("kubeconfig", "kubeconfig", secret=True),
    ContractOutput("gatewayName", "gateway_name"),
    ContractOutput("gatewayNamespace", "gateway_namespace"),
    ContractOutput("domain", "domain"),
    ContractOutput("urlScheme", "url_scheme", fallback=DEFAULT_URL_SCHEME),
    ContractOutput("proxyNamespace", "proxy_namespace", fallback=DEFAULT_PROXY_NAMESPACE),
    ContractOutput(
        "monitoringNamespace", "monitoring_namespace", fallback=DEFAULT_MONITORING_NAMESPACE
    ),
    ContractOutput("routeNamespaceLabels", "route_namespace_labels", fallback={}),
    ContractOutput("vpcId", "vpc_id"),
    ContractOutput("privateSubnetIds", "private_subnet_ids"),
    ContractOutput("nodeSecurityGroupId", "node_security_group_id"),
)


def _read(ref: pulumi.StackReference, output: ContractOutput) -> pulumi.Output[Any]:
    if output.fallback is REQUIRED:
        return ref.require_output(output.name)
    fallback = output.fallback
    return ref.get_output(output.name).apply(lambda value: value or fallback)
