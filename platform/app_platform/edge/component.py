"""Edge: how traffic reaches the platform (LB controller, Envoy Gateway, the NLB, TLS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from app_platform import charts
from app_platform.edge.controller import LoadBalancerController
from app_platform.edge.gateway import (
    EG_NAMESPACE,
    EG_RELEASE,
    OWNING_GATEWAY_NAME_LABEL,
    OWNING_GATEWAY_NAMESPACE_LABEL,
    PROXY_APP_LABELS,
    ROUTES_LABEL,
    ROUTES_LABEL_VALUE,
    EnvoyGateway,
)
from app_platform.edge.load_balancer import READINESS_GATE_LABELS, LoadBalancer, service_hostname
from app_platform.edge.options import EdgeOptions, certificate_region_problem
from app_platform.edge.tls import Tls
from app_platform.options import OptionsError, Problem, component_inputs


@dataclass(frozen=True)
class EdgeArgs:
    """The options, and what comes from the cluster: its name, region, VPC, OIDC provider and
    Kubernetes provider."""

    options: EdgeOptions
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    provider: k8s.Provider
    # Resources to wait for before anything runs in the cluster (node groups, CoreDNS).
    nodes_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    # A public Route 53 zone that the domain is or is under (looked up from the `hostedZone`
    # option): the Edge makes and validates its own certificate for *.<domain> there, and
    # points *.<domain> at the NLB.
    hosted_zone_id: str | None = None
    # The on-demand system nodes the Load Balancer Controller runs on: a second replica on the
    # same node would only take a pod slot there.
    system_node_count: int = 2

    def __post_init__(self) -> None:
        arn = self.options.certificate_arn
        accepted = certificate_region_problem(arn, self.region)
        if accepted:
            raise OptionsError(
                [Problem("options.certificate_arn", arn, accepted)], "invalid EdgeArgs"
            )
        if arn and self.hosted_zone_id:
            raise OptionsError(
                [
                    Problem(
                        "hosted_zone_id",
                        self.hosted_zone_id,
                        "no zone with options.certificate_arn: in a hosted zone the Edge makes "
                        "its own certificate",
                    )
                ],
                "invalid EdgeArgs",
            )


class Edge(LoadBalancerController, EnvoyGateway, LoadBalancer, Tls, pulumi.ComponentResource):
    """Owns the AWS Load Balancer Controller (Helm release, IRSA role with its documented IAM
    policy), Envoy Gateway (Helm release, which installs the Gateway API and Envoy Gateway
    CRDs), the proxies' settings (EnvoyProxy), a GatewayClass, the one shared Gateway, and the
    internet-facing NLB in front of the Gateway's proxies. With TLS (a given certificate, or a
    hosted zone), the NLB's TLS listener on 443, the port-80 redirect route and HSTS; with a
    hosted zone also the ACM certificate for *.<domain>, its validation records and validation,
    and the *.<domain> alias record of the NLB.

    Gives `gateway_name` and `gateway_namespace` (for HTTPRoute parentRefs),
    `route_namespace_labels` (a namespace must carry them for its routes to be accepted),
    `load_balancer_hostname`,
    `scheme` (http, or https when a certificate is configured), `proxy_namespace` and
    `proxy_labels` (to select the proxies, e.g. for monitoring), and `crds_ready`: resources to
    depend on before creating Gateway API or Envoy Gateway custom resources.
    """

    gateway_name: str
    gateway_namespace: str
    load_balancer_hostname: pulumi.Output[str]
    crds_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "app-platform:edge:Edge",
            name,
            {
                **component_inputs(args.options),
                "cluster_name": args.cluster_name,
                "region": args.region,
                "hosted_zone_id": args.hosted_zone_id,
            },
            opts,
        )
        self._args = args
        self.gateway_name = f"{name}-public"
        self.gateway_namespace = EG_NAMESPACE
        self.proxy_namespace = EG_NAMESPACE
        self.route_namespace_labels = {ROUTES_LABEL: ROUTES_LABEL_VALUE}
        self.tls = bool(args.options.certificate_arn or args.hosted_zone_id)
        self.scheme = "https" if self.tls else "http"
        # What the NLB's TLS listener must wait for: the certificate, validated.
        self.certificate_arn: pulumi.Input[str] | None = args.options.certificate_arn or None
        self.certificate_ready: list[pulumi.Resource] = []
        if args.hosted_zone_id:
            self.certificate_arn = self._certificate(name)

        self.load_balancer_controller = self._load_balancer_controller(name)
        namespace = k8s.core.v1.Namespace(
            f"{name}-envoy-gateway",
            metadata={
                "name": EG_NAMESPACE,
                "labels": {**self.route_namespace_labels, **READINESS_GATE_LABELS},
            },
            opts=self._opts(depends_on=list(args.nodes_ready)),
        )
        # After the Load Balancer Controller: on destroy, everything that can own a load
        # balancer goes before the controller that deletes it.
        self.envoy_gateway = charts.release(
            f"{name}-envoy-gateway",
            charts.ENVOY_GATEWAY,
            release_name=EG_RELEASE,
            namespace=namespace.metadata["name"],
            values=self.envoy_gateway_values(),
            opts=self._opts(depends_on=[namespace, self.load_balancer_controller]),
        )
        self.crds_ready: list[pulumi.Resource] = [self.envoy_gateway]

        gateway = self._gateway(name)
        self.proxy_labels = {
            **PROXY_APP_LABELS,
            OWNING_GATEWAY_NAME_LABEL: self.gateway_name,
            OWNING_GATEWAY_NAMESPACE_LABEL: self.gateway_namespace,
        }
        self.load_balancer = self._load_balancer(name, gateway)
        self.load_balancer_hostname = self.load_balancer.status.apply(service_hostname)
        if self.tls:
            self._https_only(name, gateway)
        self.dns_records: list[aws.route53.Record] = []
        if args.hosted_zone_id:
            self.dns_records = self._dns_records(name)
        self.register_outputs(
            {
                "gateway_name": self.gateway_name,
                "gateway_namespace": self.gateway_namespace,
                "load_balancer_hostname": self.load_balancer_hostname,
                "scheme": self.scheme,
            }
        )

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **kwargs)
