"""examples/app-stack: a Pulumi project of its own that deploys an app onto a platform stack
with nothing but the library's public API, planned offline like every stack CI previews."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

import app_platform
from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "app-stack"


@pytest.fixture(scope="module")
def on_dev(platform_references: dict[str, dict]) -> offline.Recording:
    """The example planned onto the dev platform stack's own (offline) outputs."""
    return offline.run(EXAMPLE, "podinfo", stack_references=platform_references)


def test_it_is_a_project_of_its_own_that_installs_the_library_as_a_package():
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    assert project["name"] != yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    requirements = [
        line.strip()
        for line in (EXAMPLE / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert requirements == ["../../platform"]
    assert (EXAMPLE / requirements[0] / "pyproject.toml").is_file()


def test_it_uses_only_the_public_api():
    tree = ast.parse((EXAMPLE / "__main__.py").read_text())
    imported = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    library = [name for module, name in imported if module and module.startswith("app_platform")]
    assert library, "the example imports nothing from the library"
    assert {module for module, _ in imported if module.startswith("app_platform")} == {
        "app_platform"
    }
    assert set(library) <= set(app_platform.__all__)
    assert not any(
        isinstance(node, ast.Import) and any(a.name.startswith("app_platform") for a in node.names)
        for node in ast.walk(tree)
    )


def test_it_deploys_the_app_onto_the_platform_stacks_gateway_and_cluster(dev, on_dev):
    """The route, hostname and provider come from the dev stack's outputs, read back."""
    assert on_dev.of_type("eks:index:Cluster") == []
    gateway = dev.one("kubernetes:gateway.networking.k8s.io/v1:Gateway").inputs["metadata"]
    route = on_dev.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute").inputs
    assert route["spec"]["parentRefs"] == [
        {"name": gateway["name"], "namespace": gateway["namespace"]}
    ]
    assert route["spec"]["hostnames"] == ["podinfo.dev.app-platform.test"]
    deployment = on_dev.one("kubernetes:apps/v1:Deployment").inputs
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("ghcr.io/stefanprodan/podinfo:6.7.1@sha256:")
    assert deployment["spec"]["replicas"] == 2
    provider = on_dev.one("pulumi:providers:kubernetes")
    assert on_dev.one("kubernetes:apps/v1:Deployment").provider.startswith(provider.urn)
    assert on_dev.outputs["url"].value == "http://podinfo.dev.app-platform.test"


def test_it_plans_offline_as_ci_plans_it():
    recording = offline.run(EXAMPLE, "podinfo")
    assert recording.project == "app-stack"
    assert recording.one("app-platform:app:App").name == "app-stack-podinfo"
