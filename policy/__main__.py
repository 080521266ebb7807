"""The platform's policy pack: what every stack of this project must satisfy.

    pulumi preview --policy-pack policy --policy-pack-config policy/config.dev.json

The rules live in `rules.py` as plain functions; this file only wraps each in a mandatory
`ResourceValidationPolicy` with its config schema. The Pulumi CLI runs this file as the pack's
program (with this folder first on `sys.path`), so `rules` imports as a top-level module.
"""

from __future__ import annotations

import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

PACK_NAME = "app-platform"


def _validator(spec: rules.PolicySpec):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        config = {**spec.defaults(), **dict(args.get_config() or {})}
        for message in spec.rule(args.resource_type, args.props, config):
            report_violation(message, args.urn)

    return validate


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name=spec.name,
            description=spec.description,
            enforcement_level=EnforcementLevel.MANDATORY,
            validate=_validator(spec),
            config_schema=PolicyConfigSchema(properties=spec.config) if spec.config else None,
        )
        for spec in rules.POLICIES
    ]


PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
