"""The private Pulumi SDK details the offline runner relies on, each checked by name.

`app_platform_tools.offline` overrides a method of the SDK's mock monitor, reads requests and
builds responses in the engine's wire format, and calls runtime functions that are not part of
the SDK's public API. None of that is promised to stay, so the tools pin the SDK exactly
(tools/pyproject.toml) and this test says which detail moved when the pin is raised.
"""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pulumi
import pytest
from pulumi import output as pulumi_output
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc, settings, stack, sync_await
from pulumi.runtime.proto import resource_pb2

from app_platform_tools import offline

ROOT = Path(__file__).resolve().parents[2]
PINNED_SDK = "3.272.0"


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_installed_sdk_is_the_one_the_tools_pin():
    project = tomllib.loads((ROOT / "tools" / "pyproject.toml").read_text())["project"]
    assert f"pulumi=={PINNED_SDK}" in project["dependencies"], (
        "tools/pyproject.toml no longer pins the SDK this test checks: raise both together"
    )
    assert version("pulumi") == PINNED_SDK, (
        f"pulumi {version('pulumi')} is installed, the tools are checked against {PINNED_SDK}"
    )


@pytest.mark.parametrize(
    ("ours", "sdk_name"),
    [
        ("SIGNATURE_KEY", "_special_sig_key"),
        ("SECRET_SIGNATURE", "_special_secret_sig"),
        ("RESOURCE_SIGNATURE", "_special_resource_sig"),
        ("OUTPUT_SIGNATURE", "_special_output_value_sig"),
    ],
)
def test_the_wire_signatures_are_the_sdks(ours, sdk_name):
    assert hasattr(rpc, sdk_name), f"pulumi.runtime.rpc.{sdk_name} is gone: wire format changed"
    assert getattr(offline, ours) == getattr(rpc, sdk_name), (
        f"pulumi.runtime.rpc.{sdk_name} is now {getattr(rpc, sdk_name)!r}; "
        f"offline.{ours} still says {getattr(offline, ours)!r}"
    )


def test_the_unknown_markers_still_exist():
    assert isinstance(rpc.UNKNOWN, str), "pulumi.runtime.rpc.UNKNOWN is gone or not a string"
    assert inspect.isclass(pulumi_output.Unknown), "pulumi.output.Unknown is gone"


def test_the_mock_monitor_method_the_recorder_overrides_is_still_there():
    monitor = mocks.MockMonitor
    assert parameters(monitor.__init__) == ["self", "mocks"], "MockMonitor.__init__ changed"
    assert parameters(monitor.RegisterResource) == ["self", "request"], (
        "MockMonitor.RegisterResource(request), which RecordingMonitor replaces, changed"
    )
    assert parameters(monitor.make_urn) == ["self", "parent", "type_", "name"], (
        "MockMonitor.make_urn(parent, type_, name) changed"
    )
    assert monitor.ResourceRegistration._fields == ("urn", "id", "state"), (
        "MockMonitor.ResourceRegistration, which RecordingMonitor stores, changed its fields"
    )
    monitor_instance = monitor(offline.Mocks("us-east-1"))
    assert isinstance(monitor_instance.resources, dict), "MockMonitor.resources is gone"
    assert monitor_instance.mocks is not None, "MockMonitor.mocks is gone"


def test_mock_resource_args_take_what_the_recorder_passes():
    passed = {"typ", "name", "inputs", "provider", "resource_id", "custom"}
    missing = passed - set(parameters(mocks.MockResourceArgs.__init__))
    assert not missing, f"MockResourceArgs no longer takes {sorted(missing)}"


def test_the_register_resource_wire_fields_are_still_there():
    request_fields = set(resource_pb2.RegisterResourceRequest.DESCRIPTOR.fields_by_name)
    read = {"parent", "type", "name", "object", "provider", "importId", "custom"}
    read |= {"dependencies", "deletedWith"}
    assert not read - request_fields, (
        f"RegisterResourceRequest lost {sorted(read - request_fields)}"
    )
    response_fields = set(resource_pb2.RegisterResourceResponse.DESCRIPTOR.fields_by_name)
    assert {"urn", "id", "object"} <= response_fields, "RegisterResourceResponse changed"


def test_the_runtime_functions_and_settings_the_runner_calls_are_still_there():
    assert "monitor" in parameters(mocks.set_mocks), "set_mocks(..., monitor=) is gone"
    assert parameters(runtime_config.set_all_config) == ["config", "secret_keys"], (
        "pulumi.runtime.config.set_all_config(config, secret_keys) changed"
    )
    assert parameters(settings.get_root_resource) == [], "settings.get_root_resource() changed"
    assert parameters(stack.run_pulumi_func) == ["func"], "stack.run_pulumi_func(func) changed"
    assert parameters(sync_await._sync_await) == ["awaitable"], "sync_await._sync_await changed"
    assert parameters(rpc.serialize_properties)[:2] == ["inputs", "property_deps"], (
        "rpc.serialize_properties(inputs, property_deps, ...) changed"
    )


def test_a_stack_still_keeps_its_outputs_where_the_runner_reads_them():
    recording = offline.run_function(lambda: pulumi.export("answer", 42))
    assert recording.outputs["answer"].value == 42, "the root Stack's `outputs` moved"
