"""checkov's Kubernetes policies pass on every stack's rendered manifests; the only waivers are
in tests/manifests/checkov.yaml, each with its reason.

checkov cannot share the program's virtualenv (it pins packaging 23.2, Pulumi needs 26+), so
`make setup` builds build/checkov-venv from checkov-requirements.txt; $CHECKOV names another
executable. The tests never install anything: without checkov they skip, and fail under CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app_platform_tools import render

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "checkov.yaml"
CHECKOV_VENV = ROOT / "build" / "checkov-venv"
RUN_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="session")
def checkov(tool_missing) -> str:
    executable = Path(os.environ.get("CHECKOV") or CHECKOV_VENV / "bin" / "checkov")
    if not os.access(executable, os.X_OK):
        tool_missing(f"checkov is not installed at {executable}: run `make setup`")
    return str(executable)


def run_checkov(checkov: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [checkov, "--directory", str(directory), "--config-file", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_every_waiver_says_why():
    lines = CONFIG.read_text().splitlines()
    waived = yaml.safe_load(CONFIG.read_text())["skip-check"]
    for check in waived:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {check}")
        assert lines[index - 1].strip().startswith("#"), f"{check} has no reason above it"


def test_rendered_manifests_pass_checkov(manifests, checkov, tmp_path):
    for stack, objects in manifests.items():
        (tmp_path / f"{stack}.yaml").write_text(render.to_yaml(objects))
    result = run_checkov(checkov, tmp_path)
    assert "Passed checks:" in result.stdout, result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-4000:]


def test_checkov_catches_a_privileged_container(manifests, checkov, tmp_path):
    deployment = next(o for o in manifests["dev"] if o["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    (tmp_path / "broken.yaml").write_text(render.to_yaml([broken]))
    result = run_checkov(checkov, tmp_path)
    assert result.returncode != 0
    assert "CKV_K8S_16" in result.stdout  # "Container should not be privileged"


def test_checkov_refuses_an_image_by_tag_alone(manifests, checkov, tmp_path):
    """Every app image is pinned by digest, so no waiver hides CKV_K8S_43."""
    deployment = next(o for o in manifests["dev"] if o["kind"] == "Deployment")
    assert "@sha256:" in deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/comments:1.0.0"
    (tmp_path / "broken.yaml").write_text(render.to_yaml([broken]))
    result = run_checkov(checkov, tmp_path)
    assert result.returncode != 0
    assert "CKV_K8S_43" in result.stdout  # "Image should use digest"


if __name__ == "__main__":  # pragma: no cover - `python tests/manifests/test_checkov.py`
    sys.exit(pytest.main([__file__, "-q"]))
