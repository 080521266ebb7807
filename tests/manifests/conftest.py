"""The manifests each stack renders, shared by the schema and checkov tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_platform_tools import offline, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def recordings(dev: offline.Recording) -> dict[str, offline.Recording]:
    """Each stack run offline; the app stack reads the dev stack's real (offline) outputs."""
    platform_outputs = {name: output.value for name, output in dev.outputs.items()}
    podinfo = offline.run(
        ROOT, "podinfo", stack_references={"organization/app-platform/dev": platform_outputs}
    )
    return {"dev": dev, "podinfo": podinfo}


@pytest.fixture(scope="session")
def manifests(recordings: dict[str, offline.Recording]) -> dict[str, list[dict]]:
    return {stack: render.manifests(recording) for stack, recording in recordings.items()}
