"""Fixtures for the policy pack: its rules module, its dev config, the dev stack run offline."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app_platform import offline

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
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return policy_props(value["__secret__"])
        if set(value) == {"__resource__"}:
            return value["__resource__"]
        return {k: policy_props(v) for k, v in value.items()}
    if isinstance(value, list):
        return [policy_props(v) for v in value]
    return value


@pytest.fixture(scope="session")
def rules() -> ModuleType:
    return load_rules()


@pytest.fixture(scope="session")
def dev_stack() -> offline.Recording:
    return offline.run(ROOT, "dev")


@pytest.fixture(scope="session")
def dev_policy_config() -> dict[str, dict[str, Any]]:
    return json.loads((POLICY_DIR / "config.dev.json").read_text())


@pytest.fixture(scope="session")
def as_policy_props():
    return policy_props
