"""IAM policy documents, kept as JSON files in ../policies with ${name} placeholders."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

import pulumi

POLICIES = Path(__file__).resolve().parent.parent / "policies"
# AWS managed policies, by name; the partition goes in front when the ARN is built.
READ_ONLY_ACCESS = "ReadOnlyAccess"


def render(name: str, **values: str) -> str:
    """policies/<name>.json with every placeholder filled; a missing value is an error."""
    text = (POLICIES / f"{name}.json").read_text()
    # Values are JSON-escaped, so no value can change the document's structure.
    escaped = {key: json.dumps(value)[1:-1] for key, value in values.items()}
    document = Template(text).substitute(escaped)
    json.loads(document)  # fails here, not at AWS, if a file is not valid JSON
    return document


def output(name: str, **values: Any) -> pulumi.Output[str]:
    """render() with values that may be Outputs (ARNs of resources not created yet)."""
    keys = list(values)
    return pulumi.Output.all(*values.values()).apply(
        lambda resolved: render(name, **dict(zip(keys, resolved, strict=True)))
    )


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"
