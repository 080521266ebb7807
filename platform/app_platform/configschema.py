"""Pulumi.yaml's config block and the README's configuration table, from the models that own
every config key (`config.CONFIG_KEYS`): their types, defaults and descriptions.

`python -m app_platform.configschema [--check]` says where either file drifted from the models
(a test runs it; exit status 1 when one did); `--write` rewrites Pulumi.yaml's config block
(the rest of the file, comments included, is kept) and the README's tables between their
markers: the configuration keys, and the keys of an `apps` entry (from AppSpec's fields).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from app_platform import config
from app_platform.apps.spec import APP_REQUIRED_KEYS, AppSpec
from app_platform.options import Options

# The README's configuration table sits between these two lines.
TABLE_START = "<!-- config-table:start (python -m app_platform.configschema --write) -->"
TABLE_END = "<!-- config-table:end -->"
APPS_START = "<!-- app-table:start (python -m app_platform.configschema --write) -->"
APPS_END = "<!-- app-table:end -->"
TABLE_HEADER = (
    "| Key | Type | Default | What it sets |",
    "|---|---|---|---|",
    # The provider's key: not this project's, so no model owns it.
    "| `aws:region` | string | required (dev: `us-east-1`) | The AWS region. |",
)
# Pulumi.yaml's config block: from its `config:` line to the next top-level line, or the end.
CONFIG_BLOCK = re.compile(r"^config:\n(?:(?:[ #].*)?\n)*", re.MULTILINE)


def _plain(value: Any) -> Any:
    if isinstance(value, Options):  # an object key (`karpenter`): its config keys and values
        return value.model_dump(mode="json", by_alias=True)
    return list(value) if isinstance(value, tuple) else value


def entry(key: config.ConfigKey) -> dict[str, Any]:
    """How Pulumi.yaml declares `key`: type, (string) items, default unless required, text."""
    declared: dict[str, Any] = {"type": key.type}
    if key.type == "array":
        declared["items"] = {"type": "string"}
    if not key.required:
        declared["default"] = "" if key.default is None else _plain(key.default)
    text = key.field.description or ""
    if key.group:  # "Fewest nodes." of the spot group reads "Spot: fewest nodes."
        text = f"{key.group}: {text[0].lower()}{text[1:]}"
    declared["description"] = text
    return declared


def declared_keys() -> dict[str, dict[str, Any]]:
    """Every config key as Pulumi.yaml should declare it, in the models' order."""
    return {key.key: entry(key) for key in config.CONFIG_KEYS}


def drift(pulumi_yaml: Path) -> list[str]:
    """Where `pulumi_yaml`'s config block says something else than the models."""
    declared = yaml.safe_load(pulumi_yaml.read_text()).get("config") or {}
    expected = declared_keys()
    found = [f"{key}: no model owns it" for key in declared if key not in expected]
    for key, want in expected.items():
        given = declared.get(key) or {}
        found += [f"{key}.{part}: the file has it, the model not" for part in given.keys() - want]
        for part, value in want.items():
            if given.get(part) != value:
                found.append(
                    f"{key}.{part}: the model says {value!r}, the file {given.get(part)!r}"
                )
    return found


def config_block() -> str:
    """Pulumi.yaml's config block as the models say it."""
    lines = ["config:"]
    for key, declared in declared_keys().items():
        lines.append(f"  {key}:")
        for part, value in declared.items():
            # One line per part; lists and `items` in flow style, as people write them.
            text = yaml.safe_dump({part: value}, width=1_000_000, default_flow_style=True)
            lines.append(f"    {text.strip().removeprefix('{').removesuffix('}')}")
    return "\n".join(lines) + "\n"


def with_config_block(text: str) -> str:
    """`text` (a Pulumi.yaml) with its config block replaced, or appended when it has none."""
    if CONFIG_BLOCK.search(text) is None:
        return text.rstrip("\n") + "\n\n" + config_block()
    return CONFIG_BLOCK.sub(lambda _: config_block(), text, count=1)


def _shown_default(key: config.ConfigKey) -> str:
    if key.required:
        return "required"
    value = "" if key.default is None else _plain(key.default)
    if key.secret and value == "" and "generated" in (key.field.description or ""):
        return "generated"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def _markdown(text: str) -> str:
    """`text` as a table cell: `<name>` must not read as an HTML tag, `|` as a column."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def table() -> str:
    """The README's configuration table: every key, its type, default and description."""
    rows = list(TABLE_HEADER)
    for key in config.CONFIG_KEYS:
        kind = f"{key.type} (secret)" if key.secret else key.type
        text = key.summary or _markdown(entry(key)["description"])
        rows.append(f"| `{key.key}` | {kind} | {_shown_default(key)} | {text} |")
    return "\n".join(rows)


def _nested_keys(info: Any) -> str:
    """` {request, limit}` for a field holding an options model (or a model or a bool)."""
    kinds = [info.annotation, *getattr(info.annotation, "__args__", ())]
    model = next((k for k in kinds if isinstance(k, type) and issubclass(k, Options)), None)
    return f" {{{', '.join(model.config_keys())}}}" if model else ""


def _app_default(key: str, info: Any) -> str:
    # The model requires more (minReplicas, filled from replicas); a user these keys.
    if key in APP_REQUIRED_KEYS:
        return "required"
    value = None if info.is_required() else info.get_default(call_default_factory=True)
    if value in (None, "", {}, ()):
        return "—"
    return (
        f"`{json.dumps(value.model_dump(by_alias=True) if isinstance(value, Options) else value)}`"
    )


def app_table() -> str:
    """The README's table of an `apps` entry's keys, from AppSpec's fields."""
    rows = ["| Key | Default | Meaning |", "|---|---|---|"]
    for name, info in AppSpec.model_fields.items():
        if name == "name":  # the entry's key in the `apps` map
            continue
        key = info.alias or name
        text = _markdown(info.description or "")
        rows.append(f"| `{key}`{_nested_keys(info)} | {_app_default(key, info)} | {text} |")
    return "\n".join(rows)


# Each generated README table: its markers and what goes between them.
TABLES = {
    "configuration": (TABLE_START, TABLE_END, table),
    "apps": (APPS_START, APPS_END, app_table),
}


def with_tables(readme: str) -> str:
    """`readme` with the text between each table's markers replaced by the table."""
    for start_marker, end_marker, render in TABLES.values():
        start, end = readme.index(start_marker), readme.index(end_marker)
        readme = f"{readme[: start + len(start_marker)]}\n{render()}\n{readme[end:]}"
    return readme


def readme_drift(readme: Path) -> list[str]:
    text = readme.read_text()
    found = [
        f"{readme}: no {name} table markers ({start})"
        for name, (start, end, _) in TABLES.items()
        if start not in text or end not in text
    ]
    if not found and with_tables(text) != text:
        found.append(f"{readme}: a table differs from the models (configschema --write)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report drift (the default)")
    mode.add_argument("--write", action="store_true", help="rewrite both from the models")
    parser.add_argument("pulumi_yaml", nargs="?", default="Pulumi.yaml", type=Path)
    parser.add_argument("--readme", default=None, type=Path, help="default: beside Pulumi.yaml")
    args = parser.parse_args(argv)
    readme = args.readme or args.pulumi_yaml.with_name("README.md")
    if args.write:
        args.pulumi_yaml.write_text(with_config_block(args.pulumi_yaml.read_text()))
        readme.write_text(with_tables(readme.read_text()))
        return 0
    problems = drift(args.pulumi_yaml) + readme_drift(readme)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
