"""What the program learns outside its config before it registers anything.

Three settings depend on the machine or on AWS rather than on the stack file alone:

- an app that says `build` needs Docker here: its CLI on PATH and its daemon answering, and
  for nodes of several architectures a builder that makes multi-platform images;
- an empty `gitopsRepoUrl` means "this checkout's `origin`", read with git;
- the identity running the program creates the cluster, and EKS gives it an access entry of
  its own, so it must not be in `adminRoleArns`.

`config.load()` asks these questions only when the config needs the answers, and reports any
problem with the config's other mistakes. A run that cannot have the real thing (the offline
runner: no Docker daemon, a clone from a local path) says what it stands in for with
`StandIns`, passed explicitly; a real `pulumi preview`/`up` passes none.
"""

from __future__ import annotations

import contextvars
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

# How long the Docker daemon and git get to answer; a hung daemon must not hang the preview.
DOCKER_PROBE_TIMEOUT_SECONDS = 10
GIT_TIMEOUT_SECONDS = 10
# Docker's own builder (buildx's `docker` driver) makes a multi-platform image only on the
# containerd image store, which `docker info` names as its storage driver type; the other
# drivers (docker-container, kubernetes, remote) always can.
BUILDX_DRIVER = re.compile(r"^Driver:\s*(?P<driver>\S+)", re.MULTILINE)
CONTAINERD_IMAGE_STORE = "io.containerd.snapshotter"
# `[user@]host:path`, git's scp-like syntax for ssh. One-letter hosts are Windows drives.
SCP_LIKE_URL = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s@]{2,}):(?P<path>\S+)$")
# An IAM role ARN, with or without a path: the name is unique within the account.
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[^/]+)$")


@dataclass
class StandIns:
    """What a run stands in for instead of asking the real thing. Only the offline runner
    passes one (`offline.run`); without it every question is asked for real."""

    # Image builds are mocked: Docker is not asked.
    docker: bool = False
    # The repository URL to use when the checkout has no usable `origin`.
    git_origin: str | None = None
    # What this run stood in for, in words, for the offline plan to say.
    used: list[str] = field(default_factory=list)


_STAND_INS: contextvars.ContextVar[StandIns | None] = contextvars.ContextVar(
    "app_platform_stand_ins", default=None
)


def use_stand_ins(stand_ins: StandIns | None) -> None:
    """Make `stand_ins` the answer for the rest of this run (its context)."""
    _STAND_INS.set(stand_ins)


def stand_ins() -> StandIns | None:
    return _STAND_INS.get()


# ---------------------------------------------------------------------------------------------
# Docker
# ---------------------------------------------------------------------------------------------


def docker_problem() -> str | None:
    """Why Docker cannot build an image here, or None when it can: the `docker` CLI is on
    PATH and its daemon answers within DOCKER_PROBE_TIMEOUT_SECONDS."""
    cli = shutil.which("docker")
    if cli is None:
        return "the docker command is not on PATH"
    try:
        answer = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the Docker daemon did not answer within {DOCKER_PROBE_TIMEOUT_SECONDS} seconds"
    except OSError as why:
        return f"docker could not be run ({why})"
    if answer.returncode != 0 or not answer.stdout.strip():
        said = answer.stderr.strip().splitlines()
        return f"the Docker daemon is not answering ({said[-1] if said else 'no reply'})"
    return None


def multi_platform_problem() -> str | None:
    """Why the current buildx builder cannot build one image for several platforms, or None
    when it can, or when Docker cannot be asked (docker_problem says why)."""
    cli = shutil.which("docker")
    builder = _docker_says(cli, "buildx", "inspect") if cli else None
    driver = BUILDX_DRIVER.search(builder or "")
    if cli is None or driver is None or driver["driver"] != "docker":
        return None
    storage = _docker_says(cli, "info", "--format", "{{ .DriverStatus }}") or ""
    if CONTAINERD_IMAGE_STORE in storage:
        return None
    return "the current buildx builder is Docker's own, on the classic image store"


def _docker_says(cli: str, *args: str) -> str | None:
    """What `docker <args>` prints, or None when it fails or does not answer in time."""
    try:
        answer = subprocess.run(
            [cli, *args],
            capture_output=True,
            text=True,
            timeout=DOCKER_PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    return answer.stdout if answer.returncode == 0 else None


# ---------------------------------------------------------------------------------------------
# The git origin
# ---------------------------------------------------------------------------------------------


class GitOrigin(NamedTuple):
    url: str | None
    # Why there is no usable URL (empty when there is one).
    problem: str = ""


def https_repo_url(url: str) -> str | None:
    """`url` as the https URL of the same repository, without credentials, or None when it
    names no repository on a server (a local path, `file://`, plain http, git://).

    `git@host:owner/repo.git` and `ssh://git@host[:port]/owner/repo.git` become
    `https://host/owner/repo.git`; `https://user:token@host/...` loses `user:token@`. The path
    is kept as it is, `.git` included.
    """
    url = url.strip()
    scp = SCP_LIKE_URL.fullmatch(url)
    if scp and "://" not in url:
        path = scp["path"].lstrip("/")
        return f"https://{scp['host']}/{path}" if path else None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("https", "ssh") or not host or parts.path.strip("/") == "":
        return None
    host = f"[{host}]" if ":" in host else host
    # An ssh port says nothing about https; an https port is part of the address.
    netloc = f"{host}:{port}" if parts.scheme == "https" and port else host
    return urlunsplit(("https", netloc, parts.path, "", ""))


def without_credentials(url: str) -> str:
    """`url` safe to print: any `user:password@` taken out."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@\s]*@", r"\1", url.strip(), flags=re.IGNORECASE)


def git_origin(project_dir: Path) -> GitOrigin:
    """The `origin` remote of the checkout at `project_dir`, as an https URL."""
    git = shutil.which("git")
    if git is None:
        return GitOrigin(None, "git is not on PATH")
    try:
        answer = subprocess.run(
            [git, "remote", "get-url", "origin"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as why:
        return GitOrigin(None, f"`git remote get-url origin` failed ({why})")
    if answer.returncode != 0:
        said = answer.stderr.strip().splitlines()
        detail = said[-1] if said else "no remote named origin"
        return GitOrigin(None, f"{project_dir} has no git remote 'origin' ({detail})")
    remote = answer.stdout.strip()
    url = https_repo_url(remote)
    if url is None:
        return GitOrigin(
            None,
            f"its origin {without_credentials(remote)!r} is not a repository on a git server "
            "(https://host/owner/repo.git, git@host:owner/repo.git or ssh://)",
        )
    return GitOrigin(url)


# ---------------------------------------------------------------------------------------------
# Who runs the program
# ---------------------------------------------------------------------------------------------


def caller_arn() -> str:
    """The IAM principal this program runs as: for an assumed-role session (SSO, CI), the
    role behind it, with its path; otherwise the user's ARN."""
    import pulumi_aws as aws

    arn = aws.get_caller_identity().arn
    if ":assumed-role/" in arn:
        return aws.iam.get_session_context(arn=arn).issuer_arn
    return arn


def same_role(arn: str, other: str) -> bool:
    """Whether two ARNs name one IAM role: role names are unique in an account, so a path
    written or left out does not make another role."""
    first, second = ROLE_ARN.fullmatch(arn), ROLE_ARN.fullmatch(other)
    return bool(first and second) and (first["account"], first["name"]) == (
        second["account"],
        second["name"],
    )


# ---------------------------------------------------------------------------------------------
# The answers, for config.parse
# ---------------------------------------------------------------------------------------------


NOT_LOOKED_UP = GitOrigin(None, "it was not looked up")


@dataclass(frozen=True)
class Environment:
    """What `config.parse` needs to know from outside the config; `look_up` finds it out."""

    # Why Docker cannot build images here; None when it can (or nobody asked).
    docker_problem: str | None = None
    git_origin: GitOrigin = NOT_LOOKED_UP
    # Why Docker here cannot build a multi-platform image; None when it can (or nobody asked).
    multi_platform_problem: str | None = None
    # The IAM principal running the program; None when nobody asked.
    caller_arn: str | None = None


def look_up(project_dir: Path, *, docker: bool, origin: bool, caller: bool) -> Environment:
    """Ask what the config needs (each flag: whether it does), taking the run's stand-ins,
    if any, where the real thing is missing."""
    stood_in = stand_ins()
    docker_why = multi_platform_why = None
    if docker and stood_in and stood_in.docker:
        stood_in.used.append("Docker: image builds are mocked and get fake digests")
    elif docker:
        docker_why = docker_problem()
        multi_platform_why = None if docker_why else multi_platform_problem()
    found = git_origin(project_dir) if origin else NOT_LOOKED_UP
    if origin and found.url is None and stood_in and stood_in.git_origin:
        stood_in.used.append(
            f"gitopsRepoUrl: {found.problem}; planned with {stood_in.git_origin} instead"
        )
        found = GitOrigin(stood_in.git_origin)
    return Environment(
        docker_problem=docker_why,
        git_origin=found,
        multi_platform_problem=multi_platform_why,
        caller_arn=caller_arn() if caller else None,
    )
