"""AppSpec from code: the same rules as the stack config's `apps` map, naming fields instead of
config keys, every problem at once."""

from __future__ import annotations

import pulumi
import pytest

from app_platform.apps import AppSpec, DatabaseSpec
from app_platform.apps.spec import APP_KEYS, DEFAULT_RUN_AS_USER
from app_platform.options import OptionsError
from app_platform_tools import offline

HELLO = {
    "name": "hello",
    "image": "ghcr.io/stefanprodan/podinfo:6.7.1",
    "port": 9898,
    "replicas": 2,
    "cpu": {"request": "50m", "limit": "200m"},
    "memory": {"request": "64Mi", "limit": "128Mi"},
    "health_paths": {"startup": "/healthz", "readiness": "/readyz", "liveness": "/healthz"},
}


def hello(**changes: object) -> AppSpec:
    return AppSpec(**{**HELLO, **changes})


def problems_of(**changes: object) -> list[str]:
    with pytest.raises(OptionsError) as raised:
        hello(**changes)
    return [str(problem) for problem in raised.value.problems]


def test_a_fixed_replica_count_is_min_and_max():
    spec = hello()
    assert (spec.min_replicas, spec.max_replicas, spec.autoscaled) == (2, 2, False)
    assert spec.run_as_user == DEFAULT_RUN_AS_USER
    assert spec.command is None and spec.args is None and spec.database is None


def test_code_gets_the_image_pinning_rules():
    assert problems_of(image="ghcr.io/acme/hello:latest") == [
        "'image' = \"ghcr.io/acme/hello:latest\" is not valid: expected an image pinned to a "
        "release tag or digest, not the moving tag 'latest'"
    ]
    assert "expected an image pinned by tag or digest" in problems_of(image="ghcr.io/acme/x")[0]


def test_code_needs_exactly_one_image_source():
    (problem,) = problems_of(image="", build=None)
    assert problem.startswith("'options' = {} is not valid: expected exactly one of image")
    (both,) = problems_of(build="apps/comments")
    assert '"build": "apps/comments"' in both


def test_every_problem_is_named_by_field_at_once():
    found = problems_of(
        name="kube-hello",
        port=80,
        replicas=None,
        min_replicas=4,
        max_replicas=60,
        cpu={"request": "2", "limit": "500m"},
        env={"PORT": "1"},
        runbook_url="http://wiki",
        run_as_user=0,
    )
    wheres = [problem.split("'")[1] for problem in found]
    assert wheres == ["name", "port", "max_replicas", "cpu", "env", "runbook_url", "run_as_user"]


def test_replica_bounds_are_checked_across_fields():
    (problem,) = problems_of(replicas=None, min_replicas=5, max_replicas=3)
    assert problem == "'max_replicas' = 3 is not valid: expected at least min_replicas (5)"
    assert "not both" in problems_of(min_replicas=1)[0]


def test_database_rules_hold_in_code():
    expected = "'max_storage_gib' = 30 is not valid: expected at least storage_gib"
    with pytest.raises(OptionsError, match=expected):
        DatabaseSpec(storage_gib=40, max_storage_gib=30)
    assert hello(database=True).database == DatabaseSpec()


def test_secret_env_takes_config_keys_or_outputs_never_a_bare_value():
    assert hello(secret_env={"API_TOKEN": "helloApiToken"}).secret_env == {
        "API_TOKEN": "helloApiToken"
    }
    (problem,) = problems_of(secret_env={"API_TOKEN": "hunter2 with spaces"})
    assert "expected a map of variable names to keys of secret stack config values" in problem
    (reserved,) = problems_of(secret_env={"DATABASE_URL": "url"})
    assert "other than PORT, DATABASE_URL" in reserved


def test_secret_env_accepts_outputs_in_code():
    seen = []

    def program() -> None:
        spec = hello(secret_env={"API_TOKEN": pulumi.Output.secret("x")})
        seen.append(spec.secret_env["API_TOKEN"])

    offline.run_function(program)
    assert isinstance(seen[0], pulumi.Output)


def test_platform_env_names_only_platform_values():
    assert hello(platform_env={"PUBLIC_URL": "url"}).platform_env == {"PUBLIC_URL": "url"}
    (problem,) = problems_of(platform_env={"PUBLIC_URL": "website"})
    assert "expected a map of variable names to platform values: port, databaseUrl" in problem
    (no_db,) = problems_of(platform_env={"PG": "databaseUrl"})
    assert no_db.endswith("expected databaseUrl only with a database")
    (twice,) = problems_of(env={"URL": "x"}, platform_env={"URL": "url"})
    assert "(in more than one: ['URL'])" in twice


def test_command_and_args_are_lists_of_strings():
    spec = hello(command=["gunicorn"], args=["app:main", "--workers", "2"])
    assert spec.command == ("gunicorn",) and spec.args == ("app:main", "--workers", "2")
    assert "expected a list of strings" in problems_of(args="--workers 2")[0]


def test_dashboard_in_code_is_json_text():
    assert hello(dashboard='{"title": "Hello"}').dashboard == '{"title": "Hello"}'
    assert problems_of(dashboard="dashboards/hello.json") == [
        "'dashboard' = \"dashboards/hello.json\" is not valid: expected Grafana dashboard JSON"
    ]


def test_nested_objects_refuse_unknown_keys():
    (problem,) = problems_of(health_paths={**HELLO["health_paths"], "ready": "/r"})
    assert problem.startswith("'health_paths' = ")
    assert "expected only the keys startup, readiness, liveness (unknown: ['ready'])" in problem


def test_app_keys_are_the_config_keys_of_every_field():
    assert "name" not in APP_KEYS
    assert {"secretEnv", "platformEnv", "runAsUser", "command", "args"} <= set(APP_KEYS)
    assert len(APP_KEYS) == len(AppSpec.model_fields) - 1
