"""checkov's Kubernetes policies pass on every stack's rendered manifests; the only waivers are
in tests/manifests/checkov.yaml, each with its reason.

checkov cannot share the program's virtualenv (it pins packaging 23.2, Pulumi needs 26+), so it
runs from build/checkov-venv, made on first use from checkov-requirements.txt (needs PyPI), or
from the executable named by $CHECKOV.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from app_platform import render

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "checkov.yaml"
REQUIREMENTS = HERE / "checkov-requirements.txt"
CHECKOV_VENV = ROOT / "build" / "checkov-venv"
INSTALL_TIMEOUT_SECONDS = 900
RUN_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="session")
def checkov() -> str:
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"]
    executable = CHECKOV_VENV / "bin" / "checkov"
    marker = CHECKOV_VENV / ".requirements"
    CHECKOV_VENV.parent.mkdir(exist_ok=True)
    # Test runs in the same working tree share the venv: one builds it, the others wait.
    with (CHECKOV_VENV.parent / "checkov-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = marker.exists() and marker.read_text() == REQUIREMENTS.read_text()
        if not (executable.exists() and current):
            _build_venv(marker)
    return str(executable)


def _build_venv(marker: Path) -> None:
    """A fresh venv with the pinned checkov; skips the tests when PyPI is out of reach."""
    shutil.rmtree(CHECKOV_VENV, ignore_errors=True)
    venv.create(CHECKOV_VENV, with_pip=True)
    installed = subprocess.run(
        [
            str(CHECKOV_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-qr",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    if installed.returncode != 0:
        pytest.skip(f"cannot install checkov (no PyPI?): {installed.stderr[-500:]}")
    marker.write_text(REQUIREMENTS.read_text())


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
