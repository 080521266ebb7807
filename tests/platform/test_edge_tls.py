"""HTTPS and DNS at the edge: a hosted zone turns on a certificate, its validation, the NLB's TLS
listener and the records; port 80 then only redirects, HSTS is sent, every URL says https."""

from pathlib import Path

import pytest
import yaml

from app_platform import config, edge, gitops
from app_platform.options import OptionsError
from app_platform_tools import offline, secrets
from tests.upstream import checks

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "kubernetes:core/v1:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
TRAFFIC_POLICY = "kubernetes:gateway.envoyproxy.io/v1alpha1:ClientTrafficPolicy"
APPLICATION_SET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"
CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
NLB = "service.beta.kubernetes.io/aws-load-balancer-"
ZONE = {"hostedZone": "example.com", "domain": "dev.example.com"}
GIVEN_CERTIFICATE = (
    "arn:aws:acm:us-east-1:123456789012:certificate/0f9d4a5e-3b6c-4d7e-8f90-a1b2c3d4e5f6"
)
HELLO_ROUTE = ROOT / "gitops" / "apps" / "hello-world" / "httproute.yaml"


@pytest.fixture(scope="module")
def with_zone():
    return offline.run(ROOT, "dev", ZONE)


@pytest.fixture(scope="module")
def with_certificate():
    return offline.run(ROOT, "dev", {"certificateArn": GIVEN_CERTIFICATE})


def nlb(recording):
    return recording.one(SERVICE, "platform-dev-load-balancer")


def custom_resource(resource):
    return {key: resource.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}


# --- Certificate, validation and records -----------------------------------------------------


def test_a_zone_makes_a_wildcard_certificate_validated_through_its_dns(with_zone):
    certificate = with_zone.one(CERTIFICATE)
    assert certificate.inputs["domainName"] == "*.dev.example.com"
    assert certificate.inputs["validationMethod"] == "DNS"
    # Nothing is served at the apex: it is no name of the certificate.
    assert not certificate.inputs.get("subjectAlternativeNames")
    (option,) = certificate.outputs["domainValidationOptions"]
    record = with_zone.one(RECORD, "platform-dev-certificate-validation-0")
    assert record.inputs["zoneId"] == "Z0OFFLINEEXAMPLE"
    assert (record.inputs["name"], record.inputs["type"], record.inputs["records"]) == (
        option["resourceRecordName"],
        "CNAME",
        [option["resourceRecordValue"]],
    )
    # A later stack on the same domain (same record) is not blocked by this one.
    assert record.inputs["allowOverwrite"] is True
    validation = with_zone.one(VALIDATION)
    assert validation.inputs["certificateArn"] == certificate.outputs["arn"]
    assert validation.inputs["validationRecordFqdns"] == [record.outputs["fqdn"]]
    assert with_zone.depends_on(validation, record)
    assert with_zone.depends_on(validation, certificate)


def test_the_nlb_serves_tls_on_443_with_the_validated_certificate_and_a_current_policy(with_zone):
    service = nlb(with_zone)
    annotations = service.inputs["metadata"]["annotations"]
    assert annotations[f"{NLB}ssl-cert"] == with_zone.one(CERTIFICATE).outputs["arn"]
    assert annotations[f"{NLB}ssl-ports"] == "443"
    assert annotations[f"{NLB}ssl-negotiation-policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert [(p["port"], p["targetPort"]) for p in service.inputs["spec"]["ports"]] == [
        (80, 10080),
        (443, 10443),
    ]
    # The stack waits for ACM to issue it before the NLB's listener asks for it.
    assert with_zone.depends_on(service, with_zone.one(VALIDATION))


def test_a_given_certificate_gets_the_same_policy_and_no_dns(with_certificate):
    annotations = nlb(with_certificate).inputs["metadata"]["annotations"]
    assert annotations[f"{NLB}ssl-cert"] == GIVEN_CERTIFICATE
    assert annotations[f"{NLB}ssl-negotiation-policy"] == edge.TLS_POLICY
    assert with_certificate.of_type(CERTIFICATE) == []
    assert with_certificate.of_type(RECORD) == []


def test_every_host_under_the_domain_is_an_alias_of_the_nlb(with_zone):
    record = with_zone.one(RECORD, "platform-dev-wildcard")
    assert (record.inputs["name"], record.inputs["type"]) == ("*.dev.example.com", "A")
    assert record.inputs["zoneId"] == "Z0OFFLINEEXAMPLE"
    (alias,) = record.inputs["aliases"]
    assert alias["name"] == with_zone.outputs["loadBalancerHostname"].value
    assert alias["zoneId"] == offline.NLB_HOSTED_ZONE_ID
    assert alias["evaluateTargetHealth"] is True
    # A second stack on the same domain fails here instead of taking this one's traffic.
    assert not record.inputs.get("allowOverwrite")
    assert with_zone.depends_on(record, nlb(with_zone))
    for host in with_zone.outputs["hostnames"].value:
        assert host.endswith(".dev.example.com") and host.count(".") == 3


def test_a_zone_stack_previews_before_anything_exists():
    recording = offline.run(ROOT, "dev", ZONE, preview=True)
    record = recording.one(RECORD, "platform-dev-wildcard")
    # The NLB's name is unknown, its alias zone is not: it comes from the provider's table.
    assert record.inputs["aliases"][0]["zoneId"] == offline.NLB_HOSTED_ZONE_ID
    assert recording.one(VALIDATION)


def test_the_dev_stack_has_no_tls_and_no_dns(dev):
    assert [r for r in dev.resources if r.type.startswith(("aws:acm/", "aws:route53/"))] == []
    assert f"{NLB}ssl-cert" not in nlb(dev).inputs["metadata"]["annotations"]
    assert [r.name for r in dev.of_type(HTTP_ROUTE) if r.name.endswith("redirect")] == []
    assert dev.of_type(TRAFFIC_POLICY) == []
    assert dev.outputs["urlScheme"].value == "http"


# --- Every URL carries the scheme ------------------------------------------------------------


@pytest.mark.parametrize("recording", ["with_zone", "with_certificate"])
def test_every_url_the_stack_gives_or_writes_says_https(request, recording):
    stack = request.getfixturevalue(recording)
    domain = "dev.example.com" if recording == "with_zone" else "dev.app-platform.test"
    outputs = {key: stack.outputs[key].value for key in ("argocdUrl", "grafanaUrl", "helloUrl")}
    assert outputs == {
        "argocdUrl": f"https://argocd.{domain}",
        "grafanaUrl": f"https://grafana.{domain}",
        "helloUrl": f"https://hello.{domain}",
    }
    assert stack.outputs["appUrls"].value == {"comments": f"https://comments.{domain}"}
    assert stack.outputs["urlScheme"].value == "https"
    argocd = stack.one("kubernetes:helm.sh/v3:Release", "platform-dev-argocd")
    assert argocd.inputs["values"]["configs"]["cm"]["url"] == f"https://argocd.{domain}"
    kps = stack.one("kubernetes:helm.sh/v3:Release", "platform-dev-kube-prometheus-stack")
    grafana = secrets.unwrap(kps.inputs["values"])["grafana"]
    assert grafana["env"]["GF_SERVER_ROOT_URL"] == f"https://grafana.{domain}"
    assert checks.unknown_values_keys("kube-prometheus-stack", {"grafana": grafana}) == []


def test_dev_urls_stay_http(dev):
    assert dev.outputs["argocdUrl"].value == "http://argocd.dev.app-platform.test"
    kps = dev.one("kubernetes:helm.sh/v3:Release", "platform-dev-kube-prometheus-stack")
    grafana = secrets.unwrap(kps.inputs["values"])["grafana"]
    assert grafana["env"]["GF_SERVER_ROOT_URL"] == "http://grafana.dev.app-platform.test"


# --- Port 80 only redirects ------------------------------------------------------------------


def namespace_labels(recording) -> dict[str, dict[str, str]]:
    """Namespace -> labels: the stack's own namespaces, and those Argo CD creates."""
    labels = {
        n.inputs["metadata"]["name"]: n.inputs["metadata"].get("labels") or {}
        for n in recording.of_type(NAMESPACE)
    }
    app_set = recording.one(APPLICATION_SET).inputs["spec"]["template"]["spec"]
    managed = app_set["syncPolicy"]["managedNamespaceMetadata"]["labels"]
    for directory in (ROOT / "gitops" / "apps").iterdir():
        labels.setdefault(directory.name, managed)
    return labels


def admits(listener, route_namespace, gateway_namespace, labels) -> bool:
    """Whether a listener's allowedRoutes take a route of this namespace (Gateway API v1)."""
    namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    origin = namespaces.get("from", "Same")
    if origin == "All":
        return True
    if origin == "Same":
        return route_namespace == gateway_namespace
    wanted = (namespaces.get("selector") or {}).get("matchLabels") or {}
    have = labels.get(route_namespace, {})
    return all(have.get(key) == value for key, value in wanted.items())


def attached_listeners(route, gateway, labels) -> set[str]:
    """The listeners of `gateway` a route (a manifest) attaches to."""
    name, namespace = gateway["metadata"]["name"], gateway["metadata"]["namespace"]
    route_namespace = route["metadata"]["namespace"]
    found = set()
    for ref in route["spec"]["parentRefs"]:
        if ref["name"] != name or ref.get("namespace", route_namespace) != namespace:
            continue
        for listener in gateway["spec"]["listeners"]:
            if ref.get("sectionName") not in (None, listener["name"]):
                continue
            if ref.get("port") not in (None, listener["port"]):
                continue
            if admits(listener, route_namespace, namespace, labels):
                found.add(listener["name"])
    return found


def every_route(recording) -> dict[str, dict]:
    """Every HTTPRoute the Gateway may see: the stack's, and hello-world's as Argo CD renders it
    (kustomize puts this stack's Gateway in its parentRefs)."""
    routes = {r.name: custom_resource(r) for r in recording.of_type(HTTP_ROUTE)}
    gateway = recording.one(GATEWAY).inputs["metadata"]
    hello = yaml.safe_load(HELLO_ROUTE.read_text())
    hello["metadata"]["namespace"] = "hello-world"
    hello["spec"]["parentRefs"][0].update(name=gateway["name"], namespace=gateway["namespace"])
    routes["gitops hello-world"] = hello
    return routes


def is_https_redirect(route) -> bool:
    rules = route["spec"]["rules"]
    return all(
        not rule.get("backendRefs")
        and [f["type"] for f in rule.get("filters", [])] == ["RequestRedirect"]
        and rule["filters"][0]["requestRedirect"]["scheme"] == "https"
        for rule in rules
    )


@pytest.mark.parametrize("recording", ["with_zone", "with_certificate"])
def test_every_route_is_reachable_on_port_80_only_through_the_redirect(request, recording):
    stack = request.getfixturevalue(recording)
    gateway = custom_resource(stack.one(GATEWAY))
    labels = namespace_labels(stack)
    ports = {listener["name"]: listener["port"] for listener in gateway["spec"]["listeners"]}
    assert ports == {"http": 80, "https": 443}
    attached = {
        name: attached_listeners(route, gateway, labels)
        for name, route in every_route(stack).items()
    }
    on_port_80 = [name for name, listeners in attached.items() if "http" in listeners]
    assert on_port_80 == ["platform-dev-https-redirect"]
    routes = every_route(stack)
    assert is_https_redirect(routes["platform-dev-https-redirect"])
    # The redirect answers every host, and every other route is served on 443.
    assert not routes["platform-dev-https-redirect"]["spec"].get("hostnames")
    assert {name for name, listeners in attached.items() if listeners == {"https"}} == (
        set(attached) - {"platform-dev-https-redirect"}
    )
    assert {"platform-dev-argocd-route", "platform-dev-grafana", "gitops hello-world"} <= set(
        attached
    )


def test_the_attachment_check_sees_a_route_on_port_80(with_zone):
    """A route in the Gateway's own namespace without sectionName would serve plain HTTP."""
    gateway = custom_resource(with_zone.one(GATEWAY))
    leak = {
        "metadata": {"namespace": gateway["metadata"]["namespace"]},
        "spec": {"parentRefs": [{"name": gateway["metadata"]["name"]}]},
    }
    assert attached_listeners(leak, gateway, namespace_labels(with_zone)) == {"http", "https"}


def test_redirect_and_hsts_match_their_crds_and_wait_for_the_gateway(with_zone):
    redirect = with_zone.one(HTTP_ROUTE, "platform-dev-https-redirect")
    hsts = with_zone.one(TRAFFIC_POLICY, "platform-dev-hsts")
    for resource in (redirect, hsts):
        assert checks.crd_errors(custom_resource(resource)) == []
        assert with_zone.depends_on(resource, with_zone.one(GATEWAY))
    (rule,) = redirect.inputs["spec"]["rules"]
    assert rule["filters"][0]["requestRedirect"] == {"scheme": "https", "statusCode": 301}
    spec = hsts.inputs["spec"]
    (target,) = spec["targetRefs"]
    gateway = with_zone.one(GATEWAY).inputs["metadata"]
    assert (target["kind"], target["name"], target["sectionName"]) == (
        "Gateway",
        gateway["name"],
        "https",
    )
    (header,) = spec["headers"]["lateResponseHeaders"]["set"]
    assert header["name"] == "Strict-Transport-Security"
    assert header["value"].startswith("max-age=31536000")


# --- Config ----------------------------------------------------------------------------------


def config_error(overrides) -> str:
    with pytest.raises(config.ConfigError) as raised:
        offline.run(ROOT, "dev", overrides)
    return str(raised.value)


def test_a_zone_is_found_by_id_too():
    recording = offline.run(ROOT, "dev", {**ZONE, "hostedZone": "Z0OFFLINEEXAMPLE"})
    assert recording.one(RECORD, "platform-dev-wildcard").inputs["zoneId"] == "Z0OFFLINEEXAMPLE"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"hostedZone": "example.org", "domain": "dev.example.com"},
            "config 'hostedZone' = \"example.org\" (zone example.org) does not match 'domain' = "
            '"dev.example.com"',
        ),
        (
            {"hostedZone": "example.com", "domain": "dev.app-platform.test"},
            "does not match 'domain' = \"dev.app-platform.test\"",
        ),
        (
            {**ZONE, "certificateArn": GIVEN_CERTIFICATE},
            "config 'hostedZone' = \"example.com\" and 'certificateArn' = ",
        ),
        (
            {**ZONE, "hostedZone": "Z9NOSUCHZONE"},
            "config 'hostedZone' = \"Z9NOSUCHZONE\" is not valid: expected a Route 53 hosted zone "
            "of this account, by id or name (Route 53 says: ",
        ),
    ],
)
def test_mixing_wrongly_is_refused_at_preview_naming_the_keys(overrides, expected):
    assert expected in config_error(overrides)


def test_a_private_zone_is_refused():
    private = {"hostedZone": "Z0OFFLINEPRIVATE", "domain": "dev.internal.example.net"}
    assert "a public hosted zone (internal.example.net is private" in config_error(private)


def test_every_problem_is_reported_at_once():
    message = config_error(
        {"hostedZone": "example.org", "domain": "dev.example.com", "certificateArn": "nope"}
    )
    assert "'certificateArn' = \"nope\" is not valid" in message
    assert "'hostedZone' = \"example.org\" and 'certificateArn'" in message
    assert "does not match 'domain'" in message


def test_the_edge_refuses_a_certificate_and_a_zone_from_code():
    def args(certificate_arn: str) -> edge.EdgeArgs:
        return edge.EdgeArgs(
            edge.EdgeOptions(domain="dev.example.com", certificate_arn=certificate_arn),
            cluster_name="c",
            region="us-east-1",
            vpc_id="v",
            oidc_provider_arn="a",
            oidc_issuer="i",
            provider=None,  # type: ignore[arg-type]
            hosted_zone_id="Z0OFFLINEEXAMPLE",
        )

    with pytest.raises(OptionsError, match="'hosted_zone_id' = \"Z0OFFLINEEXAMPLE\""):
        args(GIVEN_CERTIFICATE)
    assert args("").hosted_zone_id == "Z0OFFLINEEXAMPLE"


def test_argo_cd_apps_get_the_domain_and_nothing_else_to_change(with_zone):
    app_set = with_zone.one(APPLICATION_SET).inputs["spec"]
    patch = app_set["template"]["spec"]["source"]["kustomize"]["patches"][0]
    assert '"domain": "dev.example.com"' in patch["patch"]
    assert patch["target"]["name"] == gitops.PLATFORM_CONFIG_MAP


def test_an_app_stack_on_a_zone_platform_needs_nothing_more(with_zone):
    """The podinfo app stack, on the outputs of a platform stack with a hosted zone: its URL
    says https and its route lands on the https listener only, with no setting of its own."""
    platform = "organization/app-platform/dev"
    outputs = {k: o.value for k, o in with_zone.outputs.items()}
    app_stack = offline.run(ROOT, "podinfo", stack_references={platform: outputs})
    assert app_stack.outputs["appUrls"].value == {"podinfo": "https://podinfo.dev.example.com"}
    (route,) = app_stack.of_type(HTTP_ROUTE)
    (namespace,) = app_stack.of_type(NAMESPACE)
    labels = {namespace.inputs["metadata"]["name"]: namespace.inputs["metadata"]["labels"]}
    gateway = custom_resource(with_zone.one(GATEWAY))
    assert attached_listeners(custom_resource(route), gateway, labels) == {"https"}
