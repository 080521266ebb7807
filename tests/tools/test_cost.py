"""`make cost`: a monthly estimate from the offline plan, priced from the dated table."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from app_platform_tools import cost, offline, plan, plandiff, prices
from app_platform_tools.prices import ec2_table, spot_advisor

ROOT = Path(__file__).resolve().parents[2]
STACK = "urn:pulumi:dev::app-platform::"
HOURS = 730
US = prices.for_region("us-east-1")


def resource(type_: str, name: str, inputs: dict | None = None, parent: str = "") -> dict:
    return {
        "urn": f"{STACK}{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": parent,
        "inputs": inputs or {},
        "dependencies": [],
    }


def a_plan(*resources: dict, region: str | None = "us-east-1") -> dict:
    return {
        "project": "app-platform",
        "stack": "dev",
        "region": region,
        "resources": list(resources),
    }


def monthly(estimate: cost.Estimate) -> dict[str, float]:
    return {line.key.removeprefix(STACK): line.monthly for line in estimate.lines}


SUBNETS = [
    resource(
        "aws:ec2/subnet:Subnet",
        f"public-{zone}",
        {"availabilityZone": f"us-east-1{zone}", "tags": {"kubernetes.io/role/elb": "1"}},
    )
    for zone in "ab"
]
CLUSTER = resource("eks:index:Cluster", "eks")
SYSTEM = resource(
    "eks:index:ManagedNodeGroup",
    "system",
    {
        "capacityType": "ON_DEMAND",
        "instanceTypes": ["t3.large"],
        "scalingConfig": {"desiredSize": 2},
    },
)
SYSTEM_TEMPLATE = resource(
    "aws:ec2/launchTemplate:LaunchTemplate",
    "system",
    {"blockDeviceMappings": [{"ebs": {"volumeSize": 40, "volumeType": "gp3"}}]},
)
SPOT = resource(
    "eks:index:ManagedNodeGroup",
    "spot",
    {
        "capacityType": "SPOT",
        "instanceTypes": ["m6i.large", "m5.large", "m5a.large"],
        "scalingConfig": {"desiredSize": 2, "maxSize": 6},
    },
)
NLB_SERVICE = resource(
    "kubernetes:core/v1:Service",
    "load-balancer",
    {
        "metadata": {
            "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            }
        },
        "spec": {"type": "LoadBalancer"},
    },
)
NODE_CLASS = resource(
    cost.NODE_CLASS,
    "default-class",
    {
        "metadata": {"name": "default"},
        "spec": {"blockDeviceMappings": [{"ebs": {"volumeSize": "40Gi", "volumeType": "gp3"}}]},
    },
)


def node_pool(expected: str = "8", requirements: list | None = None, limit: str = "64") -> dict:
    default = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
    ]
    return resource(
        cost.NODE_POOL,
        "workloads",
        {
            "metadata": {"annotations": {cost.EXPECTED_VCPU: expected}},
            "spec": {
                "weight": 10,
                "limits": {"cpu": limit},
                "template": {
                    "spec": {
                        "requirements": default if requirements is None else requirements,
                        "nodeClassRef": {"name": "default"},
                    }
                },
            },
        },
    )


def test_database_log_exports_are_priced_once_where_the_stack_owns_their_group():
    exports = {"instanceClass": "db.t4g.micro", "allocatedStorage": 20, "storageType": "gp3"}
    exports |= {"identifier": "db", "enabledCloudwatchLogsExports": ["postgresql", "upgrade"]}
    owned = resource(
        "aws:cloudwatch/logGroup:LogGroup",
        "db-postgresql-logs",
        {"name": "/aws/rds/instance/db/postgresql", "retentionInDays": 30},
    )
    found = cost.estimate(a_plan(resource("aws:rds/instance:Instance", "db", exports), owned))
    lines = {line.key: line for line in found.lines}
    # The owned group at the export assumption (1 GB/month), kept 30 days: one month stored.
    assert round(lines[owned["urn"]].monthly, 2) == round(0.50 + 0.03, 2)
    # The other export still goes to a group RDS makes, kept forever (a year counted).
    logs = lines[f"{STACK}aws:rds/instance:Instance::db#logs"]
    assert "1 log exports" in logs.what
    assert round(logs.monthly, 2) == round(0.50 + 12 * 0.03, 2)


def test_each_priced_type_gets_its_monthly_line():
    database = resource(
        "aws:rds/instance:Instance",
        "db",
        {
            "instanceClass": "db.t4g.micro",
            "allocatedStorage": 20,
            "storageType": "gp3",
            "multiAz": True,
            "enabledCloudwatchLogsExports": ["postgresql"],
        },
    )
    claim = resource(
        "kubernetes:core/v1:PersistentVolumeClaim",
        "prometheus",
        {"spec": {"storageClassName": "gp2-class", "resources": {"requests": {"storage": "50Gi"}}}},
    )
    storage_class = resource(
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "gp2-class",
        {
            "metadata": {"name": "gp2-class"},
            "provisioner": "ebs.csi.aws.com",
            "parameters": {"type": "gp2"},
        },
    )
    nat_instance = resource(
        "aws:ec2/instance:Instance",
        "nat",
        {
            "instanceType": "t4g.small",
            "rootBlockDevice": {"volumeSize": 10},
            "associatePublicIpAddress": True,
        },
    )
    result = cost.estimate(
        a_plan(
            *SUBNETS,
            CLUSTER,
            SYSTEM,
            SYSTEM_TEMPLATE,
            resource("aws:ec2/natGateway:NatGateway", "nat-gw"),
            resource("aws:ec2/eip:Eip", "nat-ip"),
            nat_instance,
            NLB_SERVICE,
            claim,
            storage_class,
            database,
            resource("aws:cloudwatch/logGroup:LogGroup", "logs", {"retentionInDays": 90}),
            resource("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm"),
            resource("aws:kms/key:Key", "key"),
            resource("aws:sqs/queue:Queue", "interruptions"),
            resource("aws:ecr/repository:Repository", "images"),
            resource("aws:ebs/volume:Volume", "data", {"size": 100, "type": "gp3"}),
        )
    )
    lines = monthly(result)
    assert result.unpriced == {}
    assert lines["eks:index:Cluster::eks"] == 73.00  # $0.10/h
    assert lines["eks:index:ManagedNodeGroup::system#nodes"] == round(2 * 0.0832 * HOURS, 2)
    assert lines["eks:index:ManagedNodeGroup::system#root"] == 2 * 40 * 0.08
    assert lines["aws:ec2/natGateway:NatGateway::nat-gw"] == round(0.045 * HOURS + 10 * 0.045, 2)
    assert lines["aws:ec2/eip:Eip::nat-ip"] == 3.65
    assert lines["aws:ec2/instance:Instance::nat#instance"] == round(0.0168 * HOURS, 2)
    assert lines["aws:ec2/instance:Instance::nat#root"] == 0.80
    assert lines["aws:ec2/instance:Instance::nat#ipv4"] == 3.65
    # NLB hours, one NLCU, one public address in each of the two public subnets' zones.
    assert lines["kubernetes:core/v1:Service::load-balancer"] == round(
        (0.0225 + 0.006 + 2 * 0.005) * HOURS, 2
    )
    assert lines["kubernetes:core/v1:PersistentVolumeClaim::prometheus"] == 50 * 0.10
    assert lines["aws:rds/instance:Instance::db#instance"] == round(2 * 0.016 * HOURS, 2)
    assert lines["aws:rds/instance:Instance::db#storage"] == round(2 * 20 * 0.115, 2)
    assert lines["aws:rds/instance:Instance::db#logs"] == round(0.50 + 12 * 0.03, 2)
    assert lines["aws:cloudwatch/logGroup:LogGroup::logs"] == round(5 * 0.50 + 5 * 3 * 0.03, 2)
    assert lines["aws:cloudwatch/metricAlarm:MetricAlarm::alarm"] == 0.10
    assert lines["aws:kms/key:Key::key"] == 1.00
    assert lines["aws:sqs/queue:Queue::interruptions"] == 0.40
    assert lines["aws:ecr/repository:Repository::images"] == 0.20
    assert lines["aws:ebs/volume:Volume::data"] == 8.00
    assert result.total == pytest.approx(sum(lines.values()))


def test_clusterip_services_and_free_types_cost_nothing_and_are_not_flagged():
    result = cost.estimate(
        a_plan(
            resource("kubernetes:core/v1:Service", "web", {"spec": {"type": "ClusterIP"}}),
            resource(
                "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy",
                "proxy",
                {"spec": {"provider": {"kubernetes": {"envoyService": {"type": "ClusterIP"}}}}},
            ),
            resource("aws:iam/role:Role", "role"),
            resource("aws:ec2/securityGroup:SecurityGroup", "sg"),
            resource("aws:ec2/routeTable:RouteTable", "routes"),
            resource("kubernetes:apps/v1:Deployment", "app"),
            resource("app-platform:network:Network", "network"),
        )
    )
    assert result.lines == [] and result.unpriced == {}


def test_an_unknown_billable_type_is_listed_as_not_priced_never_skipped():
    result = cost.estimate(a_plan(CLUSTER, resource("aws:elasticache/cluster:Cluster", "cache")))
    assert list(result.unpriced) == ["aws:elasticache/cluster:Cluster"]
    assert result.total == 73.00
    assert "Not priced" in cost.render(result)
    assert "`aws:elasticache/cluster:Cluster`" in cost.render(result)


def test_a_known_type_with_an_unknown_size_is_not_priced_either():
    odd = resource("aws:rds/instance:Instance", "db", {"instanceClass": "db.x9.huge"})
    result = cost.estimate(a_plan(odd))
    assert result.lines == []
    assert "db.x9.huge" in result.unpriced["aws:rds/instance:Instance"][0]


def test_an_unknown_region_is_an_error_naming_it_and_the_known_ones():
    with pytest.raises(prices.PriceError, match=r"'ap-south-2'.*it has: us-east-1"):
        cost.estimate(a_plan(CLUSTER, region="ap-south-2"))


def test_the_region_comes_from_the_plan_or_else_its_subnets():
    assert cost.region_of(a_plan(*SUBNETS, region=None)) == "us-east-1"
    assert cost.region_of(a_plan(region="eu-west-1")) == "eu-west-1"
    with pytest.raises(prices.PriceError, match="no region"):
        cost.estimate(a_plan(CLUSTER, region=None))


def _savings(instance_type: str) -> float:
    """The Spot Advisor's savings of the type, or the flat 60 % where it lists none."""
    return US.regional["spot"].get(instance_type, 0.60)


def _expected_rate(
    arch: set[str], categories: set[str], above_generation: int, spot: bool
) -> float:
    """The lower quartile of per-vCPU-hour prices, computed here from the table directly."""
    rates = [
        US.regional["ec2"][t] / facts["vcpu"] * ((1 - _savings(t)) if spot else 1)
        for t, facts in US.instance_types.items()
        if facts["arch"] in arch
        and facts["category"] in categories
        and facts["generation"] > above_generation
        and t in US.regional["ec2"]
    ]
    return statistics.quantiles(rates, n=4, method="inclusive")[0]


def test_a_node_pool_is_priced_at_its_expected_vcpu_with_its_ceiling_apart():
    result = cost.estimate(a_plan(node_pool(expected="8", limit="64"), NODE_CLASS))
    rate = _expected_rate({"amd64", "arm64"}, {"c", "m", "r"}, 5, spot=True)
    lines = monthly(result)
    assert lines[f"{cost.NODE_POOL}::workloads#nodes"] == round(8 * rate * HOURS, 2)
    # 8 vCPU on 2-vCPU nodes: 4 root volumes of the node class's 40Gi.
    assert lines[f"{cost.NODE_POOL}::workloads#root"] == round(4 * 40 * 0.08, 2)
    assert [line.monthly for line in result.ceilings] == [round(64 * rate * HOURS, 2)]
    assert result.total == pytest.approx(sum(lines.values()))  # the ceiling is not in it
    assert "at most 64 vCPU" in cost.render(result)


def test_node_pool_requirements_narrow_the_instance_types():
    arm_on_demand = node_pool(
        requirements=[
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]},
            {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["m"]},
            {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["6"]},
        ]
    )
    types = cost.pool_types(arm_on_demand, US.instance_types)
    assert types and all(t.startswith(("m7g", "m8g", "m9g")) for t in types)
    assert cost.capacity_types(arm_on_demand) == ["reserved", "spot", "on-demand"]
    rate = _expected_rate({"arm64"}, {"m"}, 6, spot=True)  # spot before on-demand
    line = monthly(cost.estimate(a_plan(arm_on_demand)))[f"{cost.NODE_POOL}::workloads#nodes"]
    assert line == round(8 * rate * HOURS, 2)
    # A requirement left out allows every value; NotIn and Lt narrow too.
    assert cost.pool_types(node_pool(requirements=[]), US.instance_types) == list(US.instance_types)
    older_c = node_pool(
        requirements=[
            {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]},
            {"key": "karpenter.k8s.aws/instance-generation", "operator": "Lt", "values": ["6"]},
            {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c"]},
        ]
    )
    assert cost.capacity_types(older_c) == ["reserved", "on-demand"]
    generations = {
        US.instance_types[t]["generation"] for t in cost.pool_types(older_c, US.instance_types)
    }
    assert generations == {5}


def test_a_node_pool_without_its_expected_vcpu_is_flagged():
    result = cost.estimate(a_plan(node_pool(expected="lots")))
    assert cost.EXPECTED_VCPU in result.unpriced[cost.NODE_POOL][0]


def test_spot_share_counts_node_groups_at_desired_size_and_pools_at_expected():
    result = cost.estimate(a_plan(SYSTEM, SPOT, node_pool(expected="8")))
    # system 2 x 2 vCPU on-demand, spot 2 x 2 vCPU, pool 8 vCPU on spot: 12 of 16.
    assert (result.spot_vcpu, result.node_vcpu) == (12, 16)
    assert "**75%**" in cost.render(result) and "meets" in cost.render(result)
    below = cost.estimate(a_plan(SYSTEM, SPOT))
    assert below.spot_share == 0.5 and "**below**" in cost.render(below)


def test_two_plans_differ_per_line_and_in_total():
    bigger = json.loads(json.dumps(SPOT))
    bigger["inputs"]["scalingConfig"]["desiredSize"] = 4
    base = a_plan(CLUSTER, SPOT, resource("aws:kms/key:Key", "key"))
    head = a_plan(CLUSTER, bigger, resource("aws:sqs/queue:Queue", "interruptions"))
    old, new = cost.estimates(base, head)
    text = cost.render_diff(old, new)
    spot_types = ("m6i.large", "m5.large", "m5a.large")
    node = statistics.median(US.hourly(t, spot=True) for t in spot_types) * HOURS
    spot_line = round(4 * node, 2) - round(2 * node, 2)
    # Two more spot nodes and their 20 GiB default root volumes; the key goes, a queue comes.
    assert new.total - old.total == pytest.approx(spot_line + 2 * 20 * 0.08 - 1.00 + 0.40)
    assert "| KMS key |" in text and "| $1.00 | — | -$1.00 |" in text
    assert "| SQS queue |" in text and "| — | $0.40 | +$0.40 |" in text
    assert f"+{cost.usd(spot_line)}" in text
    assert "EKS control plane" not in text  # unchanged lines are left out
    assert f"({cost.change(new.total - old.total)})" in text


def test_an_empty_base_plan_takes_the_head_region():
    empty = {"project": "", "stack": "dev", "resources": [], "outputs": {}}
    old, new = cost.estimates(empty, a_plan(CLUSTER))
    assert (old.total, new.total) == (0, 73.00)


def test_the_plan_diff_comment_ends_with_the_cost_difference(tmp_path, capsys):
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps(a_plan(CLUSTER)))
    head.write_text(json.dumps(a_plan(CLUSTER, resource("aws:kms/key:Key", "key"))))
    assert plandiff.main([str(base), str(head)]) == 0
    comment = capsys.readouterr().out
    assert "#### Monthly cost" in comment
    assert "$73.00 → **$74.00** (+$1.00)" in comment
    assert comment.index("#### Monthly cost") < comment.index("_Offline plan under mocks")


def test_a_plan_that_cannot_be_priced_says_so_in_the_comment():
    section = cost.comment_section(a_plan(region="mars-1"), a_plan(region="mars-1"))
    assert "Not estimated" in section and "mars-1" in section


def test_plan_values_cannot_break_the_markdown_table():
    hostile = resource("aws:kms/key:Key", "k|ey`\n| **pwned** |")
    table = cost.render(cost.estimate(a_plan(hostile)))
    row = next(line for line in table.splitlines() if line.startswith("| KMS key"))
    assert row.count("|") == 4 and "\n" not in row


def test_the_command_line_prices_one_plan_or_the_difference_of_two(tmp_path, capsys):
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps(a_plan(CLUSTER)))
    head.write_text(json.dumps(a_plan(CLUSTER, SYSTEM)))
    assert cost.main([str(head)]) == 0
    assert "| EKS control plane |" in capsys.readouterr().out
    assert cost.main([str(base), str(head)]) == 0
    assert "| Node group |" in capsys.readouterr().out
    head.write_text(json.dumps(a_plan(CLUSTER, region="xx-nowhere-1")))
    assert cost.main([str(head)]) == 2
    assert "'xx-nowhere-1'" in capsys.readouterr().err


def test_the_price_table_is_dated_and_names_its_sources():
    table = json.loads(prices.TABLE.read_text())
    assert table["as_of"]
    for section in ["ec2", "spot", *table["regions"]["us-east-1"]]:
        assert table["sections"][section]["as_of"], section
        assert all(url.startswith("https://") for url in table["sections"][section]["source"])
    # Types the Spot Advisor lists are priced at its savings; the others at the assumption.
    assert "assumptions.spot_savings" in table["sections"]["spot"]["note"]
    assert table["regions"]["us-east-1"]["spot"]["c6g.large"] == 0.59
    assert all(entry["note"] for entry in table["assumptions"].values())


def test_ec2_facts_come_from_the_instance_type_name():
    source = (
        '\t"us-east-1": {\n'
        '\t\t"c7g.medium": 0.036250, "m5.2xlarge": 0.384000, "m5.metal": 4.6,\n'
        '\t\t"t4g.small": 0.016800, "x2gd.large": 0.167, "m4.large": 0.1,\n'
    )
    table = ec2_table.table(source, "2026-07-20")
    assert table["regions"]["us-east-1"] == {
        "c7g.medium": 0.03625,
        "m5.2xlarge": 0.384,
        "t4g.small": 0.0168,
    }
    facts = table["instance_types"]
    assert facts["c7g.medium"] == {"vcpu": 1, "arch": "arm64", "category": "c", "generation": 7}
    assert facts["m5.2xlarge"]["vcpu"] == 8 and facts["m5.2xlarge"]["arch"] == "amd64"
    assert facts["t4g.small"]["vcpu"] == 2


def test_quantities():
    assert cost.gib("40Gi") == 40 and cost.gib("1Ti") == 1024 and cost.gib(20) == 20
    assert cost.gib("500m") is None and cost.gib(None) is None
    assert cost.cpus("500m") == 0.5 and cost.cpus("100") == 100 and cost.cpus("1Gi") is None


# ---------------------------------------------------------------------------------------------
# The real dev stack
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_plan(dev: offline.Recording) -> dict:
    return plan.to_json(dev, region=plan.stack_region(ROOT, "dev"))


# The dev stack's budget: everything deployed, most of the node capacity on spot.
DEV_BUDGET_USD = 200
DEV_SPOT_SHARE = 0.70


def test_the_dev_stack_costs_at_most_its_budget_with_most_vcpu_on_spot(dev_plan):
    result = cost.estimate(dev_plan)
    assert result.total <= DEV_BUDGET_USD, cost.render(result)
    assert result.spot_share >= DEV_SPOT_SHARE
    # Everything deployed: the database, monitoring volume, load balancer and NAT are priced.
    what = {line.resource for line in result.lines}
    assert {"EKS control plane", "Network Load Balancer", "EBS volumes", "Public IPv4"} <= what


def test_the_dev_stack_is_priced_with_nothing_billable_unpriced(dev_plan):
    result = cost.estimate(dev_plan)
    assert result.unpriced == {}
    assert result.total > 0
    priced = {line.key.split("#")[0] for line in result.lines}
    for type_ in dev_plan["counts"]:
        assert type_ in cost.PRICERS or cost.is_free(type_), type_
    for type_ in (
        "eks:index:Cluster",
        "aws:ec2/instance:Instance",
        # The comments database's volume (dev keeps the database in the cluster).
        "kubernetes:core/v1:PersistentVolumeClaim",
    ):
        assert any(r["urn"] in priced for r in dev_plan["resources"] if r["type"] == type_)
    assert math.isclose(result.total, sum(line.monthly for line in result.lines))


def test_the_readme_cost_table_is_the_tool_output_for_dev(dev_plan):
    table = cost.render(cost.estimate(dev_plan))
    assert cost.readme_drift(ROOT / "README.md", table) == []


def test_the_estimate_does_not_depend_on_the_order_of_the_plan(dev_plan):
    shuffled = {**dev_plan, "resources": list(reversed(dev_plan["resources"]))}
    assert cost.render(cost.estimate(shuffled)) == cost.render(cost.estimate(dev_plan))


def test_a_stale_readme_table_is_caught(tmp_path, dev_plan):
    readme = tmp_path / "README.md"
    stale = (ROOT / "README.md").read_text().replace("| EKS control plane |", "| EKS |", 1)
    readme.write_text(stale)
    table = cost.render(cost.estimate(dev_plan))
    assert cost.readme_drift(readme, table) != []
    readme.write_text(cost.with_readme_table(stale, table))
    assert cost.readme_drift(readme, table) == []


def test_the_comment_with_its_cost_section_needs_only_the_standard_library(tmp_path):
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps(a_plan(CLUSTER)))
    head.write_text(json.dumps(a_plan(CLUSTER, SYSTEM)))
    tools = str(Path(cost.__file__).parents[1])
    # -S: no site-packages, so neither the Pulumi SDK nor PyYAML can be imported.
    run = subprocess.run(
        [sys.executable, "-S", "-m", "app_platform_tools.plandiff", str(base), str(head)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": tools},
    )
    expected = cost.usd(cost.estimate(a_plan(CLUSTER, SYSTEM)).total)
    assert f"Monthly cost estimate: $73.00 → **{expected}**" in run.stdout


def test_a_plan_of_any_shape_never_breaks_the_comment():
    junk = [
        resource(
            "eks:index:ManagedNodeGroup", "g", {"scalingConfig": "x", "instanceTypes": ["t3.large"]}
        ),
        resource(
            "aws:rds/instance:Instance",
            "db",
            {"instanceClass": "db.t4g.micro", "allocatedStorage": "lots"},
        ),
        resource("aws:cloudwatch/logGroup:LogGroup", "l", {"retentionInDays": "| never |"}),
        resource(
            "aws:ec2/instance:Instance", "i", {"instanceType": "t3.large", "rootBlockDevice": []}
        ),
        resource(
            cost.NODE_POOL, "p", {"metadata": {"annotations": {cost.EXPECTED_VCPU: "4"}}, "spec": 7}
        ),
        {"urn": "u", "type": 5, "inputs": {}},
    ]
    section = cost.comment_section(a_plan(), a_plan(*junk))
    assert section.startswith("#### Monthly cost")
    result = cost.estimate(a_plan(*junk))
    assert "| never |" not in cost.render(result)


def test_refreshing_the_ec2_prices_keeps_the_other_sections(tmp_path):
    copy = tmp_path / "aws.json"
    copy.write_text(prices.TABLE.read_text())
    source = '\t"us-east-1": {\n\t\t"m6i.large": 0.1, "m7g.large": 0.08,\n'
    ec2_table.write(ec2_table.table(source, "2027-01-01"), copy)
    refreshed, before = json.loads(copy.read_text()), json.loads(prices.TABLE.read_text())
    assert refreshed["regions"]["us-east-1"]["ec2"] == {"m6i.large": 0.1, "m7g.large": 0.08}
    assert refreshed["sections"]["ec2"]["as_of"] == "2027-01-01"
    assert refreshed["regions"]["us-east-1"]["rds"] == before["regions"]["us-east-1"]["rds"]
    assert refreshed["assumptions"] == before["assumptions"]


def test_the_dev_stack_options_that_add_billable_resources_are_priced(run_stack):
    options = {"vpcFlowLogs": True, "natGateways": "perAz", "hostedZone": "Z0OFFLINEEXAMPLE"}
    options["domain"] = "dev.example.com"
    wider = plan.to_json(run_stack(options), region="us-east-1")
    single = plan.to_json(run_stack({"natGateways": "single"}), region="us-east-1")
    old, new = cost.estimates(single, wider)
    assert new.unpriced == {}
    # dev has two zones: one more NAT gateway with its address, and the flow log group (kept
    # 30 days); the hosted zone is looked up, not made.
    nat = monthly(old)[next(k for k in monthly(old) if "NatGateway" in k)]
    flow_logs = 5 * 0.50 + 5 * 1 * 0.03
    assert new.total - old.total == pytest.approx(nat + 3.65 + flow_logs)


def test_refreshing_the_spot_savings_keeps_the_rest_and_only_known_types(tmp_path):
    copy = tmp_path / "aws.json"
    copy.write_text(prices.TABLE.read_text())
    advisor = {
        "spot_advisor": {
            "us-east-1": {"Linux": {"m7g.large": {"s": 71, "r": 0}, "x9.huge": {"s": 90}}},
            "xx-nowhere-1": {"Linux": {"m7g.large": {"s": 10}}},
        }
    }
    by_region = spot_advisor.savings(advisor, json.loads(copy.read_text()))
    assert by_region == {"us-east-1": {"m7g.large": 0.71}}
    spot_advisor.write(by_region, "2027-01-01", copy)
    refreshed = prices.for_region("us-east-1", copy)
    assert refreshed.hourly("m7g.large", spot=True) == pytest.approx(0.0816 * 0.29)
    # A type the Advisor does not list keeps the flat assumption.
    assert refreshed.hourly("m6i.large", spot=True) == pytest.approx(0.096 * 0.40)
    assert json.loads(copy.read_text())["sections"]["spot"]["as_of"] == "2027-01-01"
