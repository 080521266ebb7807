"""HTTPS: the certificate and its validation, the DNS records, the port-80 redirect and HSTS."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from app_platform.edge.gateway import HTTP_LISTENER, HTTPS_LISTENER

# Once HTTPS is on, browsers keep to it for a year, on every host under the domain's hosts too.
HSTS = "max-age=31536000; includeSubDomains"
REDIRECT_STATUS = 301
# ACM validation records change only when the certificate's names do; a short TTL lets a
# re-created certificate validate without waiting for caches.
VALIDATION_RECORD_TTL = 300


class Tls:
    """The Edge's certificate, DNS records, redirect and HSTS (a part of Edge)."""

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
