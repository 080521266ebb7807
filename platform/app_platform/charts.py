"""Every Helm chart the platform installs, pinned in one place, and how a release is made.

Versions are exact and exist upstream (tests compare them with the versions the upstream facts
were read at). The charts are installed as `helm.v3.Release`, not `helm.v4.Chart`: a release is
one custom resource that previews while the cluster's kubeconfig is still unknown (every first
deployment), runs the charts' hooks, and Helm's `--wait --timeout` tells Pulumi when it is ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class ChartPin:
    """A chart at an exact version, from a classic Helm repository or an OCI registry."""

    name: str
    version: str
    repo: str | None = None
    oci: str | None = None

    @property
    def chart(self) -> str:
        # With OCI the chart argument is the full reference and no repository is given.
        return self.oci or self.name


AWS_LOAD_BALANCER_CONTROLLER = ChartPin(
    "aws-load-balancer-controller", "3.5.0", repo="https://aws.github.io/eks-charts"
)
# Published only as OCI; the release pushes both `v1.9.0` and `1.9.0`, we use the tag as named.
ENVOY_GATEWAY = ChartPin("gateway-helm", "v1.9.0", oci="oci://docker.io/envoyproxy/gateway-helm")
ARGO_CD = ChartPin("argo-cd", "10.1.1", repo="https://argoproj.github.io/argo-helm")
KUBE_PROMETHEUS_STACK = ChartPin(
    "kube-prometheus-stack", "88.5.3", repo="https://prometheus-community.github.io/helm-charts"
)
METRICS_SERVER = ChartPin(
    "metrics-server", "3.13.1", repo="https://kubernetes-sigs.github.io/metrics-server/"
)
CLUSTER_AUTOSCALER = ChartPin(
    "cluster-autoscaler", "9.59.0", repo="https://kubernetes.github.io/autoscaler"
)
# Karpenter publishes both charts to its OCI registry at every release, with the release's
# version (Chart.yaml in git lags it; the release job stamps it): hack/release/common.sh.
KARPENTER = ChartPin("karpenter", "1.14.1", oci="oci://public.ecr.aws/karpenter/karpenter")
KARPENTER_CRD = ChartPin(
    "karpenter-crd", "1.14.1", oci="oci://public.ecr.aws/karpenter/karpenter-crd"
)

ALL = (
    AWS_LOAD_BALANCER_CONTROLLER,
    ENVOY_GATEWAY,
    ARGO_CD,
    KUBE_PROMETHEUS_STACK,
    METRICS_SERVER,
    CLUSTER_AUTOSCALER,
    KARPENTER,
    KARPENTER_CRD,
)

# The Cluster Autoscaler's minor must equal the cluster's Kubernetes minor (its scheduler code is
# vendored from that Kubernetes release); newest patch tag of each minor.
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_IMAGE_TAGS = {"1.34": "v1.34.5", "1.35": "v1.35.2", "1.36": "v1.36.1"}

# Helm waits this long for a release's workloads to become ready unless a component says more.
DEFAULT_TIMEOUT_SECONDS = 600


def release(
    resource_name: str,
    pin: ChartPin,
    *,
    release_name: str,
    namespace: pulumi.Input[str],
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    skip_crds: bool = False,
) -> k8s.helm.v3.Release:
    """A Helm release of `pin` with a fixed release name (names of the chart's objects, service
    accounts trusted by IAM roles, derive from it), waiting until its workloads are ready."""
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name,
        chart=pin.chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo) if pin.repo else None,
        namespace=namespace,
        values=values,
        timeout=timeout_seconds,
        # A failed install or upgrade rolls back instead of leaving a half-applied release.
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        skip_crds=skip_crds,
        opts=opts,
    )
