"""CI finds every stack by itself (.github/scripts/stacks.py), plans one offline
(.github/scripts/plan_stack.sh), and each job assumes the role the bootstrap stack made for it,
with repository settings that `make bootstrap` prints."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
PLAN_STACK = ROOT / ".github" / "scripts" / "plan_stack.sh"


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


stacks = _module("ci_stacks", ROOT / ".github" / "scripts" / "stacks.py")
repository = _module("ci_repository", ROOT / "bootstrap" / "ci_access" / "repository.py")


def _write(root: Path, *files: str) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("config: {}\n")


def test_every_stack_file_of_the_project_is_in_the_matrix():
    found = stacks.discover(ROOT)
    expected = {p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")}
    assert {e["stack"] for e in found if e["project"] == "."} == expected >= {"dev", "podinfo"}
    dev = next(e for e in found if e["stack"] == "dev")
    assert dev == {
        "project": ".",
        "stack": "dev",
        "id": "dev",
        "policy_config": "policy/config.dev.json",
    }
    assert next(e for e in found if e["stack"] == "podinfo")["policy_config"] == ""


def test_example_projects_are_found_and_one_without_a_stack_is_an_error(tmp_path):
    _write(tmp_path, "Pulumi.yaml", "Pulumi.dev.yaml", "examples/web/Pulumi.yaml")
    _write(tmp_path, "examples/web/Pulumi.staging.yaml", "examples/notes.md")
    found = stacks.discover(tmp_path)
    assert [(e["project"], e["stack"], e["id"]) for e in found] == [
        (".", "dev", "dev"),
        ("examples/web", "staging", "examples-web-staging"),
    ]
    _write(tmp_path, "examples/api/Pulumi.yaml")
    with pytest.raises(stacks.StackError, match=r"examples/api has no Pulumi\.<stack>\.yaml"):
        stacks.discover(tmp_path)


def test_a_project_with_no_stack_gives_an_empty_matrix_the_jobs_skip(tmp_path):
    _write(tmp_path, "Pulumi.yaml")
    run = subprocess.run(
        [sys.executable, str(ROOT / ".github/scripts/stacks.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(run.stdout) == []
    preview = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    for job in ("preview", "offline-plan"):
        assert "needs.stacks.outputs.matrix != '[]'" in preview["jobs"][job]["if"]


def test_ids_are_safe_in_artifact_names_and_comment_markers():
    marker = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")  # preview-comment.yml's check
    for entry in stacks.discover(ROOT):
        assert marker.match(entry["id"]), entry


def test_a_stack_new_in_the_pull_request_plans_empty_on_the_base(tmp_path):
    out = tmp_path / "base.json"
    subprocess.run(
        ["bash", str(PLAN_STACK), str(tmp_path), ".", "added", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    plan = json.loads(out.read_text())
    assert plan["resources"] == [] and plan["stack"] == "added"


def _job(workflow: str, job: str) -> dict:
    return yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][job]


def _role_variable(job: dict) -> str:
    (step,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    return re.fullmatch(r"\$\{\{ vars\.(\w+) \}\}", step["with"]["role-to-assume"])[1]


def test_each_job_assumes_the_role_whose_trust_names_its_workflow_and_trigger():
    bootstrap = yaml.safe_load((ROOT / "bootstrap" / "Pulumi.yaml").read_text())["config"]
    policies = ROOT / "bootstrap" / "policies"
    cases = {
        "preview": ("preview.yml", "preview", "AWS_PREVIEW_ROLE_ARN", ":pull_request"),
        "drift": ("drift.yml", "check", "AWS_DRIFT_ROLE_ARN", ":ref:refs/heads/${default_branch}"),
        "deploy": ("deploy.yml", "up", "AWS_DEPLOY_ROLE_ARN", ":environment:${environment}"),
        "e2e": ("e2e.yml", "e2e", "AWS_E2E_ROLE_ARN", ":environment:${environment}"),
    }
    for role, (workflow, job_id, variable, subject) in cases.items():
        job = _job(workflow, job_id)
        assert _role_variable(job) == variable
        trust = (policies / f"trust-{role}.json").read_text()
        assert f'{subject}"' in trust
        assert f"/.github/workflows/{workflow}@" in trust
    assert _job("deploy.yml", "up")["environment"] == bootstrap["deployEnvironment"]["default"]
    assert _job("e2e.yml", "e2e")["environment"] == bootstrap["e2eEnvironment"]["default"]


def test_every_variable_the_workflows_read_is_one_make_bootstrap_prints():
    outputs = {
        "repository": "o/r",
        "defaultBranch": "main",
        "repositoryVariables": dict.fromkeys(
            [
                "AWS_REGION",
                "PULUMI_BACKEND_URL",
                "PULUMI_SECRETS_PROVIDER",
                "AWS_PREVIEW_ROLE_ARN",
                "AWS_DRIFT_ROLE_ARN",
            ],
            "x",
        ),
        "environmentVariables": {
            "dev": {"AWS_DEPLOY_ROLE_ARN": "x"},
            "e2e": {"AWS_E2E_ROLE_ARN": "x"},
        },
    }
    printed = "\n".join(repository.commands(outputs))
    read = set()
    for path in WORKFLOWS.glob("*.yml"):
        read |= set(re.findall(r"vars\.(\w+)", path.read_text()))
    assert read
    for name in read:
        assert f"gh variable set {name} " in printed, name


def test_ci_plans_the_example_app_stack_and_it_plans_offline():
    examples = [e for e in stacks.discover(ROOT) if e["project"] != "."]
    assert {
        "project": "examples/app-stack",
        "stack": "podinfo",
        "id": "examples-app-stack-podinfo",
        "policy_config": "",
    } in examples
    for entry in examples:
        recording = offline.run(ROOT / entry["project"], entry["stack"])
        assert recording.resources, entry
