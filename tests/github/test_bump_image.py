"""The image bump edits one value of a stack file and nothing else."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[2] / ".github" / "scripts" / "bump_image.py"
spec = importlib.util.spec_from_file_location("bump_image", SCRIPT)
assert spec and spec.loader
bump_image = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bump_image)

DIGEST = "sha256:" + "0123456789abcdef" * 4
NEW = f"ghcr.io/acme/comments:sha-89abcde@{DIGEST}"
PATH = ["config", "app-platform:apps", "comments", "image"]

STACK = """\
# The dev stack.
config:
  aws:region: us-east-1
  # Apps the stack runs.
  app-platform:apps:
    hello:
      image: ghcr.io/acme/hello:1.0.0   # the second tenant
      replicas: 2
    comments:
      # Bumped by the image workflow.
      image: ghcr.io/acme/comments:sha-0123abc  # keep this comment
      replicas: 3
  app-platform:natGateways: single
"""


def test_only_the_named_value_changes_and_comments_stay():
    updated = bump_image.bump(STACK, PATH, NEW)
    before, after = STACK.splitlines(), updated.splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert changed == [
        (
            "      image: ghcr.io/acme/comments:sha-0123abc  # keep this comment",
            f"      image: {NEW}  # keep this comment",
        )
    ]
    assert yaml.safe_load(updated)["config"]["app-platform:apps"]["hello"]["image"] == (
        "ghcr.io/acme/hello:1.0.0"
    )


def test_bumping_to_the_current_value_changes_nothing():
    once = bump_image.bump(STACK, PATH, NEW)
    assert bump_image.bump(once, PATH, NEW) == once


@pytest.mark.parametrize("quote", ['"', "'"])
def test_a_quoted_value_keeps_its_quotes(quote):
    text = STACK.replace(
        "image: ghcr.io/acme/comments:sha-0123abc",
        f"image: {quote}ghcr.io/acme/comments:sha-0123abc{quote}",
    )
    updated = bump_image.bump(text, PATH, NEW)
    assert f"      image: {quote}{NEW}{quote}  # keep this comment\n" in updated


def test_a_key_of_the_same_name_elsewhere_is_not_touched():
    """`image` exists under hello too; the path picks the one under comments."""
    updated = bump_image.bump(STACK, ["config", "app-platform:apps", "hello", "image"], NEW)
    assert f"      image: {NEW}   # the second tenant" in updated
    assert "ghcr.io/acme/comments:sha-0123abc" in updated


def test_windows_line_endings_are_kept():
    updated = bump_image.bump(STACK.replace("\n", "\r\n"), PATH, NEW)
    assert f"image: {NEW}  # keep this comment\r\n" in updated
    assert "\r\n" in updated and "\n" not in updated.replace("\r\n", "")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (["config", "app-platform:apps", "billing", "image"], "found 0 times"),
        (["config", "app-platform:apps", "comments"], "not a plain or quoted scalar"),
        (["config", "aws:region", "image"], "no keys below it"),
    ],
)
def test_a_path_that_does_not_name_one_scalar_is_an_error(path, message):
    with pytest.raises(bump_image.BumpError, match=message):
        bump_image.bump(STACK, path, NEW)


@pytest.mark.parametrize(
    "image",
    ["", "ghcr.io/acme/comments:1 # x", "ghcr.io/acme/comments:1\nevil: true", "a'b", "x@sha256:1"],
)
def test_only_image_references_are_written(image):
    with pytest.raises(bump_image.BumpError, match="not an image reference"):
        bump_image.bump(STACK, PATH, image)


def test_a_flow_style_value_is_refused_rather_than_rewritten():
    text = STACK.replace(
        "    comments:\n      # Bumped by the image workflow.\n"
        "      image: ghcr.io/acme/comments:sha-0123abc  # keep this comment\n"
        "      replicas: 3\n",
        "    comments: {image: ghcr.io/acme/comments:sha-0123abc, replicas: 3}\n",
    )
    with pytest.raises(bump_image.BumpError):
        bump_image.bump(text, PATH, NEW)


def test_command_line_writes_the_file(tmp_path: Path):
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(STACK)
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(stack), "/".join(PATH), NEW],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "set to" in run.stdout
    assert f"image: {NEW}  # keep this comment" in stack.read_text()
    failed = subprocess.run(
        [sys.executable, str(SCRIPT), str(stack), "config/nope/image", NEW],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "config/nope found 0 times" in failed.stderr
    assert f"image: {NEW}" in stack.read_text()
