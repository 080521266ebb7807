"""A first `pulumi up` of the dev stack needs nothing a new user does not have, and what it does
need is checked before anything is created: Docker to build the comments image, a git origin
Argo CD can read, and a creator that is not also listed as an admin. The offline runner stands
in for Docker and a missing origin, and says so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from app_platform import config, preflight
from app_platform_tools import offline, plan

ROOT = Path(__file__).resolve().parent.parent
APPLICATION_SET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"
ROLE = "arn:aws:iam::123456789012:role/platform/deployer"
SESSION = "arn:aws:sts::123456789012:assumed-role/deployer/alice@example.com"


@pytest.fixture
def no_tools(tmp_path, monkeypatch) -> None:
    """A machine with neither docker nor git on PATH."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def refused(run_stack, overrides=None, **kwargs) -> tuple[str, offline.Recording]:
    recording = offline.Recording(project="app-platform", stack="dev")
    with pytest.raises(config.ConfigError) as raised:
        run_stack(overrides, recording=recording, **kwargs)
    return str(raised.value), recording


def test_without_docker_a_real_run_stops_before_anything_and_names_the_image_key(
    run_stack, no_tools
):
    # Only the origin is stood in for: the build must really find Docker.
    stand_ins = preflight.StandIns(git_origin=offline.OFFLINE_GIT_ORIGIN)
    message, recording = refused(run_stack, stand_ins=stand_ins)
    assert "config 'apps.comments.build' = \"apps/comments\" cannot be built here" in message
    assert "the docker command is not on PATH" in message
    assert "set 'apps.comments.image' to a pinned image reference instead of build" in message
    assert recording.resources == []


def test_a_published_image_needs_no_docker(run_stack, no_tools):
    image = "ghcr.io/acme/comments:1.2.0@sha256:" + "ab" * 32
    values = offline.load_stack_config(ROOT, "dev").values
    comments = json.loads(values["app-platform:apps"])["comments"]
    comments.pop("build")
    recording = run_stack(
        {"apps": {"comments": {**comments, "image": image}}},
        stand_ins=preflight.StandIns(git_origin=offline.OFFLINE_GIT_ORIGIN),
    )
    deployment = recording.one("kubernetes:apps/v1:Deployment", "platform-dev-comments-deployment")
    deployment = deployment.inputs["spec"]["template"]
    assert deployment["spec"]["containers"][0]["image"] == image
    assert recording.of_type("docker-build:index:Image") == []


def test_without_a_usable_origin_a_real_run_stops_and_names_gitops_repo_url(run_stack, no_tools):
    message, recording = refused(run_stack, stand_ins=preflight.StandIns(docker=True))
    assert (
        "config 'gitopsRepoUrl' is empty, which means this checkout's git origin, and git is "
        "not on PATH: set gitopsRepoUrl to the URL of a repository Argo CD can read"
    ) in message
    assert recording.resources == []


def test_every_missing_thing_is_reported_at_once(run_stack, no_tools):
    message, _ = refused(run_stack, stand_ins=preflight.StandIns())
    assert "apps.comments.image" in message and "gitopsRepoUrl" in message


def test_gitops_repo_url_when_set_needs_no_origin(run_stack, no_tools):
    recording = run_stack(
        {"gitopsRepoUrl": "https://github.com/acme/manifests.git"},
        stand_ins=preflight.StandIns(docker=True),
    )
    spec = recording.one(APPLICATION_SET).inputs["spec"]
    assert spec["generators"][0]["git"]["repoURL"] == "https://github.com/acme/manifests.git"


def test_argo_cd_reads_the_checkouts_origin_as_https(run_stack, tmp_path, monkeypatch):
    repository = tmp_path / "checkout.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repository)], check=True)
    origin = ["remote", "add", "origin", "git@github.com:acme/p.git"]
    subprocess.run(["git", "--git-dir", str(repository), *origin], check=True)
    monkeypatch.setenv("GIT_DIR", str(repository))
    stand_ins = offline.offline_stand_ins()
    recording = run_stack(stand_ins=stand_ins)
    spec = recording.one(APPLICATION_SET).inputs["spec"]
    assert spec["generators"][0]["git"]["repoURL"] == "https://github.com/acme/p.git"
    assert spec["template"]["spec"]["source"]["repoURL"] == "https://github.com/acme/p.git"
    assert not any("gitopsRepoUrl" in note for note in stand_ins.used)


def test_the_offline_plan_stands_in_for_docker_and_a_missing_origin_and_says_so(no_tools):
    stand_ins = offline.offline_stand_ins()
    recording = offline.run(ROOT, "dev", stand_ins=stand_ins)
    spec = recording.one(APPLICATION_SET).inputs["spec"]
    assert spec["generators"][0]["git"]["repoURL"] == offline.OFFLINE_GIT_ORIGIN
    image = recording.one("docker-build:index:Image")
    assert image.outputs["digest"].startswith("sha256:")
    text = plan.render_text(recording, stand_ins.used)
    assert "Stood in for (not real in this plan):" in text
    assert "  - Docker: image builds are mocked and get fake digests" in text
    assert (
        f"  - gitopsRepoUrl: git is not on PATH; planned with {offline.OFFLINE_GIT_ORIGIN} instead"
    ) in text
    assert plan.to_json(recording, stand_ins.used)["stoodIn"] == stand_ins.used


@pytest.fixture
def caller() -> offline.Caller:
    """The mocked AWS says the program runs in an SSO-like session of ROLE (path and all)."""
    return offline.Caller(arn=SESSION, session_issuers={SESSION: ROLE})


@pytest.mark.parametrize("listed", [ROLE, "arn:aws:iam::123456789012:role/deployer"])
def test_the_creator_listed_as_an_admin_stops_the_run_before_anything(run_stack, caller, listed):
    admins = ["arn:aws:iam::123456789012:role/sso-admins", listed]
    message, recording = refused(run_stack, {"adminRoleArns": admins}, caller=caller)
    assert (
        f"config 'adminRoleArns' lists \"{listed}\", the role this program runs as ({ROLE}): "
        "EKS already gives the cluster's creator admin access"
    ) in message
    assert "sso-admins" not in message
    assert recording.resources == []


def test_other_admins_than_the_creator_get_access_entries(run_stack, caller):
    admins = ["arn:aws:iam::123456789012:role/sso-admins"]
    recording = run_stack({"adminRoleArns": admins}, caller=caller)
    cluster = recording.one("eks:index:Cluster").inputs
    principals = [entry["principalArn"] for entry in cluster["accessEntries"].values()]
    assert principals == admins


def test_an_app_stack_creates_no_cluster_and_asks_for_no_creator(run_stack, monkeypatch):
    def asked() -> str:
        raise AssertionError("an app stack looked up its caller")

    monkeypatch.setattr(preflight, "caller_arn", asked)
    recording = run_stack({"adminRoleArns": [ROLE]}, stack="podinfo")
    assert recording.of_type("eks:index:Cluster") == []
    # A platform stack does ask.
    with pytest.raises(AssertionError, match="looked up its caller"):
        run_stack({"adminRoleArns": [ROLE]})
