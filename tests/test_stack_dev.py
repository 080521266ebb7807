"""The dev stack as a whole: what a user gets from `pulumi up`."""

import json
from pathlib import Path

import yaml

from app_platform_tools import offline

ROOT = Path(__file__).resolve().parent.parent
FOUNDATION_OUTPUTS = {
    "region",
    "vpcId",
    "publicSubnetIds",
    "privateSubnetIds",
    "clusterName",
    "kubeconfig",
    "oidcProviderArn",
    "nodeSecurityGroupId",
    "kubeconfigCommand",
}


def test_stack_outputs_are_exported_and_known(dev):
    assert set(dev.outputs) >= FOUNDATION_OUTPUTS
    assert all(dev.outputs[name].known for name in FOUNDATION_OUTPUTS)
    assert dev.outputs["region"].value == "us-east-1"
    assert dev.outputs["clusterName"].value == "platform-dev"
    assert len(dev.outputs["privateSubnetIds"].value) == 2  # dev runs two zones
    assert dev.outputs["kubeconfigCommand"].value == (
        "aws eks update-kubeconfig --region us-east-1 --name platform-dev"
    )


def test_kubeconfig_output_stays_secret(dev):
    assert dev.outputs["kubeconfig"].secret is True
    assert json.loads(dev.outputs["kubeconfig"].value)["kind"] == "Config"


def test_no_secret_leaks_into_a_plain_output(dev):
    secrets = {json.dumps(o.value) for o in dev.outputs.values() if o.secret}
    for name, output in dev.outputs.items():
        if not output.secret:
            assert not any(s in json.dumps(output.value) for s in secrets if len(s) > 8), name


def test_every_resource_belongs_to_a_component(dev):
    top_level = [
        r
        for r in dev.resources
        if not r.parent.startswith("urn:pulumi:dev::app-platform::app-platform:")
    ]
    assert all(
        r.type.startswith("app-platform:") or r.type.startswith("pulumi:providers:")
        for r in top_level
    ), [r.type for r in top_level]


def test_resource_names_derive_from_one_prefix(dev):
    assert all(r.name.startswith("platform-dev") for r in dev.resources), [
        r.name for r in dev.resources if not r.name.startswith("platform-dev")
    ]


def test_every_stack_file_runs_offline():
    for stack_file in sorted(ROOT.glob("Pulumi.*.yaml")):
        stack = stack_file.name.split(".")[1]
        recording = offline.run(ROOT, stack)
        assert recording.resources, stack


def test_a_project_without_config_defaults_gets_a_working_platform(tmp_path):
    """Defaults live in the code: only the required keys set, nothing from Pulumi.yaml."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["config"] = {}
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    required = {"aws:region": "us-east-1", "app-platform:publicAccessCidrs": ["0.0.0.0/0"]}
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": required}))
    recording = offline.run(tmp_path, "dev")
    assert recording.one("eks:index:Cluster").inputs["name"] == "platform-dev"
    assert len(recording.of_type("aws:ec2/natGateway:NatGateway")) == 3  # perAz by default
    components = {r.type.rsplit(":", 1)[1] for r in recording.resources}
    assert {"Network", "Cluster", "Karpenter", "Edge", "GitOps", "Observability"} <= components
    assert "Autoscaling" in components  # metrics-server
