"""`make plan`: the offline plan of a stack as a tree, outputs and counts, or as JSON, with
every secret redacted."""

import json
from pathlib import Path

from app_platform_tools import plan, secrets

ROOT = Path(__file__).resolve().parents[2]


def test_offline_plan_prints_the_tree_outputs_and_counts(dev):
    text = plan.render_text(dev)
    assert "+ app-platform:cluster:Cluster  platform-dev" in text
    assert "  + eks:index:ManagedNodeGroup  platform-dev-system  capacityType=ON_DEMAND" in text
    assert "  + kubernetes:karpenter.sh/v1:NodePool  platform-dev-karpenter-spot" in text
    assert "kubeconfig: [secret]" in text
    assert f"Resources: {len(dev.resources)}" in text


def test_offline_plan_json_is_complete_and_redacts_secrets(tmp_path):
    target = tmp_path / "plan.json"
    assert plan.main(["--project", str(ROOT), "--stack", "dev", "--json", str(target)]) == 0
    data = json.loads(target.read_text())
    assert data["stack"] == "dev"
    assert sum(data["counts"].values()) == len(data["resources"])
    assert data["outputs"]["kubeconfig"] == {"value": "[secret]", "secret": True}
    assert secrets.SECRET_KEY not in target.read_text()
