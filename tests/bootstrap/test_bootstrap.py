"""The bootstrap stack: state bucket, secrets key, GitHub's OIDC provider and four CI roles,
each trusted only where its workflow runs and allowed only what that workflow does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_access import config, documents, repository

from app_platform_tools import offline, secrets

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "bootstrap"
E2E_WORKFLOW = ROOT / ".github" / "workflows" / "e2e.yml"
PROVIDER_ARN = (
    f"arn:aws:iam::{offline.ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
)
REPO = "example-org/app-platform"
CLAIM = "token.actions.githubusercontent.com"
WRITES = re.compile(r"^(s3:(Put|Delete)|kms:(Encrypt|GenerateDataKey))")
# IAM service prefixes of AWS resource types whose module is not the prefix itself.
SERVICE_OF = {
    "aws:cloudwatch/logGroup": "logs",
    "aws:cloudwatch/eventRule": "events",
    "aws:cloudwatch/eventTarget": "events",
    "aws:vpc": "ec2",
}
# What pulumi-eks components create and look up underneath.
EKS_COMPONENT_SERVICES = {"eks", "iam", "ec2", "ssm", "autoscaling"}


def document(value: Any) -> dict[str, Any]:
    """A recorded policy input as the JSON document AWS receives."""
    return json.loads(secrets.unwrap(value))


def trust(recording: offline.Recording, role: str) -> dict:
    (statement,) = document(recording.one("aws:iam/role:Role", role).inputs["assumeRolePolicy"])[
        "Statement"
    ]
    return statement


def inline_actions(recording: offline.Recording, role: str) -> set[str]:
    actions: set[str] = set()
    for policy in recording.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.name.startswith(f"{role}-"):
            for statement in document(policy.inputs["policy"])["Statement"]:
                if statement["Effect"] == "Allow":
                    actions |= set(statement["Action"])
    return actions


def managed(recording: offline.Recording, role: str) -> set[str]:
    return {
        a.inputs["policyArn"]
        for a in recording.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith(f"{role}-")
    }


def test_the_state_bucket_is_versioned_private_encrypted_with_the_key_and_tls_only(bootstrap):
    bucket = bootstrap.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"app-platform-state-{offline.ACCOUNT_ID}-us-east-1"
    versioning = bootstrap.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    block = bootstrap.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k]
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    owner = bootstrap.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert owner["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    (rule,) = bootstrap.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"]
    key = bootstrap.one("aws:kms/key:Key")
    default = rule["applyServerSideEncryptionByDefault"]
    assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]}
    (deny,) = document(bootstrap.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])[
        "Statement"
    ]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert f"arn:aws:s3:::{bucket.inputs['bucket']}/*" in deny["Resource"]


def test_stack_secrets_have_a_rotated_key_behind_the_alias_ci_uses(bootstrap):
    key = bootstrap.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    alias = bootstrap.one("aws:kms/alias:Alias")
    assert alias.inputs["name"] == "alias/app-platform-secrets"
    assert alias.inputs["targetKeyId"] == key.outputs["keyId"]
    variables = bootstrap.outputs["repositoryVariables"].value
    assert variables["PULUMI_SECRETS_PROVIDER"] == (
        "awskms://alias/app-platform-secrets?region=us-east-1"
    )
    assert variables["PULUMI_BACKEND_URL"] == (
        f"s3://app-platform-state-{offline.ACCOUNT_ID}-us-east-1?region=us-east-1"
    )


def test_githubs_oidc_provider_is_created_without_thumbprints(bootstrap):
    provider = bootstrap.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]
    assert "thumbprintLists" not in provider


def test_an_existing_oidc_provider_is_trusted_instead_of_created_again(run_bootstrap):
    existing = "arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com"
    recording = run_bootstrap({"oidcProviderArn": existing})
    assert not recording.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    for role in ("preview", "drift", "deploy", "e2e"):
        assert trust(recording, role)["Principal"] == {"Federated": existing}


WORKFLOWS = f"{REPO}/.github/workflows"


@pytest.mark.parametrize(
    ("role", "subject", "workflow"),
    [
        ("preview", f"repo:{REPO}:pull_request", f"{WORKFLOWS}/preview.yml@refs/pull/*"),
        ("drift", f"repo:{REPO}:ref:refs/heads/main", f"{WORKFLOWS}/drift.yml@refs/heads/main"),
        ("deploy", f"repo:{REPO}:environment:dev", f"{WORKFLOWS}/deploy.yml@refs/heads/main"),
        ("e2e", f"repo:{REPO}:environment:e2e", f"{WORKFLOWS}/e2e.yml@refs/heads/main"),
    ],
)
def test_each_role_trusts_one_subject_and_one_workflow(bootstrap, role, subject, workflow):
    statement = trust(bootstrap, role)
    assert statement["Principal"] == {"Federated": PROVIDER_ARN}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = {k: v for test in statement["Condition"].values() for k, v in test.items()}
    assert conditions == {
        f"{CLAIM}:aud": "sts.amazonaws.com",
        f"{CLAIM}:sub": subject,
        f"{CLAIM}:job_workflow_ref": workflow,
    }
    # Wildcards only where GitHub puts the pull request number.
    assert "*" not in subject and "*" not in json.dumps(statement["Condition"]["StringEquals"])


@pytest.mark.parametrize("role", ["preview", "drift"])
def test_preview_and_drift_read_but_cannot_write_state_or_encrypt(bootstrap, role):
    assert managed(bootstrap, role) == {"arn:aws:iam::aws:policy/ReadOnlyAccess"}
    actions = inline_actions(bootstrap, role)
    assert {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"} <= actions
    assert not {a for a in actions if WRITES.match(a)}, actions


def test_deploy_writes_state_and_is_denied_the_ci_roles_key_and_bucket_settings(bootstrap):
    actions = inline_actions(bootstrap, "deploy")
    assert {"s3:PutObject", "kms:Encrypt", "kms:Decrypt", "iam:CreateRole"} <= actions
    assert not managed(bootstrap, "deploy")
    role = bootstrap.one("aws:iam/role:Role", "deploy")
    assert role.inputs["maxSessionDuration"] >= 5400  # deploy.yml's role-duration-seconds
    policy = document(
        bootstrap.one("aws:iam/rolePolicy:RolePolicy", "deploy-deploy").inputs["policy"]
    )
    denied = {
        resource
        for statement in policy["Statement"]
        if statement["Effect"] == "Deny"
        for resource in statement["Resource"]
        if isinstance(statement["Resource"], list)
    }
    key = bootstrap.one("aws:kms/key:Key").outputs["arn"]
    assert {
        f"arn:aws:iam::{offline.ACCOUNT_ID}:role/app-platform-ci-*",
        PROVIDER_ARN,
        key,
    } <= denied


def policies_of(recording: offline.Recording, role: str) -> dict[str, str]:
    """Inline policy documents of a role, by the name after `<role>-`."""
    return {
        policy.name.removeprefix(f"{role}-"): secrets.unwrap(policy.inputs["policy"])
        for policy in recording.of_type("aws:iam/rolePolicy:RolePolicy")
        if policy.name.startswith(f"{role}-")
    }


def test_e2e_deploys_like_deploy_and_may_also_run_the_leftover_search(bootstrap):
    e2e = policies_of(bootstrap, "e2e")
    # The same documents, deny statements included: never the CI roles, key or bucket settings.
    assert {name: e2e[name] for name in ("state-write", "deploy")} == policies_of(
        bootstrap, "deploy"
    )
    assert set(e2e) == {"state-write", "deploy", "leftover-search"}
    (search,) = document(e2e["leftover-search"])["Statement"]
    assert search["Effect"] == "Allow"
    assert "tag:GetResources" in search["Action"]
    assert all(
        action.split(":")[1].startswith(("Describe", "Get", "List")) for action in search["Action"]
    )
    assert not managed(bootstrap, "e2e")


def test_the_e2e_role_outlasts_the_e2e_job(bootstrap):
    (job,) = yaml.safe_load(E2E_WORKFLOW.read_text())["jobs"].values()
    (credentials,) = [
        step["with"]
        for step in job["steps"]
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    ]
    session = bootstrap.one("aws:iam/role:Role", "e2e").inputs["maxSessionDuration"]
    assert session >= job["timeout-minutes"] * 60
    assert session >= int(credentials["role-duration-seconds"])
    assert session <= 12 * 3600  # IAM's maximum


def _service(resource_type: str) -> set[str]:
    if resource_type.startswith("eks:"):
        return EKS_COMPONENT_SERVICES
    module = resource_type.split("/")[0]
    typed = resource_type.rsplit(":", 1)[0]
    return {SERVICE_OF.get(typed) or SERVICE_OF.get(module) or module.split(":")[1]}


def test_deploy_may_act_on_every_aws_service_the_dev_stack_uses(bootstrap, dev):
    allowed = {action.split(":")[0] for action in inline_actions(bootstrap, "deploy")}
    used = set().union(
        *(_service(r.type) for r in dev.resources if r.type.startswith(("aws:", "eks:")))
    )
    assert used - allowed == set(), "deploy.json lacks these services"


def test_outputs_are_exactly_the_repository_settings(bootstrap):
    assert set(bootstrap.outputs) == {
        "repository",
        "defaultBranch",
        "repositoryVariables",
        "environmentVariables",
    }
    assert set(bootstrap.outputs["repositoryVariables"].value) == {
        "AWS_REGION",
        "PULUMI_BACKEND_URL",
        "PULUMI_SECRETS_PROVIDER",
        "AWS_PREVIEW_ROLE_ARN",
        "AWS_DRIFT_ROLE_ARN",
    }
    assert bootstrap.outputs["environmentVariables"].value == {
        "dev": {"AWS_DEPLOY_ROLE_ARN": f"arn:aws:iam::{offline.ACCOUNT_ID}:role/deploy"},
        "e2e": {"AWS_E2E_ROLE_ARN": f"arn:aws:iam::{offline.ACCOUNT_ID}:role/e2e"},
    }
    assert not any(output.secret for output in bootstrap.outputs.values())


def test_make_bootstrap_prints_one_command_per_setting(bootstrap):
    outputs = {name: output.value for name, output in bootstrap.outputs.items()}
    lines = repository.commands(outputs, ["dev", "podinfo"])
    variables = [line for line in lines if line.startswith("gh variable set ")]
    assert len(variables) == 7
    deploy = next(line for line in variables if "AWS_DEPLOY_ROLE_ARN" in line)
    assert f"--repo {REPO} --env dev --body" in deploy
    e2e = next(line for line in variables if "AWS_E2E_ROLE_ARN" in line)
    assert f"--repo {REPO} --env e2e --body" in e2e
    # The passphrase CI no longer reads goes, from the repository and each environment.
    deleted = [line for line in lines if line.startswith("gh secret delete ")]
    assert deleted == [
        f"gh secret delete PULUMI_CONFIG_PASSPHRASE --repo {REPO}{scope} 2>/dev/null || true"
        for scope in ("", " --env dev", " --env e2e")
    ]
    # Each environment is created, and only the default branch may run jobs in it.
    for environment in ("dev", "e2e"):
        assert any(f"environments/{environment} --input -" in line for line in lines)
        branch = f"environments/{environment}/deployment-branch-policies -f name=main"
        assert any(branch in line for line in lines), environment
    assert "pulumi stack init podinfo --secrets-provider" in "\n".join(lines)


def test_bad_settings_are_all_reported_before_any_resource(run_bootstrap):
    recording = offline.Recording(project="app-platform-bootstrap", stack="example")
    with pytest.raises(config.ConfigError) as raised:
        run_bootstrap(
            {"githubRepository": "not a repo", "defaultBranch": 'ma"in', "stateBucket": "UP"},
            recording=recording,
        )
    message = str(raised.value)
    for key in ("githubRepository", "defaultBranch", "stateBucket"):
        assert f"app-platform-bootstrap:{key}" in message
    assert "'not a repo'" in message
    assert not recording.resources


def test_the_e2e_role_cannot_share_the_deploy_roles_environment(run_bootstrap):
    with pytest.raises(config.ConfigError, match=r"app-platform-bootstrap:e2eEnvironment = 'dev'"):
        run_bootstrap({"e2eEnvironment": "dev"})


def test_a_value_cannot_change_a_documents_structure():
    rendered = documents.render(
        "trust-preview", provider_arn=PROVIDER_ARN, repository='x"}, "Effect": "Allow'
    )
    (statement,) = json.loads(rendered)["Statement"]
    assert statement["Effect"] == "Allow" and len(statement) == 5
    with pytest.raises(KeyError):
        documents.render("trust-preview", repository=REPO)
