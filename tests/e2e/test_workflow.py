"""The scheduled e2e workflow keeps what the README promises about it (the repository-wide
workflow checks in tests/github apply to it as well: pins, permissions, zizmor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True)
    return data


def step(job: dict[str, Any], action: str) -> dict[str, Any]:
    (found,) = [s for s in job["steps"] if s.get("uses", "").startswith(f"{action}@")]
    return found


def test_it_runs_weekly_and_by_hand_one_run_at_a_time_never_cancelled():
    workflow = load("e2e.yml")
    (schedule,) = workflow["on"]["schedule"]
    *_, day, month, weekday = schedule["cron"].split()
    # Once a week: any day of the month, one day of the week.
    assert (day, month) == ("*", "*") and weekday.isdigit()
    assert "workflow_dispatch" in workflow["on"]
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_only_its_job_may_assume_the_role_from_its_environment():
    workflow = load("e2e.yml")
    assert workflow["permissions"] == {}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"] == "e2e"
    # The e2e role trusts this workflow of the default branch only: elsewhere the job skips.
    assert "default_branch" in job["if"]
    credentials = step(job, "aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_E2E_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials)
    # The credentials outlast the job, so the destroy at its end is never cut off.
    assert int(credentials["role-duration-seconds"]) >= job["timeout-minutes"] * 60


def test_it_runs_make_e2e_with_the_cli_the_deploys_use_and_a_skip_fails():
    workflow = load("e2e.yml")
    (job,) = workflow["jobs"].values()
    runs = [s.get("run") for s in job["steps"]]
    assert runs.index("make setup") < runs.index("make e2e")
    cli = step(job, "pulumi/actions")
    assert "command" not in cli["with"]
    assert workflow["env"]["PULUMI_VERSION"] == load("deploy.yml")["env"]["PULUMI_VERSION"]
    (e2e,) = [s for s in job["steps"] if s.get("run") == "make e2e"]
    assert e2e["env"]["E2E_REQUIRE"] == "1"


def test_state_goes_to_the_bootstraps_bucket_and_secrets_under_its_key_with_no_passphrase():
    (job,) = load("e2e.yml")["jobs"].values()
    (e2e,) = [s for s in job["steps"] if s.get("run") == "make e2e"]
    assert e2e["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert e2e["env"]["PULUMI_SECRETS_PROVIDER"] == "${{ vars.PULUMI_SECRETS_PROVIDER }}"
    assert not [name for name in e2e["env"] if name.startswith("PULUMI_CONFIG_PASSPHRASE")]
    assert "secrets." not in (WORKFLOWS / "e2e.yml").read_text()
