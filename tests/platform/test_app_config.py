"""The `apps` config map and app stacks: adding an app is a config entry, and every mistake in
one stops the program with the key path, the value and what is accepted."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from app_platform import config, preflight
from app_platform.apps.spec import APP_KEYS
from app_platform.database import DatabaseSpec
from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
# Docker running, a checkout with an origin.
ENVIRONMENT = preflight.Environment(
    git_origin=preflight.GitOrigin("https://github.com/example/app-platform.git")
)


def dev_raw() -> dict[str, str]:
    values = offline.load_stack_config(ROOT, "dev").values
    return {key.split(":", 1)[1]: v for key, v in values.items() if key.startswith("app-platform:")}


def dev_apps() -> dict:
    return json.loads(dev_raw()["apps"])


def parse_apps(apps: object, environment: preflight.Environment = ENVIRONMENT) -> tuple:
    raw = dev_raw()
    raw["apps"] = apps if isinstance(apps, str) else json.dumps(apps)
    return config.parse(
        raw, stack="dev", region="us-east-1", zones=ZONES, base_dir=ROOT, environment=environment
    ).apps


def comments(**changes: object) -> dict:
    """The dev stack's comments app with some settings changed (None removes one)."""
    app = copy.deepcopy(dev_apps()["comments"])
    for key, value in changes.items():
        if value is None:
            app.pop(key, None)
        else:
            app[key] = value
    return {"comments": app}


def published(image: str, **changes: object) -> dict:
    """The comments app running a published image instead of building one."""
    return comments(build=None, image=image, **changes)


def error_of(apps: object, environment: preflight.Environment = ENVIRONMENT) -> str:
    with pytest.raises(config.ConfigError) as raised:
        parse_apps(apps, environment)
    return str(raised.value)


def test_dev_stack_runs_the_comments_api_on_postgres_autoscaled_2_to_6():
    (app,) = parse_apps(dev_apps())
    assert app.name == "comments"
    # Built from source by the stack: nothing needs publishing before the first `up`.
    assert (app.build, app.image) == ("apps/comments", "")
    assert (app.min_replicas, app.max_replicas) == (2, 6)
    assert app.port == 8000
    assert app.health_paths.readiness == "/readyz" and app.health_paths.liveness == "/healthz"
    assert app.database is not None and app.database.backup_retention_days >= 1
    assert json.loads(app.dashboard)["title"] == "Comments API"
    assert app.metrics.requests == "comments_http_requests_total"


def test_no_apps_is_a_valid_platform_stack():
    assert parse_apps({}) == ()


def test_a_second_app_is_only_a_config_entry():
    hello = {
        "image": "ghcr.io/stefanprodan/podinfo:6.7.1",
        "port": 9898,
        "replicas": 2,
        "cpu": {"request": "50m", "limit": "200m"},
        "memory": {"request": "64Mi", "limit": "128Mi"},
        "healthPaths": {"startup": "/healthz", "readiness": "/readyz", "liveness": "/healthz"},
    }
    apps = parse_apps({**dev_apps(), "hello": hello})
    assert [a.name for a in apps] == ["comments", "hello"]
    hello_spec = apps[1]
    assert (hello_spec.min_replicas, hello_spec.max_replicas) == (2, 2)
    assert hello_spec.database is None and not hello_spec.autoscaled


@pytest.mark.parametrize(
    ("apps", "expected"),
    [
        # the map itself
        ('["comments"]', "'apps' = [\"comments\"] is not valid: expected an object"),
        # app names become namespaces and host names
        (
            {"Comments_API": comments()["comments"]},
            "'apps.Comments_API' = \"Comments_API\" is not valid: expected an app name of 1-30",
        ),
        # typos are caught, not ignored
        (comments(replica=3), "expected only the keys image, build, port, replicas"),
        (comments(port=None), "(missing: ['port'])"),
        # the image: named or built, exactly one
        (
            comments(image="ghcr.io/app-platform/comments:1.0.0"),
            '\'apps.comments\' = {"image": "ghcr.io/app-platform/comments:1.0.0", "build": '
            '"apps/comments"} is not valid: expected exactly one of image (a pinned image '
            "reference) or build (a directory of the project holding a Dockerfile",
        ),
        (comments(build=None), "'apps.comments' = {} is not valid: expected exactly one of image"),
        (
            comments(build="apps/missing"),
            "'apps.comments.build' = \"apps/missing\" is not valid: expected a directory of the "
            "project holding a Dockerfile, e.g. apps/comments",
        ),
        (comments(build="apps"), "'apps.comments.build' = \"apps\" is not valid"),
        (comments(build="/srv/comments"), "expected a directory inside the project, relative"),
        (comments(build="../comments"), "expected a directory inside the project, relative"),
        (comments(build=["apps/comments"]), "'apps.comments.build' = [\"apps/comments\"]"),
        # published images are pinned
        (
            published("ghcr.io/app-platform/comments:latest"),
            "'apps.comments.image' = \"ghcr.io/app-platform/comments:latest\" is not valid: "
            "expected an image pinned to a release tag or digest, not the moving tag 'latest'",
        ),
        (
            published("ghcr.io/app-platform/comments"),
            "expected an image pinned by tag or digest (name:1.2.3 or name@sha256:...)",
        ),
        (published("ghcr.io/app-platform/comments@sha256:abc"), "expected a digest sha256:"),
        (published("Not An Image:1"), "expected an image reference such as ghcr.io/"),
        # ports a non-root container can bind
        (
            comments(port=80),
            "'apps.comments.port' = 80 is not valid: expected a whole number from 1024",
        ),
        # replica bounds
        (
            comments(minReplicas=5, maxReplicas=3),
            "'apps.comments.maxReplicas' = 3 is not valid: expected at least minReplicas (5)",
        ),
        (comments(minReplicas=0), "'apps.comments.minReplicas' = 0 is not valid"),
        (
            comments(replicas=3),
            "either replicas (a fixed count) or minReplicas/maxReplicas, not both",
        ),
        (comments(cpuTargetPercent=100), "'apps.comments.cpuTargetPercent' = 100 is not valid"),
        # requests and limits
        (
            comments(cpu={"request": "2", "limit": "500m"}),
            '\'apps.comments.cpu\' = {"request": "2", "limit": "500m"} is not valid: '
            "expected a request no larger than the limit",
        ),
        (
            comments(memory={"request": "256MB", "limit": "512Mi"}),
            "'apps.comments.memory.request' = \"256MB\" is not valid: "
            "expected a Kubernetes quantity",
        ),
        (comments(cpu={"request": "250m"}), "'apps.comments.cpu.limit' = null is not valid"),
        # environment
        (comments(env={"WORKERS": 2}), "'apps.comments.env' = {\"WORKERS\": 2} is not valid"),
        (comments(env={"PORT": "9000"}), "other than PORT, DATABASE_URL, which the platform sets"),
        (comments(env={"bad-name": "x"}), "(not: ['bad-name'])"),
        # health endpoints
        (
            comments(healthPaths={"startup": "/healthz", "readiness": "readyz"}),
            "'apps.comments.healthPaths.readiness' = \"readyz\" is not valid: "
            "expected an HTTP path",
        ),
        (
            comments(healthPaths={"startup": "/a", "readiness": "/b", "liveness": "/c", "x": "/d"}),
            "'apps.comments.healthPaths'",
        ),
        # database
        (
            comments(database={"storageGib": 5}),
            "'apps.comments.database.storageGib' = 5 is not valid: expected at least 20 on RDS "
            "(inCluster: at least 1)",
        ),
        (
            comments(database={"backupRetentionDays": 0}),
            "'apps.comments.database.backupRetentionDays' = 0 is not valid: expected a whole "
            "number from 1 to 35",
        ),
        (
            comments(database={"instanceClass": "t3.micro"}),
            "expected an RDS instance class such as db.t4g.micro",
        ),
        (
            comments(database={"storageGib": 200, "maxStorageGib": 100}),
            "'apps.comments.database.maxStorageGib' = 100 is not valid: expected at least "
            "storageGib (200)",
        ),
        (comments(database={"deletionProtection": "maybe"}), "expected true or false"),
        (comments(database={"size": "large"}), "expected only the keys instanceClass"),
        # observability
        (
            comments(dashboard="apps/comments/dashboards/missing.json"),
            "'apps.comments.dashboard' = \"apps/comments/dashboards/missing.json\" is not valid: "
            "expected the path of a Grafana dashboard JSON file",
        ),
        (comments(dashboard="README.md"), "expected the path of a Grafana dashboard JSON file"),
        (
            comments(metrics={"requests": "http-requests"}),
            "'apps.comments.metrics.requests' = \"http-requests\" is not valid",
        ),
        (comments(alerts={"errorRatio": 5}), "'apps.comments.alerts.errorRatio' = 5 is not valid"),
        (
            comments(alerts={"p99LatencySeconds": 0}),
            "'apps.comments.alerts.p99LatencySeconds' = 0 is not valid",
        ),
        (comments(runbookUrl="http://wiki/runbook"), "expected an https:// URL"),
        # what the container runs, as whom, with which secrets and platform values
        (comments(runAsUser=0), "'apps.comments.runAsUser' = 0 is not valid: expected a whole"),
        (comments(command="gunicorn app:main"), "'apps.comments.command' = \"gunicorn app:main\""),
        (
            comments(secretEnv={"API_TOKEN": 42}),
            "'apps.comments.secretEnv' = {\"API_TOKEN\": 42} is not valid: expected a map of "
            "variable names to keys of secret stack config values",
        ),
        (
            comments(platformEnv={"SITE": "website"}),
            '\'apps.comments.platformEnv\' = {"SITE": "website"} is not valid: expected a map',
        ),
        (
            comments(database=False, platformEnv={"PG": "databaseUrl"}),
            '\'apps.comments.platformEnv\' = {"PG": "databaseUrl"} is not valid: expected '
            "databaseUrl only with a database",
        ),
        (
            comments(env={"URL": "x"}, platformEnv={"URL": "url"}),
            "expected each variable in one of env, secretEnv and platformEnv only",
        ),
    ],
)
def test_each_app_mistake_names_key_value_and_what_is_accepted(apps, expected):
    assert expected in error_of(apps)


def test_all_app_mistakes_are_reported_at_once():
    message = error_of(published("x/y:latest", port=80, minReplicas=0))
    assert "apps.comments.port" in message
    assert "apps.comments.image" in message
    assert "apps.comments.minReplicas" in message


def test_new_app_keys_reach_the_spec():
    (app,) = parse_apps(
        comments(
            runAsUser=2000,
            command=["gunicorn"],
            args=["app:main"],
            secretEnv={"API_TOKEN": "commentsApiToken"},
            platformEnv={"PUBLIC_URL": "url"},
        )
    )
    assert (app.run_as_user, app.command, app.args) == (2000, ("gunicorn",), ("app:main",))
    # Only the key is in the config; the value is read as a secret when the app is built.
    assert app.secret_env == {"API_TOKEN": "commentsApiToken"}
    assert app.platform_env == {"PUBLIC_URL": "url"}


def test_database_can_be_switched_on_with_defaults_or_off():
    (on,) = parse_apps(comments(database=True))
    assert on.database == DatabaseSpec()
    assert on.database.deletion_protection and on.database.final_snapshot
    (off,) = parse_apps(comments(database=False))
    assert off.database is None


def test_bad_app_config_stops_the_program_before_any_resource(run_stack):
    recording = offline.Recording(project="app-platform", stack="dev")
    with pytest.raises(config.ConfigError, match=r"apps\.comments\.image"):
        run_stack({"apps": published("ghcr.io/app-platform/comments:latest")}, recording=recording)
    assert recording.resources == []


NO_DOCKER = preflight.Environment(
    docker_problem="the docker command is not on PATH", git_origin=ENVIRONMENT.git_origin
)


def test_building_without_docker_names_the_image_key_to_use_instead():
    message = error_of(dev_apps(), NO_DOCKER)
    assert (
        "config 'apps.comments.build' = \"apps/comments\" cannot be built here: building an "
        "image needs Docker, and the docker command is not on PATH. Start Docker, or set "
        "'apps.comments.image' to a pinned image reference instead of build"
    ) in message


def test_a_published_image_needs_no_docker():
    image = "ghcr.io/acme/comments:1.2.0@sha256:" + "ab" * 32
    (app,) = parse_apps(published(image), NO_DOCKER)
    assert (app.image, app.build) == (image, None)


def test_every_app_key_is_described_in_pulumi_yaml_and_the_readme():
    description = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["apps"]
    readme = (ROOT / "README.md").read_text()
    apps_table = readme.split("## Apps on the platform", 1)[1].split("\n### ", 1)[0]
    for key in APP_KEYS:
        assert re.search(rf"\b{key}\b", description["description"]), key
        assert re.search(rf"`{key}\b", apps_table), key


# ------------------------------------------------------------------------------------------
# App stacks
# ------------------------------------------------------------------------------------------

APP_STACK_FILE = ROOT / "Pulumi.podinfo.yaml"


def app_stack_raw(**changes: object) -> dict:
    values = offline.load_stack_config(ROOT, "podinfo").values
    raw = {key.split(":", 1)[1]: v for key, v in values.items() if key.startswith("app-platform:")}
    raw.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in changes.items()})
    return raw


def test_example_app_stack_names_its_platform_and_apps():
    settings = config.parse_app_stack(
        app_stack_raw(), stack="podinfo", region="us-east-1", base_dir=ROOT
    )
    assert settings.platform_stack == "organization/app-platform/dev"
    assert [a.name for a in settings.apps] == ["podinfo"]
    assert settings.prefix == "platform-podinfo"
    declared = yaml.safe_load(APP_STACK_FILE.read_text())["config"]
    assert "app-platform:publicAccessCidrs" not in declared  # no platform settings needed


def test_platform_stack_must_be_fully_qualified():
    with pytest.raises(config.ConfigError) as raised:
        config.parse_app_stack(
            app_stack_raw(platformStack="dev"), stack="podinfo", region="us-east-1"
        )
    assert "'platformStack' = \"dev\" is not valid: expected a fully qualified" in str(raised.value)


def test_an_app_stack_without_apps_is_refused():
    with pytest.raises(config.ConfigError) as raised:
        config.parse_app_stack(app_stack_raw(apps={}), stack="podinfo", region="us-east-1")
    assert "'apps' = {} is not valid: expected at least one app" in str(raised.value)


@pytest.mark.parametrize(
    "name", ["monitoring", "argocd", "envoy-gateway-system", "kube-system", "default"]
)
def test_an_app_cannot_take_a_platform_namespace(name):
    apps = {name: comments()["comments"]}
    expected = f"'apps.{name}' = \"{name}\" is not valid: expected an app name that is not a"
    assert expected in error_of(apps)
