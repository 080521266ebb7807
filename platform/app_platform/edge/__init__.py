"""Edge: how traffic reaches the platform.

One part a module: options, controller (the AWS Load Balancer Controller and its IAM policy),
gateway (Envoy Gateway, proxy settings, the shared Gateway), load_balancer (the NLB Service),
tls (certificate, DNS records, redirect, HSTS), routes (the HTTPRoute helper); `Edge`
(component) puts them together.
"""

from app_platform.edge.component import Edge, EdgeArgs
from app_platform.edge.gateway import ROUTES_LABEL, ROUTES_LABEL_VALUE
from app_platform.edge.load_balancer import TLS_POLICY
from app_platform.edge.options import EdgeOptions, certificate_region_problem
from app_platform.edge.routes import Route, http_route

__all__ = [
    "ROUTES_LABEL",
    "ROUTES_LABEL_VALUE",
    "TLS_POLICY",
    "Edge",
    "EdgeArgs",
    "EdgeOptions",
    "Route",
    "certificate_region_problem",
    "http_route",
]
