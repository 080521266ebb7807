"""When `make e2e` runs at all, where its state and secrets go, and what it reads from a
stack's state."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import botocore.session
import pytest
import yaml
from pulumi import automation as auto

from tests.e2e import run

FOUND = "/usr/local/bin/pulumi"


@pytest.fixture
def no_aws_config(monkeypatch, tmp_path):
    """An environment where botocore finds no credentials anywhere (and asks no metadata
    service for them)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def reason(which):
    return run.skip_reason(which=which, session=botocore.session.Session())


def test_without_cli_and_credentials_both_are_named_on_one_line(no_aws_config):
    text = reason(lambda _: None)

    assert "\n" not in text
    assert "the Pulumi CLI is not on PATH" in text
    assert "botocore finds no AWS credentials" in text


def test_without_credentials_only_they_are_named(no_aws_config):
    assert reason(lambda _: FOUND) == (
        "botocore finds no AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)"
    )


def test_without_the_cli_only_it_is_named(no_aws_config, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    assert reason(lambda _: None).startswith("the Pulumi CLI is not on PATH")


def test_credentials_from_a_profile_file_are_enough(no_aws_config, monkeypatch):
    (no_aws_config / "credentials").write_text(
        "[sandbox]\naws_access_key_id = AKIATESTTESTTESTTEST\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "sandbox")

    assert reason(lambda _: FOUND) is None


def test_a_profile_that_does_not_exist_is_a_reason_to_skip_not_a_crash(no_aws_config, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "nowhere")

    assert "no AWS credentials" in reason(lambda _: FOUND)


def test_make_e2e_without_the_cli_prints_one_line_and_succeeds(no_aws_config, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(no_aws_config))
    monkeypatch.delenv("E2E_REQUIRE", raising=False)

    assert run.main() == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1
    assert printed[0].startswith("e2e skipped: the Pulumi CLI is not on PATH")


def test_where_the_check_is_required_a_skip_fails(no_aws_config, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(no_aws_config))
    monkeypatch.setenv("E2E_REQUIRE", "1")

    assert run.main() == 1
    assert capsys.readouterr().out.startswith("e2e skipped:")


def test_state_goes_to_the_given_backend_untouched(tmp_path):
    env = run.pulumi_env("e2e-1a2b3c", {"PULUMI_BACKEND_URL": "s3://state"}, tmp_path / "state")

    assert "PULUMI_BACKEND_URL" not in env
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in env
    assert not (tmp_path / "state").exists()


def test_local_state_gets_a_passphrase_file_only_its_owner_can_read(tmp_path):
    state = tmp_path / "state"

    env = run.pulumi_env("e2e-1a2b3c", {}, state)

    assert env["PULUMI_BACKEND_URL"] == state.as_uri()
    passphrase = state / "e2e-1a2b3c.passphrase"
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(passphrase)
    assert len(passphrase.read_text()) >= 32
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    # A passphrase given in the environment is used instead.
    again = run.pulumi_env("e2e-4d5e6f", {"PULUMI_CONFIG_PASSPHRASE": ""}, state)
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in again


KMS = "awskms://alias/app-platform-secrets?region=us-east-1"


def test_with_a_secrets_provider_no_passphrase_is_made_even_for_local_state(tmp_path):
    state = tmp_path / "state"

    env = run.pulumi_env("e2e-1a2b3c", {"PULUMI_SECRETS_PROVIDER": KMS}, state)

    assert env["PULUMI_BACKEND_URL"] == state.as_uri()
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in env
    assert list(state.iterdir()) == []


def test_an_empty_secrets_provider_is_none_as_an_unset_workflow_variable_arrives():
    assert run.secrets_provider({"PULUMI_SECRETS_PROVIDER": KMS}) == KMS
    assert run.secrets_provider({"PULUMI_SECRETS_PROVIDER": ""}) is None
    assert run.secrets_provider({}) is None


def test_the_vpcs_to_search_come_from_the_state_before_destroy():
    deployment = {
        "resources": [
            {"type": "pulumi:pulumi:Stack", "urn": "urn:pulumi:e2e::app-platform::stack"},
            {"type": "aws:ec2/vpc:Vpc", "id": "vpc-0a1b2c3d4e5f60718"},
            {"type": "aws:ec2/subnet:Subnet", "id": "subnet-0a1b2c3d4e5f60718"},
            # A VPC whose creation failed has no id.
            {"type": "aws:ec2/vpc:Vpc"},
        ]
    }

    assert run.vpc_ids(deployment) == ("vpc-0a1b2c3d4e5f60718",)
    assert run.vpc_ids({}) == ()


# ---------------------------------------------------------------------------------------------
# The run's order: deploy, check, then always destroy, search, and remove only an empty stack
# ---------------------------------------------------------------------------------------------

VPC = "vpc-0a1b2c3d4e5f60718"


class FakeStack:
    """Stands in for the Automation API's Stack: records what the run asks of it."""

    def __init__(self, name: str, work_dir: str, up_error=None, destroy_failures: int = 0):
        self.name = name
        self.work_dir = work_dir
        self.up_error = up_error
        self.destroy_failures = destroy_failures
        self.calls: list[object] = []
        self.workspace = self

    def up(self, **options):
        assert options["show_secrets"] is False and options["suppress_outputs"] is True
        self.calls.append("up")
        if self.up_error:
            raise self.up_error

    def outputs(self):
        domain = f"{self.name}.app-platform.test"
        return {
            "loadBalancerHostname": auto.OutputValue("k8s-edge.elb.amazonaws.com", False),
            "appUrls": auto.OutputValue({"comments": f"http://comments.{domain}"}, False),
            "grafanaUrl": auto.OutputValue(f"http://grafana.{domain}", False),
            "argocdUrl": auto.OutputValue(f"http://argocd.{domain}", False),
            "grafanaAdminPassword": auto.OutputValue("s3cret-never-read", True),
        }

    def export_stack(self):
        return auto.Deployment(3, {"resources": [{"type": "aws:ec2/vpc:Vpc", "id": VPC}]})

    def destroy(self, **options):
        assert options["show_secrets"] is False
        self.calls.append(("destroy", options["refresh"]))
        if self.destroy_failures:
            self.destroy_failures -= 1
            raise auto.CommandError("DependencyViolation")

    def remove_stack(self, name):
        self.calls.append(("remove", name))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory with the real Pulumi.yaml and dev stack file, and every outside
    effect of the run replaced: the skip decision, the stack, the checks, the search."""
    root = run.ROOT
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((root / name).read_text())
    monkeypatch.setattr(run, "skip_reason", lambda: None)
    monkeypatch.setattr(run, "DESTROY_RETRY_PAUSE_S", 0)
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    monkeypatch.delenv("PULUMI_SECRETS_PROVIDER", raising=False)
    state = SimpleNamespace(stack=None, options={}, checks=[], searches=[], leftovers=[])

    def create_stack(name, work_dir, opts):
        state.stack = FakeStack(name, work_dir, **state.options)
        state.env = dict(opts.env_vars)
        state.secrets_provider = opts.secrets_provider
        return state.stack

    def run_all(plan):
        state.checks = [name for name, _ in plan]
        return state.failures

    def search(scope, region, wait):
        state.searches.append((scope, region, wait))
        return state.leftovers

    monkeypatch.setattr(run.auto, "create_stack", create_stack)
    monkeypatch.setattr(run.checks, "run_all", run_all)
    monkeypatch.setattr(run, "search_leftovers", search)
    state.failures = []
    state.root = tmp_path
    return state


def main(project) -> int:
    return run.main(project.root, project.root / ".pulumi-state")


def test_a_passing_run_destroys_searches_and_removes_the_stack(project, capsys):
    assert main(project) == 0

    stack = project.stack
    assert stack.calls == ["up", ("destroy", False), ("remove", stack.name)]
    assert project.checks == [
        "comments API: post a comment",
        "comments API: list it back",
        "Grafana login page",
        "Argo CD login page",
    ]
    ((scope, region, wait),) = project.searches
    assert (scope.prefix, scope.vpc_ids, scope.stack_tags["stack"]) == (
        f"platform-{stack.name}",
        (VPC,),
        stack.name,
    )
    assert (region, wait) == ("us-east-1", True)
    # The laptop default: local state, secrets under a passphrase made for the run.
    assert project.secrets_provider is None
    assert not Path(project.env["PULUMI_CONFIG_PASSPHRASE_FILE"]).exists()
    written = yaml.safe_load((project.root / f"Pulumi.{stack.name}.yaml").read_text())
    assert written["config"]["aws:defaultTags"]["tags"]["stack"] == stack.name
    out = capsys.readouterr().out
    assert out.rstrip().endswith("e2e: PASSED")
    assert "s3cret-never-read" not in out


def test_cis_backend_and_secrets_provider_go_to_stack_init_and_no_passphrase_is_made(
    project, monkeypatch
):
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://app-platform-state?region=us-east-1")
    monkeypatch.setenv("PULUMI_SECRETS_PROVIDER", KMS)

    assert main(project) == 0

    assert project.secrets_provider == KMS
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in project.env
    assert "PULUMI_BACKEND_URL" not in project.env  # the one given, inherited as it is
    assert not (project.root / ".pulumi-state").exists()


def test_a_failed_check_still_destroys_and_fails_the_run(project, capsys):
    project.failures = ["Grafana login page: 502 without '<title>Grafana</title>'"]

    assert main(project) == 1

    assert project.stack.calls == ["up", ("destroy", False), ("remove", project.stack.name)]
    assert "  - Grafana login page: 502" in capsys.readouterr().out


def test_a_failed_up_skips_the_checks_but_not_the_destroy(project):
    project.options = {"up_error": auto.CommandError("boom")}

    assert main(project) == 1

    assert project.checks == []
    assert project.stack.calls == ["up", ("destroy", False), ("remove", project.stack.name)]


def test_an_interrupted_up_is_still_destroyed(project):
    project.options = {"up_error": KeyboardInterrupt()}

    with pytest.raises(KeyboardInterrupt):
        main(project)

    assert ("destroy", False) in project.stack.calls


def test_a_destroy_that_keeps_failing_keeps_the_stack_and_says_how_to_finish(project, capsys):
    project.options = {"destroy_failures": 2}

    assert main(project) == 1

    stack = project.stack
    # Retried once, refreshing first; never removed, so its state is not lost.
    assert stack.calls == ["up", ("destroy", False), ("destroy", True)]
    assert project.searches[0][2] is False
    out = capsys.readouterr().out
    assert f"pulumi destroy --stack {stack.name}" in out
    assert "pulumi destroy failed 2 times" in out
    assert Path(project.env["PULUMI_CONFIG_PASSPHRASE_FILE"]).exists()


def test_leftovers_fail_a_run_whose_checks_passed(project, capsys):
    project.leftovers = ["1 resource(s) left after destroy (listed above)"]

    assert main(project) == 1

    assert "1 resource(s) left after destroy" in capsys.readouterr().out
