"""The options base: one sentence per wrong value, naming where it is, the value and what is
accepted, whether the options come from code (field names) or stack config (config keys)."""

from typing import Literal

import pytest
from pydantic import Field, model_validator

from app_platform.options import Options, OptionsError


class Pool(Options):
    min_size: int = Field(2, alias="minSize", ge=0, le=100)
    max_size: int = Field(6, alias="maxSize", ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_size > self.max_size:
            raise ValueError("minSize no larger than maxSize")
        return self


class Example(Options):
    nat_mode: Literal["single", "perAz"] = Field("perAz", alias="natGateways")
    token: str = Field("", alias="apiToken", json_schema_extra={"secret": True})
    pool: Pool = Pool()


def test_defaults_build_and_are_frozen():
    options = Example()
    assert options.pool.max_size == 6
    with pytest.raises(Exception, match="frozen"):
        options.nat_mode = "single"


def test_code_names_fields():
    with pytest.raises(OptionsError) as raised:
        Example(nat_mode="perAZ", pool={"min_size": -1})
    assert str(raised.value).splitlines() == [
        "invalid Example:",
        "  - 'nat_mode' = \"perAZ\" is not valid: expected single or perAz",
        "  - 'pool.min_size' = -1 is not valid: expected at least 0",
    ]


def test_config_names_keys_under_a_prefix_and_reports_everything():
    with pytest.raises(OptionsError) as raised:
        Example.from_config(
            {"natGateways": "perAZ", "pool": {"minSize": 9, "maxSize": 3}, "typo": 1},
            prefix="apps.web",
        )
    assert [str(p) for p in raised.value.problems] == [
        "'apps.web.natGateways' = \"perAZ\" is not valid: expected single or perAz",
        '\'apps.web.pool\' = {"minSize": 9, "maxSize": 3} is not valid: '
        "expected minSize no larger than maxSize",
        "'apps.web.typo' = 1 is not valid: expected no such key",
    ]


@pytest.mark.parametrize(
    "build", [lambda: Example(token=5), lambda: Example.from_config({"apiToken": 5})]
)
def test_secret_values_are_never_echoed(build):
    with pytest.raises(OptionsError) as raised:
        build()
    assert "[secret]" in str(raised.value) and " 5 " not in str(raised.value)
