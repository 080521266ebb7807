"""The platform's policy pack: what every stack of this project must satisfy.

    pulumi preview --policy-pack policy --policy-pack-config policy/config.dev.json

The rules live in `rules.py` as plain functions; this file only wraps each in a mandatory
`ResourceValidationPolicy` (or, for a rule over the whole stack, a `StackValidationPolicy`)
with its config schema. The Pulumi CLI runs this file as the pack's
program (with this folder first on `sys.path`), so `rules` imports as a top-level module.
"""

from __future__ import annotations

import rules
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "app-platform"


def _validator(spec: rules.PolicySpec):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        config = {**spec.defaults(), **dict(args.get_config() or {})}
        for message in spec.rule(args.resource_type, args.props, config):
            report_violation(message, args.urn)

    return validate


def _stack_validator(spec: rules.PolicySpec):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = {**spec.defaults(), **dict(args.get_config() or {})}
        resources = [rules.StackResource(r.resource_type, r.props) for r in args.resources]
        for message in spec.rule(resources, config):
            report_violation(message, None)

    return validate


def policies() -> list[Policy]:
    made: list[Policy] = []
    for spec in rules.POLICIES:
        kind = StackValidationPolicy if spec.stack else ResourceValidationPolicy
        validate = _stack_validator(spec) if spec.stack else _validator(spec)
        made.append(
            kind(
                name=spec.name,
                description=spec.description,
                enforcement_level=EnforcementLevel.MANDATORY,
                validate=validate,
                config_schema=PolicyConfigSchema(properties=spec.config) if spec.config else None,
            )
        )
    return made


PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
