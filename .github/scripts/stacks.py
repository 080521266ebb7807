"""Every stack CI plans and previews, as a GitHub Actions matrix (JSON on standard output).

    python3 .github/scripts/stacks.py [ROOT]

A stack is a `Pulumi.<stack>.yaml` beside a `Pulumi.yaml`: at the root (the platform project)
and in every `examples/<name>/` project. Each entry names its project folder, its stack, an id
safe in artifact names and comment markers, and its policy pack config if it has one. An
example project without a stack file is an error, so no project goes unplanned. Standard
library only: it runs before anything is installed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9][A-Za-z0-9_.-]*)\.yaml$")
EXAMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class StackError(ValueError):
    """A project CI cannot plan."""


def project_stacks(root: Path, project: Path) -> list[dict[str, str]]:
    folder = project.relative_to(root).as_posix() if project != root else "."
    prefix = "" if folder == "." else folder.replace("/", "-") + "-"
    entries = []
    for path in sorted(project.glob("Pulumi.*.yaml")):
        match = STACK_FILE.match(path.name)
        if not match:
            raise StackError(f"{path.relative_to(root)}: not a valid stack file name")
        stack = match["stack"]
        policy = root / "policy" / f"config.{stack}.json"
        entries.append(
            {
                "project": folder,
                "stack": stack,
                "id": prefix + stack,
                "policy_config": f"policy/config.{stack}.json" if policy.exists() else "",
            }
        )
    return entries


def discover(root: Path) -> list[dict[str, str]]:
    entries = project_stacks(root, root)
    for project_file in sorted(root.glob("examples/*/Pulumi.yaml")):
        project = project_file.parent
        if not EXAMPLE_NAME.match(project.name):
            raise StackError(f"examples/{project.name}: not a name CI can use")
        found = project_stacks(root, project)
        if not found:
            raise StackError(
                f"examples/{project.name} has no Pulumi.<stack>.yaml: add one so CI plans it"
            )
        entries += found
    return entries


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else ".").resolve()
    try:
        print(json.dumps(discover(root), separators=(",", ":")))
    except StackError as why:
        print(f"stacks: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
