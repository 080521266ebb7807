"""The App's parts on their own, from hand-written specs: the environment it gets and the alerts
it raises (pure functions, no resources)."""

from __future__ import annotations

import pytest

from app_platform.apps import AppSpec, DatabaseSpec
from app_platform.apps.environment import environment
from app_platform.apps.monitoring import alert_rules

BASE = {
    "name": "orders",
    "image": "ghcr.io/acme/orders:2.0.1",
    "port": 8080,
    "replicas": 1,
    "cpu": {"request": "100m", "limit": "500m"},
    "memory": {"request": "128Mi", "limit": "256Mi"},
    "health_paths": {"startup": "/up", "readiness": "/ready", "liveness": "/up"},
}
VALUES = {
    "port": "8080",
    "databaseUrl": "postgresql://orders@db/orders",
    "hostname": "orders.example.test",
    "url": "https://orders.example.test",
    "namespace": "orders",
}


def spec(**changes: object) -> AppSpec:
    return AppSpec(**{**BASE, **changes})


def test_an_app_without_database_gets_only_its_own_variables():
    env = environment(spec(env={"MODE": "fast"}), {}, {**VALUES, "databaseUrl": None})
    assert dict(env.plain) == {"MODE": "fast"}
    assert dict(env.secret) == {}


def test_a_database_always_gives_database_url_as_a_secret():
    env = environment(spec(database=DatabaseSpec()), {}, VALUES)
    assert dict(env.secret) == {"DATABASE_URL": VALUES["databaseUrl"]}
    assert "DATABASE_URL" not in env.plain


def test_platform_values_go_plain_or_secret_by_what_they_are():
    app = spec(
        database=True,
        platform_env={"PUBLIC_URL": "url", "HOST": "hostname", "ORDERS_DB": "databaseUrl"},
    )
    env = environment(app, {"API_TOKEN": "token-output"}, VALUES)
    assert dict(env.plain) == {"PUBLIC_URL": VALUES["url"], "HOST": VALUES["hostname"]}
    assert dict(env.secret) == {
        "API_TOKEN": "token-output",
        "DATABASE_URL": VALUES["databaseUrl"],
        "ORDERS_DB": VALUES["databaseUrl"],
    }


def test_without_metric_names_only_the_no_ready_replicas_alert_remains():
    (rule,) = alert_rules("orders", spec(), namespace="orders")
    assert rule["alert"] == "OrdersNoReadyReplicas"
    assert 'deployment="orders"' in rule["expr"]
    assert "runbook_url" not in rule["annotations"]


@pytest.mark.parametrize(
    ("metrics", "alerts"),
    [
        ({"requests": "http_requests_total"}, ["OrdersHighErrorRatio", "OrdersNoReadyReplicas"]),
        ({"latency": "http_seconds"}, ["OrdersHighLatency", "OrdersNoReadyReplicas"]),
    ],
)
def test_each_named_metric_adds_its_alert(metrics, alerts):
    rules = alert_rules("orders", spec(metrics=metrics), namespace="orders")
    assert [rule["alert"] for rule in rules] == alerts


def test_alerts_use_the_status_label_thresholds_and_runbook_of_the_spec():
    app = spec(
        metrics={"requests": "reqs_total", "latency": "req_seconds", "status": "code"},
        alerts={"error_ratio": 0.02, "p99_latency_seconds": 0.5},
        runbook_url="https://wiki.example.test/orders",
    )
    errors, latency, _ = alert_rules("orders-api", app, namespace="orders-api")
    assert errors["alert"] == "OrdersApiHighErrorRatio"
    assert 'code=~"5.."' in errors["expr"] and errors["expr"].endswith("> 0.02")
    assert "req_seconds_bucket" in latency["expr"] and latency["expr"].endswith("> 0.5")
    assert latency["annotations"]["runbook_url"] == "https://wiki.example.test/orders#high-latency"
