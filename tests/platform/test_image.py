"""AppImage: the stack builds an app's image for the nodes into an ECR repository it owns, and
hands it on by digest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pulumi
import pytest

from app_platform import cluster, image
from app_platform.image import AppImage, AppImageArgs
from app_platform_tools import offline, secrets

ROOT = Path(__file__).resolve().parents[2]
COMMENTS = "apps/comments"


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


def test_only_the_last_few_images_are_kept(comments):
    policy = comments.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs
    assert policy["repository"] == "platform-dev-comments"
    (rule,) = json.loads(policy["policy"])["rules"]
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


def test_the_nodes_platform_is_the_clusters_architecture():
    assert "x86_64" in cluster.AMI_TYPE and image.DEFAULT_PLATFORM == "linux/amd64"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A copy of the comments build context, to change."""
    shutil.copytree(
        ROOT / COMMENTS,
        tmp_path / "app",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".venv"),
    )
    return tmp_path


def source(root: Path, platform: str = image.DEFAULT_PLATFORM) -> str:
    return image.build_hash(AppImageArgs("app", "repo", platform), root)


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
            AppImageArgs(COMMENTS, "repo", "linux/x86"),
            "platform 'linux/x86' is not valid: expected one such as linux/amd64",
        ),
    ],
)
def test_bad_arguments_are_refused_with_the_field_and_value(args, expected):
    with pytest.raises(ValueError, match="AppImage platform-dev-comments-image") as raised:
        build(args)
    assert expected in str(raised.value)
