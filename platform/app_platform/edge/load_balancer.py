"""The internet-facing NLB: a LoadBalancer Service in front of the Gateway's proxies."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform.edge.gateway import (
    EG_NAMESPACE,
    HTTP_LISTENER,
    HTTP_PORT,
    HTTPS_LISTENER,
    HTTPS_PORT,
)

# The NLB must wait for provisioning and, on destroy, for the controller to delete it.
NLB_TIMEOUT = "15m"

# Envoy Gateway binds listener ports below 1024 to port + 10000 in the proxy container so Envoy
# runs without NET_BIND_SERVICE (internal/gatewayapi/translator.go `wellKnownPortShift` @v1.9.0).
PRIVILEGED_PORT_SHIFT = 10000
FIRST_UNPRIVILEGED_PORT = 1024
# Envoy's readiness endpoint (internal/xds/bootstrap/bootstrap.go @v1.9.0); it fails while a proxy
# drains, so the NLB stops sending it new connections before it goes away.
PROXY_READINESS_PORT = 19003
PROXY_READINESS_PATH = "/ready"
# A current NLB security policy: TLS 1.3 and 1.2 only (the controller's default,
# ELBSecurityPolicy-2016-08, still accepts TLS 1.0). AWS's NLB docs, "Security policies".
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"

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


def _port(port_name: str, listener_port: int) -> dict[str, Any]:
    """A Service port sending the NLB's traffic to the proxy port of the Gateway listener."""
    target = listener_port
    if listener_port < FIRST_UNPRIVILEGED_PORT:
        target += PRIVILEGED_PORT_SHIFT
    return {"name": port_name, "port": listener_port, "targetPort": target, "protocol": "TCP"}


def service_hostname(status: Any) -> str:
    ingress = status.load_balancer.ingress if status and status.load_balancer else None
    return (ingress[0].hostname or "") if ingress else ""


class LoadBalancer:
    """The Edge's NLB Service (a part of Edge)."""

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
