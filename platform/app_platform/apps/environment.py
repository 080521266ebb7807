"""The app's environment: its own variables, its secrets (from Pulumi secrets) and the values
the platform provides (`PLATFORM_VALUES` in spec.py), split into plain variables for the
Deployment and secret ones for the app's Secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from app_platform.apps.spec import (
    DATABASE_PLATFORM_ENV,
    SECRET_PLATFORM_VALUES,
    AppSpec,
)


@dataclass(frozen=True)
class Environment:
    # Plain variables besides PORT, which the Deployment always sets first.
    plain: Mapping[str, pulumi.Input[str]]
    # Variables that go to the app's Secret.
    secret: Mapping[str, pulumi.Input[str]]


def secret_value(source: str | pulumi.Output[str]) -> pulumi.Output[str]:
    """A `secretEnv` value: an Output as given, or the secret stack config value of that key
    (`key` in the project's namespace, `ns:key` in another)."""
    if isinstance(source, pulumi.Output):
        return pulumi.Output.secret(source)
    namespace, _, key = source.rpartition(":")
    return pulumi.Config(namespace or None).require_secret(key)


def environment(
    spec: AppSpec,
    secrets: Mapping[str, pulumi.Input[str]],
    values: Mapping[str, pulumi.Input[str] | None],
) -> Environment:
    """`secrets` are the `secretEnv` values as read (`secret_value`); `values` are the
    platform's values by name (databaseUrl None without a database)."""
    platform_env = dict(spec.platform_env)
    if values.get("databaseUrl") is not None:
        platform_env = {**DATABASE_PLATFORM_ENV, **platform_env}
    secret = dict(secrets)
    plain = dict(spec.env)
    for name, value in platform_env.items():
        target = secret if value in SECRET_PLATFORM_VALUES else plain
        target[name] = values[value]  # type: ignore[assignment]
    return Environment(plain=plain, secret=secret)
