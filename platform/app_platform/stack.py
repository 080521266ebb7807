"""The platform stack: network, cluster and add-ons wired together, and the outputs users and
app stacks read.

`build_platform` is what a platform stack's `__main__.py` calls; an app stack instead reads the
same references back with `PlatformRefs.from_stack_reference`.
"""

from __future__ import annotations

import pulumi

from app_platform import config
from app_platform.app import PlatformRefs
from app_platform.autoscaling import Autoscaling, AutoscalingArgs
from app_platform.cluster import Cluster, ClusterArgs
from app_platform.edge import Edge, EdgeArgs
from app_platform.gitops import GitOps, GitOpsArgs
from app_platform.network import Network, NetworkArgs
from app_platform.observability import Observability, ObservabilityArgs


def build_platform(settings: config.PlatformSettings) -> PlatformRefs:
    """Network, cluster and add-ons; gives what every app needs from them."""
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
            nodes_ready=cluster.nodes_ready,
            hosted_zone_id=zone.zone_id if (zone := settings.hosted_zone) else None,
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
            nodes_ready=cluster.nodes_ready,
        ),
    )

    pulumi.export("region", settings.region)
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("publicSubnetIds", network.public_subnet_ids)
    pulumi.export("privateSubnetIds", network.private_subnet_ids)
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
    pulumi.export("nodeSecurityGroupId", cluster.node_security_group_id)
    pulumi.export(
        "kubeconfigCommand",
        f"aws eks update-kubeconfig --region {settings.region} --name {prefix}",
    )
    pulumi.export("gatewayName", edge.gateway_name)
    pulumi.export("gatewayNamespace", edge.gateway_namespace)
    pulumi.export("loadBalancerHostname", edge.load_balancer_hostname)
    pulumi.export("grafanaUrl", observability.grafana_url)
    pulumi.export("grafanaAdminPassword", observability.grafana_admin_password)
    pulumi.export("argocdUrl", gitops.url)
    pulumi.export("argocdAdminPassword", gitops.admin_password)
    pulumi.export("helloUrl", f"{edge.scheme}://hello.{settings.edge.domain}")
    hostnames = sorted(
        f"{host}.{settings.edge.domain}"
        for host in ("argocd", "grafana", "hello", *(app.name for app in settings.apps))
    )
    pulumi.export("hostnames", hostnames)
    # An NLB has DNS names, not fixed addresses: `python -m app_platform.hosts` resolves one.
    pulumi.export(
        "hostsLine",
        edge.load_balancer_hostname.apply(lambda lb: f"<address of {lb}> {' '.join(hostnames)}"),
    )

    refs = PlatformRefs(
        provider=cluster.provider,
        gateway_name=edge.gateway_name,
        gateway_namespace=edge.gateway_namespace,
        domain=settings.edge.domain,
        proxy_namespace=edge.proxy_namespace,
        monitoring_namespace=observability.namespace,
        crds_ready=[*edge.crds_ready, *observability.crds_ready],
        vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
        node_security_group_id=cluster.node_security_group_id,
        url_scheme=edge.scheme,
        route_namespace_labels=edge.route_namespace_labels,
        dashboard_labels=observability.dashboard_label,
    )
    # What an app stack reads back through its StackReference (PlatformRefs.from_stack_reference).
    pulumi.export("domain", refs.domain)
    pulumi.export("urlScheme", refs.url_scheme)
    pulumi.export("proxyNamespace", refs.proxy_namespace)
    pulumi.export("monitoringNamespace", refs.monitoring_namespace)
    pulumi.export("routeNamespaceLabels", refs.route_namespace_labels)
    return refs
