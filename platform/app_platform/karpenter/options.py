"""Karpenter options: which architectures the workload nodes run, and how far each pool grows.

A dev stack's defaults: a spot pool of up to 32 vCPUs over amd64 and arm64, and an on-demand
fallback of up to 16 vCPUs that is used only when spot capacity cannot be had.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, WithJsonSchema, field_validator

from app_platform.instance_types import ARCHITECTURES, known_architectures
from app_platform.options import (
    Options,
    StrictOptions,
    StringList,
    matching,
    validation_context,
    whole_number,
)

MAX_POOL_VCPU = 10_000
MAX_POOL_MEMORY_GIB = 100_000
DEFAULT_SPOT = {"cpu_limit": 32, "memory_limit_gib": 128, "expected_vcpu": 4}
DEFAULT_ON_DEMAND = {"cpu_limit": 16, "memory_limit_gib": 64, "expected_vcpu": 0}
# An empty or underused node is removed this long after it became so: long enough that a
# rolling update or an HPA's scale-in does not churn nodes, short enough to save the money.
DEFAULT_CONSOLIDATE_AFTER = "1m"
DURATION_PATTERN = re.compile(r"^([0-9]+(s|m|h))+$")
# `latest` follows every AL2023 EKS AMI release: nodes are replaced (drift, within the disruption
# budget) a few days after each release, unreviewed. A pinned `vYYYYMMDD` changes only when the
# config does, at the cost of bumping it by hand for patches.
DEFAULT_AMI_VERSION = "latest"
AMI_VERSION_PATTERN = re.compile(r"^(latest|v[0-9]{8})$")


def _architectures(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        raise ValueError(f"expected a non-empty list of {' and '.join(ARCHITECTURES)}")
    return known_architectures(values)


class PoolOptions(StrictOptions):
    """One NodePool's ceiling, and what the cost estimate assumes it runs."""

    cpu_limit: whole_number(0, MAX_POOL_VCPU) = Field(
        alias="cpuLimit", description="Most vCPUs the pool's nodes may add up to."
    )
    memory_limit_gib: whole_number(0, MAX_POOL_MEMORY_GIB) = Field(
        alias="memoryLimitGib", description="Most memory, in GiB, the pool's nodes may add up to."
    )
    expected_vcpu: whole_number(0, MAX_POOL_VCPU) = Field(
        alias="expectedVcpu",
        description="vCPUs the pool is expected to run on average: read by the cost estimate "
        "only (Karpenter does not).",
    )


class KarpenterOptions(StrictOptions):
    """The workload nodes Karpenter provisions: architectures, pool limits, consolidation."""

    architectures: Annotated[StringList, AfterValidator(_architectures)] = Field(
        ARCHITECTURES,
        description="CPU architectures of the workload nodes (amd64, arm64); with both, every "
        "image must be multi-arch.",
    )
    spot: PoolOptions = Field(
        PoolOptions(**DEFAULT_SPOT),
        description="The spot pool {cpuLimit, memoryLimitGib, expectedVcpu}.",
    )
    on_demand: PoolOptions = Field(
        PoolOptions(**DEFAULT_ON_DEMAND),
        alias="onDemand",
        description="The on-demand fallback pool, used when spot capacity cannot be had.",
    )
    consolidate_after: matching(DURATION_PATTERN, "a duration such as 30s, 1m or 1h30m") = Field(
        DEFAULT_CONSOLIDATE_AFTER,
        alias="consolidateAfter",
        description="How long a node stays empty or underused before Karpenter removes it.",
    )
    ami_version: matching(AMI_VERSION_PATTERN, "latest or an AMI version such as v20260801") = (
        Field(
            DEFAULT_AMI_VERSION,
            alias="amiVersion",
            description="AL2023 AMI version of the nodes (al2023@<version>): latest, or a "
            "pinned vYYYYMMDD.",
        )
    )

    @field_validator("spot", "on_demand", mode="before")
    @classmethod
    def _over_the_pools_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        """A pool's keys not given keep that pool's defaults (`spot: {cpuLimit: 64}`)."""
        if not isinstance(value, dict):
            return value
        default: PoolOptions = cls.model_fields[info.field_name or ""].default
        aliases = {field.alias for field in PoolOptions.model_fields.values()}
        by_alias = validation_context().get("config") or bool(set(value) & aliases)
        return {**default.model_dump(by_alias=bool(by_alias)), **value}


class KarpenterSettings(Options):
    """The stack config key `karpenter`: one object holding KarpenterOptions."""

    # One config key holding an object (Pulumi.yaml type `object`), not a key per field.
    karpenter: Annotated[KarpenterOptions, WithJsonSchema({"type": "object"})] = Field(
        KarpenterOptions(),
        title="Karpenter",
        description="Karpenter's workload nodes (nodeProvisioner karpenter): {architectures, "
        "spot {cpuLimit, memoryLimitGib, expectedVcpu}, onDemand {the same}, consolidateAfter, "
        "amiVersion}; keys not given keep their defaults. expectedVcpu is what the cost "
        "estimate assumes a pool runs.",
        json_schema_extra={"type": "object"},
    )
