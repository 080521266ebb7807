"""Observability: kube-prometheus-stack, Grafana's login, route and dashboards, edge monitoring."""

import json
import tomllib
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from app_platform import cluster, observability
from app_platform.options import OptionsError
from app_platform_tools import offline, secrets
from tests.upstream import checks

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
KPS = "kube-prometheus-stack"
PASSWORD = "correct-horse-battery-staple"


def custom_resource(resource):
    return {key: resource.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}


@pytest.fixture(scope="module")
def with_password():
    return offline.run(ROOT, "dev", {"grafanaAdminPassword": PASSWORD})


def kps(recording):
    return recording.one(RELEASE, "platform-dev-kube-prometheus-stack")


def test_kube_prometheus_stack_is_pinned_and_its_values_known(dev):
    release = kps(dev)
    assert (release.inputs["chart"], release.inputs["version"]) == (
        "kube-prometheus-stack",
        "88.5.3",
    )
    assert release.inputs["repositoryOpts"]["repo"].startswith("https://prometheus-community")
    assert checks.unknown_values_keys("kube-prometheus-stack", release.inputs["values"]) == []
    assert release.inputs["timeout"] >= 900


def test_prometheus_keeps_data_on_a_gp3_volume_sized_by_config(dev, run_stack):
    spec = kps(dev).inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == "10Gi"  # Pulumi.dev.yaml's
    assert spec["retentionSize"] == "8GiB"  # stops before the volume is full
    changed = kps(run_stack({"prometheusRetention": "30d", "prometheusVolumeSizeGib": 100}))
    spec = changed.inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"] == {
        "storage": "100Gi"
    }


def test_monitors_and_rules_of_every_namespace_are_picked_up(dev):
    spec = kps(dev).inputs["values"]["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False, kind


# Values paths of every stateful or controlling part of the stack; node-exporter is left out
# on purpose: it is a DaemonSet that belongs on every node.
SYSTEM_NODE_PARTS = (
    "prometheus.prometheusSpec",
    "alertmanager.alertmanagerSpec",
    "prometheusOperator",
    "prometheusOperator.admissionWebhooks.patch",
)


def at(values, path):
    for part in path.split("."):
        values = values[part]
    return values


def test_monitoring_runs_on_the_on_demand_system_nodes(dev):
    values = kps(dev).inputs["values"]
    for path in SYSTEM_NODE_PARTS:
        assert at(values, path)["nodeSelector"] == cluster.SYSTEM_NODE_SELECTOR, path
        assert at(values, path)["tolerations"] == cluster.SYSTEM_TOLERATIONS, path
        assert f"{path}.nodeSelector" in checks.chart_fixture(KPS)["keys"], path
    assert "nodeSelector" not in values.get("prometheus-node-exporter", {})
    # Stateless: on the workload nodes, with the apps.
    assert "nodeSelector" not in values["grafana"]
    assert "nodeSelector" not in values["kube-state-metrics"]
    assert values["alertmanager"]["enabled"] is True


# The control plane components an EKS cluster does not let Prometheus reach, as the default
# rules' job selectors name them.
EKS_HIDDEN_JOBS = {"kube-controller-manager", "kube-scheduler", ".*etcd.*", "kube-proxy"}


def test_nothing_eks_hides_is_scraped(dev):
    values = kps(dev).inputs["values"]
    scraped = checks.scraped_jobs(KPS, values)
    assert not scraped & EKS_HIDDEN_JOBS
    assert {"apiserver", "kubelet", "node-exporter", "kube-state-metrics"} <= scraped


def test_no_enabled_default_rule_waits_for_a_job_that_is_not_scraped(dev):
    values = kps(dev).inputs["values"]
    assert checks.rules_without_scrapes(KPS, values) == []
    enabled = checks.enabled_rule_files(KPS, values)
    assert not any(set(f["jobs"]) & EKS_HIDDEN_JOBS for f in enabled)
    assert any("node-exporter" in f["jobs"] for f in enabled)  # the rest still alerts


def test_rule_groups_about_hidden_components_are_switched_off_themselves(dev):
    """Not only through their component's switch, which not every rule file checks."""
    rules = at(kps(dev).inputs["values"], "defaultRules.rules")
    flags = {
        path.removeprefix("defaultRules.rules.")
        for f in checks.rules_fixture(KPS)["rule_files"]
        if set(f["jobs"]) & EKS_HIDDEN_JOBS
        for path in f["when"]
        if path.startswith("defaultRules.rules.")
    }
    assert flags and {flag: rules.get(flag) for flag in flags} == dict.fromkeys(flags, False)


def test_grafana_reads_configmaps_of_every_namespace_but_no_secrets(dev):
    """grafana 12.11.1 (FACTS.md 10): with any sidecar on, the chart's own ClusterRole grants
    get/list/watch on configmaps and secrets cluster-wide; it is replaced by ours."""
    grafana = kps(dev).inputs["values"]["grafana"]
    rbac = grafana["rbac"]
    assert not rbac.get("namespaced") and not rbac.get("extraClusterRoleRules")
    (role,) = dev.of_type(CLUSTER_ROLE)
    assert role.inputs["metadata"]["name"] == rbac["useExistingClusterRole"]
    granted = {
        (group, resource, verb)
        for rule in role.inputs["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {("", "configmaps", verb) for verb in ("get", "list", "watch")}
    enabled = {name: s for name, s in grafana["sidecar"].items() if s.get("enabled")}
    assert set(enabled) == {"dashboards", "datasources"}
    assert {s["resource"] for s in enabled.values()} == {"configmap"}  # never asks for Secrets
    assert dev.depends_on(kps(dev), role)


def test_ebs_csi_driver_and_gp3_class_come_before_prometheus(dev):
    addon = next(
        a
        for a in dev.of_type("aws:eks/addon:Addon")
        if a.inputs["addonName"] == "aws-ebs-csi-driver"
    )
    (association,) = addon.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    role = dev.one("aws:iam/role:Role", "platform-dev-ebs-csi")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    storage_class = dev.one("kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage_class.inputs["provisioner"] == "ebs.csi.aws.com"
    assert storage_class.inputs["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert storage_class.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert dev.depends_on(storage_class, addon)
    for group in dev.of_type("eks:index:ManagedNodeGroup"):
        assert dev.depends_on(addon, group)
    assert dev.depends_on(kps(dev), storage_class)


def test_generated_grafana_password_is_a_secret_output_not_a_helm_value(dev):
    assert dev.one("random:index/randomPassword:RandomPassword", "platform-dev-grafana-admin")
    output = dev.outputs["grafanaAdminPassword"]
    assert output.secret and output.value
    values = kps(dev).inputs["values"]
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert output.value not in json.dumps(values)
    # Previews show every kps and Grafana setting.
    assert secrets.SECRET_KEY not in json.dumps(values)
    secret = dev.one("kubernetes:core/v1:Secret", "platform-dev-grafana-admin")
    assert secrets.SECRET_KEY in json.dumps(secret.inputs["stringData"])
    assert dev.depends_on(kps(dev), secret)


def test_configured_grafana_password_is_used_and_stays_secret(with_password):
    passwords = with_password.of_type("random:index/randomPassword:RandomPassword")
    assert [r.name for r in passwords if "grafana" in r.name] == []
    output = with_password.outputs["grafanaAdminPassword"]
    assert output.secret and output.value == PASSWORD


def test_grafana_is_routed_but_prometheus_and_alertmanager_are_not(dev):
    routes = [
        r for r in dev.of_type(HTTP_ROUTE) if r.inputs["metadata"]["namespace"] == "monitoring"
    ]
    (route,) = routes
    assert checks.crd_errors(custom_resource(route)) == []
    spec = route.inputs["spec"]
    assert spec["hostnames"] == ["grafana.dev.app-platform.test"]
    assert spec["rules"][0]["backendRefs"] == [
        {"name": "kube-prometheus-stack-grafana", "port": 80}
    ]
    assert spec["parentRefs"] == [
        {"name": dev.outputs["gatewayName"].value, "namespace": "envoy-gateway-system"}
    ]
    assert dev.depends_on(route, dev.one(RELEASE, "platform-dev-envoy-gateway"))
    values = kps(dev).inputs["values"]
    for component in ("grafana", "prometheus", "alertmanager", "thanosRuler"):
        assert not {"route", "ingress"} & set(values.get(component, {})), component
    backends = [
        b["name"]
        for r in dev.of_type(HTTP_ROUTE)
        for rule in r.inputs["spec"]["rules"]
        for b in rule.get("backendRefs", [])
    ]
    assert not any("prometheus-prometheus" in b or "alertmanager" in b for b in backends)
    namespace = dev.one("kubernetes:core/v1:Namespace", "platform-dev-monitoring")
    assert namespace.inputs["metadata"]["labels"] == {"app-platform.io/gateway-routes": "allowed"}
    assert dev.outputs["grafanaUrl"].value == "http://grafana.dev.app-platform.test"


def test_dashboards_are_provisioned_from_the_repository_files(dev):
    maps = {r.inputs["metadata"]["name"]: r for r in dev.of_type(CONFIG_MAP)}
    for name in ("edge", "cluster"):
        config_map = maps[f"dashboard-{name}"]
        assert config_map.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
        path = ROOT / "platform/app_platform/dashboards" / f"{name}.json"
        assert config_map.inputs["data"] == {f"{name}.json": path.read_text()}
        assert json.loads(path.read_text())["panels"]


def test_edge_dashboard_reads_envoys_per_route_metrics():
    text = (ROOT / "platform/app_platform/dashboards/edge.json").read_text()
    dashboard = json.loads(text)
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for metric in (
        "envoy_cluster_upstream_rq_total",
        "envoy_cluster_upstream_rq_xx",
        "envoy_cluster_upstream_rq_time_bucket",
    ):
        assert any(metric in e for e in expressions), metric
    assert any('envoy_response_code_class="5"' in e for e in expressions)
    assert any('envoy_response_code_class="4"' in e for e in expressions)
    assert sum("histogram_quantile(0.99" in e for e in expressions) == 1
    # Envoy Gateway names each route rule's upstream cluster httproute/<ns>/<name>/rule/<n>.
    assert all("httproute/" in e for e in expressions if "envoy_cluster_" in e)


def test_dashboards_ship_with_the_package():
    project = tomllib.loads((ROOT / "platform/pyproject.toml").read_text())
    assert "dashboards/*.json" in project["tool"]["setuptools"]["package-data"]["app_platform"]


def test_proxies_are_scraped_and_alerted_on(dev):
    monitor = dev.one(POD_MONITOR)
    rule = dev.one(PROMETHEUS_RULE, "platform-dev-edge-alerts")
    for resource in (monitor, rule):
        assert checks.crd_errors(custom_resource(resource)) == []
        assert dev.depends_on(resource, kps(dev))
    spec = monitor.inputs["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["envoy-gateway-system"]}
    assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == "proxy"
    assert spec["podMetricsEndpoints"] == [{"port": "metrics", "path": "/stats/prometheus"}]
    alerts = [r["alert"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]]
    assert alerts == ["RouteServerErrors", "EdgeProxiesDown"]


def test_apps_can_provision_their_own_dashboard(tmp_path):
    path = tmp_path / "comments.json"
    path.write_text(json.dumps({"title": "Comments", "panels": []}))

    def program():
        provider = k8s.Provider("platform-test-k8s", kubeconfig="{}")
        observability.dashboard_config_map(
            "platform-test-dashboard",
            path,
            namespace="comments",
            label={observability.DASHBOARD_LABEL: observability.DASHBOARD_LABEL_VALUE},
            opts=pulumi.ResourceOptions(provider=provider),
        )

    recording = offline.run_function(program)
    config_map = recording.one(CONFIG_MAP)
    assert config_map.inputs["metadata"] == {
        "name": "dashboard-comments",
        "namespace": "comments",
        "labels": {"grafana_dashboard": "1"},
    }
    assert json.loads(config_map.inputs["data"]["comments.json"])["title"] == "Comments"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"prometheusRetention": "2 weeks"}, "'prometheusRetention' = \"2 weeks\" is not valid"),
        ({"prometheusRetention": "0d"}, "a duration in hours, days, weeks or years"),
        ({"prometheusVolumeSizeGib": "5"}, "a whole number from 10 to 1000"),
        ({"grafanaAdminPassword": "short"}, "'grafanaAdminPassword' = [secret] is not valid"),
    ],
)
def test_observability_config_mistakes_are_refused(config_error, changes, expected):
    message = config_error(**changes)
    assert expected in message
    assert "short" not in message.replace("'prometheusRetention'", "")  # never echo a password


def test_options_default_to_fifteen_days_on_fifty_gib():
    options = observability.ObservabilityOptions()
    assert (options.retention, options.volume_size_gib) == ("15d", 50)
    assert options.grafana_admin_password is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"retention": "15 days"}, "'retention' = \"15 days\" is not valid: expected a duration"),
        ({"volume_size_gib": 5}, "'volume_size_gib' = 5 is not valid: expected a whole number"),
        ({"grafana_admin_password": "short"}, "'grafana_admin_password' = [secret] is not valid"),
    ],
)
def test_options_built_in_code_refuse_what_config_refuses(given, expected):
    with pytest.raises(OptionsError) as raised:
        observability.ObservabilityOptions(**given)
    assert expected in str(raised.value)
    assert "short" not in str(raised.value)
