"""Bootstrap: once per AWS account, everything CI needs before any stack exists.

- the S3 bucket for Pulumi state (versioned, encrypted with the secrets key, no public access,
  TLS only) and the KMS key that encrypts stack secrets (awskms secrets provider);
- GitHub's OIDC provider, and four roles with separate trust (policies/trust-*.json):
  preview (pull requests; read-only), drift (the drift workflow of the default branch;
  read-only), deploy (the deploy workflow of the default branch, in its environment) and e2e
  (the e2e workflow of the default branch, in its own environment: deploys and destroys
  throwaway stacks, then searches the account for what they left).

Its outputs are the repository settings CI reads; `make bootstrap` prints them as commands.
"""

import pulumi
import pulumi_aws as aws
from ci_access import config, documents

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
KEY_DELETION_WINDOW_DAYS = 30
# A full first `pulumi up` of the platform takes about 40 minutes; deploy.yml asks for 90.
DEPLOY_SESSION_SECONDS = 2 * 3600
# e2e.yml's job timeout (150 minutes: up, destroy, leftover search), so its credentials
# outlast the job and the destroy at its end is never cut off.
E2E_SESSION_SECONDS = 150 * 60

account_id = aws.get_caller_identity().account_id
partition = aws.get_partition().partition
settings = config.load(account_id)
# Losing either would lose every stack's state or secrets: `pulumi destroy` refuses them.
kept = pulumi.ResourceOptions(protect=True)


def secrets_key() -> aws.kms.Key:
    key = aws.kms.Key(
        "secrets",
        description="Pulumi stack secrets and state (app-platform)",
        enable_key_rotation=True,
        deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
        opts=kept,
    )
    aws.kms.Alias("secrets", name=f"alias/{settings.secrets_key_alias}", target_key_id=key.key_id)
    return key


def state_bucket(key: aws.kms.Key) -> aws.s3.Bucket:
    bucket = aws.s3.Bucket("state", bucket=settings.state_bucket, opts=kept)
    owner = aws.s3.BucketOwnershipControls(
        "state", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}
    )
    private = aws.s3.BucketPublicAccessBlock(
        "state",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    aws.s3.BucketVersioning(
        "state", bucket=bucket.id, versioning_configuration={"status": "Enabled"}
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        "state",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": key.arn,
                },
                "bucket_key_enabled": True,
            }
        ],
    )
    aws.s3.BucketPolicy(
        "state-tls-only",
        bucket=bucket.id,
        policy=documents.output("bucket-policy", bucket_arn=bucket.arn),
        opts=pulumi.ResourceOptions(depends_on=[owner, private]),
    )
    return bucket


def github_provider_arn() -> pulumi.Input[str]:
    if settings.oidc_provider_arn:
        return settings.oidc_provider_arn
    # No thumbprints: AWS validates GitHub's certificate against its own trusted CAs.
    provider = aws.iam.OpenIdConnectProvider(
        "github", url=GITHUB_OIDC_URL, client_id_lists=[GITHUB_OIDC_AUDIENCE]
    )
    return provider.arn


def ci_role(
    name: str,
    description: str,
    policies: dict[str, pulumi.Input[str]],
    *,
    environment: str | None = None,
    **role_args,
) -> aws.iam.Role:
    """A role trusted as policies/trust-<name>.json says, with inline `policies` attached.
    Only a trust that names an environment is given one (a missing value fails the render)."""
    values = {
        "provider_arn": provider_arn,
        "repository": settings.repository,
        "default_branch": settings.default_branch,
    }
    if environment is not None:
        values["environment"] = environment
    trust = documents.output(f"trust-{name}", **values)
    role = aws.iam.Role(
        name,
        name=f"{settings.role_prefix}-{name}",
        description=description,
        assume_role_policy=trust,
        **role_args,
    )
    for policy_name, document in policies.items():
        aws.iam.RolePolicy(f"{name}-{policy_name}", role=role.id, policy=document)
    return role


def read_only(name: str, description: str, state_read: pulumi.Input[str]) -> aws.iam.Role:
    role = ci_role(name, description, {"state-read": state_read})
    aws.iam.RolePolicyAttachment(
        f"{name}-read-only",
        role=role.name,
        policy_arn=documents.managed_policy_arn(partition, documents.READ_ONLY_ACCESS),
    )
    return role


key = secrets_key()
bucket = state_bucket(key)
provider_arn = github_provider_arn()
state_read = documents.output("state-read", bucket_arn=bucket.arn, key_arn=key.arn)
preview = read_only("preview", "pulumi preview of pull requests", state_read)
drift = read_only("drift", "Nightly drift check of the default branch", state_read)
# What `pulumi up` and `pulumi destroy` of a platform stack need: the deploy and e2e roles.
deploys = {
    "state-write": documents.output("state-write", bucket_arn=bucket.arn, key_arn=key.arn),
    "deploy": documents.output(
        "deploy",
        partition=partition,
        account_id=account_id,
        role_prefix=settings.role_prefix,
        provider_arn=provider_arn,
        key_arn=key.arn,
        key_alias=settings.secrets_key_alias,
        bucket_arn=bucket.arn,
    ),
}
deploy = ci_role(
    "deploy",
    f"pulumi up from the default branch in environment {settings.deploy_environment}",
    deploys,
    environment=settings.deploy_environment,
    max_session_duration=DEPLOY_SESSION_SECONDS,
)
# The leftover search's reads are listed apart, so a narrower deploy.json cannot break them.
e2e = ci_role(
    "e2e",
    f"Throwaway stacks of the e2e workflow of the default branch in {settings.e2e_environment}",
    {**deploys, "leftover-search": documents.render("leftover-search")},
    environment=settings.e2e_environment,
    max_session_duration=E2E_SESSION_SECONDS,
)

pulumi.export("repository", settings.repository)
pulumi.export("defaultBranch", settings.default_branch)
pulumi.export(
    "repositoryVariables",
    {
        "AWS_REGION": settings.region,
        "PULUMI_BACKEND_URL": bucket.bucket.apply(lambda b: f"s3://{b}?region={settings.region}"),
        "PULUMI_SECRETS_PROVIDER": (
            f"awskms://alias/{settings.secrets_key_alias}?region={settings.region}"
        ),
        "AWS_PREVIEW_ROLE_ARN": preview.arn,
        "AWS_DRIFT_ROLE_ARN": drift.arn,
    },
)
pulumi.export(
    "environmentVariables",
    {
        settings.deploy_environment: {"AWS_DEPLOY_ROLE_ARN": deploy.arn},
        settings.e2e_environment: {"AWS_E2E_ROLE_ARN": e2e.arn},
    },
)
