"""The difference between two offline plans, as a Markdown pull-request comment.

    python -m app_platform_tools.plandiff BASE.json HEAD.json [--title TEXT]

Both files are what `python -m app_platform_tools.plan --json FILE` writes for the base and the head
of a pull request. The comment gives the resource counts, the resources added and removed (by
URN), for each resource in both plans the inputs that changed, as `path: old -> new`, and the
difference in their monthly cost estimates (`app_platform_tools.cost`).

A pull request from a fork gets this comment instead of a real `pulumi preview` (forks get no
secrets), and its plans are made by the fork's own code, so both files are untrusted data: they
are only parsed, every value is printed inside a code span, long values and long lists are cut,
and secret values are never printed (the plan already redacts them; values marked secret, and
the data of Kubernetes Secrets, are redacted here again in case a plan did not).

Standard library only, so it runs without the Pulumi SDK.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app_platform_tools import secrets

# A hidden line the comment starts with, so a workflow can find and edit its own comment.
MARKER = "<!-- app-platform:offline-plan-diff -->"
REDACTED = secrets.REDACTED
# GitHub refuses comments over 65,536 characters; stay well under it.
MAX_COMMENT_CHARS = 60_000
MAX_VALUE_CHARS = 120
MAX_RESOURCES_LISTED = 100
MAX_CHANGES_PER_RESOURCE = 25
# Inputs whose values are secret whatever the plan says: a Kubernetes Secret's payload.
SECRET_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Secret": ("data", "stringData"),
}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class PlanError(ValueError):
    """A plan file that is not what `app_platform_tools.plan --json` writes."""


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any


@dataclass
class ResourceChange:
    urn: str
    type: str
    name: str
    changes: list[Change]


@dataclass
class PlanDiff:
    base_counts: dict[str, int]
    head_counts: dict[str, int]
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)
    outputs: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.outputs)


# ---------------------------------------------------------------------------------------------
# Reading and comparing
# ---------------------------------------------------------------------------------------------


def load(path: str | Path) -> dict[str, Any]:
    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError) as why:
        raise PlanError(f"{path}: cannot read a JSON plan ({why})") from why
    return validate(plan, str(path))


def validate(plan: Any, where: str = "plan") -> dict[str, Any]:
    """Check the shape this module relies on, so a bad file fails with a clear message."""
    if not isinstance(plan, dict) or not isinstance(plan.get("resources"), list):
        raise PlanError(f"{where}: expected an object with a 'resources' list")
    for index, resource in enumerate(plan["resources"]):
        if not isinstance(resource, dict) or not isinstance(resource.get("urn"), str):
            raise PlanError(f"{where}: resources[{index}] has no 'urn' string")
        if not isinstance(resource.get("inputs", {}), dict):
            raise PlanError(f"{where}: resources[{index}].inputs is not an object")
    if not isinstance(plan.get("outputs", {}), dict):
        raise PlanError(f"{where}: 'outputs' is not an object")
    return plan


def _is_secret(value: Any) -> bool:
    return value == REDACTED or secrets.is_secret(value)


def _key_path(prefix: str, key: str) -> str:
    part = key if _PLAIN_KEY.match(key) else json.dumps(key)
    if not _PLAIN_KEY.match(key):
        return f"{prefix}[{part}]"
    return f"{prefix}.{part}" if prefix else part


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaf paths of a nested value: `a.b`, `a["x.y"]`, `list[2].c`.

    Lists of plain values (instance types, CIDRs) stay one leaf, read whole; lists holding
    objects (containers, statements) are walked by index. Secrets are leaves.
    """
    if _is_secret(value):
        yield prefix, REDACTED
    elif isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], _key_path(prefix, str(key)))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _secret_path(resource_type: str, path: str) -> bool:
    return any(
        path == top or path.startswith((f"{top}.", f"{top}["))
        for top in SECRET_PATHS.get(resource_type, ())
    )


def input_changes(resource_type: str, old: Mapping, new: Mapping) -> list[Change]:
    before = dict(flatten(dict(old)))
    after = dict(flatten(dict(new)))
    changes = []
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path), after.get(path)
        if was == now:
            continue
        if _secret_path(resource_type, path):
            was = REDACTED if path in before else None
            now = REDACTED if path in after else None
        changes.append(Change(path, was, now))
    return changes


def _output_value(output: Any) -> Any:
    if isinstance(output, dict) and "value" in output:
        return REDACTED if output.get("secret") else output["value"]
    return output


def diff(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    base_resources = {r["urn"]: r for r in base["resources"]}
    head_resources = {r["urn"]: r for r in head["resources"]}
    result = PlanDiff(_counts(base), _counts(head))
    for urn, resource in head_resources.items():
        if urn not in base_resources:
            result.added.append(resource)
            continue
        resource_type = str(resource.get("type", ""))
        changes = input_changes(
            resource_type, base_resources[urn].get("inputs", {}), resource.get("inputs", {})
        )
        if changes:
            result.changed.append(
                ResourceChange(urn, resource_type, str(resource.get("name", "")), changes)
            )
        else:
            result.unchanged += 1
    result.removed = [r for urn, r in base_resources.items() if urn not in head_resources]
    base_outputs = base.get("outputs", {})
    head_outputs = head.get("outputs", {})
    for name in sorted(base_outputs.keys() | head_outputs.keys()):
        was = _output_value(base_outputs.get(name))
        now = _output_value(head_outputs.get(name))
        if was != now:
            result.outputs.append(Change(name, was, now))
    return result


def _counts(plan: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for resource in plan["resources"]:
        type_ = str(resource.get("type", "?"))
        counts[type_] = counts.get(type_, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def code(text: str) -> str:
    """`text` as an inline code span that no backtick or newline in it can break out of."""
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def show(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A value as compact JSON in a code span, cut to `limit` characters."""
    if value is None:
        return "_(none)_"
    text = REDACTED if _is_secret(value) else json.dumps(value, separators=(",", ":"))
    if len(text) > limit:
        text = f"{text[: limit - 1]}…"
    return code(text)


def _resource_line(resource: Mapping[str, Any]) -> str:
    return f"- {code(str(resource['urn']))}"


def render(result: PlanDiff, title: str, sections: Sequence[str] = ()) -> str:
    """The comment: counts, added, removed and changed resources, then `sections` (Markdown
    made from the same plans, such as the cost difference)."""
    base_total = sum(result.base_counts.values())
    head_total = sum(result.head_counts.values())
    lines = [
        MARKER,
        f"### {title}",
        "",
        f"**{len(result.added)} to add, {len(result.removed)} to remove, "
        f"{len(result.changed)} to change** ({result.unchanged} unchanged); "
        f"resources: {base_total} → {head_total}.",
        "",
    ]
    if result.empty:
        lines += ["No resource or output changes.", ""]

    types = sorted(result.base_counts.keys() | result.head_counts.keys())
    moved = [t for t in types if result.base_counts.get(t, 0) != result.head_counts.get(t, 0)]
    if moved:
        lines += ["| Type | Base | Head |", "|---|---:|---:|"]
        lines += [
            f"| {code(t)} | {result.base_counts.get(t, 0)} | {result.head_counts.get(t, 0)} |"
            for t in moved
        ]
        lines.append("")

    for heading, resources in (("Added", result.added), ("Removed", result.removed)):
        if resources:
            lines += [f"#### {heading} ({len(resources)})", ""]
            lines += [_resource_line(r) for r in resources[:MAX_RESOURCES_LISTED]]
            lines += _more(len(resources), MAX_RESOURCES_LISTED, "resources")
            lines.append("")

    if result.changed:
        lines += [f"#### Changed ({len(result.changed)})", ""]
        for resource in result.changed[:MAX_RESOURCES_LISTED]:
            count = len(resource.changes)
            lines += [
                "<details>",
                f"<summary>{_html(resource.type)} <b>{_html(resource.name)}</b> "
                f"({count} input{'s' if count != 1 else ''})</summary>",
                "",
                f"URN: {code(resource.urn)}",
                "",
            ]
            lines += [
                f"- {code(change.path or '(inputs)')}: {show(change.old)} → {show(change.new)}"
                for change in resource.changes[:MAX_CHANGES_PER_RESOURCE]
            ]
            lines += _more(count, MAX_CHANGES_PER_RESOURCE, "inputs")
            lines += ["", "</details>"]
        lines += _more(len(result.changed), MAX_RESOURCES_LISTED, "resources")
        lines.append("")

    if result.outputs:
        lines += [f"#### Stack outputs changed ({len(result.outputs)})", ""]
        lines += [
            f"- {code(change.path)}: {show(change.old)} → {show(change.new)}"
            for change in result.outputs
        ]
        lines.append("")

    lines += [section.rstrip("\n") + "\n" for section in sections]
    lines.append(
        "_Offline plan under mocks (no cloud account): inputs computed from cloud values "
        "appear as none, and a real preview may differ._"
    )
    return _fit("\n".join(lines))


def _more(total: int, shown: int, what: str) -> list[str]:
    return [f"- … and {total - shown} more {what}"] if total > shown else []


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _fit(body: str) -> str:
    """Cut a comment GitHub would refuse, at a line boundary, saying so."""
    if len(body) <= MAX_COMMENT_CHARS:
        return body + "\n"
    cut = body.rfind("\n", 0, MAX_COMMENT_CHARS - 200)
    head = body[:cut]
    # Close a <details> block left open by the cut so the note below stays visible.
    if head.count("<details>") > head.count("</details>"):
        head += "\n\n</details>"
    return head + "\n\n:warning: _The difference is too long for a comment and was cut._\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="plan JSON of the pull request's base")
    parser.add_argument("head", type=Path, help="plan JSON of the pull request's head")
    parser.add_argument("--title", help="comment heading (default: names the stack)")
    args = parser.parse_args(argv)
    try:
        base, head = load(args.base), load(args.head)
    except PlanError as why:
        print(f"plandiff: {why}", file=sys.stderr)
        return 2
    stack = head.get("stack") if isinstance(head.get("stack"), str) else "?"
    title = args.title or f"Offline plan difference for stack {code(stack)}"
    from app_platform_tools import cost  # it imports this module for its code spans

    sys.stdout.write(render(diff(base, head), title, [cost.comment_section(base, head)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
