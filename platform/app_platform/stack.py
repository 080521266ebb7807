"""The platform stack: network, cluster and add-ons wired together.

`build_platform` is what a platform stack's `__main__.py` calls; it registers the components
and exports nothing. The program exports `Platform.outputs()` for the people who run the stack
and `Platform.contract.outputs()` for the app stacks, which read the contract back with
`PlatformContract.from_stack_reference`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi

from app_platform import config
from app_platform.autoscaling import Autoscaling, AutoscalingArgs
from app_platform.cluster import Cluster, ClusterArgs
from app_platform.contract import PlatformContract
from app_platform.edge import Edge, EdgeArgs
from app_platform.gitops import GitOps, GitOpsArgs
from app_platform.image import MULTI_PLATFORM_BUILDER
from app_platform.instance_types import architecture
from app_platform.karpenter import Karpenter, KarpenterArgs
from app_platform.network import Network, NetworkArgs
from app_platform.observability import Observability, ObservabilityArgs

# The platform's own hosts under the domain: Argo CD's and Grafana's UIs.
PLATFORM_HOSTS = ("argocd", "grafana")


@dataclass(frozen=True)
class Platform:
    """The platform's components, and the contract every app gets from them."""

    region: str
    network: Network
    cluster: Cluster
    edge: Edge
    observability: Observability
    gitops: GitOps
    contract: PlatformContract
    # The workload nodes' provisioner with nodeProvisioner karpenter (the default), else None.
    karpenter: Karpenter | None = None

    @property
    def hostnames(self) -> list[str]:
        """The hostnames of the platform's own web UIs (apps add theirs)."""
        return [f"{host}.{self.contract.domain}" for host in PLATFORM_HOSTS]

    def outputs(self) -> dict[str, pulumi.Input[Any]]:
        """What the people who run the stack read: where things are, and the admin logins."""
        cluster_name = self.cluster.cluster_name
        return {
            "region": self.region,
            "publicSubnetIds": self.network.public_subnet_ids,
            "clusterName": cluster_name,
            "oidcProviderArn": self.cluster.oidc_provider_arn,
            "kubeconfigCommand": cluster_name.apply(
                lambda name: f"aws eks update-kubeconfig --region {self.region} --name {name}"
            ),
            "loadBalancerHostname": self.edge.load_balancer_hostname,
            "grafanaUrl": self.observability.grafana_url,
            "grafanaAdminPassword": self.observability.grafana_admin_password,
            "argocdUrl": self.gitops.url,
            "argocdAdminPassword": self.gitops.admin_password,
        }


def node_architectures(settings: config.PlatformSettings) -> tuple[str, ...]:
    """The CPU architectures (`amd64`, `arm64`) of the nodes apps may be scheduled on, sorted:
    Karpenter's NodePools', or the spot group's (the system group is tainted for controllers).
    Images the stack builds target each, so adding a Graviton pool here is all an app needs to
    run there."""
    if settings.cluster.uses_karpenter:
        return tuple(sorted(settings.karpenter.architectures))
    return tuple(sorted({architecture(t) for t in settings.cluster.spot.instance_types}))


def check_image_builder(settings: config.PlatformSettings) -> None:
    """Refuse, before anything is registered, app builds this machine cannot make: one image
    for nodes of several architectures needs a builder that makes multi-platform images."""
    architectures = node_architectures(settings)
    why = settings.multi_platform_problem
    builds = [app for app in settings.apps if app.build]
    if len(architectures) < 2 or not why or not builds:
        return
    raise config.ConfigError(
        "invalid stack configuration:\n  - "
        + "\n  - ".join(
            f"config 'apps.{app.name}.build' = {json.dumps(app.build)} cannot be built here for "
            f"{' and '.join(architectures)} nodes: {why}; {MULTI_PLATFORM_BUILDER}"
            for app in builds
        )
    )


def build_platform(settings: config.PlatformSettings) -> Platform:
    """Network, cluster and add-ons; gives them and what every app needs from them."""
    check_image_builder(settings)
    network, cluster = _network_and_cluster(settings)
    karpenter = _node_provisioner(settings, cluster)
    nodes_ready = workload_nodes_ready(cluster, karpenter)
    edge, observability = _edge_and_observability(settings, network, cluster, nodes_ready)
    gitops = _gitops_and_autoscaling(settings, cluster, edge, observability, nodes_ready)
    contract = _contract(settings, network, cluster, edge, observability, nodes_ready)
    return Platform(
        settings.region, network, cluster, edge, observability, gitops, contract, karpenter
    )


def _network_and_cluster(settings: config.PlatformSettings) -> tuple[Network, Cluster]:
    """The VPC and the EKS cluster in its subnets: what every add-on runs on."""
    prefix = settings.prefix
    network = Network(
        prefix,
        NetworkArgs(settings.network, settings.availability_zones, cluster_name=prefix),
    )

    cluster = Cluster(
        prefix,
        ClusterArgs(
            settings.cluster,
            cluster_name=prefix,
            region=settings.region,
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            egress_ready=network.egress_ready,
        ),
    )
    return network, cluster


def _node_provisioner(settings: config.PlatformSettings, cluster: Cluster) -> Karpenter | None:
    """The workload nodes' provisioner: Karpenter, or (nodeProvisioner clusterAutoscaler) the
    Cluster Autoscaler over the spot node group, which `_gitops_and_autoscaling` installs."""
    options = settings.cluster
    if not options.uses_karpenter:
        return None
    return Karpenter(
        settings.prefix,
        KarpenterArgs(
            settings.karpenter,
            cluster_name=settings.prefix,
            cluster_name_output=cluster.cluster_name,
            region=settings.region,
            provider=cluster.provider,
            system_node_count=options.system_node_count,
            node_disk_size_gib=options.node_disk_size_gib,
            nodes_ready=cluster.nodes_ready,
            discovery_tags=cluster.discovery_tags,
        ),
    )


def workload_nodes_ready(cluster: Cluster, karpenter: Karpenter | None) -> list[pulumi.Resource]:
    """What every workload the platform installs waits for: the Cluster's nodes and, with
    Karpenter, its NodePools. Created after the NodePools, the workloads are deleted before
    them: a NodePool's deletion drains its nodes, and a pod with a PodDisruptionBudget that
    Pulumi has yet to delete would have nowhere to go and hold the drain (and destroy) up to
    the pool's terminationGracePeriod."""
    return [*cluster.nodes_ready, *(karpenter.node_pools if karpenter else [])]


def _edge_and_observability(
    settings: config.PlatformSettings,
    network: Network,
    cluster: Cluster,
    nodes_ready: list[pulumi.Resource],
) -> tuple[Edge, Observability]:
    """Traffic in, and monitoring, which needs the Edge's CRDs and Gateway for its routes."""
    prefix = settings.prefix
    edge = Edge(
        prefix,
        EdgeArgs(
            settings.edge,
            cluster_name=cluster.cluster_name,
            region=settings.region,
            vpc_id=network.vpc_id,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            provider=cluster.provider,
            nodes_ready=nodes_ready,
            hosted_zone_id=zone.zone_id if (zone := settings.hosted_zone) else None,
            system_node_count=settings.cluster.system_node_count,
        ),
    )

    observability = Observability(
        prefix,
        ObservabilityArgs(
            settings.observability,
            provider=cluster.provider,
            domain=settings.edge.domain,
            block_storage=cluster.block_storage,
            gateway_name=edge.gateway_name,
            gateway_namespace=edge.gateway_namespace,
            route_namespace_labels=edge.route_namespace_labels,
            proxy_namespace=edge.proxy_namespace,
            proxy_labels=edge.proxy_labels,
            scheme=edge.scheme,
            alert_receivers=settings.alert_receivers,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            depends_on=edge.crds_ready,
        ),
    )
    return edge, observability


def _gitops_and_autoscaling(
    settings: config.PlatformSettings,
    cluster: Cluster,
    edge: Edge,
    observability: Observability,
    nodes_ready: list[pulumi.Resource],
) -> GitOps:
    """Argo CD and autoscaling (metrics-server; the Cluster Autoscaler unless Karpenter
    provisions the nodes), once the Edge and monitoring are there."""
    prefix = settings.prefix
    gitops = GitOps(
        prefix,
        GitOpsArgs(
            settings.gitops,
            provider=cluster.provider,
            domain=settings.edge.domain,
            gateway_name=edge.gateway_name,
            gateway_namespace=edge.gateway_namespace,
            route_namespace_labels=edge.route_namespace_labels,
            scheme=edge.scheme,
            # After monitoring: Argo CD renders its ServiceMonitors only if their CRD exists.
            depends_on=[*edge.crds_ready, *observability.crds_ready],
        ),
    )

    Autoscaling(
        prefix,
        AutoscalingArgs(
            provider=cluster.provider,
            cluster_name=prefix,
            kubernetes_version=settings.cluster.kubernetes_version,
            region=settings.region,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            nodes_ready=nodes_ready,
            cluster_autoscaler=not settings.cluster.uses_karpenter,
        ),
    )
    return gitops


def _contract(
    settings: config.PlatformSettings,
    network: Network,
    cluster: Cluster,
    edge: Edge,
    observability: Observability,
    nodes_ready: list[pulumi.Resource],
) -> PlatformContract:
    """What every app gets from these components."""
    return PlatformContract(
        provider=cluster.provider,
        kubeconfig=cluster.kubeconfig,
        gateway_name=edge.gateway_name,
        gateway_namespace=edge.gateway_namespace,
        domain=settings.edge.domain,
        proxy_namespace=edge.proxy_namespace,
        monitoring_namespace=observability.namespace,
        crds_ready=[*edge.crds_ready, *observability.crds_ready],
        nodes_ready=nodes_ready,
        block_storage=cluster.block_storage,
        vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
        node_security_group_id=cluster.node_security_group_id,
        url_scheme=edge.scheme,
        route_namespace_labels=edge.route_namespace_labels,
        dashboard_labels=observability.dashboard_label,
        node_platforms=tuple(f"linux/{arch}" for arch in node_architectures(settings)),
    )
