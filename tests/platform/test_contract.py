"""The platform contract: one list of outputs, exported by the platform stack, read back by an
app stack, and faked by the offline tools, all three in step."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from app_platform import CONTRACT_OUTPUTS, PlatformContract
from app_platform_tools import offline

NAMES = [output.name for output in CONTRACT_OUTPUTS]
PLATFORM_STACK = "organization/app-platform/dev"


def test_the_dev_stack_exports_every_contract_output(dev):
    missing = [name for name in NAMES if name not in dev.outputs]
    assert missing == []
    assert dev.outputs["kubeconfig"].secret
    assert dev.outputs["domain"].value == "dev.app-platform.test"


def test_the_fake_platform_stack_has_exactly_the_contract_outputs():
    assert list(offline.platform_stack_outputs(PLATFORM_STACK)) == NAMES
    assert offline.SECRET_OUTPUTS == ("kubeconfig",)


def test_outputs_names_each_contract_output_once_and_refuses_a_missing_one():
    names: list[list[str]] = []
    errors: list[str] = []

    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        full = PlatformContract(
            provider=provider,
            kubeconfig="{}",
            gateway_name="gw",
            gateway_namespace="edge",
            domain="example.test",
            vpc_id="vpc-1",
            private_subnet_ids=["subnet-1"],
            node_security_group_id="sg-1",
        )
        names.append(list(full.outputs()))
        try:
            PlatformContract(
                provider=provider,
                gateway_name="gw",
                gateway_namespace="edge",
                domain="example.test",
            ).outputs()
        except ValueError as error:
            errors.append(str(error))

    offline.run_function(program)
    assert names == [NAMES]
    assert errors == [
        "the platform contract cannot be exported without "
        "['kubeconfig', 'vpc_id', 'private_subnet_ids', 'node_security_group_id']"
    ]


@pytest.mark.parametrize("absent", ["urlScheme", "proxyNamespace", "routeNamespaceLabels"])
def test_an_app_stack_reads_each_output_and_defaults_the_optional_ones(absent):
    outputs = offline.platform_stack_outputs(PLATFORM_STACK)
    outputs.pop(absent)
    read: dict[str, object] = {}

    def program() -> None:
        contract = PlatformContract.from_stack_reference("platform", PLATFORM_STACK)
        for output in CONTRACT_OUTPUTS:
            if output.name != "kubeconfig":
                pulumi.Output.from_input(getattr(contract, output.field)).apply(
                    lambda value, name=output.name: read.__setitem__(name, value)
                )

    offline.run_function(
        program, mocks=offline.Mocks("us-east-1", stack_references={PLATFORM_STACK: outputs})
    )
    fallback = {o.name: o.fallback for o in CONTRACT_OUTPUTS}[absent]
    assert read[absent] == fallback
    present = {k: v for k, v in outputs.items() if k != "kubeconfig"}
    assert {k: read[k] for k in present} == present
