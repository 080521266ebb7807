"""The manifests each stack renders, shared by the schema and checkov tests."""

from __future__ import annotations

import pytest

from app_platform_tools import offline, render


@pytest.fixture(scope="session")
def recordings(dev: offline.Recording, podinfo: offline.Recording) -> dict[str, offline.Recording]:
    """Each stack run offline; the app stack reads the dev stack's real (offline) outputs."""
    return {"dev": dev, "podinfo": podinfo}


@pytest.fixture(scope="session")
def manifests(recordings: dict[str, offline.Recording]) -> dict[str, list[dict]]:
    return {stack: render.manifests(recording) for stack, recording in recordings.items()}
