"""Check Helm values and custom resources against facts extracted from upstream.

The fixtures under ``fixtures/`` are written by ``extract.py`` (see its docstring for how to
regenerate them). Other tests call:

* ``unknown_values_keys(chart, values)``: dotted paths of ``values`` that the chart's pinned
  version does not know (anything below a free-form map or a list is accepted).
* ``crd_errors(obj)``: problems of a whole custom resource object against its CRD's schema
  (unknown fields where the schema is closed, wrong types, missing required fields, enums).
* ``addon_configuration_errors(addon, configuration)``: keys of an EKS add-on's configuration
  that the chart it follows does not know, and values its ``values.schema.json`` rejects.
* ``chart_version(chart)`` / ``pinned_chart_versions()``: the versions the fixtures were read at,
  for asserting that the program's pins match them.
* ``scraped_jobs(chart, values)`` / ``enabled_rule_files(chart, values)`` /
  ``rules_without_scrapes(chart, values)``: which scrape jobs and default rule files a chart's
  values turn on, and the enabled rule files that select a job nothing scrapes.
* ``alertmanager_config_errors(config)``: keys and types of an Alertmanager configuration that the
  Prometheus Operator's strict parse would reject.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # a dependency of kubernetes-validate (tests/requirements.txt)

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Values subtrees that a chart copies into a custom resource spec: checked against that CRD.
VALUES_SUBTREE_SCHEMAS: dict[tuple[str, str], tuple[str, str]] = {
    # gateway-helm renders it as the default EnvoyProxySpec (templates/_helpers.tpl).
    ("gateway-helm", "config.envoyGateway.envoyProxy"): (
        "gateway.envoyproxy.io/v1alpha1",
        "EnvoyProxy",
    ),
}

# ObjectMeta fields a manifest of ours may set (the CRD schemas only say `type: object`).
METADATA_FIELDS = frozenset(
    {"name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences"}
)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@cache
def chart_fixture(chart: str) -> dict[str, Any]:
    """The one fixture of ``chart`` (fixtures/charts/<chart>-<version>.json)."""
    matches = [
        path
        for path in (FIXTURES / "charts").glob(f"{chart}-*.json")
        if json.loads(path.read_text())["chart"] == chart
    ]
    if len(matches) != 1:
        raise LookupError(f"expected one fixture for chart {chart!r}, found {len(matches)}")
    fixture: dict[str, Any] = json.loads(matches[0].read_text())
    return fixture


@cache
def _chart_index(chart: str) -> tuple[frozenset[str], frozenset[str]]:
    fixture = chart_fixture(chart)
    return frozenset(fixture["keys"]), frozenset(fixture["free_form"])


def chart_version(chart: str) -> str:
    return str(chart_fixture(chart)["version"])


def pinned_chart_versions() -> dict[str, str]:
    """Chart name -> version for every chart fixture."""
    result: dict[str, str] = {}
    for path in sorted((FIXTURES / "charts").glob("*.json")):
        fixture = json.loads(path.read_text())
        result[fixture["chart"]] = str(fixture["version"])
    return result


@cache
def crd_fixture(api_version: str, kind: str) -> dict[str, Any]:
    group, _, version = api_version.rpartition("/")
    path = FIXTURES / "crds" / f"{group}_{kind}_{version}.json"
    if not path.is_file():
        raise LookupError(f"no CRD fixture for {api_version} {kind}")
    fixture: dict[str, Any] = json.loads(path.read_text())
    return fixture


def known_custom_resources() -> list[tuple[str, str]]:
    """(apiVersion, kind) of every CRD fixture."""
    result = []
    for path in sorted((FIXTURES / "crds").glob("*.json")):
        fixture = json.loads(path.read_text())
        result.append((fixture["api_version"], fixture["kind"]))
    return result


# --------------------------------------------------------------------------------------------
# Helm values
# --------------------------------------------------------------------------------------------


def unknown_values_keys(chart: str, values: dict[str, Any]) -> list[str]:
    """Dotted paths in ``values`` that ``chart`` at its pinned version does not know."""
    keys, free_form = _chart_index(chart)
    return _unknown_keys(
        keys, free_form, values, lambda path, value: _subtree_schema_problems(chart, path, value)
    )


@cache
def addon_fixture(addon: str) -> dict[str, Any]:
    """The one fixture of EKS add-on ``addon`` (fixtures/addons/<chart>-<version>.json)."""
    matches = sorted((FIXTURES / "addons").glob(f"{addon}-*.json"))
    if len(matches) != 1:
        raise LookupError(f"expected one fixture for add-on {addon!r}, found {len(matches)}")
    fixture: dict[str, Any] = json.loads(matches[0].read_text())
    return fixture


def addon_configuration_errors(addon: str, configuration: dict[str, Any]) -> list[str]:
    """Problems of an EKS add-on's configuration values: unknown keys, then schema errors."""
    fixture = addon_fixture(addon)
    keys, free_form = frozenset(fixture["keys"]), frozenset(fixture["free_form"])
    problems = _unknown_keys(keys, free_form, configuration, lambda path, value: [])
    if fixture.get("values_schema"):
        schema = fixture["values_schema"]
        validator = jsonschema.validators.validator_for(schema)(schema)
        problems += [
            f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(configuration)
        ]
    return problems


def _unknown_keys(
    keys: frozenset[str],
    free_form: frozenset[str],
    values: dict[str, Any],
    check_free_form: Any,
) -> list[str]:
    unknown: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if path not in keys:
                unknown.append(path)
            elif path in free_form:
                unknown.extend(check_free_form(path, value))
            elif isinstance(value, dict):
                walk(value, path)

    walk(values, "")
    return unknown


def _subtree_schema_problems(chart: str, path: str, value: Any) -> list[str]:
    """Check the parts of a free-form values subtree that a chart copies into a CRD spec."""
    problems: list[str] = []
    for (schema_chart, schema_path), (api_version, kind) in VALUES_SUBTREE_SCHEMAS.items():
        if schema_chart != chart or not (schema_path + ".").startswith(path + "."):
            continue
        node: Any = value
        below = schema_path[len(path) :].strip(".")
        for part in below.split(".") if below else []:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        spec_schema = crd_fixture(api_version, kind)["schema"]["properties"]["spec"]
        problems.extend(
            f"{schema_path}{where}: {problem}"
            for where, problem in _schema_problems(spec_schema, node, "")
        )
    return problems


# --------------------------------------------------------------------------------------------
# Custom resources
# --------------------------------------------------------------------------------------------


def _type_matches(expected: str, value: Any) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _schema_problems(schema: dict[str, Any], value: Any, path: str) -> list[tuple[str, str]]:
    """(path, problem) pairs of ``value`` against a reduced structural schema."""
    if value is None:
        return [] if schema.get("nullable") else [(path, "is null")]
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        return [] if ok else [(path, f"must be an integer or a string, got {value!r}")]
    expected = schema.get("type")
    if expected and not _type_matches(expected, value):
        return [(path, f"must be of type {expected}, got {type(value).__name__}")]
    any_of = schema.get("anyOfTypes")
    if any_of and not any(_type_matches(option, value) for option in any_of):
        return [(path, f"must be one of types {any_of}, got {type(value).__name__}")]
    if "enum" in schema and value not in schema["enum"]:
        return [(path, f"{value!r} is not one of {schema['enum']}")]

    problems: list[tuple[str, str]] = []
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        for name in schema.get("required", []):
            if name not in value:
                problems.append((f"{path}.{name}", "is required"))
        for name, child in value.items():
            child_path = f"{path}.{name}"
            if name in properties:
                problems.extend(_schema_problems(properties[name], child, child_path))
            elif isinstance(additional, dict):
                problems.extend(_schema_problems(additional, child, child_path))
            elif not (preserve or additional is True):
                problems.append((child_path, "unknown field"))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems.extend(_schema_problems(schema["items"], item, f"{path}[{index}]"))
    return problems


def _metadata_errors(metadata: Any) -> list[str]:
    if not isinstance(metadata, dict):
        return ["metadata: must be an object"]
    errors = [f"metadata.{name}: unknown field" for name in metadata if name not in METADATA_FIELDS]
    if not (metadata.get("name") or metadata.get("generateName")):
        errors.append("metadata.name: is required")
    for name in ("name", "namespace", "generateName"):
        if name in metadata and not isinstance(metadata[name], str):
            errors.append(f"metadata.{name}: must be of type string")
    for name in ("labels", "annotations"):
        entries = metadata.get(name, {})
        if not isinstance(entries, dict) or not all(
            isinstance(key, str) and isinstance(text, str) for key, text in entries.items()
        ):
            errors.append(f"metadata.{name}: must map strings to strings")
    return errors


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Problems of a whole custom resource (apiVersion, kind, metadata, spec) against its CRD."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind are required"]
    try:
        fixture = crd_fixture(api_version, kind)
    except LookupError as error:
        return [str(error)]
    schema = fixture["schema"]
    errors = [
        f"{name}: unknown field"
        for name in obj
        if name not in schema.get("properties", {}) and name not in {"apiVersion", "kind"}
    ]
    errors.extend(_metadata_errors(obj.get("metadata")))
    spec_schema = schema.get("properties", {}).get("spec")
    if "spec" in obj and spec_schema is not None:
        errors.extend(f"{p}: {m}" for p, m in _schema_problems(spec_schema, obj["spec"], "spec"))
    elif "spec" in schema.get("required", []):
        errors.append("spec: is required")
    return errors


# --------------------------------------------------------------------------------------------
# Default alert rules and what they select
# --------------------------------------------------------------------------------------------


@cache
def rules_fixture(chart: str) -> dict[str, Any]:
    """fixtures/rules/<chart>-<version>.json: the chart's default rule files and scrapers."""
    path = FIXTURES / "rules" / f"{chart}-{chart_version(chart)}.json"
    fixture: dict[str, Any] = json.loads(path.read_text())
    return fixture


def _setting(chart: str, values: dict[str, Any], path: str) -> Any:
    """The value Helm would see at ``path``: ours where we set it, else the chart's default."""
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return rules_fixture(chart)["defaults"].get(path)
        node = node[part]
    return node


def _renders(chart: str, values: dict[str, Any], item: dict[str, Any]) -> bool:
    truthy = all(_setting(chart, values, path) for path in item["when"])
    return truthy and not any(_setting(chart, values, path) for path in item["unless"])


def scraped_jobs(chart: str, values: dict[str, Any]) -> set[str]:
    """Jobs whose ServiceMonitor the chart renders with these values."""
    return {s["job"] for s in rules_fixture(chart)["scrapers"] if _renders(chart, values, s)}


def enabled_rule_files(chart: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The default rule files the chart renders with these values."""
    return [f for f in rules_fixture(chart)["rule_files"] if _renders(chart, values, f)]


def rules_without_scrapes(chart: str, values: dict[str, Any]) -> list[str]:
    """Enabled default rule files that select a job the chart does not scrape: their absent()
    and down alerts would fire for as long as the stack runs."""
    scraped = scraped_jobs(chart, values)
    return [
        f"{item['file']} ({', '.join(item['groups'])}) selects job {job!r}, which is not scraped"
        for item in enabled_rule_files(chart, values)
        for job in item["jobs"]
        if job not in scraped
    ]


# --------------------------------------------------------------------------------------------
# Alertmanager configuration
# --------------------------------------------------------------------------------------------

_GO_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bool": (bool,),
    "int": (int,),
    "int32": (int,),
    "int64": (int,),
    "uint64": (int,),
    "config.HostPort": (str,),
    "model.Duration": (str,),
}


@cache
def _alertmanager_structs() -> dict[str, Any]:
    (path,) = sorted((FIXTURES / "alertmanager").glob("alertmanager-config-*.json"))
    fixture: dict[str, Any] = json.loads(path.read_text())
    return fixture


def _struct_fields(name: str) -> dict[str, str]:
    struct = _alertmanager_structs()["structs"][name]
    fields = dict(struct["fields"])
    for inline in struct["inline"]:
        fields |= _struct_fields(inline)
    return fields


def _go_value_errors(go_type: str, value: Any, path: str) -> list[str]:
    go_type = go_type.lstrip("*")
    structs = _alertmanager_structs()["structs"]
    if go_type.startswith("[]"):
        if not isinstance(value, list):
            return [f"{path}: must be a list"]
        return [
            e
            for i, item in enumerate(value)
            for e in _go_value_errors(go_type[2:], item, f"{path}[{i}]")
        ]
    if go_type == "map[string]string":
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        return [] if ok else [f"{path}: must map strings to strings"]
    if go_type in structs:
        if not isinstance(value, dict):
            return [f"{path}: must be an object"]
        fields = _struct_fields(go_type)
        errors = [f"{path}.{key}: unknown field" for key in value if key not in fields]
        return errors + [
            e
            for key, item in value.items()
            if key in fields
            for e in _go_value_errors(fields[key], item, f"{path}.{key}")
        ]
    expected = _GO_SCALARS.get(go_type)
    if expected and (
        not isinstance(value, expected) or (bool not in expected and isinstance(value, bool))
    ):
        return [f"{path}: must be a {go_type}, got {value!r}"]
    return []


def alertmanager_config_errors(config: dict[str, Any]) -> list[str]:
    """What the Prometheus Operator's strict parse (yaml.UnmarshalStrict into its own types)
    would reject in an Alertmanager configuration: unknown keys and wrong types."""
    return _go_value_errors(_alertmanager_structs()["root"], config, "config")
