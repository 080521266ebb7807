"""What the program asks outside its config: the git origin as Argo CD's repository, whether
Docker can build, and who runs it. Each answer is checked here on its own; the stack tests
check what the program does with them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app_platform import preflight


@pytest.mark.parametrize(
    ("origin", "https"),
    [
        ("git@github.com:acme/platform.git", "https://github.com/acme/platform.git"),
        ("git@gitlab.example.com:group/sub/platform", "https://gitlab.example.com/group/sub/platform"),
        ("ssh://git@github.com/acme/platform.git", "https://github.com/acme/platform.git"),
        ("ssh://git@git.example.com:2222/acme/platform.git", "https://git.example.com/acme/platform.git"),
        ("ssh://github.com/acme/platform.git", "https://github.com/acme/platform.git"),
        ("https://github.com/acme/platform.git", "https://github.com/acme/platform.git"),
        ("https://github.com/acme/platform", "https://github.com/acme/platform"),
        ("https://x-access-token:ghs_abc123@github.com/acme/platform.git", "https://github.com/acme/platform.git"),
        ("https://alice@git.example.com:8443/acme/platform.git", "https://git.example.com:8443/acme/platform.git"),
        ("  git@github.com:acme/platform.git\n", "https://github.com/acme/platform.git"),
    ],
)  # fmt: skip
def test_origins_on_a_git_server_become_https_urls(origin, https):
    assert preflight.https_repo_url(origin) == https


@pytest.mark.parametrize(
    "origin",
    [
        "/srv/git/platform.git",
        "../platform",
        "file:///srv/git/platform.git",
        "http://git.example.com/acme/platform.git",
        "git://git.example.com/acme/platform.git",
        "https://github.com/",
        "C:/repos/platform",
        "",
    ],
)
def test_origins_that_name_no_repository_on_a_server_give_none(origin):
    assert preflight.https_repo_url(origin) is None


# Credentials from one alphabet, host and path from another: neither can hide in the other.
SECRETS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", min_size=1, max_size=40)
LABELS = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


# Derandomized and without an example database: the same cases on every run and machine.
@settings(derandomize=True, database=None)
@given(
    user=SECRETS,
    password=st.one_of(st.none(), SECRETS),
    host=st.lists(LABELS, min_size=2, max_size=4).map(".".join),
    path=st.lists(LABELS, min_size=1, max_size=4).map("/".join),
    suffix=st.sampled_from(["", ".git"]),
)
def test_credentials_never_survive_in_an_https_origin(user, password, host, path, suffix):
    userinfo = user if password is None else f"{user}:{password}"
    url = preflight.https_repo_url(f"https://{userinfo}@{host}/{path}{suffix}")
    assert url == f"https://{host}/{path}{suffix}"
    assert preflight.without_credentials(f"https://{userinfo}@{host}/{path}") == (
        f"https://{host}/{path}"
    )


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    git("init", "-q", cwd=tmp_path)
    return tmp_path


def test_the_checkouts_origin_is_read_and_converted(checkout):
    git("remote", "add", "origin", "git@github.com:acme/platform.git", cwd=checkout)
    assert preflight.git_origin(checkout) == ("https://github.com/acme/platform.git", "")


def test_a_checkout_without_origin_says_so(checkout):
    git("remote", "add", "upstream", "git@github.com:acme/platform.git", cwd=checkout)
    url, problem = preflight.git_origin(checkout)
    assert url is None
    assert f"{checkout} has no git remote 'origin'" in problem


def test_an_origin_on_the_local_disk_is_not_a_repository_argo_cd_can_read(checkout):
    git("remote", "add", "origin", "/srv/git/platform.git", cwd=checkout)
    url, problem = preflight.git_origin(checkout)
    assert url is None
    assert "its origin '/srv/git/platform.git' is not a repository on a git server" in problem


def test_an_origin_with_a_token_is_never_printed(checkout):
    git("remote", "add", "origin", "http://bot:s3cr3t@git.example.com/acme/p.git", cwd=checkout)
    url, problem = preflight.git_origin(checkout)
    assert url is None and "s3cr3t" not in problem
    assert "'http://git.example.com/acme/p.git'" in problem


def test_without_git_there_is_no_origin(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.git_origin(tmp_path) == (None, "git is not on PATH")


def fake_docker(directory: Path, script: str) -> None:
    docker = directory / "docker"
    docker.write_text(f"#!/bin/sh\n{script}\n")
    docker.chmod(0o755)


def test_docker_is_available_when_its_daemon_answers(tmp_path, monkeypatch):
    fake_docker(tmp_path, 'echo "27.3.1"')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.docker_problem() is None


def test_docker_without_its_cli_is_not_available(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.docker_problem() == "the docker command is not on PATH"


def test_docker_whose_daemon_is_down_is_not_available(tmp_path, monkeypatch):
    fake_docker(
        tmp_path,
        "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2; exit 1",
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.docker_problem() == (
        "the Docker daemon is not answering (Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock.)"
    )


def test_docker_whose_daemon_hangs_is_not_available(tmp_path, monkeypatch):
    fake_docker(tmp_path, "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path))

    def hangs(command, **kwargs):
        assert kwargs["timeout"] == preflight.DOCKER_PROBE_TIMEOUT_SECONDS
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(preflight.subprocess, "run", hangs)
    assert preflight.docker_problem() == (
        f"the Docker daemon did not answer within {preflight.DOCKER_PROBE_TIMEOUT_SECONDS} seconds"
    )


@pytest.mark.parametrize(
    ("caller", "same"),
    [
        ("arn:aws:iam::123456789012:role/admins", True),
        ("arn:aws:iam::123456789012:role/a/b/admins", True),
        ("arn:aws:iam::210987654321:role/admins", False),
        ("arn:aws:iam::123456789012:role/admins-2", False),
        ("arn:aws:iam::123456789012:user/admins", False),
    ],
)
def test_one_role_with_or_without_its_path(caller, same):
    assert preflight.same_role("arn:aws:iam::123456789012:role/admins", caller) is same


def test_stand_ins_are_used_only_where_the_real_thing_is_missing(tmp_path, monkeypatch):
    fake_docker(tmp_path, "echo 'no daemon' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path))
    stand_ins = preflight.StandIns(docker=True, git_origin="https://git.invalid/x.git")
    preflight.use_stand_ins(stand_ins)
    try:
        found = preflight.look_up(tmp_path, docker=True, origin=True, caller=False)
    finally:
        preflight.use_stand_ins(None)
    assert found.docker_problem is None
    assert found.git_origin == ("https://git.invalid/x.git", "")
    assert stand_ins.used == [
        "Docker: image builds are mocked and get fake digests",
        "gitopsRepoUrl: git is not on PATH; planned with https://git.invalid/x.git instead",
    ]
    # Without stand-ins the same machine gets the real answers.
    real = preflight.look_up(tmp_path, docker=True, origin=True, caller=False)
    assert real.docker_problem == "the Docker daemon is not answering (no daemon)"
    assert real.git_origin == (None, "git is not on PATH")


def fake_buildx(directory: Path, driver: str, storage: str = "[[Backing Filesystem extfs]]"):
    """A docker CLI whose current builder has `driver` and whose daemon reports `storage`."""
    fake_docker(
        directory,
        f"""case "$1" in
  buildx) printf 'Name:          default\\nDriver:        {driver}\\n\\nNodes:\\n' ;;
  info) echo '{storage}' ;;
  *) exit 1 ;;
esac""",
    )


def test_docker_s_own_builder_on_the_classic_store_cannot_build_several_platforms(
    tmp_path, monkeypatch
):
    fake_buildx(tmp_path, "docker")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.multi_platform_problem() == (
        "the current buildx builder is Docker's own, on the classic image store"
    )


@pytest.mark.parametrize(
    ("driver", "storage"),
    [
        ("docker", "[[driver-type io.containerd.snapshotter.v1]]"),
        ("docker-container", "[[Backing Filesystem extfs]]"),
        ("kubernetes", ""),
    ],
)
def test_builders_that_make_multi_platform_images_pass(tmp_path, monkeypatch, driver, storage):
    fake_buildx(tmp_path, driver, storage)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.multi_platform_problem() is None


def test_without_an_answer_from_buildx_the_builder_is_not_judged(tmp_path, monkeypatch):
    fake_docker(tmp_path, "exit 1")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.multi_platform_problem() is None
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert preflight.multi_platform_problem() is None


def test_the_builder_is_asked_only_when_docker_answers(tmp_path, monkeypatch):
    fake_docker(
        tmp_path,
        """case "$1" in
  version) echo 27.3.1 ;;
  buildx) printf 'Driver: docker\\n' ;;
  info) echo '[]' ;;
esac""",
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    found = preflight.look_up(tmp_path, docker=True, origin=False, caller=False)
    assert found.docker_problem is None
    assert found.multi_platform_problem == (
        "the current buildx builder is Docker's own, on the classic image store"
    )
    preflight.use_stand_ins(preflight.StandIns(docker=True))
    try:
        mocked = preflight.look_up(tmp_path, docker=True, origin=False, caller=False)
    finally:
        preflight.use_stand_ins(None)
    assert mocked.multi_platform_problem is None
