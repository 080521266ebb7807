"""The offline plan difference posted on pull requests from forks."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app_platform_tools import plandiff, secrets

STACK = "urn:pulumi:dev::app-platform::"


def resource(type_: str, name: str, inputs: dict | None = None) -> dict:
    return {
        "urn": f"{STACK}{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": "",
        "inputs": inputs or {},
        "dependencies": [],
    }


def plan(*resources: dict, outputs: dict | None = None) -> dict:
    counts: dict[str, int] = {}
    for r in resources:
        counts[r["type"]] = counts.get(r["type"], 0) + 1
    return {
        "project": "app-platform",
        "stack": "dev",
        "resources": list(resources),
        "outputs": outputs or {},
        "counts": counts,
    }


VPC = resource("aws:ec2/vpc:Vpc", "platform-dev-vpc", {"cidrBlock": "10.0.0.0/16"})
SPOT = resource(
    "eks:index:ManagedNodeGroup",
    "platform-dev-spot",
    {
        "capacityType": "SPOT",
        "instanceTypes": ["m6i.large", "m5.large", "m5a.large"],
        "scalingConfig": {"minSize": 2, "maxSize": 6},
        "tags": {"kubernetes.io/role/elb": "1"},
    },
)
DEPLOYMENT = resource(
    "kubernetes:apps/v1:Deployment",
    "comments",
    {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "ghcr.io/o/c:1"}]}}}},
)


def test_identical_plans_report_no_changes():
    base = plan(VPC, SPOT)
    result = plandiff.diff(base, copy.deepcopy(base))
    assert result.empty
    assert result.unchanged == 2
    text = plandiff.render(result, "t")
    assert "No resource or output changes." in text
    assert "**0 to add, 0 to remove, 0 to change** (2 unchanged)" in text


def test_added_and_removed_resources_are_listed_by_urn_with_type_counts():
    result = plandiff.diff(plan(VPC, SPOT), plan(VPC, DEPLOYMENT))
    assert [r["urn"] for r in result.added] == [DEPLOYMENT["urn"]]
    assert [r["urn"] for r in result.removed] == [SPOT["urn"]]
    text = plandiff.render(result, "t")
    added = text.index("#### Added (1)")
    removed = text.index("#### Removed (1)")
    assert text.index(DEPLOYMENT["urn"], added) < removed < text.index(SPOT["urn"], removed)
    assert "| `kubernetes:apps/v1:Deployment` | 0 | 1 |" in text
    assert "| `eks:index:ManagedNodeGroup` | 1 | 0 |" in text
    # Types whose count did not move are left out of the table.
    assert "| `aws:ec2/vpc:Vpc`" not in text


def test_changed_inputs_are_shown_by_path_old_to_new():
    head_spot = copy.deepcopy(SPOT)
    head_spot["inputs"]["scalingConfig"]["maxSize"] = 10
    head_spot["inputs"]["instanceTypes"].append("m7i.large")
    head_spot["inputs"]["tags"]["kubernetes.io/role/elb"] = "0"
    head_deployment = copy.deepcopy(DEPLOYMENT)
    head_deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "ghcr.io/o/c:2"
    )
    result = plandiff.diff(plan(VPC, SPOT, DEPLOYMENT), plan(VPC, head_spot, head_deployment))

    changes = {c.urn: {ch.path: (ch.old, ch.new) for ch in c.changes} for c in result.changed}
    assert changes[SPOT["urn"]] == {
        "instanceTypes": (
            ["m6i.large", "m5.large", "m5a.large"],
            ["m6i.large", "m5.large", "m5a.large", "m7i.large"],
        ),
        "scalingConfig.maxSize": (6, 10),
        'tags["kubernetes.io/role/elb"]': ("1", "0"),
    }
    assert changes[DEPLOYMENT["urn"]] == {
        "spec.template.spec.containers[0].image": ("ghcr.io/o/c:1", "ghcr.io/o/c:2")
    }
    assert result.unchanged == 1
    text = plandiff.render(result, "t")
    assert "- `scalingConfig.maxSize`: `6` → `10`" in text
    assert (
        '- `spec.template.spec.containers[0].image`: `"ghcr.io/o/c:1"` → `"ghcr.io/o/c:2"`' in text
    )
    assert "**0 to add, 0 to remove, 2 to change** (1 unchanged)" in text


def test_an_input_that_appears_or_disappears_shows_none_on_the_missing_side():
    head_vpc = copy.deepcopy(VPC)
    head_vpc["inputs"]["enableDnsHostnames"] = True
    del head_vpc["inputs"]["cidrBlock"]
    (change,) = plandiff.diff(plan(VPC), plan(head_vpc)).changed
    text = plandiff.render(plandiff.diff(plan(VPC), plan(head_vpc)), "t")
    assert {c.path for c in change.changes} == {"cidrBlock", "enableDnsHostnames"}
    assert '- `cidrBlock`: `"10.0.0.0/16"` → _(none)_' in text
    assert "- `enableDnsHostnames`: _(none)_ → `true`" in text


def test_secret_values_are_never_shown():
    password = "hunter2-super-secret"
    base = plan(
        resource("aws:rds/instance:Instance", "db", {"password": secrets.mark("old-pass")}),
        resource("kubernetes:core/v1:Secret", "creds", {"stringData": {"url": "pg://a"}}),
        outputs={"dbPassword": {"value": "[secret]", "secret": True}},
    )
    head = plan(
        resource("aws:rds/instance:Instance", "db", {"password": secrets.mark(password)}),
        resource("kubernetes:core/v1:Secret", "creds", {"stringData": {"url": password}}),
        outputs={"dbPassword": {"value": password, "secret": True}},
    )
    text = plandiff.render(plandiff.diff(base, head), "t")
    assert password not in text
    assert "old-pass" not in text
    assert "pg://a" not in text
    # A changed secret is still reported as changed, without its value.
    assert "- `stringData.url`: `[secret]` → `[secret]`" in text
    # A secret the plan already redacted on both sides cannot be told apart: not a change.
    assert "dbPassword" not in text


def test_long_values_and_long_lists_are_cut():
    long_policy = json.dumps({"Statement": [{"Action": f"s3:Get{i}"} for i in range(100)]})
    base = plan(resource("aws:iam/role:Role", "r", {"assumeRolePolicy": "{}"}))
    head = plan(resource("aws:iam/role:Role", "r", {"assumeRolePolicy": long_policy}))
    line = next(
        line
        for line in plandiff.render(plandiff.diff(base, head), "t").splitlines()
        if line.startswith("- `assumeRolePolicy`")
    )
    assert len(line) < plandiff.MAX_VALUE_CHARS + 60
    assert "…" in line

    many = [resource("aws:ec2/subnet:Subnet", f"s{i}", {"i": i}) for i in range(150)]
    text = plandiff.render(plandiff.diff(plan(), plan(*many)), "t")
    assert text.count("- `urn:pulumi:") == plandiff.MAX_RESOURCES_LISTED
    assert "- … and 50 more resources" in text

    wide = {f"k{i:03}": i for i in range(40)}
    base = plan(resource("aws:ec2/vpc:Vpc", "v", {k: 0 for k in wide}))
    text = plandiff.render(plandiff.diff(base, plan(resource("aws:ec2/vpc:Vpc", "v", wide))), "t")
    assert f"- … and {40 - 1 - plandiff.MAX_CHANGES_PER_RESOURCE} more inputs" in text


def test_a_comment_too_long_for_github_is_cut_at_a_line():
    huge = [
        resource("aws:ec2/subnet:Subnet", f"s{i}", {f"k{j}": "x" * 100 for j in range(30)})
        for i in range(100)
    ]
    base = plan(*[resource("aws:ec2/subnet:Subnet", f"s{i}") for i in range(100)])
    text = plandiff.render(plandiff.diff(base, plan(*huge)), "t")
    assert len(text) <= plandiff.MAX_COMMENT_CHARS
    assert text.rstrip().endswith("was cut._")
    assert text.count("<details>") == text.count("</details>")


def test_values_cannot_break_out_of_their_code_span():
    hostile = "x` [click](https://evil.example) <img src=x> `"
    base = plan(resource("aws:ec2/vpc:Vpc", "v", {"name": "a"}))
    head = plan(resource("aws:ec2/vpc:Vpc", "v", {"name": hostile + "\n# heading"}))
    text = plandiff.render(plandiff.diff(base, head), "t")
    (line,) = [line for line in text.splitlines() if line.startswith("- `name`")]
    assert "``" in line  # a longer fence than any backtick run inside
    assert "\n# heading" not in text
    assert plandiff.code("a`b") == "``a`b``"
    assert plandiff.code("`a") == "`` `a ``"


def test_the_comment_starts_with_a_marker_to_find_it_again():
    text = plandiff.render(plandiff.diff(plan(VPC), plan(VPC)), "Offline plan")
    assert text.startswith(plandiff.MARKER + "\n### Offline plan\n")


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"resources": {}},
        {"resources": [{"type": "x"}]},
        {"resources": [{"urn": "u", "inputs": []}]},
    ],
)
def test_malformed_plans_are_rejected(bad):
    with pytest.raises(plandiff.PlanError):
        plandiff.validate(bad)


def test_command_line_prints_the_comment_and_fails_on_a_bad_file(tmp_path: Path):
    base, head, bad = tmp_path / "base.json", tmp_path / "head.json", tmp_path / "bad.json"
    base.write_text(json.dumps(plan(VPC)))
    head.write_text(json.dumps(plan(VPC, SPOT)))
    bad.write_text("not json")
    env_path = str(Path(plandiff.__file__).parents[1])
    run = subprocess.run(
        [sys.executable, "-m", "app_platform_tools.plandiff", str(base), str(head)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path},
    )
    assert run.stdout.startswith(plandiff.MARKER)
    assert "Offline plan difference for stack `dev`" in run.stdout
    assert SPOT["urn"] in run.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "app_platform_tools.plandiff", str(base), str(bad)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path},
    )
    assert failed.returncode == 2
    assert "bad.json" in failed.stderr


def test_real_offline_plans_of_the_dev_stack_diff_cleanly():
    """The plan module's JSON is what this reads: a change to the dev stack shows up."""
    from app_platform_tools import offline
    from app_platform_tools import plan as plan_module

    # The spot node group exists with the Cluster Autoscaler.
    ca = {"nodeProvisioner": "clusterAutoscaler"}
    base = plan_module.to_json(offline.run(".", "dev", ca))
    head = plan_module.to_json(offline.run(".", "dev", {**ca, "spotMaxSize": 9}))
    base, head = json.loads(json.dumps(base)), json.loads(json.dumps(head))
    result = plandiff.diff(base, head)
    assert not result.added and not result.removed
    # The node group, and the Cluster component's record of the options it was built with.
    changes = {r.type: [(c.path, c.old, c.new) for c in r.changes] for r in result.changed}
    assert changes == {
        "eks:index:ManagedNodeGroup": [("scalingConfig.maxSize", 6, 9)],
        "app-platform:cluster:Cluster": [("spot.max_size", 6, 9)],
    }
