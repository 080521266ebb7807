"""Edge: the Load Balancer Controller, Envoy Gateway, the shared Gateway and its NLB."""

import json
from pathlib import Path

import pytest

from app_platform import charts, edge
from app_platform.options import OptionsError
from app_platform_tools import offline
from tests.upstream import checks

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE = "kubernetes:core/v1:Service"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
GATEWAY_CLASS = "kubernetes:gateway.networking.k8s.io/v1:GatewayClass"
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f9d4a5e-3b6c-4d7e-8f90-a1b2c3d4e5f6"


def custom_resource(resource):
    return {key: resource.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def with_certificate():
    return offline.run(ROOT, "dev", {"certificateArn": CERTIFICATE})


def test_load_balancer_controller_is_pinned_configured_and_on_system_nodes(dev):
    release = dev.one(RELEASE, "platform-dev-load-balancer-controller")
    pin = charts.AWS_LOAD_BALANCER_CONTROLLER
    assert (release.inputs["chart"], release.inputs["version"]) == (pin.name, "3.5.0")
    assert release.inputs["repositoryOpts"]["repo"] == "https://aws.github.io/eks-charts"
    values = release.inputs["values"]
    assert checks.unknown_values_keys(pin.name, values) == []
    # Pods cannot reach IMDS (hop limit 1): region and VPC must be given.
    assert values["region"] == "us-east-1"
    assert values["vpcId"] == dev.outputs["vpcId"].value
    assert values["clusterName"] == "platform-dev"
    assert values["nodeSelector"] == {"node-pool": "system"}
    assert values["tolerations"][0]["key"] == "node-pool"
    assert values["enableServiceMutatorWebhook"] is False


def test_load_balancer_controller_role_is_only_for_its_service_account(dev):
    role = dev.one("aws:iam/role:Role", "platform-dev-load-balancer-controller")
    release = dev.one(RELEASE, "platform-dev-load-balancer-controller")
    annotations = release.inputs["values"]["serviceAccount"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].endswith(role.name)
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == dev.outputs["oidcProviderArn"].value
    subjects = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == ["system:serviceaccount:kube-system:aws-load-balancer-controller"]


def test_load_balancer_controller_policy_is_the_documented_one(dev):
    policy = json.loads(
        dev.one("aws:iam/rolePolicy:RolePolicy", "platform-dev-load-balancer-controller").inputs[
            "policy"
        ]
    )
    statements = policy["Statement"]
    assert len(statements) == 16
    actions = {a for s in statements for a in s["Action"]}
    assert {"elasticloadbalancing:CreateLoadBalancer", "ec2:CreateSecurityGroup"} <= actions
    # Whatever deletes or changes a load balancer is limited to the controller's own (tagged).
    for statement in statements:
        if "elasticloadbalancing:DeleteLoadBalancer" in statement["Action"]:
            assert statement["Condition"] == {
                "Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}
            }
    assert len(json.dumps(policy, separators=(",", ":"))) < 10_240  # inline policy limit


def test_envoy_gateway_is_the_pinned_oci_chart_on_workload_nodes(dev):
    release = dev.one(RELEASE, "platform-dev-envoy-gateway")
    assert release.inputs["chart"] == "oci://docker.io/envoyproxy/gateway-helm"
    assert release.inputs["version"] == "v1.9.0"
    assert "repositoryOpts" not in release.inputs
    values = release.inputs["values"]
    assert checks.unknown_values_keys("gateway-helm", values) == []
    assert "pod" not in values["deployment"] and "certgen" not in values


@pytest.mark.parametrize("kind", [ENVOY_PROXY, GATEWAY_CLASS, GATEWAY])
def test_custom_resources_match_their_crds_and_wait_for_them(dev, kind):
    resource = dev.one(kind)
    assert checks.crd_errors(custom_resource(resource)) == []
    assert dev.depends_on(resource, dev.one(RELEASE, "platform-dev-envoy-gateway"))


def test_gateway_class_uses_the_envoy_proxy_settings(dev):
    gateway_class = dev.one(GATEWAY_CLASS)
    proxy = dev.one(ENVOY_PROXY)
    ref = gateway_class.inputs["spec"]["parametersRef"]
    assert (ref["kind"], ref["name"], ref["namespace"]) == (
        "EnvoyProxy",
        proxy.inputs["metadata"]["name"],
        proxy.inputs["metadata"]["namespace"],
    )
    assert dev.depends_on(gateway_class, proxy)
    kubernetes = proxy.inputs["spec"]["provider"]["kubernetes"]
    # The proxies' own Service must not make a second load balancer.
    assert kubernetes["envoyService"]["type"] == "ClusterIP"
    assert kubernetes["envoyPDB"]["minAvailable"] >= 1
    assert kubernetes["envoyDeployment"]["replicas"] > kubernetes["envoyPDB"]["minAvailable"]
    resources = kubernetes["envoyDeployment"]["container"]["resources"]
    assert resources["requests"]["cpu"] and resources["limits"]["memory"]


def test_gateway_serves_http_to_routes_of_labelled_namespaces(dev):
    spec = dev.one(GATEWAY).inputs["spec"]
    assert [(listener["name"], listener["port"]) for listener in spec["listeners"]] == [
        ("http", 80)
    ]
    namespaces = spec["listeners"][0]["allowedRoutes"]["namespaces"]
    assert namespaces == {
        "from": "Selector",
        "selector": {"matchLabels": {edge.ROUTES_LABEL: edge.ROUTES_LABEL_VALUE}},
    }


def test_load_balancer_is_an_internet_facing_nlb_on_the_gateways_proxies(dev):
    service = dev.one(SERVICE, "platform-dev-load-balancer")
    annotations = service.inputs["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert annotations[f"{prefix}type"] == "external"
    assert annotations[f"{prefix}scheme"] == "internet-facing"
    assert annotations[f"{prefix}nlb-target-type"] == "ip"
    spec = service.inputs["spec"]
    assert spec["type"] == "LoadBalancer"
    gateway = dev.one(GATEWAY).inputs["metadata"]
    assert spec["selector"] == {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/managed-by": "envoy-gateway",
        "gateway.envoyproxy.io/owning-gateway-name": gateway["name"],
        "gateway.envoyproxy.io/owning-gateway-namespace": gateway["namespace"],
    }
    # Envoy Gateway listens on listener port + 10000 for ports below 1024.
    assert [(p["port"], p["targetPort"]) for p in spec["ports"]] == [(80, 10080)]


def test_nlb_waits_for_the_controller_and_goes_before_it(dev):
    service = dev.one(SERVICE, "platform-dev-load-balancer")
    controller = dev.one(RELEASE, "platform-dev-load-balancer-controller")
    assert dev.depends_on(service, controller)
    assert dev.depends_on(service, dev.one(GATEWAY))
    # Envoy Gateway (and every Service it makes) also goes before the controller on destroy.
    assert dev.depends_on(dev.one(RELEASE, "platform-dev-envoy-gateway"), controller)
    assert dev.depends_on(
        controller,
        dev.one("aws:iam/rolePolicy:RolePolicy", "platform-dev-load-balancer-controller"),
    )
    for group in dev.of_type("eks:index:ManagedNodeGroup"):
        assert dev.depends_on(controller, group)


def test_certificate_adds_tls_on_443_at_the_nlb(with_certificate):
    service = with_certificate.one(SERVICE, "platform-dev-load-balancer")
    annotations = service.inputs["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    assert annotations[f"{prefix}ssl-cert"] == CERTIFICATE
    assert annotations[f"{prefix}ssl-ports"] == "443"
    assert [(p["port"], p["targetPort"]) for p in service.inputs["spec"]["ports"]] == [
        (80, 10080),
        (443, 10443),
    ]
    gateway = with_certificate.one(GATEWAY)
    assert [listener["port"] for listener in gateway.inputs["spec"]["listeners"]] == [80, 443]
    assert checks.crd_errors(custom_resource(gateway)) == []


def test_outputs_name_the_gateway_and_the_load_balancer(dev):
    assert dev.outputs["gatewayName"].value == dev.one(GATEWAY).inputs["metadata"]["name"]
    assert dev.outputs["gatewayNamespace"].value == "envoy-gateway-system"
    assert dev.outputs["loadBalancerHostname"].value.endswith(".elb.us-east-1.amazonaws.com")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"domain": "Dev.Example"},
            "'domain' = \"Dev.Example\" is not valid: expected a lowercase",
        ),
        ({"domain": "localhost"}, "'domain' = \"localhost\" is not valid"),
        ({"certificateArn": "arn:aws:iam::1:x"}, "'certificateArn' = \"arn:aws:iam::1:x\""),
        (
            {"certificateArn": CERTIFICATE.replace("us-east-1", "eu-west-1")},
            "expected a certificate in the stack's region us-east-1",
        ),
    ],
)
def test_edge_config_mistakes_are_refused(config_error, changes, expected):
    assert expected in config_error(**changes)


def test_nlb_balances_across_zones_and_gates_proxy_readiness_on_its_health(dev):
    services = [
        s
        for s in dev.of_type("kubernetes:core/v1:Service")
        if s.inputs["spec"].get("type") == "LoadBalancer"
    ]
    (nlb,) = services
    annotations = nlb.inputs["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-attributes"] == (
        "load_balancing.cross_zone.enabled=true"
    )
    namespace = next(
        n
        for n in dev.of_type("kubernetes:core/v1:Namespace")
        if n.inputs["metadata"]["name"] == "envoy-gateway-system"
    )
    assert (
        namespace.inputs["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"]
        == "enabled"
    )


def test_options_default_to_http_on_the_test_domain():
    assert edge.EdgeOptions() == edge.EdgeOptions(domain="app-platform.test", certificate_arn="")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"domain": "Dev.Example"},
            "'domain' = \"Dev.Example\" is not valid: expected a lowercase",
        ),
        ({"certificate_arn": "arn:aws:iam::1:x"}, "expected an ACM certificate ARN, or empty"),
    ],
)
def test_options_built_in_code_refuse_what_config_refuses(given, expected):
    with pytest.raises(OptionsError) as raised:
        edge.EdgeOptions(**given)
    assert expected in str(raised.value)


def test_args_refuse_a_certificate_of_another_region():
    options = edge.EdgeOptions(certificate_arn=CERTIFICATE.replace("us-east-1", "eu-west-1"))
    with pytest.raises(OptionsError, match="expected a certificate in the stack's region us-east"):
        edge.EdgeArgs(
            options,
            cluster_name="demo",
            region="us-east-1",
            vpc_id="vpc-1",
            oidc_provider_arn="arn",
            oidc_issuer="issuer",
            provider=None,
        )
