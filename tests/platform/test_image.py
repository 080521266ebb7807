"""AppImage: the stack builds an app's image for the nodes into an ECR repository it owns, and
hands it on by digest."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pulumi
import pytest

from app_platform import config, image, stack
from app_platform.image import AppImage, AppImageArgs
from app_platform_tools import offline, secrets
from tests.conftest import CLUSTER_AUTOSCALER

ROOT = Path(__file__).resolve().parents[2]
COMMENTS = "apps/comments"
# Karpenter's default architectures (the dev stack runs arm64 only).
BOTH = {"architectures": ["amd64", "arm64"]}


def build(args: AppImageArgs) -> offline.Recording:
    def program() -> None:
        built = AppImage("platform-dev-comments-image", args)
        pulumi.export("imageRef", built.image_ref)

    return offline.run_function(program)


@pytest.fixture(scope="module")
def comments() -> offline.Recording:
    return build(AppImageArgs(COMMENTS, "platform-dev-comments"))


def test_the_repository_scans_keeps_tags_immutable_and_goes_with_the_stack(comments):
    repository = comments.one("aws:ecr/repository:Repository").inputs
    assert repository["name"] == "platform-dev-comments"
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["forceDelete"] is True


def test_only_the_last_few_builds_are_kept(comments):
    policy = comments.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs
    assert policy["repository"] == "platform-dev-comments"
    (rule,) = json.loads(policy["policy"])["rules"]
    # Builds are counted by their one tag: the untagged per-platform images of a kept
    # multi-arch index are never counted, so never expired.
    assert (rule["selection"]["tagStatus"], rule["selection"]["tagPatternList"]) == (
        "tagged",
        ["*"],
    )
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    assert rule["selection"]["countNumber"] == image.KEEP_IMAGES
    assert rule["action"] == {"type": "expire"}


def test_the_build_targets_the_nodes_and_pushes_with_a_secret_ecr_token(comments):
    build_inputs = comments.one("docker-build:index:Image").inputs
    assert build_inputs["context"] == {"location": COMMENTS}
    assert build_inputs["platforms"] == ["linux/amd64"]
    assert build_inputs["push"] is True
    (registry,) = build_inputs["registries"]
    url = comments.one("aws:ecr/repository:Repository").outputs["repositoryUrl"]
    assert registry["address"] == url and registry["username"] == "AWS"
    assert registry["password"] == secrets.mark("offline-ecr-token")


def test_the_tag_names_the_source_and_the_image_is_handed_on_by_digest(comments):
    url = comments.one("aws:ecr/repository:Repository").outputs["repositoryUrl"]
    build_id = comments.one("random:index/randomId:RandomId")
    source = image.build_hash(AppImageArgs(COMMENTS, "platform-dev-comments"), ROOT)
    assert build_id.inputs["keepers"] == {"build": source}
    (tag,) = comments.one("docker-build:index:Image").inputs["tags"]
    assert tag == f"{url}:{source[: image.TAG_HASH_LENGTH]}-{build_id.outputs['hex']}"
    digest = comments.one("docker-build:index:Image").outputs["digest"]
    assert comments.outputs["imageRef"].value == f"{url}@{digest}"


def test_several_platforms_make_one_multi_arch_build():
    recording = build(
        AppImageArgs(COMMENTS, "platform-dev-comments", ("linux/arm64", "linux/amd64"))
    )
    (built,) = recording.of_type("docker-build:index:Image")
    assert built.inputs["platforms"] == ["linux/amd64", "linux/arm64"]
    component = recording.one("app-platform:image:AppImage")
    assert component.inputs["platforms"] == ["linux/amd64", "linux/arm64"]


def test_one_platform_is_built_alone_and_x86_64_by_default(comments):
    assert AppImageArgs(COMMENTS, "repo").platforms == ("linux/amd64",)
    assert comments.one("docker-build:index:Image").inputs["platforms"] == ["linux/amd64"]


def test_the_multi_platform_builder_prerequisite_is_spelled_out():
    assert "containerd image store" in image.MULTI_PLATFORM_BUILDER
    assert "--driver docker-container" in image.MULTI_PLATFORM_BUILDER


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A copy of the comments build context, to change."""
    shutil.copytree(
        ROOT / COMMENTS,
        tmp_path / "app",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".venv"),
    )
    return tmp_path


def source(root: Path, *platforms: str) -> str:
    return image.build_hash(
        AppImageArgs("app", "repo", platforms or (image.DEFAULT_PLATFORM,)), root
    )


def test_the_build_hash_follows_what_docker_is_sent_and_nothing_else(context):
    before = source(context)
    # .dockerignore leaves these out of the build: no rebuild for them.
    (context / "app" / "README.md").write_text("edited\n")
    (context / "app" / "comments" / "__pycache__").mkdir(exist_ok=True)
    (context / "app" / "comments" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    assert source(context) == before
    # What the image is made of: a rebuild, under a new tag.
    (context / "app" / "comments" / "app.py").write_text("# changed\n")
    assert source(context) != before


def test_the_build_hash_follows_the_dockerfile_executable_bits_and_platform(context):
    before = source(context)
    assert source(context, "linux/arm64") != before
    both = source(context, "linux/amd64", "linux/arm64")
    assert both not in (before, source(context, "linux/arm64"))
    # The same set of platforms, however given, is the same build.
    assert source(context, "linux/arm64", "linux/amd64", "linux/arm64") == both
    dockerfile = context / "app" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# more\n")
    changed = source(context)
    assert changed != before
    requirements = context / "app" / "requirements.txt"
    requirements.chmod(0o644)
    assert source(context) == changed
    requirements.chmod(0o640)  # another umask: the same file to git and to the image
    assert source(context) == changed
    requirements.chmod(0o755)
    assert source(context) != changed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            AppImageArgs("apps/missing", "repo"),
            "context 'apps/missing' is not valid: expected a directory of the project holding a "
            "Dockerfile",
        ),
        (AppImageArgs("/srv/app", "repo"), "expected a directory inside the project, relative"),
        (
            AppImageArgs(COMMENTS, "repo", ("linux/amd64", "linux/x86")),
            "platform 'linux/x86' is not valid: expected one such as linux/amd64",
        ),
        (
            AppImageArgs(COMMENTS, "repo", ()),
            "platforms () is not valid: expected at least one, e.g. linux/amd64",
        ),
    ],
)
def test_bad_arguments_are_refused_with_the_field_and_value(args, expected):
    with pytest.raises(ValueError, match="AppImage platform-dev-comments-image") as raised:
        build(args)
    assert expected in str(raised.value)


def test_the_node_architectures_are_karpenters_or_the_spot_groups(parse_config):
    assert stack.node_architectures(parse_config(karpenter=BOTH)) == ("amd64", "arm64")
    # The dev stack's workload nodes are Graviton only.
    assert stack.node_architectures(parse_config()) == ("arm64",)
    assert stack.node_architectures(parse_config(**CLUSTER_AUTOSCALER)) == ("amd64",)
    graviton = parse_config(
        **CLUSTER_AUTOSCALER, spotInstanceTypes=["m7g.large", "m6g.large", "c7g.large"]
    )
    assert stack.node_architectures(graviton) == ("arm64",)
    # The system group is for controllers only: its architecture is not the apps'.
    with_graviton_system = parse_config(**CLUSTER_AUTOSCALER, systemInstanceType="t4g.large")
    assert stack.node_architectures(with_graviton_system) == ("amd64",)


def test_a_graviton_spot_group_gets_the_apps_built_for_arm64(run_stack):
    recording = run_stack(
        {**CLUSTER_AUTOSCALER, "spotInstanceTypes": ["m7g.large", "m6g.large", "c7g.large"]}
    )
    assert recording.one("docker-build:index:Image").inputs["platforms"] == ["linux/arm64"]


def test_karpenter_over_two_architectures_gets_one_multi_arch_image(run_stack):
    (built,) = run_stack({"karpenter": BOTH}).of_type("docker-build:index:Image")
    assert built.inputs["platforms"] == ["linux/amd64", "linux/arm64"]


def test_the_dev_stack_builds_for_its_graviton_nodes_only(dev):
    (built,) = dev.of_type("docker-build:index:Image")
    assert built.inputs["platforms"] == ["linux/arm64"]


def test_a_builder_that_cannot_make_multi_arch_images_is_refused_before_anything(parse_config):
    problem = "the current buildx builder is Docker's own"
    one = parse_config(karpenter={"architectures": ["amd64"]})
    stack.check_image_builder(dataclasses.replace(one, multi_platform_problem=problem))
    # one architecture: any builder will do; two need one that makes multi-platform images.
    settings = dataclasses.replace(parse_config(karpenter=BOTH), multi_platform_problem=problem)
    with pytest.raises(config.ConfigError) as raised:
        stack.check_image_builder(settings)
    message = str(raised.value)
    assert (
        "config 'apps.comments.build' = \"apps/comments\" cannot be built here for amd64 and "
        "arm64 nodes: the current buildx builder is Docker's own; building for several "
        "platforms needs"
    ) in message
    assert "docker-container" in message
    # A builder that can: nothing to say.
    stack.check_image_builder(dataclasses.replace(settings, multi_platform_problem=None))
