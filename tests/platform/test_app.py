"""The App component: what every app gets, built alone under mocks with hand-written arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import pytest

from app_platform.apps import App, AppArgs, AppSpec, DatabaseSpec
from app_platform.apps.workload import PRE_STOP_SLEEP_SECONDS
from app_platform.contract import PlatformContract
from app_platform.options import OptionsError
from app_platform.volumes import BlockStorage
from app_platform_tools import offline, render, secrets
from tests.manifests.test_schemas import schema_errors

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
SECRET = "kubernetes:core/v1:Secret"
RDS = "aws:rds/instance:Instance"

COMMENTS = {
    "name": "comments",
    "image": "ghcr.io/app-platform/comments:1.0.0",
    "port": 8000,
    "min_replicas": 2,
    "max_replicas": 6,
    "cpu": {"request": "250m", "limit": "1"},
    "memory": {"request": "256Mi", "limit": "512Mi"},
    "health_paths": {"startup": "/healthz", "readiness": "/readyz", "liveness": "/livez"},
    "env": {"WORKERS": "2"},
    "database": DatabaseSpec(
        backup_retention_days=7, deletion_protection=False, final_snapshot=False
    ),
    "dashboard": '{"title": "Comments"}',
    "metrics": {
        "requests": "comments_http_requests_total",
        "latency": "comments_http_request_duration_seconds",
    },
    "runbook_url": "https://example.test/RUNBOOK.md",
}
SPEC = AppSpec(**COMMENTS)


def spec_with(**changes: object) -> AppSpec:
    """The comments spec with some fields changed, validated again."""
    return AppSpec(**{**COMMENTS, **changes})


def build(
    spec: AppSpec = SPEC, config: offline.StackConfig | None = None, **platform: object
) -> offline.Recording:
    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        crds = pulumi.CustomResource("test:index:Crds", "crds", {})
        refs = {
            "provider": provider,
            "gateway_name": "platform",
            "gateway_namespace": "edge",
            "domain": "example.test",
            "proxy_namespace": "envoy-gateway-system",
            "monitoring_namespace": "monitoring",
            "crds_ready": [crds],
            "vpc_id": "vpc-1",
            "private_subnet_ids": ["subnet-a", "subnet-b"],
            "node_security_group_id": "sg-nodes",
            "route_namespace_labels": {"gateway-routes": "allowed"},
            **platform,
        }
        app = App("platform-dev-comments", AppArgs(spec, PlatformContract(**refs), "platform-dev"))
        pulumi.export("url", app.url)
        pulumi.export("namespace", app.namespace)

    return offline.run_function(program, config)


@pytest.fixture(scope="module")
def comments() -> offline.Recording:
    return build()


def pod_spec(recording: offline.Recording) -> dict:
    return recording.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]


def container(recording: offline.Recording) -> dict:
    (only,) = pod_spec(recording)["containers"]
    return only


def test_every_child_is_parented_to_the_app(comments):
    app = comments.one("app-platform:app:App")
    own = {r.urn for r in comments.descendants(app)}
    others = [r for r in comments.resources if r.urn not in own and r is not app]
    assert {r.type for r in others} == {"pulumi:providers:kubernetes", "test:index:Crds"}
    assert {r.type for r in comments.children(app)} >= {
        "kubernetes:core/v1:Namespace",
        DEPLOYMENT,
        "kubernetes:core/v1:Service",
        ROUTE,
        HPA,
        "kubernetes:policy/v1:PodDisruptionBudget",
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "app-platform:database:Database",
    }


def test_url_and_namespace_are_outputs(comments):
    assert comments.outputs["url"].value == "http://comments.example.test"
    assert comments.outputs["namespace"].value == "comments"
    https = build(url_scheme="https")
    assert https.outputs["url"].value == "https://comments.example.test"


def test_container_runs_unprivileged_on_a_read_only_root(comments):
    pod = pod_spec(comments)
    main = container(comments)
    security = main["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] >= 10000
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    tmp = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp and "emptyDir" in tmp[0]
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    namespace = comments.one("kubernetes:core/v1:Namespace").inputs["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"


def test_image_resources_and_env_come_from_the_spec(comments):
    main = container(comments)
    assert main["image"] == "ghcr.io/app-platform/comments:1.0.0"
    assert main["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env == {"PORT": "8000", "WORKERS": "2"}
    assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_probes_hit_the_health_paths(comments):
    main = container(comments)
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}


def test_pods_leave_the_gateway_before_they_stop(comments):
    main = container(comments)
    assert main["lifecycle"] == {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}}
    assert pod_spec(comments)["terminationGracePeriodSeconds"] > PRE_STOP_SLEEP_SECONDS
    strategy = comments.one(DEPLOYMENT).inputs["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_pods_spread_over_zones_and_nodes(comments):
    spread = pod_spec(comments)["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    assert all(
        c["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "comments"} for c in spread
    )


ARCH_AFFINITY = "requiredDuringSchedulingIgnoredDuringExecution"


def architectures_required(recording: offline.Recording) -> list[str] | None:
    affinity = pod_spec(recording).get("affinity", {}).get("nodeAffinity", {}).get(ARCH_AFFINITY)
    if affinity is None:
        return None
    ((requirement,),) = [term["matchExpressions"] for term in affinity["nodeSelectorTerms"]]
    assert (requirement["key"], requirement["operator"]) == ("kubernetes.io/arch", "In")
    return requirement["values"]


def test_a_pinned_image_runs_on_any_node_unless_its_architectures_are_named(comments):
    assert architectures_required(comments) is None
    amd64_only = build(spec_with(architectures=["amd64"], database=None))
    assert architectures_required(amd64_only) == ["amd64"]


def test_an_unknown_architecture_is_refused_naming_it():
    with pytest.raises(OptionsError, match=r"expected amd64 or arm64, not \['x86_64'\]"):
        spec_with(architectures=["x86_64"])


def test_a_built_image_runs_only_on_the_architectures_it_is_built_for():
    pinned = {key: value for key, value in COMMENTS.items() if key != "image"}
    spec = AppSpec(**{**pinned, "build": "apps/comments", "database": None})
    # An app stack reads no architectures from the platform: it builds amd64, and its pods
    # must then stay off arm64 nodes.
    assert architectures_required(build(spec)) == ["amd64"]
    both = build(spec, node_platforms=("linux/amd64", "linux/arm64"))
    assert architectures_required(both) == ["amd64", "arm64"]


def test_autoscaler_owns_the_replica_count(comments):
    hpa = comments.one(HPA).inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "comments",
    }
    assert "replicas" not in comments.one(DEPLOYMENT).inputs["spec"]


def test_fixed_replicas_need_no_autoscaler():
    fixed = build(spec_with(min_replicas=3, max_replicas=3, database=None))
    assert fixed.of_type(HPA) == []
    assert fixed.one(DEPLOYMENT).inputs["spec"]["replicas"] == 3


def test_namespace_carries_the_labels_the_gateway_accepts_routes_from(comments):
    labels = comments.one("kubernetes:core/v1:Namespace").inputs["metadata"]["labels"]
    assert labels["gateway-routes"] == "allowed"


def test_route_attaches_to_the_shared_gateway_at_the_app_host(comments):
    route = comments.one(ROUTE).inputs["spec"]
    assert route["parentRefs"] == [{"name": "platform", "namespace": "edge"}]
    assert route["hostnames"] == ["comments.example.test"]
    metrics_rule, app_rule = route["rules"]
    assert app_rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert app_rule["backendRefs"] == [{"name": "comments", "port": 8000}]
    # /metrics is for Prometheus only: the Gateway answers it with a 404 of its own.
    assert metrics_rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/metrics"}}]
    assert "backendRefs" not in metrics_rule
    (hide,) = metrics_rule["filters"]
    assert hide["extensionRef"]["kind"] == "HTTPRouteFilter"
    hide_filter = comments.one("kubernetes:gateway.envoyproxy.io/v1alpha1:HTTPRouteFilter")
    assert hide_filter.inputs["metadata"]["name"] == hide["extensionRef"]["name"]
    assert hide_filter.inputs["spec"]["directResponse"]["statusCode"] == 404
    service = comments.one("kubernetes:core/v1:Service").inputs["spec"]
    assert service["ports"][0]["port"] == 8000
    assert service["selector"] == {"app.kubernetes.io/name": "comments"}


def test_custom_resources_wait_for_their_crds(comments):
    crds = comments.one("test:index:Crds")
    for type_ in (
        ROUTE,
        "kubernetes:gateway.envoyproxy.io/v1alpha1:HTTPRouteFilter",
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    ):
        assert comments.depends_on(comments.one(type_), crds), type_


def test_only_gateway_proxies_and_prometheus_get_in(comments):
    policy = comments.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    namespaces = [p["namespaceSelector"]["matchLabels"] for p in rule["from"]]
    assert namespaces == [
        {"kubernetes.io/metadata.name": "envoy-gateway-system"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
    moved = build(proxy_namespace="gateways", monitoring_namespace="observability")
    rule = moved.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]["ingress"][0]
    assert [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]
    ] == [
        "gateways",
        "observability",
    ]


def test_prometheus_scrapes_metrics_through_the_service(comments):
    monitor = comments.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor").inputs
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    service_labels = comments.one("kubernetes:core/v1:Service").inputs["metadata"]["labels"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service_labels.items()
    labelled = build(monitor_labels={"release": "monitoring"})
    meta = labelled.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor").inputs["metadata"]
    assert meta["labels"]["release"] == "monitoring"


def test_a_drain_takes_one_pod_at_a_time(comments):
    pdb = comments.one("kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"] == {"app.kubernetes.io/name": "comments"}


def test_database_is_private_encrypted_and_backed_up(comments):
    db = comments.one(RDS).inputs
    assert db["engine"] == "postgres" and db["engineVersion"].startswith("17.")
    assert db["storageEncrypted"] is True
    assert db["publiclyAccessible"] is False
    assert db["backupRetentionPeriod"] == 7
    assert db["deletionProtection"] is False
    assert db["skipFinalSnapshot"] is True
    subnets = comments.one("aws:rds/subnetGroup:SubnetGroup").inputs
    assert subnets["subnetIds"] == ["subnet-a", "subnet-b"]
    (ingress,) = comments.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    rule = ingress.inputs
    assert rule["referencedSecurityGroupId"] == "sg-nodes"
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (5432, 5432, "tcp")
    assert "cidrIpv4" not in rule
    assert comments.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") == []


def test_database_log_exports_go_to_log_groups_the_stack_owns(comments):
    """RDS would make them itself, never expiring, and leave them after destroy."""
    db = comments.one(RDS)
    groups = comments.of_type("aws:cloudwatch/logGroup:LogGroup")
    identifier = db.inputs["identifier"]
    assert sorted(g.inputs["name"] for g in groups) == [
        f"/aws/rds/instance/{identifier}/{export}"
        for export in sorted(db.inputs["enabledCloudwatchLogsExports"])
    ]
    assert all(g.inputs["retentionInDays"] == 30 for g in groups)
    # Created before the instance, deleted after it (which writes to them until it stops).
    assert {g.urn for g in groups} <= set(db.dependencies)


def test_production_database_keeps_a_final_snapshot_and_resists_deletion():
    spec = spec_with(database=DatabaseSpec())
    recording = build(spec)
    db = recording.one(RDS).inputs
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False
    # Unique per database, so destroying a re-created stack does not collide with the old one.
    suffix = recording.one("random:index/randomId:RandomId").outputs["hex"]
    assert db["finalSnapshotIdentifier"] == f"platform-dev-comments-final-{suffix}"


def test_database_password_is_generated_url_safe_and_only_in_the_secret(comments):
    generated = comments.one("random:index/randomPassword:RandomPassword")
    assert set(generated.inputs.get("overrideSpecial", "")) <= set("-_.~")
    password = generated.outputs["result"]
    string_data = comments.one(SECRET).inputs["stringData"]
    assert secrets.SECRET_KEY in string_data, "the Secret's values must be Pulumi secrets"
    parts = urlsplit(secrets.unwrap(string_data)["DATABASE_URL"])
    assert parts.scheme == "postgresql" and parts.port == 5432 and parts.path == "/comments"
    assert parts.hostname == comments.one(RDS).outputs["address"]
    assert parts.username == "comments" and parts.password == password
    assert container(comments)["envFrom"] == [{"secretRef": {"name": "comments-env"}}]
    # Anywhere else the password appears, it is wrapped as a secret.
    for resource in comments.resources:
        if resource.type in (SECRET, RDS, "random:index/randomPassword:RandomPassword"):
            continue
        assert password not in json.dumps(resource.inputs), resource.type
    assert password not in json.dumps({k: o.value for k, o in comments.outputs.items()})


def test_without_database_or_secret_env_there_is_no_secret():
    plain = build(spec_with(database=None))
    assert plain.of_type(RDS) == [] and plain.of_type(SECRET) == []
    assert "envFrom" not in container(plain) or container(plain)["envFrom"] == []


def test_secret_env_goes_to_the_secret_not_the_deployment():
    # `pulumi config set --secret apiKey s3cr3t-value`; the spec names only the key.
    config = offline.StackConfig(
        project="test",
        values={"aws:region": "us-east-1", "test:apiKey": "s3cr3t-value"},
        secret_keys=["test:apiKey"],
    )
    spec = spec_with(database=None, secret_env={"API_KEY": "apiKey"})
    recording = build(spec, config)
    string_data = recording.one(SECRET).inputs["stringData"]
    assert secrets.SECRET_KEY in string_data
    assert secrets.unwrap(string_data) == {"API_KEY": "s3cr3t-value"}
    assert "s3cr3t-value" not in json.dumps(recording.one(DEPLOYMENT).inputs)


def test_database_needs_the_platform_network():
    with pytest.raises(Exception, match="must give the network"):
        build(vpc_id=None)


# --- The in-cluster database (database.inCluster) ---------------------------------------------

STORAGE = BlockStorage(
    storage_class_name="gp3", cluster_name="platform-dev", region="us-east-1", ready=[]
)
IN_CLUSTER = DatabaseSpec(in_cluster=True, storage_gib=5)
POSTGRES = "platform-dev-comments-postgres"


@pytest.fixture(scope="module")
def in_cluster() -> offline.Recording:
    return build(spec_with(database=IN_CLUSTER), block_storage=STORAGE)


def test_in_cluster_database_replaces_rds_with_a_pod_on_the_system_nodes(in_cluster):
    assert in_cluster.of_type(RDS) == []
    server = in_cluster.one(DEPLOYMENT, f"{POSTGRES}-server").inputs["spec"]
    assert server["replicas"] == 1 and server["strategy"] == {"type": "Recreate"}
    pod = server["template"]["spec"]
    assert pod["nodeSelector"] == {"node-pool": "system"}
    (postgres,) = pod["containers"]
    assert re.fullmatch(
        r"docker\.io/library/postgres:17\.[0-9]+-alpine@sha256:[0-9a-f]{64}", postgres["image"]
    )
    assert postgres["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    # Its volume is the stack's, deleted on destroy with a VolumeCleanup.
    claim = in_cluster.one("kubernetes:core/v1:PersistentVolumeClaim").inputs
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    cleanup = in_cluster.one("pulumi-python:dynamic/volumes:VolumeCleanup").inputs
    assert cleanup["claims"] == [claim["metadata"]["name"]] and cleanup["namespace"] == "comments"


def test_in_cluster_database_url_reaches_the_service_and_keeps_the_password_secret(in_cluster):
    password = in_cluster.one("random:index/randomPassword:RandomPassword").outputs["result"]
    env = in_cluster.one(SECRET, "platform-dev-comments-env").inputs["stringData"]
    parts = urlsplit(secrets.unwrap(env)["DATABASE_URL"])
    service = in_cluster.one("kubernetes:core/v1:Service", f"{POSTGRES}-service").inputs
    assert parts.hostname == f"{service['metadata']['name']}.comments.svc"
    assert (parts.port, parts.path, parts.query) == (5432, "/comments", "sslmode=disable")
    assert parts.password == password
    credentials = in_cluster.one(SECRET, f"{POSTGRES}-credentials").inputs["stringData"]
    assert secrets.SECRET_KEY in credentials
    for resource in in_cluster.resources:
        if resource.type not in (SECRET, "random:index/randomPassword:RandomPassword"):
            assert password not in json.dumps(resource.inputs), resource.name


def test_in_cluster_database_admits_only_the_apps_pods(in_cluster):
    policy = in_cluster.one(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{POSTGRES}-ingress"
    ).inputs["spec"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "comments"}}}
    ]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_in_cluster_database_needs_the_platforms_storage():
    with pytest.raises(Exception, match=r"apps.comments.database.inCluster needs the platform"):
        build(spec_with(database=IN_CLUSTER))


def test_rds_settings_are_refused_with_in_cluster():
    with pytest.raises(OptionsError) as raised:
        DatabaseSpec(in_cluster=True, multi_az=True, final_snapshot=False)
    assert str(raised.value).splitlines()[1:] == [
        "  - 'final_snapshot' = false is not valid: expected no value: an RDS setting, unused "
        "with in_cluster",
        "  - 'multi_az' = true is not valid: expected no value: an RDS setting, unused with "
        "in_cluster",
    ]
    with pytest.raises(OptionsError, match="'storage_gib' = 5 is not valid: expected at least 20"):
        DatabaseSpec(storage_gib=5)


def test_dashboard_is_provisioned_for_the_grafana_sidecar(comments):
    config_map = comments.one("kubernetes:core/v1:ConfigMap").inputs
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["comments.json"]) == {"title": "Comments"}
    no_dashboard = build(spec_with(dashboard=None))
    assert no_dashboard.of_type("kubernetes:core/v1:ConfigMap") == []


def test_alerts_cover_errors_latency_and_no_ready_replicas(comments):
    rule = comments.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "CommentsHighErrorRatio",
        "CommentsHighLatency",
        "CommentsNoReadyReplicas",
    }
    assert 'status=~"5.."' in alerts["CommentsHighErrorRatio"]["expr"]
    assert "> 0.05" in alerts["CommentsHighErrorRatio"]["expr"]
    assert "histogram_quantile(0.99" in alerts["CommentsHighLatency"]["expr"]
    assert "comments_http_request_duration_seconds_bucket" in alerts["CommentsHighLatency"]["expr"]
    for alert in alerts.values():
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"]
        assert notes["runbook_url"].startswith("https://example.test/RUNBOOK.md#")


def test_alert_thresholds_come_from_the_spec():
    alerts = {"error_ratio": 0.01, "p99_latency_seconds": 0.25}
    recording = build(spec_with(alerts=alerts))
    rules = recording.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs
    exprs = " ".join(r["expr"] for r in rules["spec"]["groups"][0]["rules"])
    assert "> 0.01" in exprs and "> 0.25" in exprs


def test_platform_refs_from_a_platform_stack():
    def program() -> None:
        refs = PlatformContract.from_stack_reference("platform", "organization/app-platform/dev")
        for key in (
            "gateway_name",
            "gateway_namespace",
            "domain",
            "monitoring_namespace",
            "vpc_id",
        ):
            pulumi.export(key, getattr(refs, key))

    recording = offline.run_function(program)
    outputs = {k: v.value for k, v in recording.outputs.items()}
    expected = offline.platform_stack_outputs("organization/app-platform/dev")
    assert outputs == {
        "gateway_name": expected["gatewayName"],
        "gateway_namespace": expected["gatewayNamespace"],
        "domain": expected["domain"],
        "monitoring_namespace": expected["monitoringNamespace"],
        "vpc_id": expected["vpcId"],
    }
    provider = recording.one("pulumi:providers:kubernetes").inputs
    assert secrets.SECRET_KEY in json.dumps(provider["kubeconfig"])


def test_comments_dashboard_shows_rate_errors_latency_replicas_and_db_connections():
    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "apps/comments/dashboards/comments.json").read_text())
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for needed in (
        "rate(comments_http_requests_total",
        'status=~"5.."',
        "histogram_quantile(0.99",
        "kube_deployment_status_replicas_ready",
        "comments_db_connections",
    ):
        assert needed in queries, needed


def test_an_app_built_by_the_stack_runs_its_image_by_digest():
    built = build(spec_with(image="", build="apps/comments"))
    app = built.one("app-platform:app:App")
    app_image = built.one("app-platform:image:AppImage")
    assert app_image.parent == app.urn
    repository = built.one("aws:ecr/repository:Repository")
    assert repository.inputs["name"] == "platform-dev-comments"
    digest = built.one("docker-build:index:Image").outputs["digest"]
    assert container(built)["image"] == f"{repository.outputs['repositoryUrl']}@{digest}"
    # The Deployment rolls out only once the image is pushed.
    assert built.depends_on(built.one(DEPLOYMENT), built.one("docker-build:index:Image"))


def test_an_app_named_by_image_builds_nothing(comments):
    assert comments.of_type("app-platform:image:AppImage") == []


@pytest.mark.parametrize(
    ("image", "build_dir"),
    [("", None), ("ghcr.io/app-platform/comments:1.0.0", "apps/comments")],
)
def test_an_app_needs_exactly_one_image_source(image, build_dir):
    with pytest.raises(OptionsError, match="expected exactly one of image"):
        spec_with(image=image, build=build_dir)


def test_container_user_command_and_args_come_from_the_spec():
    spec = spec_with(run_as_user=2000, command=["gunicorn"], args=["app:main", "-w", "2"])
    recording = build(spec)
    app = container(recording)
    assert (app["command"], app["args"]) == (["gunicorn"], ["app:main", "-w", "2"])
    assert app["securityContext"]["runAsUser"] == app["securityContext"]["runAsGroup"] == 2000
    pod = recording.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] == 2000


def test_without_command_the_image_entrypoint_runs(comments):
    assert "command" not in container(comments) and "args" not in container(comments)


def test_platform_env_fills_in_platform_values():
    spec = spec_with(platform_env={"PUBLIC_URL": "url", "PG_URL": "databaseUrl", "NS": "namespace"})
    recording = build(spec)
    env = {item["name"]: item.get("value") for item in container(recording)["env"]}
    assert env["PUBLIC_URL"] == "http://comments.example.test"
    assert env["NS"] == "comments" and env["PORT"] == "8000"
    # The database URL is a secret: it goes to the Secret under both names, never the env.
    assert "PG_URL" not in env and "DATABASE_URL" not in env
    secret = secrets.unwrap(recording.one(SECRET).inputs["stringData"])
    assert set(secret) == {"DATABASE_URL", "PG_URL"} and secret["PG_URL"] == secret["DATABASE_URL"]


def test_a_secret_env_key_missing_from_the_stack_config_is_named():
    spec = spec_with(database=None, secret_env={"API_KEY": "apiKey"})
    with pytest.raises(Exception, match="apiKey"):
        build(spec)


def test_every_new_container_field_is_valid_kubernetes():
    """command, args, runAsUser and platform values render to a Deployment the cluster's API
    accepts (strict: an unknown field is an error)."""
    spec = spec_with(
        run_as_user=2000,
        command=["gunicorn"],
        args=["app:main"],
        platform_env={"PUBLIC_URL": "url", "PG_URL": "databaseUrl"},
    )
    deployment = render.manifest(build(spec).one(DEPLOYMENT))
    assert schema_errors(deployment) == []


def test_a_missing_secret_stops_the_app_before_any_of_its_resources():
    recording = offline.Recording(project="test", stack="test")
    spec = spec_with(database=None, secret_env={"API_KEY": "apiKey"})

    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        refs = PlatformContract(
            provider=provider, gateway_name="g", gateway_namespace="e", domain="d"
        )
        App("platform-dev-comments", AppArgs(spec, refs, "platform-dev"))

    with pytest.raises(Exception, match="apiKey"):
        offline.run_function(program, recording=recording)
    assert [r.type for r in recording.resources] == ["pulumi:providers:kubernetes"]
