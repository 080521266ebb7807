"""The platform stack: read config, build the components, export what users need."""

import pulumi

from app_platform import config
from app_platform.cluster import Cluster, ClusterArgs
from app_platform.edge import Edge, EdgeArgs
from app_platform.network import Network, NetworkArgs
from app_platform.observability import Observability, ObservabilityArgs

settings = config.load()
prefix = settings.prefix

network = Network(
    prefix,
    NetworkArgs(
        cidr=settings.network.cidr,
        availability_zones=settings.network.availability_zones,
        nat_mode=settings.network.nat_mode,
        flow_logs=settings.network.flow_logs,
        cluster_name=prefix,
    ),
)

cluster = Cluster(
    prefix,
    ClusterArgs(
        cluster_name=prefix,
        kubernetes_version=settings.cluster.kubernetes_version,
        vpc_id=network.vpc_id,
        public_subnet_ids=network.public_subnet_ids,
        private_subnet_ids=network.private_subnet_ids,
        public_access_cidrs=settings.cluster.public_access_cidrs,
        admin_role_arns=settings.cluster.admin_role_arns,
        spot=settings.cluster.spot,
        system=settings.cluster.system,
        node_disk_size_gib=settings.cluster.node_disk_size_gib,
    ),
)

edge = Edge(
    prefix,
    EdgeArgs(
        cluster_name=cluster.cluster_name,
        region=settings.region,
        vpc_id=network.vpc_id,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        provider=cluster.provider,
        nodes_ready=cluster.nodes_ready,
        certificate_arn=settings.edge.certificate_arn,
    ),
)

observability = Observability(
    prefix,
    ObservabilityArgs(
        provider=cluster.provider,
        domain=settings.edge.domain,
        retention=settings.observability.retention,
        volume_size_gib=settings.observability.volume_size_gib,
        storage_class_name=cluster.storage_class_name,
        gateway_name=edge.gateway_name,
        gateway_namespace=edge.gateway_namespace,
        route_namespace_labels=edge.route_namespace_labels,
        proxy_namespace=edge.proxy_namespace,
        proxy_labels=edge.proxy_labels,
        scheme=edge.scheme,
        grafana_admin_password=settings.observability.grafana_admin_password,
        depends_on=[*edge.crds_ready, *cluster.storage_ready],
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
