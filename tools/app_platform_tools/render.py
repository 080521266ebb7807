"""Kubernetes manifests from an offline recording: what the program would apply, as YAML.

    python -m app_platform_tools.render [--stack dev] [--project DIR] [--out FILE]

Each `kubernetes:<group>/<version>:<Kind>` resource a run registered becomes one object:
apiVersion and kind from the type token, the recorded inputs as its body. Helm releases and
providers are not objects of their own and are left out. Secret values are replaced by a
placeholder, so the output is safe to print and to hand to linters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from app_platform_tools import offline, secrets

SECRET_PLACEHOLDER = "redacted-secret"  # noqa: S105 (a stand-in, not a secret)
# Resource types under the kubernetes provider that are not single Kubernetes objects.
NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/")
# Pulumi-side inputs of a Kubernetes resource that are not fields of the object.
NOT_FIELDS = frozenset({"__defaults", "__meta"})


def api_version_and_kind(type_token: str) -> tuple[str, str] | None:
    """`kubernetes:apps/v1:Deployment` -> (`apps/v1`, `Deployment`); core types drop `core/`."""
    if not type_token.startswith("kubernetes:") or type_token.startswith(NOT_OBJECTS):
        return None
    try:
        _, group_version, kind = type_token.split(":")
    except ValueError:
        return None
    if "/" not in group_version or not kind or kind.endswith("List") or kind == "Patch":
        return None
    group, _, version = group_version.partition("/")
    return (version if group == "core" else group_version), kind


def _plain(value: Any, redact: bool) -> Any:
    """Plain data from recorded inputs; with `redact`, every value below a secret marker is
    replaced, the keys kept (a Secret's `stringData` keeps its variable names)."""
    return secrets.redact_leaves(value, SECRET_PLACEHOLDER) if redact else secrets.unwrap(value)


def manifest(resource: offline.Resource, *, redact: bool = True) -> dict[str, Any] | None:
    """The Kubernetes object a recorded resource stands for, or None if it is not one."""
    parsed = api_version_and_kind(resource.type)
    if parsed is None:
        return None
    api_version, kind = parsed
    body = {k: _plain(v, redact) for k, v in resource.inputs.items() if k not in NOT_FIELDS}
    return {"apiVersion": api_version, "kind": kind, **body}


def manifests(
    recording: offline.Recording,
    *,
    under: offline.Resource | None = None,
    redact: bool = True,
) -> list[dict[str, Any]]:
    """Every Kubernetes object in the recording (or below the component `under`), in
    registration order."""
    resources = recording.descendants(under) if under is not None else recording.resources
    found = (manifest(r, redact=redact) for r in resources)
    return [m for m in found if m is not None]


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--project", default=".", type=Path)
    parser.add_argument("--out", default="-", help="file to write, or - for standard output")
    options = parser.parse_args(argv)
    text = to_yaml(manifests(offline.run(options.project, options.stack)))
    if options.out == "-":
        sys.stdout.write(text)
    else:
        Path(options.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
