"""Alertmanager: receivers from config, routed by severity, secrets kept out of values and plans,
the Watchdog heartbeat, and the IAM role SNS needs."""

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from app_platform import alerting, observability
from app_platform.options import OptionsError
from app_platform.volumes import BlockStorage
from app_platform_tools import offline, secrets
from tests.upstream import checks

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
KPS = "kube-prometheus-stack"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-secret-path"
SMTP_PASSWORD = "smtp-password-that-is-secret"
HEARTBEAT_URL = "https://hc-ping.com/heartbeat-secret-uuid"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:platform-pager"
EVERY_RECEIVER = {
    "alertSlackWebhookUrl": SLACK_URL,
    "alertSnsTopicArn": TOPIC,
    "alertEmailTo": ["ops@example.com", "oncall@example.com"],
    "alertSmtpSmarthost": "email-smtp.eu-west-1.amazonaws.com:587",
    "alertSmtpFrom": "alerts@example.com",
    "alertSmtpUsername": "AKIAEXAMPLE",
    "alertSmtpPassword": SMTP_PASSWORD,
    "alertHeartbeatUrl": HEARTBEAT_URL,
}
SECRETS = (SLACK_URL, SMTP_PASSWORD, HEARTBEAT_URL)


@pytest.fixture(scope="module")
def wired():
    return offline.run(ROOT, "dev", EVERY_RECEIVER)


def alertmanager(recording):
    return recording.one(RELEASE, "platform-dev-kube-prometheus-stack").inputs["values"][
        "alertmanager"
    ]


def routes_by_matcher(config):
    return {tuple(r["matchers"]): r["receiver"] for r in config["route"]["routes"]}


def receivers_by_name(config):
    return {r["name"]: r for r in config["receivers"]}


def without_secrets(value):
    """Recorded data with every Pulumi secret taken out: what plans and previews show."""
    return secrets.redact(value)


def test_with_no_receiver_configured_every_alert_goes_to_the_null_receiver(dev):
    values = alertmanager(dev)
    config = values["config"]
    assert config["receivers"] == [{"name": "null"}]
    assert config["route"]["receiver"] == "null"
    assert set(routes_by_matcher(config).values()) == {"null"}
    assert "secrets" not in values["alertmanagerSpec"]
    assert "annotations" not in values["serviceAccount"]
    assert [r for r in dev.of_type(SECRET) if "alertmanager" in r.name] == []
    assert [r for r in dev.of_type("aws:iam/role:Role") if "alertmanager" in r.name] == []


def test_the_readme_says_where_alerts_go_without_receivers():
    readme = (ROOT / "README.md").read_text()
    assert "alerts go nowhere" in readme


def test_critical_pages_every_channel_warning_only_chat_and_email_info_nowhere(wired):
    config = alertmanager(wired)["config"]
    routes = routes_by_matcher(config)
    assert routes[('severity = "critical"',)] == "critical"
    assert routes[('severity = "warning"',)] == "warning"
    assert config["route"]["receiver"] == "null"  # info, none and unlabelled alerts
    assert not any("info" in matcher for matchers in routes for matcher in matchers)
    receivers = receivers_by_name(config)
    channels = {name: set(r) - {"name"} for name, r in receivers.items()}
    assert channels["critical"] == {"slack_configs", "email_configs", "sns_configs"}
    assert channels["warning"] == {"slack_configs", "email_configs"}
    (email,) = receivers["warning"]["email_configs"]
    assert email["to"] == "ops@example.com, oncall@example.com"
    assert email["smarthost"] == "email-smtp.eu-west-1.amazonaws.com:587"
    (sns,) = receivers["critical"]["sns_configs"]
    assert sns == {"topic_arn": TOPIC, "sigv4": {"region": "eu-west-1"}, "send_resolved": True}


def test_watchdog_is_a_dead_mans_switch_when_a_heartbeat_is_configured(wired, dev):
    config = alertmanager(wired)["config"]
    (route,) = [r for r in config["route"]["routes"] if r["matchers"] == ['alertname = "Watchdog"']]
    assert route["receiver"] == "heartbeat"
    assert config["route"]["routes"][0] is route  # before the severity routes
    assert route["repeat_interval"] == alerting.HEARTBEAT_REPEAT_INTERVAL
    (hook,) = receivers_by_name(config)["heartbeat"]["webhook_configs"]
    assert hook["url_file"] == f"{alerting.SECRET_FILES}/{alerting.HEARTBEAT_KEY}"
    unwired = alertmanager(dev)["config"]
    assert routes_by_matcher(unwired)[('alertname = "Watchdog"',)] == "null"


@pytest.mark.parametrize("stack", ["dev", "wired"])
def test_the_rendered_config_loads_in_alertmanager_and_the_operator(stack, dev, wired):
    config = alertmanager({"dev": dev, "wired": wired}[stack])["config"]
    assert alerting.config_problems(config) == []
    assert checks.alertmanager_config_errors(config) == []
    # Helm merges these values into the chart's default configuration: every key that default
    # has is set, so nothing of it is left behind in what Alertmanager loads.
    defaults = {
        key.removeprefix("alertmanager.config.")
        for key in checks.chart_fixture(KPS)["keys"]
        if key.startswith("alertmanager.config.")
    }
    for key in defaults:
        node = config
        for part in key.split("."):
            assert part in node, key
            node = node[part]


def test_every_values_key_with_receivers_is_known_to_the_chart(wired):
    values = wired.one(RELEASE, "platform-dev-kube-prometheus-stack").inputs["values"]
    assert checks.unknown_values_keys(KPS, values) == []


def test_secret_settings_reach_alertmanager_only_through_a_secret(wired):
    values = alertmanager(wired)
    assert values["alertmanagerSpec"]["secrets"] == [alerting.RECEIVER_SECRET]
    release = wired.one(RELEASE, "platform-dev-kube-prometheus-stack")
    # Previews show every route.
    assert secrets.SECRET_KEY not in json.dumps(release.inputs["values"])
    secret = wired.one(SECRET, "platform-dev-alertmanager-receivers")
    assert secret.inputs["metadata"] == {
        "name": "alertmanager-receivers",
        "namespace": "monitoring",
    }
    assert secrets.unwrap(secret.inputs["stringData"]) == {
        alerting.SLACK_KEY: SLACK_URL,
        alerting.SMTP_PASSWORD_KEY: SMTP_PASSWORD,
        alerting.HEARTBEAT_KEY: HEARTBEAT_URL,
    }
    assert wired.depends_on(release, secret)
    visible = json.dumps(
        [without_secrets(r.inputs) for r in wired.resources]
        + [o.value for o in wired.outputs.values() if not o.secret]
    )
    assert not [value for value in SECRETS if value in visible]


def test_alertmanager_may_publish_to_its_topic_and_nothing_else(wired):
    values = alertmanager(wired)
    role = wired.one("aws:iam/role:Role", "platform-dev-alertmanager")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    subject = next(v for k, v in trust["Condition"]["StringEquals"].items() if k.endswith(":sub"))
    assert subject == f"system:serviceaccount:monitoring:{values['serviceAccount']['name']}"
    policy = wired.one("aws:iam/rolePolicy:RolePolicy", "platform-dev-alertmanager")
    assert json.loads(policy.inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC}
    ]
    annotation = values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert annotation == role.outputs["arn"]
    assert wired.depends_on(wired.one(RELEASE, "platform-dev-kube-prometheus-stack"), policy)


def test_receivers_can_be_configured_one_at_a_time(run_stack):
    config = alertmanager(run_stack({"alertSnsTopicArn": TOPIC}))["config"]
    receivers = receivers_by_name(config)
    assert set(receivers) == {"null", "critical"}  # nothing for warnings to go to
    assert set(receivers["critical"]) == {"name", "sns_configs"}
    assert alerting.config_problems(config) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"alertSlackWebhookUrl": "http://hooks.slack.com/x"}, "'alertSlackWebhookUrl' = [secret]"),
        ({"alertHeartbeatUrl": "hc-ping.com/x"}, "'alertHeartbeatUrl' = [secret] is not valid"),
        ({"alertSnsTopicArn": "arn:aws:sqs:us-east-1:1:q"}, "expected an SNS topic ARN"),
        ({"alertEmailTo": ["ops"]}, "'alertEmailTo' = [\"ops\"] is not valid: expected email"),
        ({"alertEmailTo": ["ops@example.com"]}, "'alertSmtpSmarthost' = \"\" is not valid"),
        ({"alertSmtpSmarthost": "smtp.example.com"}, "expected host:port"),
        ({"alertSmtpFrom": "alerts@example.com"}, "'alertEmailTo' = [] is not valid"),
        (
            {**EVERY_RECEIVER, "alertSmtpPassword": ""},
            "'alertSmtpPassword' = [secret] is not valid: expected set together with",
        ),
    ],
)
def test_alert_config_mistakes_are_refused_without_echoing_secrets(config_error, changes, expected):
    message = config_error(**changes)
    assert expected in message
    assert not [
        value for value in (*SECRETS, "hooks.slack.com/x", "hc-ping.com/x") if value in message
    ]


def test_every_alert_mistake_is_reported_at_once(config_error):
    message = config_error(alertSnsTopicArn="nope", alertEmailTo=["x"], alertHeartbeatUrl="y")
    for key in ("alertSnsTopicArn", "alertEmailTo", "alertHeartbeatUrl", "alertSmtpSmarthost"):
        assert key in message


def test_config_problems_catch_routes_to_missing_receivers():
    config = alerting.alertmanager_config(alerting.AlertReceivers(sns_topic_arn=TOPIC))
    config["route"]["routes"].append({"receiver": "pager", "matchers": ['team = "x"']})
    config["receivers"].append({"name": "null"})
    problems = alerting.config_problems(config)
    assert "route.routes[3] names receiver 'pager', which is not defined" in problems
    assert "receiver name 'null' is not unique" in problems
    assert alerting.config_problems({"receivers": []}) == ["the root route must name a receiver"]


def test_the_component_refuses_receivers_it_cannot_wire():
    """Built from code, not config: the component checks its arguments itself."""

    def program(receivers):
        provider = k8s.Provider("platform-test-k8s", kubeconfig="{}")
        args = observability.ObservabilityArgs(
            observability.ObservabilityOptions(retention="1d", volume_size_gib=10),
            provider=provider,
            domain="test.example",
            block_storage=BlockStorage(
                storage_class_name="gp3", cluster_name="test", region="us-east-1", ready=[]
            ),
            gateway_name="edge",
            gateway_namespace="edge",
            route_namespace_labels={},
            proxy_namespace="edge",
            proxy_labels={},
            alert_receivers=receivers,
        )
        observability.Observability("platform-test", args)

    recording = offline.Recording(project="test", stack="test")
    with pytest.raises(ValueError, match="an SNS topic needs oidc_provider_arn"):
        offline.run_function(
            lambda: program(alerting.AlertReceivers(sns_topic_arn=TOPIC)), recording=recording
        )
    assert [r.type for r in recording.resources] == ["pulumi:providers:kubernetes"]


def test_receivers_built_in_code_are_checked_by_field_name_without_echoing_secrets():
    with pytest.raises(OptionsError) as raised:
        alerting.AlertReceivers(email_to=("ops@example.com",), smtp_password=SMTP_PASSWORD)
    message = str(raised.value)
    needed = "is not valid: expected a value: email alerts ('email_to') need it"
    assert f"'smtp_smarthost' = \"\" {needed}" in message
    assert f"'smtp_from' = \"\" {needed}" in message
    assert (
        "'smtp_password' = [secret] is not valid: expected set together with 'smtp_username'"
        in (message)
    )
    assert SMTP_PASSWORD not in message


def test_secret_receivers_from_code_may_be_outputs():
    built = []

    def program():
        url = pulumi.Output.secret(SLACK_URL)
        built.append((url, alerting.AlertReceivers(slack_webhook_url=url, heartbeat_url="")))

    offline.run_function(program)
    ((url, receivers),) = built
    assert receivers.slack_webhook_url is url
    assert receivers.heartbeat_url is None
