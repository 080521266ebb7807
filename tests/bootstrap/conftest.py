"""The bootstrap stack run offline under the same mocks as the platform's stacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "bootstrap"
STACK = "example"

PROVIDER_ARN = (
    f"arn:aws:iam::{offline.ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
)
# Outputs the bootstrap reads that the platform's mocks do not give.
MOCK_OUTPUTS = {
    "aws:s3/bucket:Bucket": lambda m, n, i: {"arn": f"arn:aws:s3:::{i['bucket']}"},
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda m, n, i: {"arn": PROVIDER_ARN},
}


@pytest.fixture(scope="session")
def bootstrap() -> offline.Recording:
    return offline.run(BOOTSTRAP, STACK, outputs=MOCK_OUTPUTS)


@pytest.fixture
def run_bootstrap():
    def run(overrides: dict[str, Any] | None = None, **kwargs: Any) -> offline.Recording:
        return offline.run(BOOTSTRAP, STACK, overrides, outputs=MOCK_OUTPUTS, **kwargs)

    return run
