"""The platform add-ons as a whole: pins and values against upstream, custom resources against
their CRDs, install order, first-deployment preview, URLs and the hosts line. Create and destroy
order as a whole: tests/test_lifecycle.py."""

import itertools
from pathlib import Path

from app_platform import charts
from app_platform_tools import offline, secrets
from tests.upstream import checks

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "kubernetes:helm.sh/v3:Release"
# Which release installs the CRDs of each API group.
CRD_SOURCES = {
    "gateway.networking.k8s.io": "platform-dev-envoy-gateway",
    "gateway.envoyproxy.io": "platform-dev-envoy-gateway",
    "monitoring.coreos.com": "platform-dev-kube-prometheus-stack",
    "argoproj.io": "platform-dev-argocd",
    "karpenter.sh": "platform-dev-karpenter-crd",
    "karpenter.k8s.aws": "platform-dev-karpenter-crd",
}


def custom_resources(recording):
    """Resources of a custom (CRD-defined) kind: kubernetes:<group>/<version>:<Kind>."""
    for resource in recording.resources:
        if resource.type.startswith("kubernetes:") and resource.custom:
            group = resource.type.split(":")[1].rsplit("/", 1)[0]
            if group in CRD_SOURCES:
                yield group, resource


def test_pinned_versions_are_the_ones_checked_upstream():
    assert {pin.name: pin.version for pin in charts.ALL} == checks.pinned_chart_versions()


def test_every_release_is_a_pinned_chart_with_known_values_and_a_timeout(
    dev, dev_cluster_autoscaler
):
    # Karpenter's charts by default, the Cluster Autoscaler's with nodeProvisioner
    # clusterAutoscaler: between them, every pinned chart.
    releases = [*dev.of_type(RELEASE), *dev_cluster_autoscaler.of_type(RELEASE)]
    pins = {pin.chart: pin for pin in charts.ALL}
    assert {r.inputs["chart"] for r in releases} >= set(pins)
    for release in releases:
        pin = pins.get(release.inputs["chart"])
        if pin is None:  # a release of an app, not of the platform
            continue
        assert release.inputs["version"] == pin.version, release.name
        assert (
            checks.unknown_values_keys(pin.name, secrets.unwrap(release.inputs["values"])) == []
        ), release.name
        assert release.inputs["timeout"] >= charts.DEFAULT_TIMEOUT_SECONDS, release.name


def test_every_custom_resource_matches_its_crd(dev):
    found = list(custom_resources(dev))
    assert {group for group, _ in found} == set(CRD_SOURCES)
    for _, resource in found:
        obj = {key: resource.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}
        assert checks.crd_errors(obj) == [], resource.name


def test_platform_charts_install_in_order(dev):
    def release(name):
        return dev.one(RELEASE, f"platform-dev-{name}")

    order = ["load-balancer-controller", "envoy-gateway", "kube-prometheus-stack", "argocd"]
    for earlier, later in itertools.pairwise(order):
        assert dev.depends_on(release(later), release(earlier)), (later, earlier)
    storage = dev.one("kubernetes:storage.k8s.io/v1:StorageClass")
    assert dev.depends_on(release("kube-prometheus-stack"), storage)


def test_first_deployment_previews_with_everything_unknown(dev):
    preview = offline.run(ROOT, "dev", preview=True)
    assert sorted(r.urn for r in preview.resources) == sorted(r.urn for r in dev.resources)
    for name in ("loadBalancerHostname", "kubeconfig", "oidcProviderArn"):
        assert preview.outputs[name].known is False, name
    assert preview.outputs["argocdUrl"].value == "http://argocd.dev.app-platform.test"


def test_stack_outputs_give_urls_hosts_and_secret_passwords(dev):
    outputs = dev.outputs
    domain = "dev.app-platform.test"
    assert outputs["argocdUrl"].value == f"http://argocd.{domain}"
    assert outputs["grafanaUrl"].value == f"http://grafana.{domain}"
    assert outputs["helloUrl"].value == f"http://hello.{domain}"
    assert outputs["appUrls"].value["comments"] == f"http://comments.{domain}"
    assert {f"{h}.{domain}" for h in ("argocd", "grafana", "hello", "comments")} <= set(
        outputs["hostnames"].value
    )
    line = outputs["hostsLine"].value
    assert outputs["loadBalancerHostname"].value in line
    assert line.endswith(" ".join(outputs["hostnames"].value))
    for name in ("argocdAdminPassword", "grafanaAdminPassword"):
        assert outputs[name].secret and outputs[name].value, name
