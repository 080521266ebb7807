"""Edge: how traffic from the internet reaches the apps (Gateway API on Envoy Gateway, one NLB)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from app_platform import charts
from app_platform.cluster import SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATIONS, service_account_role
from app_platform.options import Options, OptionsError, Problem, component_inputs, matching

DEFAULT_DOMAIN = "app-platform.test"
# A DNS name of at least two labels; hosts become `<app>.<domain>`.
DOMAIN_PATTERN = re.compile(r"^(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DOMAIN_ACCEPTED = "a lowercase DNS name such as dev.app-platform.test (hosts become <app>.<domain>)"
CERTIFICATE_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$"
)
CERTIFICATE_ACCEPTED = "an ACM certificate ARN, or empty for HTTP only"

LBC_NAMESPACE = "kube-system"
LBC_RELEASE = "aws-load-balancer-controller"
LBC_SERVICE_ACCOUNT = "aws-load-balancer-controller"
LBC_REPLICAS = 2
EG_NAMESPACE = "envoy-gateway-system"
EG_RELEASE = "envoy-gateway"
EG_CONTROLLER_REPLICAS = 2
# The controller name gateway-helm configures (values `config.envoyGateway.gateway.controllerName`).
EG_CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
# The NLB must wait for provisioning and, on destroy, for the controller to delete it.
NLB_TIMEOUT = "15m"

PROXY_REPLICAS = 2
PROXY_MIN_AVAILABLE = 1
PROXY_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
# Envoy Gateway binds listener ports below 1024 to port + 10000 in the proxy container so Envoy
# runs without NET_BIND_SERVICE (internal/gatewayapi/translator.go `wellKnownPortShift` @v1.9.0).
PRIVILEGED_PORT_SHIFT = 10000
FIRST_UNPRIVILEGED_PORT = 1024
HTTP_PORT = 80
HTTPS_PORT = 443
# Envoy's readiness endpoint (internal/xds/bootstrap/bootstrap.go @v1.9.0); it fails while a proxy
# drains, so the NLB stops sending it new connections before it goes away.
PROXY_READINESS_PORT = 19003
PROXY_READINESS_PATH = "/ready"
# A current NLB security policy: TLS 1.3 and 1.2 only (the controller's default,
# ELBSecurityPolicy-2016-08, still accepts TLS 1.0). AWS's NLB docs, "Security policies".
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"
# Once HTTPS is on, browsers keep to it for a year, on every host under the domain's hosts too.
HSTS = "max-age=31536000; includeSubDomains"
REDIRECT_STATUS = 301
# ACM validation records change only when the certificate's names do; a short TTL lets a
# re-created certificate validate without waiting for caches.
VALIDATION_RECORD_TTL = 300
# Labels Envoy Gateway puts on every proxy pod (internal/infrastructure/kubernetes/proxy/
# resource.go `EnvoyAppLabel`, internal/gatewayapi/translator.go owning-gateway labels).
PROXY_APP_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
}
OWNING_GATEWAY_NAME_LABEL = "gateway.envoyproxy.io/owning-gateway-name"
OWNING_GATEWAY_NAMESPACE_LABEL = "gateway.envoyproxy.io/owning-gateway-namespace"
# Namespaces labelled so may attach routes to the shared Gateway; nothing else can claim its
# hostnames.
ROUTES_LABEL = "app-platform.io/gateway-routes"
ROUTES_LABEL_VALUE = "allowed"

_NLB = "service.beta.kubernetes.io/aws-load-balancer-"
NLB_ANNOTATIONS = {
    # `external` hands the Service to the AWS Load Balancer Controller (not the in-tree provider).
    f"{_NLB}type": "external",
    f"{_NLB}scheme": "internet-facing",
    # Targets are pod IPs: no extra node hop, and spot nodes can come and go underneath.
    f"{_NLB}nlb-target-type": "ip",
    f"{_NLB}healthcheck-protocol": "http",
    f"{_NLB}healthcheck-port": str(PROXY_READINESS_PORT),
    f"{_NLB}healthcheck-path": PROXY_READINESS_PATH,
    # Two proxies over three zones: without cross-zone balancing a zone's address would have no
    # target whenever its proxy restarts.
    f"{_NLB}attributes": "load_balancing.cross_zone.enabled=true",
}
# The controller holds a new proxy pod un-Ready until the NLB reports its target healthy, so a
# rollout or a spot reclaim never removes the last healthy target.
READINESS_GATE_LABELS = {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}

# The IAM policy the AWS Load Balancer Controller documents for v3.5.0
# (docs/install/iam_policy.json of kubernetes-sigs/aws-load-balancer-controller @v3.5.0).
# Everything that changes or deletes a load balancer, target group or security group is limited
# to those the controller tagged with its cluster tag.
_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
_REQUEST_TAGGED = {f"aws:RequestTag/{_CLUSTER_TAG}": "false"}
_RESOURCE_TAGGED = {f"aws:ResourceTag/{_CLUSTER_TAG}": "false"}
_RETAG_OWN = {f"aws:RequestTag/{_CLUSTER_TAG}": "true", **_RESOURCE_TAGGED}
_ELB = "arn:aws:elasticloadbalancing:*:*:"
_ELB_TAGGABLE = [
    f"{_ELB}targetgroup/*/*",
    f"{_ELB}loadbalancer/net/*/*",
    f"{_ELB}loadbalancer/app/*/*",
]
_SECURITY_GROUPS = "arn:aws:ec2:*:*:security-group/*"


def _allow(actions: list[str], resource: Any = "*", condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


LOAD_BALANCER_CONTROLLER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        _allow(
            ["iam:CreateServiceLinkedRole"],
            condition={
                "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
            },
        ),
        _allow(
            [
                *(
                    f"ec2:{a}"
                    for a in (
                        "DescribeAccountAttributes",
                        "DescribeAddresses",
                        "DescribeAvailabilityZones",
                        "DescribeInternetGateways",
                        "DescribeVpcs",
                        "DescribeVpcPeeringConnections",
                        "DescribeSubnets",
                        "DescribeSecurityGroups",
                        "DescribeInstances",
                        "DescribeNetworkInterfaces",
                        "DescribeTags",
                        "GetCoipPoolUsage",
                        "DescribeCoipPools",
                        "GetSecurityGroupsForVpc",
                        "DescribeIpamPools",
                        "DescribeRouteTables",
                    )
                ),
                *(
                    f"elasticloadbalancing:{a}"
                    for a in (
                        "DescribeLoadBalancers",
                        "DescribeLoadBalancerAttributes",
                        "DescribeListeners",
                        "DescribeListenerCertificates",
                        "DescribeSSLPolicies",
                        "DescribeRules",
                        "DescribeTargetGroups",
                        "DescribeTargetGroupAttributes",
                        "DescribeTargetHealth",
                        "DescribeTags",
                        "DescribeTrustStores",
                        "DescribeListenerAttributes",
                        "DescribeCapacityReservation",
                    )
                ),
            ]
        ),
        _allow(
            [
                "cognito-idp:DescribeUserPoolClient",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "iam:ListServerCertificates",
                "iam:GetServerCertificate",
                *(
                    f"{service}:{a}"
                    for service in ("waf-regional", "wafv2")
                    for a in (
                        "GetWebACL",
                        "GetWebACLForResource",
                        "AssociateWebACL",
                        "DisassociateWebACL",
                    )
                ),
                "shield:GetSubscriptionState",
                "shield:DescribeProtection",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            ]
        ),
        _allow(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]),
        _allow(["ec2:CreateSecurityGroup"]),
        _allow(
            ["ec2:CreateTags"],
            _SECURITY_GROUPS,
            {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}, "Null": _REQUEST_TAGGED},
        ),
        _allow(["ec2:CreateTags", "ec2:DeleteTags"], _SECURITY_GROUPS, {"Null": _RETAG_OWN}),
        _allow(
            [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
            condition={"Null": _RESOURCE_TAGGED},
        ),
        _allow(
            ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            condition={"Null": _REQUEST_TAGGED},
        ),
        _allow(
            [
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
            ]
        ),
        _allow(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            _ELB_TAGGABLE,
            {"Null": _RETAG_OWN},
        ),
        _allow(
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            [
                f"{_ELB}listener/net/*/*/*",
                f"{_ELB}listener/app/*/*/*",
                f"{_ELB}listener-rule/net/*/*/*",
                f"{_ELB}listener-rule/app/*/*/*",
            ],
        ),
        _allow(
            [
                f"elasticloadbalancing:{a}"
                for a in (
                    "ModifyLoadBalancerAttributes",
                    "SetIpAddressType",
                    "SetSecurityGroups",
                    "SetSubnets",
                    "DeleteLoadBalancer",
                    "ModifyTargetGroup",
                    "ModifyTargetGroupAttributes",
                    "DeleteTargetGroup",
                    "ModifyListenerAttributes",
                    "ModifyCapacityReservation",
                    "ModifyIpPools",
                )
            ],
            condition={"Null": _RESOURCE_TAGGED},
        ),
        _allow(
            ["elasticloadbalancing:AddTags"],
            _ELB_TAGGABLE,
            {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"]
                },
                "Null": _REQUEST_TAGGED,
            },
        ),
        _allow(
            ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            f"{_ELB}targetgroup/*/*",
        ),
        _allow(
            [
                f"elasticloadbalancing:{a}"
                for a in (
                    "SetWebAcl",
                    "ModifyListener",
                    "AddListenerCertificates",
                    "RemoveListenerCertificates",
                    "ModifyRule",
                    "SetRulePriorities",
                )
            ]
        ),
    ],
}


class EdgeOptions(Options):
    """The hosts the platform serves and, optionally, how it serves them over HTTPS: a given
    certificate (DNS done elsewhere) or a Route 53 hosted zone (certificate and records made
    here)."""

    domain: matching(DOMAIN_PATTERN, DOMAIN_ACCEPTED) = Field(
        DEFAULT_DOMAIN,
        alias="domain",
        description="DNS domain of the platform's hosts: argocd.<domain>, grafana.<domain>, "
        "hello.<domain>, comments.<domain>. A .test domain works through /etc/hosts (make "
        "hosts); a real one gets its DNS records from hostedZone, or needs CNAME/alias "
        "records to the load balancer made elsewhere.",
    )
    certificate_arn: matching(CERTIFICATE_ARN_PATTERN, CERTIFICATE_ACCEPTED, empty=True) = Field(
        "",
        alias="certificateArn",
        description="ACM certificate (same region) for the domain's hosts, with DNS done "
        "elsewhere; when set, the NLB serves HTTPS on 443 terminating TLS with it, and port 80 "
        "only redirects to HTTPS. Empty (and no hostedZone) means HTTP only. Not together with "
        "hostedZone.",
    )
    hosted_zone: str = Field(
        "",
        alias="hostedZone",
        description="Public Route 53 hosted zone (id Z... or name) that domain is, or is under: "
        "the stack then makes and DNS-validates an ACM certificate for *.<domain>, serves "
        "HTTPS on 443 (port 80 only redirects), and points *.<domain> at the load "
        "balancer. Empty: no DNS records are made.",
    )


def certificate_region_problem(certificate_arn: str, region: str) -> str | None:
    """What is accepted instead, when the certificate is not in the stack's region."""
    match = CERTIFICATE_ARN_PATTERN.fullmatch(certificate_arn)
    if match and match["region"] != region:
        return f"a certificate in the stack's region {region} (an NLB uses only its own region's)"
    return None


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


class Edge(pulumi.ComponentResource):
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
        self.load_balancer_hostname = self.load_balancer.status.apply(_hostname)
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

    # --- AWS Load Balancer Controller --------------------------------------------------------

    def _load_balancer_controller(self, name: str) -> k8s.helm.v3.Release:
        args = self._args
        role, policy = service_account_role(
            f"{name}-load-balancer-controller",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=LBC_NAMESPACE,
            service_account=LBC_SERVICE_ACCOUNT,
            policy=LOAD_BALANCER_CONTROLLER_POLICY,
            parent=self,
        )
        return charts.release(
            f"{name}-load-balancer-controller",
            charts.AWS_LOAD_BALANCER_CONTROLLER,
            release_name=LBC_RELEASE,
            namespace=LBC_NAMESPACE,
            values=pulumi.Output.all(args.cluster_name, args.vpc_id, role.arn).apply(
                lambda v: self.load_balancer_controller_values(*v)
            ),
            opts=self._opts(depends_on=[policy, *args.nodes_ready]),
        )

    def load_balancer_controller_values(
        self, cluster_name: str, vpc_id: str, role_arn: str
    ) -> dict[str, Any]:
        return {
            "clusterName": cluster_name,
            # The controller reads both from instance metadata unless given (pkg/aws/cloud.go
            # @v3.5.0), and nodes allow one IMDS hop, which its pods cannot reach.
            "region": self._args.region,
            "vpcId": vpc_id,
            "replicaCount": LBC_REPLICAS,
            "serviceAccount": {
                "create": True,
                "name": LBC_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            },
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": SYSTEM_TOLERATIONS,
            "podDisruptionBudget": {"maxUnavailable": 1},
            # Only Services that ask for it (our NLB's annotations) go to the controller; with the
            # mutating webhook every new LoadBalancer Service in the cluster would depend on it.
            "enableServiceMutatorWebhook": False,
        }

    # --- Envoy Gateway ---------------------------------------------------------------------

    def envoy_gateway_values(self) -> dict[str, Any]:
        return {
            "deployment": {
                # Leader election lets a second controller take over at once.
                "replicas": EG_CONTROLLER_REPLICAS,
                "pod": {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": SYSTEM_TOLERATIONS},
            },
            "podDisruptionBudget": {"minAvailable": 1},
            "certgen": {
                "job": {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": SYSTEM_TOLERATIONS}
            },
        }

    def envoy_proxy_spec(self) -> dict[str, Any]:
        """The proxies' settings, as an EnvoyProxy referenced by our GatewayClass.

        Why an EnvoyProxy resource rather than chart values (`config.envoyGateway.envoyProxy`):
        the controller watches it and applies changes at once, while the chart value sits in a
        ConfigMap the controller reads at start; and it is checked against its CRD like any
        other custom resource of ours.

        The proxies' own Service stays ClusterIP: the internet-facing NLB is a Service of ours
        (see `_load_balancer`), so that Pulumi itself waits for the NLB on create and destroy.
        """
        return {
            "provider": {
                "type": "Kubernetes",
                "kubernetes": {
                    "envoyService": {"type": "ClusterIP"},
                    "envoyDeployment": {
                        "replicas": PROXY_REPLICAS,
                        "container": {"resources": PROXY_RESOURCES},
                        "pod": {
                            # Spread over zones so one zone (or one spot reclaim) takes at most
                            # part of the edge.
                            "topologySpreadConstraints": [
                                {
                                    "maxSkew": 1,
                                    "topologyKey": "topology.kubernetes.io/zone",
                                    "whenUnsatisfiable": "ScheduleAnyway",
                                    "labelSelector": {"matchLabels": PROXY_APP_LABELS},
                                }
                            ]
                        },
                    },
                    "envoyPDB": {"minAvailable": PROXY_MIN_AVAILABLE},
                },
            },
        }

    def gateway_spec(self, gateway_class: str) -> dict[str, Any]:
        allowed = {
            "namespaces": {
                "from": "Selector",
                "selector": {"matchLabels": self.route_namespace_labels},
            }
        }
        http = {"name": HTTP_LISTENER, "port": HTTP_PORT, "protocol": "HTTP"}
        if not self.tls:
            return {
                "gatewayClassName": gateway_class,
                "listeners": [{**http, "allowedRoutes": allowed}],
            }
        # TLS ends at the NLB (ACM certificate); the https listener gets the decrypted traffic of
        # port 443. Port 80 takes routes of this namespace only, where the one route is the
        # redirect: app routes (with or without sectionName) can attach to https alone.
        https = {"name": HTTPS_LISTENER, "port": HTTPS_PORT, "protocol": "HTTP"}
        return {
            "gatewayClassName": gateway_class,
            "listeners": [
                {**http, "allowedRoutes": {"namespaces": {"from": "Same"}}},
                {**https, "allowedRoutes": allowed},
            ],
        }

    def redirect_route_spec(self) -> dict[str, Any]:
        """Every host on port 80 answered with a redirect to the same URL on https."""
        return {
            "parentRefs": [
                {
                    "name": self.gateway_name,
                    "namespace": self.gateway_namespace,
                    "sectionName": HTTP_LISTENER,
                }
            ],
            "rules": [
                {
                    "filters": [
                        {
                            "type": "RequestRedirect",
                            "requestRedirect": {
                                "scheme": "https",
                                "statusCode": REDIRECT_STATUS,
                            },
                        }
                    ]
                }
            ],
        }

    def hsts_policy_spec(self) -> dict[str, Any]:
        """Strict-Transport-Security on every response of the https listener, whatever route
        (or app stack, or Argo CD app) answered it."""
        return {
            "targetRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": self.gateway_name,
                    "sectionName": HTTPS_LISTENER,
                }
            ],
            "headers": {
                "lateResponseHeaders": {
                    "set": [{"name": "Strict-Transport-Security", "value": HSTS}]
                }
            },
        }

    def _https_only(self, name: str, gateway: k8s.apiextensions.CustomResource) -> None:
        """The redirect route on port 80 and HSTS on 443."""
        opts = self._opts(depends_on=[*self.crds_ready, gateway])
        self.redirect_route = k8s.apiextensions.CustomResource(
            f"{name}-https-redirect",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata={"name": "https-redirect", "namespace": self.gateway_namespace},
            spec=self.redirect_route_spec(),
            opts=opts,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-hsts",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="ClientTrafficPolicy",
            metadata={"name": "hsts", "namespace": self.gateway_namespace},
            spec=self.hsts_policy_spec(),
            opts=opts,
        )

    def _gateway(self, name: str) -> k8s.apiextensions.CustomResource:
        proxy_config = k8s.apiextensions.CustomResource(
            f"{name}-proxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata={"name": f"{name}-proxy", "namespace": EG_NAMESPACE},
            spec=self.envoy_proxy_spec(),
            opts=self._opts(depends_on=self.crds_ready),
        )
        gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-envoy",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata={"name": f"{name}-envoy"},
            spec={
                "controllerName": EG_CONTROLLER_NAME,
                "parametersRef": {
                    "group": "gateway.envoyproxy.io",
                    "kind": "EnvoyProxy",
                    "name": f"{name}-proxy",
                    "namespace": EG_NAMESPACE,
                },
            },
            opts=self._opts(depends_on=[*self.crds_ready, proxy_config]),
        )
        return k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata={"name": self.gateway_name, "namespace": self.gateway_namespace},
            spec=self.gateway_spec(f"{name}-envoy"),
            opts=self._opts(depends_on=[*self.crds_ready, gateway_class]),
        )

    # --- The load balancer -----------------------------------------------------------------

    def _load_balancer(
        self, name: str, gateway: k8s.apiextensions.CustomResource
    ) -> k8s.core.v1.Service:
        """The internet-facing NLB: a LoadBalancer Service of ours selecting the Gateway's proxies.

        Deleting a Gateway does not wait for its proxies: Envoy Gateway puts no finalizer on it
        (only on the GatewayClass) and removes the proxy Service afterwards, in the background
        (internal/provider/kubernetes/controller.go @v1.9.0). Had the NLB belonged to that
        Service, `pulumi destroy` could remove the controllers, nodes and VPC while the NLB
        still existed. A Service Pulumi owns is awaited both ways: create returns once the NLB
        has a hostname; delete returns once the Service is gone, which the Load Balancer
        Controller's finalizer holds until the NLB and its security groups are deleted. The
        Service depends on the controller's release, so the controller is ready before it and
        outlives it.
        """
        ports = [_port(HTTP_LISTENER, HTTP_PORT)]
        annotations: dict[str, pulumi.Input[str]] = dict(NLB_ANNOTATIONS)
        if self.certificate_arn is not None:
            ports.append(_port(HTTPS_LISTENER, HTTPS_PORT))
            annotations[f"{_NLB}ssl-cert"] = self.certificate_arn
            # Without it every port would be TLS, port 80 included.
            annotations[f"{_NLB}ssl-ports"] = str(HTTPS_PORT)
            annotations[f"{_NLB}ssl-negotiation-policy"] = TLS_POLICY
        return k8s.core.v1.Service(
            f"{name}-load-balancer",
            metadata={
                "name": f"{name}-public-nlb",
                "namespace": EG_NAMESPACE,
                "annotations": annotations,
            },
            spec={"type": "LoadBalancer", "selector": self.proxy_labels, "ports": ports},
            opts=self._opts(
                # On destroy the NLB (and its TLS listener) goes before the certificate: ACM
                # refuses to delete a certificate a listener still uses.
                depends_on=[self.load_balancer_controller, gateway, *self.certificate_ready],
                custom_timeouts=pulumi.CustomTimeouts(create=NLB_TIMEOUT, delete=NLB_TIMEOUT),
            ),
        )

    # --- Certificate and DNS ---------------------------------------------------------------

    def _aws_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _certificate(self, name: str) -> pulumi.Output[str]:
        """A wildcard ACM certificate for *.<domain>, validated through DNS records in the zone;
        gives its ARN once ACM has issued it (so the stack waits for validation).

        Hosts are `<app>.<domain>`; nothing is served at the apex, so it is not a name of the
        certificate and has no record. The validation records allow overwrite: ACM gives every
        certificate of the same name in an account the same record, so a stack created after
        another on the same domain, or after a record left behind, is not blocked. Destroying
        either stack deletes that shared record; the other's certificate stays valid, but ACM
        can no longer renew it until the record is back (`pulumi up` on that stack re-creates
        it)."""
        args = self._args
        domain_names = [f"*.{args.options.domain}"]
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=domain_names[0],
            subject_alternative_names=domain_names[1:] or None,
            validation_method="DNS",
            opts=self._aws_opts(),
        )
        records = [
            self._validation_record(f"{name}-certificate-validation-{index}", certificate, domain)
            for index, domain in enumerate(domain_names)
        ]
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn for record in records],
            opts=self._aws_opts(),
        )
        self.certificate_ready = [validation]
        return validation.certificate_arn

    def _validation_record(
        self, resource_name: str, certificate: aws.acm.Certificate, domain: str
    ) -> aws.route53.Record:
        option = certificate.domain_validation_options.apply(
            lambda options: next(o for o in options if o.domain_name == domain)
        )
        return aws.route53.Record(
            resource_name,
            zone_id=self._args.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=VALIDATION_RECORD_TTL,
            allow_overwrite=True,
            opts=self._aws_opts(),
        )

    def _dns_records(self, name: str) -> list[aws.route53.Record]:
        """`*.<domain>` as an alias of the NLB: every host under the domain reaches the Gateway.

        The NLB's own hosted zone id comes from the provider's table of ELB zones per region
        (no AWS call, known in every preview, even before the NLB exists). No overwrite: a
        second stack on the same domain fails here instead of taking the first one's traffic.
        The record reads the NLB's hostname, so destroy deletes it before the NLB: no name
        ever points at a deleted load balancer."""
        nlb_zone = aws.lb.get_hosted_zone_id_output(
            load_balancer_type="network", region=self._args.region
        )
        record = aws.route53.Record(
            f"{name}-wildcard",
            zone_id=self._args.hosted_zone_id,
            name=f"*.{self._args.options.domain}",
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=self.load_balancer_hostname,
                    zone_id=nlb_zone.id,
                    evaluate_target_health=True,
                )
            ],
            opts=self._aws_opts(depends_on=[self.load_balancer]),
        )
        return [record]


def _port(port_name: str, listener_port: int) -> dict[str, Any]:
    """A Service port sending the NLB's traffic to the proxy port of the Gateway listener."""
    target = listener_port
    if listener_port < FIRST_UNPRIVILEGED_PORT:
        target += PRIVILEGED_PORT_SHIFT
    return {"name": port_name, "port": listener_port, "targetPort": target, "protocol": "TCP"}


def _hostname(status: Any) -> str:
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    return (ingress[0].hostname or "") if ingress else ""


# Routes: every host the platform serves is one HTTPRoute on the shared Gateway.


@dataclass(frozen=True)
class Route:
    """One host sent to one Service port: the route's name and namespace (the Service's), the
    host, the Service and its port."""

    name: str
    namespace: str
    host: str
    service: str
    port: int


def http_route_spec(
    gateway_name: str, gateway_namespace: str, host: str, service: str, port: int
) -> dict[str, Any]:
    """An HTTPRoute spec sending every path of `host` to one Service port."""
    return {
        "parentRefs": [{"name": gateway_name, "namespace": gateway_namespace}],
        "hostnames": [host],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": service, "port": port}],
            }
        ],
    }


def http_route(
    resource_name: str,
    route: Route,
    *,
    gateway_name: pulumi.Input[str],
    gateway_namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """The HTTPRoute attaching `route` to the Gateway (its namespace must carry the Gateway's
    route labels, `Edge.route_namespace_labels`)."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version="gateway.networking.k8s.io/v1",
        kind="HTTPRoute",
        metadata={"name": route.name, "namespace": route.namespace},
        spec=http_route_spec(
            gateway_name, gateway_namespace, route.host, route.service, route.port
        ),
        opts=opts,
    )
