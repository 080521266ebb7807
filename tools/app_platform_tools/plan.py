"""The offline plan: what a stack would create, without a cloud account or the Pulumi CLI.

    python -m app_platform_tools.plan [--stack dev] [--project DIR] [--json FILE]

Runs the program under mocks (`app_platform_tools.offline`) and prints the resource tree (component
then children) with each resource's key settings, the stack outputs (secrets redacted) and a
count by type. `--json FILE` writes the same as JSON for tools (`-` for standard output), e.g.
to compare two revisions of a pull request.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app_platform_tools import offline, secrets

# The inputs worth seeing per resource type, as dotted paths into the recorded inputs.
KEY_SETTINGS: dict[str, list[str]] = {
    "aws:ec2/vpc:Vpc": ["cidrBlock"],
    "aws:ec2/subnet:Subnet": ["availabilityZone", "cidrBlock"],
    "aws:ec2/natGateway:NatGateway": ["subnetId"],
    "aws:ec2/launchTemplate:LaunchTemplate": [
        "metadataOptions.httpTokens",
        "metadataOptions.httpPutResponseHopLimit",
    ],
    "aws:kms/key:Key": ["enableKeyRotation"],
    "aws:eks/addon:Addon": ["addonName", "addonVersion"],
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ["policyArn"],
    "aws:rds/instance:Instance": [
        "engine",
        "engineVersion",
        "instanceClass",
        "storageEncrypted",
        "multiAz",
    ],
    "eks:index:Cluster": [
        "name",
        "version",
        "authenticationMode",
        "publicAccessCidrs",
        "enabledClusterLogTypes",
    ],
    "eks:index:ManagedNodeGroup": ["capacityType", "instanceTypes", "scalingConfig", "labels"],
    "kubernetes:helm.sh/v3:Release": ["chart", "version", "namespace"],
    "aws:ecr/repository:Repository": [
        "name",
        "imageTagMutability",
        "imageScanningConfiguration.scanOnPush",
        "forceDelete",
    ],
    "docker-build:index:Image": ["context.location", "platforms", "push"],
}


def _lookup(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _show(value: Any) -> str:
    value = secrets.redact(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def key_settings(resource: offline.Resource) -> dict[str, Any]:
    paths = KEY_SETTINGS.get(resource.type)
    if paths is None and resource.type.startswith("kubernetes:"):
        paths = ["metadata.namespace", "metadata.name"]
    found = {path: _lookup(resource.inputs, path) for path in paths or []}
    return {path: value for path, value in found.items() if value is not None}


def stack_region(project: Path, stack: str) -> str | None:
    """The stack's `aws:region`, which the plan records for tools that price it."""
    return offline.load_stack_config(Path(project), stack).values.get("aws:region")


def to_json(
    recording: offline.Recording, stood_in: Sequence[str] = (), region: str | None = None
) -> dict[str, Any]:
    return {
        "project": recording.project,
        "stack": recording.stack,
        "region": region,
        "stoodIn": list(stood_in),
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "inputs": secrets.redact(r.inputs),
                "dependencies": r.dependencies,
                "provider": r.provider,
                "deletedWith": r.deleted_with,
            }
            for r in recording.resources
        ],
        "outputs": {
            name: {"value": secrets.redacted(o.value, o.secret), "secret": o.secret}
            for name, o in recording.outputs.items()
        },
        "counts": recording.count_by_type(),
    }


def render_text(recording: offline.Recording, stood_in: Sequence[str] = ()) -> str:
    """The plan as text; `stood_in` says what the offline run used instead of the real thing."""
    lines = [f"Offline plan of stack '{recording.stack}' (project {recording.project})", ""]
    if stood_in:
        lines += ["Stood in for (not real in this plan):"]
        lines += [f"  - {note}" for note in stood_in]
        lines += [""]
    for depth, resource in offline.iter_tree(recording):
        settings = "  ".join(f"{k}={_show(v)}" for k, v in key_settings(resource).items())
        lines.append(f"{'  ' * depth}+ {resource.type}  {resource.name}  {settings}".rstrip())
    lines += ["", "Outputs:"]
    for name, output in recording.outputs.items():
        lines.append(f"  {name}: {_show(secrets.redacted(output.value, output.secret))}")
    counts = recording.count_by_type()
    lines += ["", f"Resources: {len(recording.resources)}"]
    width = max((len(t) for t in counts), default=0)
    lines += [f"  {count:4d}  {type_:<{width}}" for type_, count in counts.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to use")
    parser.add_argument("--project", default=".", type=Path, help="folder holding Pulumi.yaml")
    parser.add_argument("--json", metavar="FILE", help="also write the plan as JSON ('-': stdout)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    stand_ins = offline.offline_stand_ins()
    recording = offline.run(args.project, args.stack, stand_ins=stand_ins)
    elapsed = time.monotonic() - started
    region = stack_region(args.project, args.stack)
    if args.json == "-":
        json.dump(to_json(recording, stand_ins.used, region), sys.stdout, indent=2)
        print()
        return 0
    print(render_text(recording, stand_ins.used))
    if args.json:
        plan = to_json(recording, stand_ins.used, region)
        Path(args.json).write_text(json.dumps(plan, indent=2) + "\n")
        print(f"\nWrote {args.json}")
    print(f"\nPlanned offline in {elapsed:.1f}s: no cloud account or Pulumi CLI was used.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
