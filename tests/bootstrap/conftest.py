"""The bootstrap stack run offline under the same mocks as the platform's stacks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app_platform import offline

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "bootstrap"
STACK = "example"
if str(BOOTSTRAP) not in sys.path:  # for `ci_access`
    sys.path.insert(0, str(BOOTSTRAP))

PROVIDER_ARN = (
    f"arn:aws:iam::{offline.ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
)
# Outputs the bootstrap reads that the platform's mocks do not give.
MOCK_OUTPUTS = {
    "aws:s3/bucket:Bucket": lambda m, n, i: {"arn": f"arn:aws:s3:::{i['bucket']}"},
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda m, n, i: {"arn": PROVIDER_ARN},
}


@pytest.fixture(scope="session")
def bootstrap_mocks() -> Iterator[None]:
    added = {t: h for t, h in MOCK_OUTPUTS.items() if t not in offline.OUTPUTS}
    offline.OUTPUTS.update(added)
    yield
    for type_ in added:
        offline.OUTPUTS.pop(type_, None)


@pytest.fixture(scope="session")
def bootstrap(bootstrap_mocks) -> offline.Recording:
    return offline.run(BOOTSTRAP, STACK)


@pytest.fixture
def run_bootstrap(bootstrap_mocks):
    def run(overrides: dict[str, Any] | None = None) -> offline.Recording:
        return offline.run(BOOTSTRAP, STACK, overrides)

    return run
