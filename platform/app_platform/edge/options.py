"""Edge options: the platform's domain and how it serves HTTPS (a certificate or a hosted zone)."""

from __future__ import annotations

import re

from pydantic import Field

from app_platform.options import Options, matching

DEFAULT_DOMAIN = "app-platform.test"
# A DNS name of at least two labels; hosts become `<app>.<domain>`.
DOMAIN_PATTERN = re.compile(r"^(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DOMAIN_ACCEPTED = "a lowercase DNS name such as dev.app-platform.test (hosts become <app>.<domain>)"
CERTIFICATE_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$"
)
CERTIFICATE_ACCEPTED = "an ACM certificate ARN, or empty for HTTP only"


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
