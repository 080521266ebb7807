"""AppImage: an app's container image, built from its source by the stack into a registry the
stack owns, so a first `pulumi up` needs no image published anywhere beforehand."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
import pulumi_random as random
from docker.utils.build import exclude_paths

# Images are built for the nodes' platforms (PlatformContract.node_platforms), whatever the
# machine running Pulumi is (an arm64 laptop, say); x86_64 nodes unless the cluster says more.
DEFAULT_PLATFORM = "linux/amd64"
# More than one platform makes one multi-arch image (an index over one image per platform).
# Docker's default builder (the `docker` driver on the classic image store) cannot build one.
MULTI_PLATFORM_BUILDER = (
    "building for several platforms needs a buildx builder that can: Docker Desktop with "
    "the containerd image store turned on, or a docker-container builder (`docker buildx "
    "create --use --driver docker-container`); on Linux, foreign platforms also need QEMU "
    "emulators (`docker run --privileged --rm tonistiigi/binfmt --install all`)"
)
DOCKERFILE = "Dockerfile"
# Images the repository keeps; older ones expire. A few allow a rollback.
KEEP_IMAGES = 10
# Characters of the build hash in the tag: enough to tell builds apart at a glance.
TAG_HASH_LENGTH = 12
BUILD_ID_BYTES = 4


@dataclass(frozen=True)
class AppImageArgs:
    # The build context: a directory holding a Dockerfile, relative to the project (where
    # Pulumi runs the program), e.g. `apps/comments`.
    context: str
    # The ECR repository's name, e.g. `platform-dev-comments`.
    repository_name: str
    # The nodes' platforms (`linux/<arch>`): one image for all of them.
    platforms: tuple[str, ...] = (DEFAULT_PLATFORM,)

    @property
    def build_platforms(self) -> list[str]:
        """The platforms to build, each once, in a stable order."""
        return sorted(set(self.platforms))


def context_problem(context_dir: str, root: Path | None = None) -> str | None:
    """Why `context_dir` cannot be a build context, or None: it must be a directory of the
    project, given relative to it, holding a Dockerfile."""
    context = Path(context_dir)
    if context.is_absolute() or ".." in context.parts:
        return "a directory inside the project, relative to it, e.g. apps/comments"
    if not ((root or Path.cwd()) / context / DOCKERFILE).is_file():
        return f"a directory of the project holding a {DOCKERFILE}, e.g. apps/comments"
    return None


def build_hash(args: AppImageArgs, root: Path | None = None) -> str:
    """A SHA-256 of everything the build reads: every target platform and every file Docker
    sends as the build context (what .dockerignore leaves), by path, executable bit and
    content."""
    context = (root or Path.cwd()) / args.context
    ignore = context / ".dockerignore"
    patterns = []
    if ignore.is_file():
        lines = (line.strip() for line in ignore.read_text().splitlines())
        patterns = [line for line in lines if line and not line.startswith("#")]
    digest = hashlib.sha256(",".join(args.build_platforms).encode())
    for relative in sorted(exclude_paths(str(context), patterns, dockerfile=DOCKERFILE)):
        path = context / relative
        if path.is_symlink():
            content = os.readlink(path).encode()
        elif path.is_file():
            content = path.read_bytes()
        else:
            continue
        # Git keeps one mode bit, whether a file is executable; umasks differ in the others.
        executable = bool(path.lstat().st_mode & 0o100)
        digest.update(f"\0{relative}\0{executable:d}\0".encode())
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def lifecycle_policy(keep: int) -> dict[str, Any]:
    """Expire all but the newest `keep` builds. Each build pushes one tag: a single manifest,
    or for several platforms an index whose per-platform images are untagged. Counting tagged
    images counts builds and never expires an image a kept index needs (counting every image
    would: ECR does not know which untagged images an index holds). The untagged images of an
    expired index stay, a few MB of storage each."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Keep the last {keep} builds",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            }
        ]
    }


class AppImage(pulumi.ComponentResource):
    """Owns an ECR repository (scan on push, immutable tags, deleted with the stack even when
    it holds images), its lifecycle policy (the last KEEP_IMAGES images stay) and the
    docker-build Image that builds the context for the nodes' platforms (one multi-arch image
    when there are several: see MULTI_PLATFORM_BUILDER) and pushes it there.

    Gives `image_ref`, `<repository URL>@sha256:<digest>`: exactly the image pushed, which a
    Deployment runs without trusting any tag; and `repository_url`.
    """

    image_ref: pulumi.Output[str]
    repository_url: pulumi.Output[str]

    def __init__(self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None):
        inputs = {"context": args.context, "repository_name": args.repository_name}
        super().__init__(
            "app-platform:image:AppImage", name, {**inputs, "platforms": args.build_platforms}, opts
        )
        _check(name, args)
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            # The repository holds nothing but what this stack built: it goes with the stack.
            force_delete=True,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(KEEP_IMAGES)),
            opts=child,
        )

        # ECR refuses a second push of a tag, even of identical content, so no build may reuse
        # one: content seen before (a revert) gets a new build id. The id changes only with the
        # build hash, so an unchanged source keeps its tag and is not rebuilt.
        source = build_hash(args)
        build_id = random.RandomId(
            f"{name}-build-id",
            byte_length=BUILD_ID_BYTES,
            keepers={"build": source},
            opts=child,
        )
        tag = pulumi.Output.concat(
            repository.repository_url, ":", source[:TAG_HASH_LENGTH], "-", build_id.hex
        )
        token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id)
        # No registry cache: exporting one needs a docker-container builder and a mutable tag.
        # An unchanged source is not rebuilt at all, and the builder's own layer cache makes a
        # rebuild on the same machine cheap.
        image = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=args.context),
            platforms=[docker_build.Platform(p) for p in args.build_platforms],
            tags=[tag],
            push=True,
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url,
                    username=token.user_name,
                    password=pulumi.Output.secret(token.password),
                )
            ],
            opts=child,
        )
        self.repository_url = repository.repository_url
        self.image_ref = pulumi.Output.concat(repository.repository_url, "@", image.digest)
        self.register_outputs({"imageRef": self.image_ref, "repositoryUrl": self.repository_url})


def _check(name: str, args: AppImageArgs) -> None:
    problems = []
    why = context_problem(args.context)
    if why:
        problems.append(f"context {args.context!r} is not valid: expected {why}")
    known = {platform.value for platform in docker_build.Platform}
    if not args.platforms:
        problems.append("platforms () is not valid: expected at least one, e.g. linux/amd64")
    for platform in args.platforms:
        if platform not in known:
            problems.append(f"platform {platform!r} is not valid: expected one such as linux/amd64")
    if problems:
        raise ValueError(f"AppImage {name}: " + "; ".join(problems))
