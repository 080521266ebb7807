"""The stack config keys the components' options models own, as `Pulumi.yaml` declares them.

The models are the one source of each key's default and description; `Pulumi.yaml` repeats
them for the Pulumi CLI. `python -m app_platform.configschema --check [Pulumi.yaml]` says where
the file drifted from the models (a test runs it); exit status 1 when it did.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from app_platform import config
from app_platform.options import Options


def _entry(key: str, info: Any) -> dict[str, Any]:
    default = info.default
    if isinstance(default, tuple):
        default = list(default)
    entry: dict[str, Any] = {"type": config.KEYS[key]}
    if not info.is_required():
        entry["default"] = "" if default is None else default
    entry["description"] = info.description
    return entry


def declared_keys() -> dict[str, dict[str, Any]]:
    """Every model-owned config key: its Pulumi type, default (unless required), description."""
    keys: dict[str, dict[str, Any]] = {}
    for model in config.COMPONENT_OPTIONS:
        for name, info in model.model_fields.items():
            alias = info.alias or name
            if alias in config.KEYS:
                keys[alias] = _entry(alias, info)
                continue
            nested: type[Options] = info.annotation
            default = info.default
            for key, (group, part) in config.NESTED_KEYS.items():
                if group == alias:
                    field_name, field = next(
                        (n, f) for n, f in nested.model_fields.items() if f.alias == part
                    )
                    entry = _entry(key, field)
                    # "Fewest nodes." of the spot group reads "Spot: fewest nodes."
                    text = entry["description"]
                    entry["description"] = f"{info.title}: {text[0].lower()}{text[1:]}"
                    value = getattr(default, field_name)
                    entry["default"] = list(value) if isinstance(value, tuple) else value
                    keys[key] = entry
    return keys


def drift(pulumi_yaml: Path) -> list[str]:
    """Where `pulumi_yaml`'s config block says something else than the models."""
    declared = yaml.safe_load(pulumi_yaml.read_text()).get("config") or {}
    found = []
    for key, entry in declared_keys().items():
        given = declared.get(key) or {}
        for part, value in entry.items():
            if given.get(part) != value:
                found.append(
                    f"{key}.{part}: the model says {value!r}, the file {given.get(part)!r}"
                )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift (the default)")
    parser.add_argument("pulumi_yaml", nargs="?", default="Pulumi.yaml", type=Path)
    args = parser.parse_args(argv)
    problems = drift(args.pulumi_yaml)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
