"""Fixtures for the policy pack: its rules module, its dev config, the dev stack run offline."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app_platform_tools import offline, secrets

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"


def load_rules() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "app_platform_policy_rules", POLICY_DIR / "rules.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def policy_props(value: Any) -> Any:
    """Recorded inputs as the policy SDK hands them to a rule: secrets unwrapped, resource
    references as their URN (the engine sends references to analyzers as plain IDs/URNs)."""
    return secrets.walk(value, on_secret=policy_props, on_resource=lambda urn: urn)


@pytest.fixture(scope="session")
def rules() -> ModuleType:
    return load_rules()


@pytest.fixture(scope="session")
def dev_stack() -> offline.Recording:
    return offline.run(ROOT, "dev")


@pytest.fixture(scope="session")
def dev_rds_stack(dev_rds) -> offline.Recording:
    """The dev stack with its database on RDS (tests/conftest.py)."""
    return dev_rds


@pytest.fixture(scope="session")
def dev_policy_config() -> dict[str, dict[str, Any]]:
    return json.loads((POLICY_DIR / "config.dev.json").read_text())


@pytest.fixture(scope="session")
def as_policy_props():
    return policy_props
