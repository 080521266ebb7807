"""`make e2e`: the whole platform on a real AWS account, checked from outside, then gone.

A throwaway stack (`e2e-<random>`, the dev stack's config made unique and a little cheaper) is
deployed with Pulumi's Automation API; the comments API, Grafana and Argo CD are called through
the real load balancer; the stack is destroyed whatever happened (and removed once destroyed);
then the account is searched for anything it left behind. Exit code 1 on any failure.

Without the Pulumi CLI or AWS credentials it prints why and exits 0 (E2E_REQUIRE=1 makes that a
failure, as CI wants). The state goes to PULUMI_BACKEND_URL when set, else to a local directory;
secrets are encrypted by PULUMI_SECRETS_PROVIDER when set (`awskms://...`, as `make bootstrap`
prints it), else with a passphrase.

Run from the project directory: `python -m tests.e2e.run` (this is not a pytest module, so
`make test` never collects it).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
from pulumi import automation as auto

from tests.e2e import checks, leftovers, stack_config

ROOT = Path(__file__).resolve().parents[2]
# Local state when no PULUMI_BACKEND_URL is given (.pulumi-state/ is git-ignored).
STATE_DIR = ROOT / ".pulumi-state" / "e2e"
CLI_INSTALL_URL = "https://www.pulumi.com/docs/iac/download-install/"
# A failed destroy is retried once, after a pause and with a refresh: what blocked it (an
# interface a load balancer still held, say) is often gone by then.
DESTROY_ATTEMPTS = 2
DESTROY_RETRY_PAUSE_S = 120
# Volumes and interfaces are deleted in the background after their owners, and the Tagging API
# lags behind deletions: look again until nothing is left or this much time has passed.
LEFTOVER_DEADLINE_S = 10 * 60
LEFTOVER_INTERVAL_S = 30
VPC_TYPE = "aws:ec2/vpc:Vpc"


def _print(line: str) -> None:
    print(line, end="" if line.endswith("\n") else "\n", flush=True)


# How up and destroy report: their output streamed as it comes, no stack outputs (the secret
# ones would only say [secret]) and no secret config in the summaries.
QUIET: dict[str, Any] = {
    "on_output": _print,
    "on_error": _print,
    "color": "never",
    "suppress_outputs": True,
    "show_secrets": False,
}


def skip_reason(
    which: Callable[[str], str | None] = shutil.which,
    session: botocore.session.Session | None = None,
) -> str | None:
    """Why the check cannot run here (one line), or None when it can."""
    missing = []
    if which("pulumi") is None:
        missing.append(f"the Pulumi CLI is not on PATH ({CLI_INSTALL_URL})")
    try:
        credentials = (session or botocore.session.get_session()).get_credentials()
    except botocore.exceptions.BotoCoreError:
        credentials = None
    if credentials is None:
        missing.append("botocore finds no AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)")
    return "; ".join(missing) or None


def secrets_provider(environ: Mapping[str, str]) -> str | None:
    """The stack's secrets provider for `pulumi stack init`; None for a passphrase. An unset
    workflow variable arrives empty, which counts as none."""
    return environ.get("PULUMI_SECRETS_PROVIDER") or None


def pulumi_env(stack: str, environ: Mapping[str, str], state_dir: Path) -> dict[str, str]:
    """Environment of every Pulumi command: PULUMI_BACKEND_URL as given, else a local state
    directory; for local state with neither a secrets provider nor a passphrase, a new
    passphrase in a file beside the state (readable only by you), so a stack whose run failed
    can still be destroyed by hand."""
    env = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
    if environ.get("PULUMI_BACKEND_URL"):
        return env
    state_dir.mkdir(parents=True, exist_ok=True)
    env["PULUMI_BACKEND_URL"] = state_dir.as_uri()
    passphrase = {"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} & set(environ)
    if not passphrase and not secrets_provider(environ):
        path = passphrase_file(state_dir, stack)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(path)
    return env


def passphrase_file(state_dir: Path, stack: str) -> Path:
    return state_dir / f"{stack}.passphrase"


def vpc_ids(deployment: Mapping[str, Any]) -> tuple[str, ...]:
    """The VPCs a stack's state holds: read before destroy, to search them afterwards."""
    return tuple(
        resource["id"]
        for resource in deployment.get("resources") or []
        if resource.get("type") == VPC_TYPE and resource.get("id")
    )


def main(project_dir: Path = ROOT, state_dir: Path = STATE_DIR) -> int:
    reason = skip_reason()
    if reason:
        print(f"e2e skipped: {reason}")
        return 1 if os.environ.get("E2E_REQUIRE") == "1" else 0
    name = stack_config.new_stack_name()
    config = stack_config.e2e_config(
        stack_config.load_config(project_dir), name, os.environ.get("AWS_REGION")
    )
    env = pulumi_env(name, os.environ, state_dir)
    print(f"e2e: stack {name} in {config[stack_config.REGION_KEY]}", flush=True)
    started = datetime.now(UTC)
    workspace = auto.LocalWorkspaceOptions(
        env_vars=env, secrets_provider=secrets_provider(os.environ)
    )
    stack = auto.create_stack(name, work_dir=str(project_dir), opts=workspace)
    stack_config.write_stack_config(project_dir, name, config)
    failures: list[str] = []
    try:
        failures += deploy_and_check(stack)
    finally:
        scope = leftovers.Scope(
            stack_tags=stack_config.stack_tags(config),
            prefix=stack_config.prefix(project_dir, config, name),
            vpc_ids=(),
            since=started,
        )
        failures += tear_down(stack, scope, config[stack_config.REGION_KEY], env)
    print("e2e: " + ("PASSED" if not failures else "FAILED\n  - " + "\n  - ".join(failures)))
    return 1 if failures else 0


def deploy_and_check(stack: auto.Stack) -> list[str]:
    try:
        stack.up(**QUIET)
    except auto.CommandError:
        return ["pulumi up failed (its output is above)"]
    try:
        target = checks.Target.from_outputs(checks.plain_outputs(stack.outputs()))
    except (KeyError, TypeError, ValueError) as error:
        return [f"the stack outputs do not say where to send the checks: {error!r}"]
    return checks.run_all(checks.plan(target, content_id=stack.name))


def tear_down(
    stack: auto.Stack, scope: leftovers.Scope, region: str, env: Mapping[str, str]
) -> list[str]:
    """Destroy (always), search for leftovers, and remove the stack once it is empty."""
    scope = dataclasses.replace(scope, vpc_ids=_vpcs_in_state(stack))
    destroyed = destroy(stack)
    failures = [] if destroyed else [f"pulumi destroy failed {DESTROY_ATTEMPTS} times"]
    failures += search_leftovers(scope, region, wait=destroyed)
    if not destroyed:
        _print_how_to_finish(stack, env)
        return failures
    try:
        stack.workspace.remove_stack(stack.name)
    except auto.CommandError as error:
        return [*failures, f"the empty stack could not be removed: {error}"]
    if "PULUMI_CONFIG_PASSPHRASE_FILE" in env:
        Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"]).unlink(missing_ok=True)
    return failures


def _vpcs_in_state(stack: auto.Stack) -> tuple[str, ...]:
    """Read before destroy empties the state; none when there is no state to read."""
    try:
        return vpc_ids(stack.export_stack().deployment or {})
    except auto.CommandError:
        return ()


def destroy(stack: auto.Stack) -> bool:
    for attempt in range(1, DESTROY_ATTEMPTS + 1):
        try:
            # Delete all it can even when one resource fails, so little is left to retry.
            stack.destroy(**QUIET, continue_on_error=True, refresh=attempt > 1)
            return True
        except auto.CommandError:
            print(f"e2e: destroy attempt {attempt} of {DESTROY_ATTEMPTS} failed", flush=True)
            if attempt < DESTROY_ATTEMPTS:
                time.sleep(DESTROY_RETRY_PAUSE_S)
    return False


def search_leftovers(scope: leftovers.Scope, region: str, wait: bool) -> list[str]:
    """Look for what is left (again and again for a while, after a clean destroy) and report it."""
    clients = leftovers.Clients.of(boto3.Session(), region)
    try:
        found = checks.poll(
            lambda: leftovers.find(clients, scope),
            lambda found: not leftovers.unexpected(found),
            LEFTOVER_DEADLINE_S if wait else 0,
            LEFTOVER_INTERVAL_S,
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        return [f"could not search for leftovers: {error}"]
    print(leftovers.report(found), flush=True)
    left = len(leftovers.unexpected(found))
    return [f"{left} resource(s) left after destroy (listed above)"] if left else []


def _print_how_to_finish(stack: auto.Stack, env: Mapping[str, str]) -> None:
    settings = " ".join(
        f"{key}={env[key]}"
        for key in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE")
        if key in env
    )
    print(
        f"e2e: stack {stack.name} is kept, with its state, so that it can be finished by hand:\n"
        f"  cd {stack.workspace.work_dir} && {settings} pulumi destroy --stack {stack.name}"
        f" && pulumi stack rm {stack.name}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
