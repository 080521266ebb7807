"""Alert routing: who Alertmanager tells, by severity, and the Watchdog heartbeat.

The Alertmanager configuration built here holds no secret, so it goes into the Helm values and
every plan and preview shows each route. The Slack webhook URL, the SMTP password and the
heartbeat URL live in one Kubernetes Secret that Alertmanager mounts
(`alertmanagerSpec.secrets`); the receivers read them from those files (`*_file` settings).

Routing: `critical` alerts go to every configured channel (SNS is meant for paging), `warning`
alerts to Slack and email, everything else (`info`, `none`, no severity) to the `null` receiver.
The always-firing `Watchdog` alert goes to the heartbeat URL, a dead man's switch: when the pings
stop, the monitoring itself is broken.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import pulumi
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from app_platform.options import (
    SECRET,
    Options,
    OptionsError,
    Problem,
    StringList,
    problems,
)

# The Secret the receivers' secret settings come from, and where the operator mounts it
# (prometheus-operator pkg/alertmanager/statefulset.go: /etc/alertmanager/secrets/<name>).
RECEIVER_SECRET = "alertmanager-receivers"  # noqa: S105 (a Secret's name, not a secret)
SECRET_FILES = f"/etc/alertmanager/secrets/{RECEIVER_SECRET}"
SLACK_KEY = "slack-webhook-url"
SMTP_PASSWORD_KEY = "smtp-password"  # noqa: S105 (a key name)
HEARTBEAT_KEY = "heartbeat-url"

NULL_RECEIVER = "null"
CRITICAL_RECEIVER = "critical"
WARNING_RECEIVER = "warning"
HEARTBEAT_RECEIVER = "heartbeat"
# Alerts of one alert name in one namespace arrive as one notification.
GROUP_BY = ["namespace", "alertname"]
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"
REPEAT_INTERVAL = "12h"
# A page that nobody acted on is sent again sooner than a warning.
CRITICAL_REPEAT_INTERVAL = "4h"
# The Watchdog pings the heartbeat service this often; configure it to expect that.
HEARTBEAT_GROUP_INTERVAL = "1m"
HEARTBEAT_REPEAT_INTERVAL = "5m"
RESOLVE_TIMEOUT = "5m"
# The chart's default, kept: Helm merges these values into the chart's own configuration, so
# setting every key the default has leaves nothing of it behind.
TEMPLATES = ["/etc/alertmanager/config/*.tmpl"]

HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d{1,5})?(/\S*)?$")
SNS_TOPIC_ARN = re.compile(
    r"^arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
)
EMAIL_ADDRESS = re.compile(r"^[^@\s,<>]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
SMARTHOST = re.compile(r"^(?P<host>[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")
MAX_PORT = 65535
# What each kind of setting accepts, in the words a problem shows.
HTTPS_ACCEPTED = "an https:// URL"
SNS_ACCEPTED = "an SNS topic ARN, arn:aws:sns:<region>:<account>:<topic>"
SMARTHOST_ACCEPTED = "host:port, e.g. smtp.example.com:587"
SMTP_FIELDS = ("smtp_smarthost", "smtp_from", "smtp_username", "smtp_password")


def _optional(check: Callable[[str], bool] | None, accepted: str) -> Any:
    """An optional string ("" or None: not set) passing `check`; a Pulumi Output (secrets built
    in code) is checked by whoever made it."""

    def parse(value: Any) -> Any:
        if value in (None, "") or isinstance(value, pulumi.Output):
            return value or None
        if not isinstance(value, str):
            raise ValueError("expected a string")
        if check is not None and not check(value):
            raise ValueError(f"expected {accepted}")
        return value

    return Annotated[Any, BeforeValidator(parse)]


def _valid_smarthost(value: str) -> bool:
    match = SMARTHOST.fullmatch(value)
    return bool(match) and 0 < int(match["port"]) <= MAX_PORT


def _email_addresses(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [address for address in value if not EMAIL_ADDRESS.fullmatch(address)]
    if bad:
        raise ValueError(f"expected email addresses (not: {bad})")
    return value


HttpsUrl = _optional(HTTPS_URL.fullmatch, HTTPS_ACCEPTED)
EmailList = Annotated[StringList, AfterValidator(_email_addresses)]


class AlertReceivers(Options):
    """Where alerts go. Everything is optional; with nothing set, alerts go nowhere.

    `slack_webhook_url`, `smtp_password` and `heartbeat_url` are secrets (plain strings or
    Pulumi Outputs); email needs `email_to`, `smtp_smarthost` and `smtp_from`.
    """

    slack_webhook_url: HttpsUrl = Field(
        None,
        alias="alertSlackWebhookUrl",
        description="Slack incoming webhook URL (https://hooks.slack.com/services/...; set it "
        "with --secret): critical and warning alerts are posted there. Empty: no Slack.",
        json_schema_extra=SECRET,
    )
    sns_topic_arn: _optional(SNS_TOPIC_ARN.fullmatch, SNS_ACCEPTED) = Field(
        None,
        alias="alertSnsTopicArn",
        description="SNS topic ARN critical alerts are published to (for paging: SMS, email or "
        "a pager subscribed to the topic); Alertmanager gets an IAM role allowed sns:Publish "
        "to this topic only. Empty: no SNS.",
    )
    email_to: EmailList = Field(
        (),
        alias="alertEmailTo",
        description="Email addresses critical and warning alerts are sent to; needs "
        "alertSmtpSmarthost and alertSmtpFrom. Empty: no email.",
    )
    smtp_smarthost: _optional(_valid_smarthost, SMARTHOST_ACCEPTED) = Field(
        None,
        alias="alertSmtpSmarthost",
        description="SMTP server alert email goes through, host:port (e.g. "
        "email-smtp.us-east-1.amazonaws.com:587; STARTTLS is required).",
    )
    smtp_from: _optional(EMAIL_ADDRESS.fullmatch, "the sender's email address") = Field(
        None, alias="alertSmtpFrom", description="Sender address of alert email."
    )
    smtp_username: _optional(None, "a string") = Field(
        None,
        alias="alertSmtpUsername",
        description="SMTP user name, if the server asks for one (with alertSmtpPassword).",
    )
    smtp_password: _optional(None, "a string") = Field(
        None,
        alias="alertSmtpPassword",
        description="SMTP password (set it with --secret), with alertSmtpUsername.",
        json_schema_extra=SECRET,
    )
    heartbeat_url: HttpsUrl = Field(
        None,
        alias="alertHeartbeatUrl",
        description="Dead man's switch (set it with --secret): an https URL the always-firing "
        "Watchdog alert is posted to every 5 minutes (e.g. a healthchecks.io or Dead Man's "
        "Snitch check), which warns you when the pings stop. Empty: no heartbeat.",
        json_schema_extra=SECRET,
    )

    def secret_data(self) -> dict[str, pulumi.Input[str]]:
        """The Secret's keys: only those configured."""
        data = {
            SLACK_KEY: self.slack_webhook_url,
            SMTP_PASSWORD_KEY: self.smtp_password,
            HEARTBEAT_KEY: self.heartbeat_url,
        }
        return {key: value for key, value in data.items() if value}

    @model_validator(mode="wrap")
    @classmethod
    def _rules_across_keys(cls, data: Any, handler: Any) -> Any:
        """Email needs its SMTP settings and SMTP settings need an address; a login is a user
        name and a password. Checked on what was given even when a value is wrong, so every
        problem shows at once, each under the key to set."""
        found: list[Problem] = []
        try:
            model = handler(data)
        except ValidationError as error:
            found = problems(error, secret_fields=cls._secret_keys())
            model = None
        if isinstance(data, dict):
            found += _email_rules(cls, lambda name: _given(cls, data, name))
        if found:
            raise OptionsError(found)
        return model


def _given(model: type[Options], data: dict[str, Any], name: str) -> bool:
    """Whether `name` was set in `data` (by field name or config key); "[]" is no list."""
    value = data.get(name, data.get(model.model_fields[name].alias))
    return bool(value) and value != "[]"


def _email_rules(model: type[Options], given: Callable[[str], bool]) -> list[Problem]:
    key = model.key
    found = []
    if given("email_to"):
        needed = f"a value: email alerts ('{key('email_to')}') need it"
        found += [Problem(key(name), "", needed) for name in SMTP_FIELDS[:2] if not given(name)]
    elif any(given(name) for name in SMTP_FIELDS):
        found.append(
            Problem(key("email_to"), [], "at least one address when SMTP settings are given")
        )
    if given("smtp_username") != given("smtp_password"):
        together = f"set together with '{key('smtp_username')}'"
        found.append(Problem(key("smtp_password"), None, together, secret=True))
    return found


def topic_region(topic_arn: str) -> str:
    match = SNS_TOPIC_ARN.fullmatch(topic_arn)
    if match is None:
        raise ValueError(f"not an SNS topic ARN: {topic_arn!r}")
    return match["region"]


def sns_publish_policy(topic_arn: str) -> dict[str, Any]:
    """What Alertmanager's SNS receiver needs: publishing to that one topic."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn}],
    }


def _channels(receivers: AlertReceivers, *, paging: bool) -> dict[str, list[dict[str, Any]]]:
    channels: dict[str, list[dict[str, Any]]] = {}
    if receivers.slack_webhook_url:
        channels["slack_configs"] = [
            {"api_url_file": f"{SECRET_FILES}/{SLACK_KEY}", "send_resolved": True}
        ]
    if receivers.email_to:
        email: dict[str, Any] = {
            "to": ", ".join(receivers.email_to),
            "from": receivers.smtp_from,
            "smarthost": receivers.smtp_smarthost,
            "send_resolved": True,
        }
        if receivers.smtp_username:
            email["auth_username"] = receivers.smtp_username
            email["auth_password_file"] = f"{SECRET_FILES}/{SMTP_PASSWORD_KEY}"
        channels["email_configs"] = [email]
    if paging and receivers.sns_topic_arn:
        # Signed with the pod's IRSA credentials; the region is the topic's own.
        channels["sns_configs"] = [
            {
                "topic_arn": receivers.sns_topic_arn,
                "sigv4": {"region": topic_region(receivers.sns_topic_arn)},
                "send_resolved": True,
            }
        ]
    return channels


def _route(receiver: str, matcher: str, **timing: str) -> dict[str, Any]:
    return {"receiver": receiver, "matchers": [matcher], **timing}


def alertmanager_config(receivers: AlertReceivers) -> dict[str, Any]:
    """The whole Alertmanager configuration for these receivers, without any secret in it."""
    named: dict[str, dict[str, Any]] = {NULL_RECEIVER: {}}
    routes = [_route(NULL_RECEIVER, 'alertname = "InfoInhibitor"')]
    if receivers.heartbeat_url:
        named[HEARTBEAT_RECEIVER] = {
            "webhook_configs": [
                {"url_file": f"{SECRET_FILES}/{HEARTBEAT_KEY}", "send_resolved": False}
            ]
        }
    routes.insert(
        0,
        _route(
            HEARTBEAT_RECEIVER if receivers.heartbeat_url else NULL_RECEIVER,
            'alertname = "Watchdog"',
            group_wait="0s",
            group_interval=HEARTBEAT_GROUP_INTERVAL,
            repeat_interval=HEARTBEAT_REPEAT_INTERVAL,
        ),
    )
    for name, paging, extra in (
        (CRITICAL_RECEIVER, True, {"repeat_interval": CRITICAL_REPEAT_INTERVAL}),
        (WARNING_RECEIVER, False, {}),
    ):
        channels = _channels(receivers, paging=paging)
        if channels:
            named[name] = channels
            routes.append(_route(name, f'severity = "{name}"', **extra))
    return {
        "global": {"resolve_timeout": RESOLVE_TIMEOUT},
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": GROUP_BY,
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVAL,
            "routes": routes,
        },
        "receivers": [{"name": name, **channels} for name, channels in named.items()],
        "inhibit_rules": INHIBIT_RULES,
        "templates": TEMPLATES,
    }


# A critical alert silences the warning and info alerts of the same name and namespace, a
# warning the info ones; InfoInhibitor (always firing, severity none) silences info alerts of
# its namespace unless something worse fires there.
INHIBIT_RULES = [
    {
        "source_matchers": ['severity = "critical"'],
        "target_matchers": ['severity =~ "warning|info"'],
        "equal": ["namespace", "alertname"],
    },
    {
        "source_matchers": ['severity = "warning"'],
        "target_matchers": ['severity = "info"'],
        "equal": ["namespace", "alertname"],
    },
    {
        "source_matchers": ['alertname = "InfoInhibitor"'],
        "target_matchers": ['severity = "info"'],
        "equal": ["namespace"],
    },
    {"target_matchers": ['alertname = "InfoInhibitor"']},
]


def config_problems(config: dict[str, Any]) -> list[str]:
    """What Alertmanager itself would refuse to load in a configuration's structure: receivers
    without a unique name, routes naming a receiver that does not exist, a root route without a
    receiver or with matchers."""
    names = [r.get("name") for r in config.get("receivers", [])]
    problems = [f"receiver name {n!r} is not unique" for n in set(names) if names.count(n) > 1]
    problems += ["a receiver has no name" for n in names if not n]
    root = config.get("route")
    if not isinstance(root, dict) or not root.get("receiver"):
        return [*problems, "the root route must name a receiver"]
    if root.get("matchers") or root.get("continue"):
        problems.append("the root route cannot have matchers or continue")

    def walk(route: dict[str, Any], where: str) -> None:
        receiver = route.get("receiver")
        if receiver is not None and receiver not in names:
            problems.append(f"{where} names receiver {receiver!r}, which is not defined")
        for index, child in enumerate(route.get("routes", [])):
            walk(child, f"{where}.routes[{index}]")

    walk(root, "route")
    return problems
