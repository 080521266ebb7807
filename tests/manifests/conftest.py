"""The manifests each stack renders, shared by the schema and checkov tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app_platform import offline, render

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # for `tests.upstream`
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def recordings(dev: offline.Recording) -> dict[str, offline.Recording]:
    """Each stack run offline; the app stack reads the dev stack's real (offline) outputs."""
    platform_outputs = {name: output.value for name, output in dev.outputs.items()}
    offline.STACK_REFERENCE_OUTPUTS["organization/app-platform/dev"] = platform_outputs
    try:
        return {"dev": dev, "podinfo": offline.run(ROOT, "podinfo")}
    finally:
        offline.STACK_REFERENCE_OUTPUTS.pop("organization/app-platform/dev", None)


@pytest.fixture(scope="session")
def manifests(recordings: dict[str, offline.Recording]) -> dict[str, list[dict]]:
    return {stack: render.manifests(recording) for stack, recording in recordings.items()}
