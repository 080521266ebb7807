"""The policy pack loads as the Pulumi CLI loads it, and judges resources sent over its gRPC API.

`PolicyPack(...)` starts a gRPC server and blocks serving it, so the harness swaps the SDK's
gRPC server for a stand-in, keeps the analyzer service the pack registers, and ends the serving
loop at once. The tests then call that service as the engine would: GetAnalyzerInfo, Configure
(with the dev stack's policy config) and Analyze (one resource at a time, on the wire format).
"""

from __future__ import annotations

import json
import runpy
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import policy as policy_sdk

from app_platform_tools import secrets
from app_platform_tools.offline import SECRET_SIGNATURE, SIGNATURE_KEY

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


class _Server:
    def add_insecure_port(self, address: str) -> int:
        return 0

    def start(self) -> None:
        pass

    def stop(self, grace: Any) -> None:
        pass


def _stop_serving(_seconds: float) -> None:
    raise KeyboardInterrupt  # how the pack's serving loop ends


@pytest.fixture(scope="module")
def analyzer():
    """The analyzer service `policy/__main__.py` builds, without serving it."""
    captured: list[Any] = []
    patch = pytest.MonkeyPatch()
    patch.setattr(policy_sdk, "grpc", SimpleNamespace(server=lambda *a, **k: _Server()))
    patch.setattr(
        policy_sdk,
        "analyzer_pb2_grpc",
        SimpleNamespace(add_AnalyzerServicer_to_server=lambda s, _server: captured.append(s)),
    )
    patch.setattr(policy_sdk, "time", SimpleNamespace(sleep=_stop_serving))
    modules_before = set(sys.modules)
    try:
        runpy.run_path(str(POLICY_DIR), run_name="__main__")
    finally:
        patch.undo()
        # The pack imports its rules as a top-level `rules` module; leave no trace of it.
        for name in set(sys.modules) - modules_before:
            if name == "rules":
                del sys.modules[name]
    assert len(captured) == 1, "policy/__main__.py must construct exactly one PolicyPack"
    return captured[0]


def _wire(value: Any) -> Any:
    """Recorded inputs as the engine sends them to an analyzer."""
    return secrets.walk(
        value,
        on_secret=lambda inner: {SIGNATURE_KEY: SECRET_SIGNATURE, "value": _wire(inner)},
        on_resource=lambda urn: urn,
    )


def configure(analyzer, config: dict[str, dict[str, Any]], policy_names: list[str]) -> None:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name in policy_names:
        entry = analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.MANDATORY)
        entry.properties.update(config.get(name, {}))
        request.policyConfig[name].CopyFrom(entry)
    analyzer.Configure(request, None)


def analyze(analyzer, type_: str, name: str, inputs: dict[str, Any]) -> list[Any]:
    properties = json_format.ParseDict(_wire(inputs), struct_pb2.Struct())
    request = analyzer_pb2.AnalyzeRequest(
        type=type_, name=name, urn=f"urn:pulumi:dev::app-platform::{type_}::{name}"
    )
    request.properties.CopyFrom(properties)
    return list(analyzer.Analyze(request, None).diagnostics)


@pytest.fixture(scope="module")
def info(analyzer):
    return analyzer.GetAnalyzerInfo(None, None)


def test_the_pack_registers_every_rule_as_a_mandatory_policy(info, rules):
    assert info.name == "app-platform"
    assert [p.name for p in info.policies] == [spec.name for spec in rules.POLICIES]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    assert all(p.description for p in info.policies)
    schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    endpoint = schemas["eks-endpoint-not-open-to-anywhere"]["properties"]
    assert endpoint["allowPublicEndpointFromAnywhere"] == {"type": "boolean", "default": False}
    edge = schemas["load-balancers-only-at-edge"]["properties"]["edgeNamespace"]
    assert edge["default"] == "envoy-gateway-system"


def test_the_dev_policy_config_names_only_real_policies_and_settings(info, dev_policy_config):
    schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    for policy, settings in dev_policy_config.items():
        assert policy in schemas, f"config.dev.json names no policy {policy}"
        assert set(settings) <= set(schemas[policy].get("properties", {})), settings


def test_the_dev_stack_passes_the_pack_over_its_api(analyzer, info, dev_stack, dev_policy_config):
    configure(analyzer, dev_policy_config, [p.name for p in info.policies])
    diagnostics = [
        (d.policyName, r.type, r.name, d.message)
        for r in dev_stack.resources
        for d in analyze(analyzer, r.type, r.name, r.inputs)
    ]
    assert diagnostics == []


def test_the_pack_reports_violations_with_the_policy_name(analyzer, info, dev_stack):
    configure(analyzer, {}, [p.name for p in info.policies])
    cluster = dev_stack.one("eks:index:Cluster")
    (diagnostic,) = analyze(analyzer, cluster.type, cluster.name, cluster.inputs)
    assert diagnostic.policyName == "eks-endpoint-not-open-to-anywhere"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "0.0.0.0/0" in diagnostic.message

    bad = {
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }
    found = {d.policyName for d in analyze(analyzer, "kubernetes:apps/v1:Deployment", "web", bad)}
    assert found == {"deployment-hardened", "images-pinned"}


def test_the_pack_is_pinned_to_the_sdk_tested_here_and_has_its_own_virtualenv():
    requirements = (POLICY_DIR / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in requirements if "==" in line)
    assert pins["pulumi-policy"] == version("pulumi-policy")
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    config = json.loads((POLICY_DIR / "config.dev.json").read_text())
    assert config["eks-endpoint-not-open-to-anywhere"]["allowPublicEndpointFromAnywhere"] is True


def analyze_stack(analyzer, recording_resources) -> list[Any]:
    request = analyzer_pb2.AnalyzeStackRequest()
    for type_, name, inputs in recording_resources:
        resource = request.resources.add(
            type=type_, name=name, urn=f"urn:pulumi:dev::app-platform::{type_}::{name}"
        )
        resource.properties.CopyFrom(json_format.ParseDict(_wire(inputs), struct_pb2.Struct()))
    return list(analyzer.AnalyzeStack(request, None).diagnostics)


def test_stack_rules_judge_the_whole_stack_over_the_api(analyzer, info, run_stack):
    configure(analyzer, {}, [p.name for p in info.policies])
    recording = run_stack({"hostedZone": "example.com", "domain": "dev.example.com"})
    resources = [(r.type, r.name, r.inputs) for r in recording.resources]
    assert analyze_stack(analyzer, resources) == []

    # The port-80 listener opened to every namespace: it, and each app route it now takes.
    for type_, _name, inputs in resources:
        if type_.endswith(":Gateway"):
            inputs["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "All"}}
    diagnostics = analyze_stack(analyzer, resources)
    assert {d.policyName for d in diagnostics} == {"plain-http-only-redirects"}
    assert {d.enforcementLevel for d in diagnostics} == {analyzer_pb2.MANDATORY}
    messages = " ".join(d.message for d in diagnostics)
    assert "from: All" in messages
    assert "route monitoring/grafana" in messages and "route argocd/argocd-server" in messages
