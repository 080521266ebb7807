#!/usr/bin/env python3
"""Extract "checked against upstream" facts from Helm charts and CRDs into JSON fixtures.

What it extracts
----------------
* Chart facts: every values key path a chart knows at a version (flattened, dotted), plus the
  paths below which any key is accepted ("free-form": empty maps such as ``podAnnotations: {}``,
  lists, nulls, maps whose template passes them through, e.g. ``extraArgs``). Subcharts' values are
  included under their alias prefix (``grafana.``, ``kube-state-metrics.``, ...).
* EKS add-on facts: an EKS managed add-on's configuration follows the values of the Helm chart
  the add-on is built from; its fixture is that chart's facts plus its ``values.schema.json``
  (the add-on's own schema is only readable through the AWS API,
  ``aws eks describe-addon-configuration``).
* CRD facts: a CRD's openAPIV3Schema for one served version, reduced to structure (type,
  properties, required, items, enum, additionalProperties, nullable,
  x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string). Descriptions, defaults,
  formats and CEL rules are dropped.
* Rule facts (``fixtures/rules/``): for each default rule template of a chart, the values paths
  that switch it on or off, its groups and alerts, and the scrape jobs its expressions select;
  for each of those jobs, the values paths that switch its ServiceMonitor on; the chart's
  defaults of all those paths.
* Alertmanager configuration facts (``fixtures/alertmanager/``): the YAML keys and Go types of
  the Prometheus Operator's own configuration structs, which it parses strictly.

Everything is read from git snapshots of the upstream repositories (``git show <ref>:<path>``);
nothing is rendered, fetched or executed. Dependencies: the standard library and PyYAML.

How to re-run
-------------
1. Bring the upstream snapshots onto the machine as bare git directories, one per repository,
   laid out as ``<mirrors>/<owner>+<name>/repo`` (that is what the team's snapshot tool makes).
   The repositories and refs used are listed in ``CHART_RECIPES`` and ``CRD_RECIPES`` below:

   ========================================  ===================================================
   repository                                refs (tags unless a commit is given)
   ========================================  ===================================================
   envoyproxy/gateway                        v1.9.0
   argoproj/argo-helm                        argo-cd-10.1.1
   DandyDeveloper/charts                     redis-ha-4.38.0 (argo-cd's redis-ha dependency)
   prometheus-community/helm-charts          kube-prometheus-stack-88.5.3, kube-state-metrics-
                                             8.4.0, prometheus-node-exporter-4.56.1,
                                             prometheus-windows-exporter-0.12.8
   grafana-community/helm-charts             grafana-12.11.1
   aws/eks-charts                            commit 5239609242f3 (chart 3.5.0; no chart tags)
   kubernetes-sigs/metrics-server            metrics-server-helm-chart-3.13.1
   kubernetes/autoscaler                     cluster-autoscaler-chart-9.59.0
   prometheus-operator/prometheus-operator   v0.93.0 (``GO_STRUCT_RECIPES``)
   kubernetes-sigs/aws-ebs-csi-driver        helm-chart-aws-ebs-csi-driver-2.55.0 (add-on)
   aws/karpenter-provider-aws                v1.14.1 (charts karpenter and karpenter-crd);
                                             commit 1d927085dd81 (controller IAM policy)
   ========================================  ===================================================

2. Regenerate every fixture (writes ``tests/upstream/fixtures/``)::

       python3 tests/upstream/extract.py all --mirrors /work/.mirror

   or only the rule and Alertmanager facts (``RULE_RECIPES``, ``GO_STRUCT_RECIPES``)::

       python3 tests/upstream/extract.py rules --mirrors /work/.mirror

   or one chart / one CRD from a git directory or from a plain local directory::

       python3 tests/upstream/extract.py chart --git /work/.mirror/argoproj+argo-helm/repo \\
           --ref argo-cd-10.1.1 --path charts/argo-cd --repo-name argoproj/argo-helm --out x.json
       python3 tests/upstream/extract.py chart --dir ./argo-cd --out x.json
       python3 tests/upstream/extract.py addon --git <dir> --ref <ref> --repo-name <owner/name> \\
           --path charts/aws-ebs-csi-driver --out z.json
       python3 tests/upstream/extract.py crd --git <dir> --ref <ref> --repo-name <owner/name> \\
           --file <path/to/crds.yaml> --group argoproj.io --kind ApplicationSet \\
           --version v1alpha1 --out y.json

3. Review the diff of ``tests/upstream/fixtures/`` and commit it together with the new pins.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCRIPT = "tests/upstream/extract.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Map keys below which charts accept arbitrary content even when the default is not empty
# (Kubernetes objects or maps that templates pass through with toYaml).
FREE_FORM_NAMES = frozenset(
    {
        "affinity",
        "annotations",
        "additionalLabels",
        "commonLabels",
        "containerSecurityContext",
        "env",
        "extraArgs",
        "extraEnv",
        "labels",
        "livenessProbe",
        "matchLabels",
        "nodeSelector",
        "podAnnotations",
        "podLabels",
        "podSecurityContext",
        "readinessProbe",
        "resources",
        "securityContext",
        "startupProbe",
        "strategy",
        "tolerations",
        "updateStrategy",
    }
)

# A values reference in a template: .Values.a.b or $.Values.a.b (not index/with-relative ones).
VALUES_REFERENCE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")

# The template directive lines of a CRD kept in a chart's templates/ directory.
TEMPLATE_LINE = re.compile(r"^\s*\{\{.*\}\}\s*$")

KEPT_SCHEMA_KEYS = (
    "type",
    "nullable",
    "enum",
    "required",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
)


# --------------------------------------------------------------------------------------------
# Reading sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where files are read from: a git directory at a ref, or a plain directory."""

    root: Path
    ref: str | None = None
    repo_name: str = ""

    def read(self, path: str) -> str | None:
        if self.ref is None:
            file = self.root / path
            return file.read_text() if file.is_file() else None
        result = subprocess.run(
            ["git", "-C", str(self.root), "show", f"{self.ref}:{path}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout if result.returncode == 0 else None

    def list_files(self, path: str) -> list[str]:
        """Files below a directory, as paths relative to the source root."""
        if self.ref is None:
            base = self.root / path
            return sorted(
                str(file.relative_to(self.root)) for file in base.rglob("*") if file.is_file()
            )
        result = subprocess.run(
            ["git", "-C", str(self.root), "ls-tree", "-r", "--name-only", self.ref, f"{path}/"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.split() if result.returncode == 0 else []

    def commit(self) -> str | None:
        if self.ref is None:
            return None
        result = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", f"{self.ref}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    def describe(self, path: str) -> dict[str, Any]:
        return {
            "repo": self.repo_name or str(self.root),
            "ref": self.ref,
            "commit": self.commit(),
            "path": path,
        }


def load_yaml(text: str) -> Any:
    return yaml.safe_load(text)


def load_yaml_documents(text: str) -> Iterator[Any]:
    cleaned = "\n".join(line for line in text.splitlines() if not TEMPLATE_LINE.match(line))
    yield from (doc for doc in yaml.safe_load_all(cleaned) if doc)


# --------------------------------------------------------------------------------------------
# Chart values
# --------------------------------------------------------------------------------------------


@dataclass
class KeySet:
    keys: set[str] = field(default_factory=set)
    free_form: set[str] = field(default_factory=set)

    def merge(self, other: KeySet, prefix: str) -> None:
        self.keys |= {f"{prefix}.{key}" for key in other.keys}
        self.free_form |= {f"{prefix}.{key}" for key in other.free_form}
        self.keys.add(prefix)


def flatten_values(node: Any, prefix: str = "") -> KeySet:
    """Every dotted path in a values tree, and which of them accept arbitrary content below."""
    result = KeySet()
    if not isinstance(node, dict):
        return result
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        result.keys.add(path)
        is_free = (
            value is None
            or isinstance(value, list)
            or (isinstance(value, dict) and not value)
            or (isinstance(value, dict) and str(key) in FREE_FORM_NAMES)
        )
        if is_free:
            result.free_form.add(path)
        if isinstance(value, dict):
            child = flatten_values(value, path)
            result.keys |= child.keys
            result.free_form |= child.free_form
    return result


@dataclass(frozen=True)
class ExternalChart:
    """A dependency that is not vendored in the parent chart's charts/ directory."""

    alias: str
    source: Source
    path: str


def template_keys(source: Source, path: str) -> set[str]:
    """Values paths the chart's own templates read, commented-out defaults included."""
    found: set[str] = set()
    for file in source.list_files(f"{path}/templates"):
        text = source.read(file) or ""
        for match in VALUES_REFERENCE.finditer(text):
            found.add(match.group(1).lstrip("."))
    return found


def chart_values_text(source: Source, path: str) -> tuple[str, str]:
    for name in ("values.yaml", "values.tmpl.yaml"):
        text = source.read(f"{path}/{name}")
        if text is not None:
            return name, text
    raise SystemExit(f"no values.yaml or values.tmpl.yaml under {path} at {source.ref}")


def extract_chart(
    source: Source,
    path: str,
    externals: Iterable[ExternalChart] = (),
    extra_free_form: Iterable[str] = (),
    version: str | None = None,
    app_version: str | None = None,
) -> dict[str, Any]:
    """Facts of one chart at one ref, with its dependencies under their alias prefix."""
    chart_yaml_text = source.read(f"{path}/Chart.yaml")
    if chart_yaml_text is None:
        raise SystemExit(f"no Chart.yaml under {path} at {source.ref}")
    chart = load_yaml(chart_yaml_text)
    values_file, values_text = chart_values_text(source, path)
    values = load_yaml(values_text) or {}
    keyset = flatten_values(values)
    # Keys the templates read but values.yaml only mentions in comments (e.g. adminPassword).
    from_templates = {
        key
        for key in template_keys(source, path)
        if key not in keyset.keys and not any(key.startswith(f"{p}.") for p in keyset.free_form)
    }
    keyset.keys |= {
        ".".join(key.split(".")[: depth + 1])
        for key in from_templates
        for depth in range(key.count(".") + 1)
    }
    externals_by_alias = {external.alias: external for external in externals}
    subcharts: list[dict[str, Any]] = []
    for dependency in chart.get("dependencies") or []:
        alias = dependency.get("alias") or dependency["name"]
        external = externals_by_alias.get(alias)
        if external is not None:
            sub = extract_chart(external.source, external.path)
        else:
            sub = extract_chart(source, f"{path}/charts/{dependency['name']}")
        keyset.merge(KeySet(set(sub["keys"]), set(sub["free_form"])), alias)
        if dependency.get("condition"):
            keyset.keys.add(dependency["condition"])
        subcharts.append(
            {
                "alias": alias,
                "chart": sub["chart"],
                "version": sub["version"],
                "condition": dependency.get("condition"),
                "source": sub["source"],
            }
        )
    keyset.free_form |= set(extra_free_form)
    keyset.keys |= set(extra_free_form)
    return {
        "chart": chart["name"],
        "version": version or str(chart["version"]),
        "app_version": app_version or str(chart.get("appVersion", "")),
        "kube_version": chart.get("kubeVersion"),
        "source": source.describe(path) | {"values_file": values_file},
        "extracted_by": SCRIPT,
        "subcharts": subcharts,
        "template_only_keys": sorted(from_templates),
        "keys": sorted(keyset.keys),
        "free_form": sorted(keyset.free_form),
    }


def extract_addon(source: Source, path: str) -> dict[str, Any]:
    """An add-on's chart facts, with the chart's values.schema.json when it has one."""
    facts = extract_chart(source, path)
    schema_text = source.read(f"{path}/values.schema.json")
    facts["values_schema"] = json.loads(schema_text) if schema_text else None
    return facts


# --------------------------------------------------------------------------------------------
# CRD schemas
# --------------------------------------------------------------------------------------------


def reduce_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Keep the structure a validator needs; drop descriptions, defaults, formats, CEL rules."""
    reduced: dict[str, Any] = {key: schema[key] for key in KEPT_SCHEMA_KEYS if key in schema}
    if "properties" in schema:
        reduced["properties"] = {
            name: reduce_schema(child) for name, child in sorted(schema["properties"].items())
        }
    if "items" in schema and isinstance(schema["items"], dict):
        reduced["items"] = reduce_schema(schema["items"])
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        reduced["additionalProperties"] = reduce_schema(additional)
    elif isinstance(additional, bool):
        reduced["additionalProperties"] = additional
    if "type" not in reduced and "anyOf" in schema and not schema.get("x-kubernetes-int-or-string"):
        types = sorted({branch["type"] for branch in schema["anyOf"] if "type" in branch})
        if types:
            reduced["anyOfTypes"] = types
    return reduced


def find_crd(documents: Iterable[Any], group: str, kind: str) -> dict[str, Any]:
    for document in documents:
        if document.get("kind") != "CustomResourceDefinition":
            continue
        spec = document.get("spec", {})
        if spec.get("group") == group and spec.get("names", {}).get("kind") == kind:
            crd: dict[str, Any] = document
            return crd
    raise SystemExit(f"no CRD for {group} {kind}")


def extract_crd(
    source: Source, files: Iterable[str], group: str, kind: str, version: str
) -> dict[str, Any]:
    files = list(files)
    documents: list[tuple[str, Any]] = []
    for path in files:
        text = source.read(path)
        if text is None:
            raise SystemExit(f"no file {path} at {source.ref}")
        documents.extend((path, document) for document in load_yaml_documents(text))
    crd = find_crd((document for _, document in documents), group, kind)
    path = next(path for path, document in documents if document is crd)
    served = {entry["name"]: entry for entry in crd["spec"]["versions"] if entry.get("served")}
    if version not in served:
        raise SystemExit(f"{group} {kind}: {version} not served (served: {sorted(served)})")
    annotations = crd.get("metadata", {}).get("annotations") or {}
    return {
        "group": group,
        "kind": kind,
        "version": version,
        "api_version": f"{group}/{version}",
        "plural": crd["spec"]["names"]["plural"],
        "scope": crd["spec"].get("scope"),
        "served_versions": sorted(served),
        "storage_version": next(
            (name for name, entry in served.items() if entry.get("storage")), None
        ),
        "annotations": {
            key: value for key, value in annotations.items() if "version" in key or "channel" in key
        },
        "source": source.describe(path),
        "extracted_by": SCRIPT,
        "schema": reduce_schema(served[version]["schema"]["openAPIV3Schema"]),
    }


# --------------------------------------------------------------------------------------------
# Default alert rules: what turns each rule file on and which scrape jobs it selects
# --------------------------------------------------------------------------------------------

# The `{{- if ... }}` line that gates a whole template.
CONDITION_LINE = re.compile(r"^\{\{-?\s*if\s+(.*?)\s*-?\}\}\s*$")
VALUES_PATH = re.compile(r"\.Values\.([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)")
NEGATED_PATH = re.compile(r"\(not \(\.Values\.([\w.-]+)")
JOB_SELECTOR = re.compile(r'job=~?"([^"]+)"')
TEMPLATE_VARIABLE = re.compile(r"^\{\{ \$(\w+) \}\}$")
INCLUDED_JOB = re.compile(r'\$(\w+) := include "([\w.-]+)"')
FULLNAME_JOB = re.compile(
    r'\$(\w+) := printf "%s-%s" \(include "[\w.-]+\.fullname" \.\) "([\w-]+)"'
)
# A rule group's name: `- name: x`, or `name: x` below `- interval: ...`.
GROUP_NAME = re.compile(r"^  (?:- |  )name: ([\w.-]+)\s*$", re.MULTILINE)
ALERT_NAME = re.compile(r"^\s*- alert: (\w+)", re.MULTILINE)
# A job name built from the release's full name (`<fullname>-alertmanager`) is kept symbolic.
FULLNAME = "{fullname}"


def template_condition(text: str, where: str, prefix: str = "") -> dict[str, list[str]]:
    """Values paths that must be truthy (`when`) and falsy (`unless`) for a template to render."""
    line = next((m.group(1) for m in map(CONDITION_LINE.match, text.splitlines()) if m), None)
    if line is None:
        raise SystemExit(f"{where}: no gating if-line")
    if "(or " in line:
        raise SystemExit(f"{where}: an 'or' condition is not supported: {line}")
    unless = NEGATED_PATH.findall(line)
    when = [path for path in VALUES_PATH.findall(line) if path not in unless]
    return {
        "when": [prefix + path for path in when],
        "unless": [prefix + path for path in unless],
    }


def helper_default(helpers: str, name: str) -> str:
    """The literal a `define "name"` helper prints when nothing overrides it."""
    start = helpers.find(f'define "{name}"')
    match = re.search(r'print "([^"]+)"', helpers[start:]) if start >= 0 else None
    if match is None:
        raise SystemExit(f"no default job name in helper {name!r}")
    return match.group(1)


def rule_jobs(text: str, helpers: str, where: str) -> list[str]:
    """The scrape jobs a rule template's expressions select, with template variables resolved."""
    names = {var: helper_default(helpers, helper) for var, helper in INCLUDED_JOB.findall(text)}
    names |= {var: f"{FULLNAME}-{suffix}" for var, suffix in FULLNAME_JOB.findall(text)}
    jobs = set()
    for selector in JOB_SELECTOR.findall(text):
        variable = TEMPLATE_VARIABLE.match(selector)
        if variable and variable.group(1) not in names:
            raise SystemExit(f"{where}: cannot resolve job variable {selector}")
        jobs.add(names[variable.group(1)] if variable else selector)
    return sorted(jobs)


def rule_files(source: Source, chart_path: str, rules_dir: str) -> list[dict[str, Any]]:
    helpers = source.read(f"{chart_path}/templates/_helpers.tpl") or ""
    found = []
    for path in source.list_files(f"{chart_path}/{rules_dir}"):
        text = source.read(path) or ""
        found.append(
            {
                "file": path,
                **template_condition(text, path),
                "groups": GROUP_NAME.findall(text),
                "alerts": sorted(set(ALERT_NAME.findall(text))),
                "jobs": rule_jobs(text, helpers, path),
            }
        )
    return found


def nested_get(tree: Any, path: str) -> tuple[bool, Any]:
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


@dataclass(frozen=True)
class RuleRecipe:
    """A chart's default rule templates and the templates that scrape the jobs they select."""

    chart: ChartRecipe
    rules_dir: str
    # (job as the rules select it, subchart alias or "" for the chart itself, template path)
    scrapers: tuple[tuple[str, str, str], ...]


def extract_rules(recipe: RuleRecipe, mirrors: Path) -> dict[str, Any]:
    chart = recipe.chart
    source = mirror_source(mirrors, chart.repo, chart.ref)
    chart_yaml = load_yaml(source.read(f"{chart.path}/Chart.yaml") or "")
    conditions = {
        d.get("alias") or d["name"]: d.get("condition") for d in chart_yaml["dependencies"]
    }
    subcharts = {
        alias: (mirror_source(mirrors, repo, ref), path)
        for alias, repo, ref, path in chart.externals
    }
    scrapers = []
    for job, alias, template in recipe.scrapers:
        where_source, base = subcharts[alias] if alias else (source, chart.path)
        text = where_source.read(f"{base}/{template}")
        if text is None:
            raise SystemExit(f"no scraper template {base}/{template}")
        condition = template_condition(text, template, f"{alias}." if alias else "")
        if alias:
            condition["when"].insert(0, conditions[alias])
        scrapers.append({"job": job, "subchart": alias or None, "file": template, **condition})
    files = rule_files(source, chart.path, recipe.rules_dir)
    unknown = {job for f in files for job in f["jobs"]} - {s["job"] for s in scrapers}
    if unknown:
        raise SystemExit(f"rules select jobs no scraper recipe names: {sorted(unknown)}")
    values = load_yaml(source.read(f"{chart.path}/values.yaml") or "")
    paths = {p for item in [*scrapers, *files] for p in item["when"] + item["unless"]}
    return {
        "chart": chart_yaml["name"],
        "version": str(chart_yaml["version"]),
        "source": source.describe(f"{chart.path}/{recipe.rules_dir}"),
        "extracted_by": SCRIPT,
        "defaults": {path: default_value(values, subcharts, path) for path in sorted(paths)},
        "scrapers": scrapers,
        "rule_files": files,
    }


def default_value(values: Any, subcharts: dict[str, tuple[Source, str]], path: str) -> Any:
    """The chart's default for a values path: its own values.yaml, else the subchart's."""
    found, value = nested_get(values, path)
    alias, _, below = path.partition(".")
    if not found and alias in subcharts:
        sub_source, sub_path = subcharts[alias]
        _, value = nested_get(load_yaml(sub_source.read(f"{sub_path}/values.yaml") or ""), below)
    return value


# --------------------------------------------------------------------------------------------
# Alertmanager configuration as the Prometheus Operator reads it
# --------------------------------------------------------------------------------------------

GO_STRUCT = re.compile(r"^type (\w+) struct \{$")
GO_FIELD = re.compile(r'^\s+\w+\s+([^\s`]+)\s+`yaml:"([^",]*)(,[^"]*)?"')
GO_INLINE = re.compile(r'^\s+(\w+)\s+`yaml:",inline"`')


def go_yaml_structs(text: str) -> dict[str, dict[str, Any]]:
    """Every struct of a Go file as {yaml key: Go type} plus the structs it inlines."""
    structs: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        start = GO_STRUCT.match(line)
        if start:
            current = structs.setdefault(start.group(1), {"fields": {}, "inline": []})
        elif current is not None and line.startswith("}"):
            current = None
        elif current is not None and (inline := GO_INLINE.match(line)):
            current["inline"].append(inline.group(1))
        elif current is not None and (field_match := GO_FIELD.match(line)):
            go_type, key = field_match.group(1), field_match.group(2)
            if key and key != "-":
                current["fields"][key] = go_type
    return structs


@dataclass(frozen=True)
class GoStructRecipe:
    repo: str
    ref: str
    file: str
    root: str
    name: str


def extract_go_structs(recipe: GoStructRecipe, mirrors: Path) -> dict[str, Any]:
    source = mirror_source(mirrors, recipe.repo, recipe.ref)
    text = source.read(recipe.file)
    if text is None:
        raise SystemExit(f"no file {recipe.file} at {recipe.ref}")
    structs = go_yaml_structs(text)
    if recipe.root not in structs:
        raise SystemExit(f"no struct {recipe.root} in {recipe.file}")
    return {
        "name": recipe.name,
        "version": recipe.ref,
        "source": source.describe(recipe.file),
        "extracted_by": SCRIPT,
        "root": recipe.root,
        "structs": structs,
    }


# --------------------------------------------------------------------------------------------
# Recipes: the pinned upstream inputs of every fixture
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartRecipe:
    repo: str
    ref: str
    path: str
    version: str | None = None  # overrides Chart.yaml's version (Envoy Gateway stamps it)
    app_version: str | None = None
    externals: tuple[tuple[str, str, str, str], ...] = ()  # (alias, repo, ref, path)
    free_form: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrdRecipe:
    repo: str
    ref: str
    file: str
    group: str
    kind: str
    version: str


PROM = "prometheus-community/helm-charts"
KARPENTER = ("aws/karpenter-provider-aws", "v1.14.1")
EG_CRDS = "charts/gateway-helm/charts/crds/crds"
KPS_CRDS = "charts/kube-prometheus-stack/charts/crds/crds"

CHART_RECIPES: tuple[ChartRecipe, ...] = (
    ChartRecipe(
        "envoyproxy/gateway",
        "v1.9.0",
        "charts/gateway-helm",
        version="v1.9.0",
        app_version="v1.9.0",
        # Rendered into the EnvoyGateway configuration as a whole (templates/_helpers.tpl).
        free_form=("config.envoyGateway",),
    ),
    ChartRecipe(
        "argoproj/argo-helm",
        "argo-cd-10.1.1",
        "charts/argo-cd",
        externals=(("redis-ha", "DandyDeveloper/charts", "redis-ha-4.38.0", "charts/redis-ha"),),
        # Every key except create/annotations goes into a ConfigMap or Secret verbatim.
        free_form=(
            "configs.params",
            "configs.cm",
            "configs.rbac",
            "configs.secret.extra",
            "configs.repositories",
            "configs.credentialTemplates",
        ),
    ),
    ChartRecipe(
        PROM,
        "kube-prometheus-stack-88.5.3",
        "charts/kube-prometheus-stack",
        externals=(
            ("kube-state-metrics", PROM, "kube-state-metrics-8.4.0", "charts/kube-state-metrics"),
            (
                "prometheus-node-exporter",
                PROM,
                "prometheus-node-exporter-4.56.1",
                "charts/prometheus-node-exporter",
            ),
            (
                "grafana",
                "grafana-community/helm-charts",
                "grafana-12.11.1",
                "charts/grafana",
            ),
            (
                "prometheus-windows-exporter",
                PROM,
                "prometheus-windows-exporter-0.12.8",
                "charts/prometheus-windows-exporter",
            ),
        ),
    ),
    ChartRecipe(
        "aws/eks-charts",
        "5239609242f3430be50fb0b714a24d3ef2b47983",
        "stable/aws-load-balancer-controller",
    ),
    ChartRecipe(
        "kubernetes-sigs/metrics-server",
        "metrics-server-helm-chart-3.13.1",
        "charts/metrics-server",
    ),
    ChartRecipe(
        "kubernetes/autoscaler",
        "cluster-autoscaler-chart-9.59.0",
        "cluster-autoscaler/charts/cluster-autoscaler",
    ),
    # Karpenter's Chart.yaml in git lags the release (1.13.0 at tag v1.14.1): the release job
    # stamps the tag's version into both charts before pushing them (hack/release/common.sh).
    ChartRecipe(*KARPENTER, "charts/karpenter", version="1.14.1", app_version="1.14.1"),
    ChartRecipe(*KARPENTER, "charts/karpenter-crd", version="1.14.1", app_version="1.14.1"),
)

# EKS add-ons whose configuration we set, by the chart their configuration schema follows. The
# EBS CSI driver's version is the one EKS resolves for the cluster's Kubernetes version at deploy
# time; 2.55.0 (driver v1.55.0) is the release EKS 1.35 came out with, and every key we set is
# older than that (node.metadataSources since 2.45.0).
ADDON_RECIPES: tuple[ChartRecipe, ...] = (
    ChartRecipe(
        "kubernetes-sigs/aws-ebs-csi-driver",
        "helm-chart-aws-ebs-csi-driver-2.55.0",
        "charts/aws-ebs-csi-driver",
    ),
)

EG = ("envoyproxy/gateway", "v1.9.0")
KPS = (PROM, "kube-prometheus-stack-88.5.3")
ARGO = ("argoproj/argo-helm", "argo-cd-10.1.1")
GATEWAY_API = f"{EG_CRDS}/gatewayapi-crds.yaml"
EG_GENERATED = f"{EG_CRDS}/generated/gateway.envoyproxy.io_"
GW, EGIO, MON = "gateway.networking.k8s.io", "gateway.envoyproxy.io", "monitoring.coreos.com"
KSH = "karpenter.sh"
KARPENTER_CRDS = "charts/karpenter-crd/templates"

CRD_RECIPES: tuple[CrdRecipe, ...] = (
    CrdRecipe(*EG, GATEWAY_API, GW, "GatewayClass", "v1"),
    CrdRecipe(*EG, GATEWAY_API, GW, "Gateway", "v1"),
    CrdRecipe(*EG, GATEWAY_API, GW, "HTTPRoute", "v1"),
    CrdRecipe(*EG, EG_GENERATED + "envoyproxies.yaml", EGIO, "EnvoyProxy", "v1alpha1"),
    CrdRecipe(
        *EG, EG_GENERATED + "clienttrafficpolicies.yaml", EGIO, "ClientTrafficPolicy", "v1alpha1"
    ),
    CrdRecipe(
        *EG, EG_GENERATED + "backendtrafficpolicies.yaml", EGIO, "BackendTrafficPolicy", "v1alpha1"
    ),
    CrdRecipe(*EG, EG_GENERATED + "httproutefilters.yaml", EGIO, "HTTPRouteFilter", "v1alpha1"),
    CrdRecipe(*KPS, f"{KPS_CRDS}/crd-servicemonitors.yaml", MON, "ServiceMonitor", "v1"),
    CrdRecipe(*KPS, f"{KPS_CRDS}/crd-podmonitors.yaml", MON, "PodMonitor", "v1"),
    CrdRecipe(*KPS, f"{KPS_CRDS}/crd-prometheusrules.yaml", MON, "PrometheusRule", "v1"),
    CrdRecipe(
        *ARGO,
        "charts/argo-cd/templates/crds/crd-applicationset.yaml",
        "argoproj.io",
        "ApplicationSet",
        "v1alpha1",
    ),
    # The copies the karpenter-crd chart installs (templates/, the same as the main chart's crds/).
    CrdRecipe(*KARPENTER, f"{KARPENTER_CRDS}/karpenter.sh_nodepools.yaml", KSH, "NodePool", "v1"),
    CrdRecipe(
        *KARPENTER,
        f"{KARPENTER_CRDS}/karpenter.k8s.aws_ec2nodeclasses.yaml",
        "karpenter.k8s.aws",
        "EC2NodeClass",
        "v1",
    ),
)

KPS_CHART = next(r for r in CHART_RECIPES if r.path == "charts/kube-prometheus-stack")
EXPORTERS = "templates/exporters"
RULE_RECIPES: tuple[RuleRecipe, ...] = (
    RuleRecipe(
        KPS_CHART,
        "templates/prometheus/rules-1.14",
        # The ServiceMonitor whose targets carry each job label the default rules select.
        scrapers=(
            ("apiserver", "", f"{EXPORTERS}/kube-api-server/servicemonitor.yaml"),
            ("kubelet", "", f"{EXPORTERS}/kubelet/servicemonitor.yaml"),
            (
                "kube-controller-manager",
                "",
                f"{EXPORTERS}/kube-controller-manager/servicemonitor.yaml",
            ),
            ("kube-scheduler", "", f"{EXPORTERS}/kube-scheduler/servicemonitor.yaml"),
            ("kube-proxy", "", f"{EXPORTERS}/kube-proxy/servicemonitor.yaml"),
            (".*etcd.*", "", f"{EXPORTERS}/kube-etcd/servicemonitor.yaml"),
            (f"{FULLNAME}-alertmanager", "", "templates/alertmanager/servicemonitor.yaml"),
            (f"{FULLNAME}-prometheus", "", "templates/prometheus/servicemonitor.yaml"),
            (f"{FULLNAME}-operator", "", "templates/prometheus-operator/servicemonitor.yaml"),
            ("kube-state-metrics", "kube-state-metrics", "templates/servicemonitor.yaml"),
            ("node-exporter", "prometheus-node-exporter", "templates/servicemonitor.yaml"),
            ("windows-exporter", "prometheus-windows-exporter", "templates/servicemonitor.yaml"),
        ),
    ),
)

# kube-prometheus-stack 88.5.3 ships operator v0.93.1; the snapshot's newest tag is v0.93.0.
GO_STRUCT_RECIPES: tuple[GoStructRecipe, ...] = (
    GoStructRecipe(
        "prometheus-operator/prometheus-operator",
        "v0.93.0",
        "pkg/alertmanager/types.go",
        root="alertmanagerConfig",
        name="alertmanager-config",
    ),
)


def mirror_source(mirrors: Path, repo: str, ref: str) -> Source:
    return Source(mirrors / repo.replace("/", "+") / "repo", ref, repo)


def write_json(path: Path, data: dict[str, Any], compact: bool = False) -> None:
    """Charts one key a line (reviewable diffs); CRD schemas compact (they are large)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=1)
    path.write_text(text + "\n")
    print(f"wrote {path}")


def run_all(mirrors: Path, out: Path) -> None:
    for recipe in CHART_RECIPES:
        externals = [
            ExternalChart(alias, mirror_source(mirrors, repo, ref), path)
            for alias, repo, ref, path in recipe.externals
        ]
        facts = extract_chart(
            mirror_source(mirrors, recipe.repo, recipe.ref),
            recipe.path,
            externals,
            recipe.free_form,
            recipe.version,
            recipe.app_version,
        )
        write_json(out / "charts" / f"{facts['chart']}-{facts['version']}.json", facts)
    for recipe in ADDON_RECIPES:
        facts = extract_addon(mirror_source(mirrors, recipe.repo, recipe.ref), recipe.path)
        write_json(out / "addons" / f"{facts['chart']}-{facts['version']}.json", facts)
    for crd in CRD_RECIPES:
        facts = extract_crd(
            mirror_source(mirrors, crd.repo, crd.ref), [crd.file], crd.group, crd.kind, crd.version
        )
        write_json(out / "crds" / f"{crd.group}_{crd.kind}_{crd.version}.json", facts, True)
    for policy in POLICY_RECIPES:
        write_json(out / "iam" / f"{policy.name}.json", extract_iam_policies(policy, mirrors))
    run_rules(mirrors, out)


def run_rules(mirrors: Path, out: Path) -> None:
    """The default-rule and Alertmanager-configuration facts (also part of `all`)."""
    for rules in RULE_RECIPES:
        facts = extract_rules(rules, mirrors)
        write_json(out / "rules" / f"{facts['chart']}-{facts['version']}.json", facts)
    for recipe in GO_STRUCT_RECIPES:
        facts = extract_go_structs(recipe, mirrors)
        write_json(out / "alertmanager" / f"{recipe.name}-{recipe.ref}.json", facts)


# --------------------------------------------------------------------------------------------
# IAM policies published as CloudFormation (Karpenter's controller policy)
# --------------------------------------------------------------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Sub, !Ref, !GetAtt) as their plain values."""


def _cloudformation_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _cloudformation_tag)


@dataclass(frozen=True)
class PolicyRecipe:
    repo: str
    ref: str
    file: str
    name: str


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def extract_iam_policies(recipe: PolicyRecipe, mirrors: Path) -> dict[str, Any]:
    """Each AWS::IAM::ManagedPolicy of a template: its statements by Sid, with their effect,
    sorted actions and the condition keys that scope them (operator:key)."""
    source = mirror_source(mirrors, recipe.repo, recipe.ref)
    text = source.read(recipe.file)
    if text is None:
        raise SystemExit(f"no file {recipe.file} at {recipe.ref}")
    template = yaml.load(text, _CloudFormationLoader)  # noqa: S506 (a safe loader)
    policies: dict[str, Any] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        document = resource["Properties"]["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        policies[name] = {
            statement["Sid"]: {
                "effect": statement["Effect"],
                "actions": sorted(_as_list(statement["Action"])),
                "conditions": sorted(
                    f"{operator}:{key}"
                    for operator, keys in (statement.get("Condition") or {}).items()
                    for key in keys
                ),
            }
            for statement in document["Statement"]
        }
    return {
        "source": source.describe(recipe.file),
        "extracted_by": SCRIPT,
        "policies": policies,
    }


# Karpenter's controller policy, from the v1.14 getting-started template. The v1.14 docs folder
# was added after the tag (commit "docs: update for patch release v1.14.1").
POLICY_RECIPES: tuple[PolicyRecipe, ...] = (
    PolicyRecipe(
        "aws/karpenter-provider-aws",
        "1d927085dd81a9df9301e613f371dac5b4d16bfe",
        "website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml",
        "karpenter-controller-v1.14",
    ),
)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def source_from_args(args: argparse.Namespace) -> Source:
    if args.dir:
        return Source(Path(args.dir), None, args.repo_name or args.dir)
    if not (args.git and args.ref):
        raise SystemExit("give --dir, or --git and --ref")
    return Source(Path(args.git), args.ref, args.repo_name or args.git)


def parse_external(spec: str) -> ExternalChart:
    """ALIAS=GITDIR@REF:PATH"""
    alias, _, rest = spec.partition("=")
    git_dir, _, ref_path = rest.partition("@")
    ref, _, path = ref_path.partition(":")
    if not (alias and git_dir and ref and path):
        raise SystemExit(f"--subchart wants ALIAS=GITDIR@REF:PATH, got {spec!r}")
    return ExternalChart(alias, Source(Path(git_dir), ref, git_dir), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    every = commands.add_parser("all", help="regenerate every fixture from the recipes")
    rules = commands.add_parser("rules", help="only the default-rule and Alertmanager facts")
    for command in (every, rules):
        command.add_argument("--mirrors", default="/work/.mirror", help="<owner>+<name>/repo")
        command.add_argument("--out", default=str(FIXTURES))

    for name in ("chart", "addon", "crd"):
        command = commands.add_parser(name)
        command.add_argument("--git", help="a git directory (bare or not)")
        command.add_argument("--ref", help="tag, branch or commit in --git")
        command.add_argument("--dir", help="a plain directory instead of --git/--ref")
        command.add_argument("--repo-name", default="", help="owner/name recorded as the source")
        command.add_argument("--out", required=True)
        if name == "addon":
            command.add_argument("--path", default=".", help="chart directory inside the source")
        elif name == "chart":
            command.add_argument("--path", default=".", help="chart directory inside the source")
            command.add_argument("--version", help="override Chart.yaml's version")
            command.add_argument(
                "--subchart",
                action="append",
                default=[],
                help="ALIAS=GITDIR@REF:PATH for a non-vendored dependency",
            )
            command.add_argument("--free-form", action="append", default=[])
        else:
            command.add_argument("--file", action="append", required=True)
            command.add_argument("--group", required=True)
            command.add_argument("--kind", required=True)
            command.add_argument("--version", required=True)

    args = parser.parse_args(argv)
    if args.command == "all":
        run_all(Path(args.mirrors), Path(args.out))
    elif args.command == "rules":
        run_rules(Path(args.mirrors), Path(args.out))
    elif args.command == "chart":
        facts = extract_chart(
            source_from_args(args),
            args.path,
            [parse_external(spec) for spec in args.subchart],
            args.free_form,
            args.version,
        )
        write_json(Path(args.out), facts)
    elif args.command == "addon":
        write_json(Path(args.out), extract_addon(source_from_args(args), args.path))
    else:
        facts = extract_crd(source_from_args(args), args.file, args.group, args.kind, args.version)
        write_json(Path(args.out), facts, compact=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
