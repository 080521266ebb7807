"""Shared fixtures: the program's stacks run offline once per test session."""

from pathlib import Path

import pytest

from app_platform import offline

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def dev() -> offline.Recording:
    """Everything the real dev stack registers, run offline under mocks."""
    return offline.run(ROOT, "dev")


@pytest.fixture
def run_stack():
    """Run the program with some stack config changed: `run_stack({"natGateways": "perAz"})`."""

    def run(overrides: dict | None = None, stack: str = "dev", **kwargs) -> offline.Recording:
        return offline.run(ROOT, stack, overrides, **kwargs)

    return run
