"""The leftover finder against canned AWS answers (botocore's Stubber: real clients, real
request and response validation against the service models, no network)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.e2e import leftovers

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "platform-e2e-1a2b3c"
STACK_TAGS = {"project": "app-platform", "stack": "e2e-1a2b3c"}
VPC = "vpc-0a1b2c3d4e5f60718"
STARTED = datetime(2026, 9, 7, 5, 17, tzinfo=UTC)
SCOPE = leftovers.Scope(STACK_TAGS, CLUSTER, (VPC,), STARTED)
SERVICES = ("tagging", "ec2", "elbv2", "kms", "logs", "iam")
# What the e2e role may call for the search (bootstrap gives it this policy).
SEARCH_POLICY = Path(__file__).resolve().parents[2] / "bootstrap/policies/leftover-search.json"
# IAM's service prefix where it is not the API's signing name.
IAM_PREFIX = {"tagging": "tag"}


@dataclass
class Aws:
    clients: leftovers.Clients
    stubs: dict[str, Stubber]
    # Every call made, as the IAM action it needs: `ec2:DescribeVolumes`.
    calls: set[str] = field(default_factory=set)

    def expect(self, service: str, method: str, response: dict, params: dict | None = None):
        self.stubs[service].add_response(method, response, params)


@pytest.fixture
def aws():
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    clients = leftovers.Clients.of(session, REGION)
    stubs = {name: Stubber(getattr(clients, name)) for name in SERVICES}
    recorded = Aws(clients, stubs)

    def record(model, **_):
        service = model.service_model.signing_name
        recorded.calls.add(f"{IAM_PREFIX.get(service, service)}:{model.name}")

    for name in SERVICES:
        getattr(clients, name).meta.events.register("before-parameter-build", record)
    for stub in stubs.values():
        stub.activate()
    yield recorded
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


# The queries, as the finder must make them: the tag keys its controller's source sets.
VOLUME_FILTERS = [
    {"Name": "tag-key", "Values": [f"kubernetes.io/cluster/{CLUSTER}"]},
    {"Name": "tag:KubernetesCluster", "Values": [CLUSTER]},
    {"Name": "tag:ebs.csi.aws.com/cluster-name", "Values": [CLUSTER]},
    {"Name": "tag:ebs.csi.aws.com/cluster", "Values": ["true"]},
]
INTERFACE_FILTERS = [
    {"Name": "tag:cluster.k8s.amazonaws.com/name", "Values": [CLUSTER]},
    {"Name": "vpc-id", "Values": [VPC]},
]


def expect_volumes(aws: Aws, *answers: list[dict[str, Any]]) -> None:
    for query, volumes in zip(VOLUME_FILTERS, answers, strict=True):
        aws.expect("ec2", "describe_volumes", {"Volumes": volumes}, {"Filters": [query]})


def expect_interfaces(aws: Aws, tagged: list[dict], in_vpc: list[dict]) -> None:
    for query, interfaces in zip(INTERFACE_FILTERS, (tagged, in_vpc), strict=True):
        aws.expect(
            "ec2",
            "describe_network_interfaces",
            {"NetworkInterfaces": interfaces},
            {"Filters": [query]},
        )


def expect_log_groups(aws: Aws, eks: list[str], rds: list[str]) -> None:
    for prefix, names in ((f"/aws/eks/{CLUSTER}/", eks), (f"/aws/rds/instance/{CLUSTER}-", rds)):
        # DescribeLogGroups gives `arn` with a trailing `:*`, and `logGroupArn` without.
        groups = [
            {"logGroupName": name, "arn": arn("logs", f"log-group:{name}:*")} for name in names
        ]
        aws.expect(
            "logs", "describe_log_groups", {"logGroups": groups}, {"logGroupNamePrefix": prefix}
        )


def expect_iam(
    aws: Aws, roles: list[str], policies: list[str], profiles: tuple[str, ...] = ()
) -> None:
    created = datetime(2026, 9, 7, 5, 30, tzinfo=UTC)
    aws.expect(
        "iam",
        "list_roles",
        {
            "Roles": [
                {
                    "Path": "/",
                    "RoleName": name,
                    "RoleId": f"AROA{index:016d}",
                    "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
                    "CreateDate": created,
                }
                for index, name in enumerate(roles)
            ]
        },
        {},
    )
    aws.expect(
        "iam",
        "list_instance_profiles",
        {
            "InstanceProfiles": [
                {
                    "Path": "/",
                    "InstanceProfileName": name,
                    "InstanceProfileId": f"AIPA{index:016d}",
                    "Arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/{name}",
                    "CreateDate": created,
                    "Roles": [],
                }
                for index, name in enumerate(profiles)
            ]
        },
        {},
    )
    aws.expect(
        "iam",
        "list_policies",
        {
            "Policies": [
                {"PolicyName": name, "Arn": f"arn:aws:iam::{ACCOUNT}:policy/{name}"}
                for name in policies
            ]
        },
        {"Scope": "Local"},
    )


def expect_tagging(aws: Aws, arns_and_tags: list[tuple[str, dict[str, str]]]) -> None:
    aws.expect(
        "tagging",
        "get_resources",
        {
            "ResourceTagMappingList": [
                {"ResourceARN": resource, "Tags": tag_list(tags)}
                for resource, tags in arns_and_tags
            ]
        },
        {
            "TagFilters": [
                {"Key": "project", "Values": ["app-platform"]},
                {"Key": "stack", "Values": ["e2e-1a2b3c"]},
            ]
        },
    )


def expect_empty_account(aws: Aws) -> None:
    """Every query the finder makes, answered with nothing, in the order it makes them."""
    expect_tagging(aws, [])
    expect_volumes(aws, [], [], [], [])
    aws.expect("elbv2", "describe_load_balancers", {"LoadBalancers": []}, {})
    expect_interfaces(aws, [], [])
    expect_log_groups(aws, [], [])
    expect_iam(aws, [], [])


def test_a_clean_account_has_no_leftovers(aws):
    expect_empty_account(aws)

    found = leftovers.find(aws.clients, SCOPE)

    assert found == []
    assert leftovers.report(found) == "Leftovers after destroy: none"


def test_the_prometheus_volume_is_found_by_the_csi_drivers_tag_only_if_made_during_the_run(aws):
    prometheus = {
        "VolumeId": "vol-0prometheus000001",
        "CreateTime": STARTED + timedelta(minutes=31),
        "Tags": tag_list(
            {
                "ebs.csi.aws.com/cluster": "true",
                "CSIVolumeName": "pvc-3f1d",
                "kubernetes.io/created-for/pvc/namespace": "monitoring",
            }
        ),
    }
    # Another cluster's volume in the same account, made before this run started.
    older = {
        "VolumeId": "vol-0otherclusters001",
        "CreateTime": STARTED - timedelta(days=3),
        "Tags": tag_list({"ebs.csi.aws.com/cluster": "true"}),
    }
    named = {
        "VolumeId": "vol-0namedcluster0001",
        "CreateTime": STARTED - timedelta(days=3),
        "Tags": tag_list({f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
    }
    expect_volumes(aws, [named], [], [], [prometheus, older])

    found = leftovers.volumes(aws.clients.ec2, SCOPE)

    assert [(v.id, v.found_by) for v in found] == [
        ("vol-0namedcluster0001", f"tag kubernetes.io/cluster/{CLUSTER}"),
        ("vol-0prometheus000001", "tag ebs.csi.aws.com/cluster=true"),
    ]
    assert found[1].tags["kubernetes.io/created-for/pvc/namespace"] == "monitoring"


def test_load_balancers_of_the_cluster_or_its_vpc_are_found_and_others_are_not(aws):
    ours = arn("elasticloadbalancing", "loadbalancer/net/k8s-edge-proxy/0a1b2c3d4e5f6071")
    stray = arn("elasticloadbalancing", "loadbalancer/net/untagged/1a1b2c3d4e5f6071")
    theirs = arn("elasticloadbalancing", "loadbalancer/net/k8s-other/2a1b2c3d4e5f6071")
    aws.expect(
        "elbv2",
        "describe_load_balancers",
        {
            "LoadBalancers": [
                {"LoadBalancerArn": ours, "VpcId": VPC},
                {"LoadBalancerArn": stray, "VpcId": VPC},
                {"LoadBalancerArn": theirs, "VpcId": "vpc-0ffffffffffffffff"},
            ]
        },
        {},
    )
    aws.expect(
        "elbv2",
        "describe_tags",
        {
            "TagDescriptions": [
                {"ResourceArn": ours, "Tags": tag_list({"elbv2.k8s.aws/cluster": CLUSTER})},
                {"ResourceArn": stray},
                {"ResourceArn": theirs, "Tags": tag_list({"elbv2.k8s.aws/cluster": "other"})},
            ]
        },
        {"ResourceArns": [ours, stray, theirs]},
    )

    found = leftovers.load_balancers(aws.clients.elbv2, SCOPE)

    assert [(lb.id, lb.found_by) for lb in found] == [
        (ours, f"tag elbv2.k8s.aws/cluster={CLUSTER}"),
        (stray, f"in the stack's VPC {VPC}"),
    ]
    assert found[0].kind == "elasticloadbalancing:loadbalancer"


def test_interfaces_of_the_vpc_cni_and_any_left_in_the_vpc_are_found(aws):
    cni = {
        "NetworkInterfaceId": "eni-0cni0000000000001",
        "Description": "aws-K8S-i-0123456789abcdef0",
        "TagSet": tag_list({"cluster.k8s.amazonaws.com/name": CLUSTER}),
    }
    nlb = {"NetworkInterfaceId": "eni-0nlb0000000000001", "Description": "ELB net/k8s-edge/0a1b"}
    expect_interfaces(aws, [cni], [nlb])

    found = leftovers.network_interfaces(aws.clients.ec2, SCOPE)

    assert [(i.id, i.found_by) for i in found] == [
        (
            "eni-0cni0000000000001",
            "tag cluster.k8s.amazonaws.com/name; aws-K8S-i-0123456789abcdef0",
        ),
        ("eni-0nlb0000000000001", "in the stack's VPC; ELB net/k8s-edge/0a1b"),
    ]


def test_tagging_api_hits_count_only_once_their_service_confirms_them(aws):
    vpc_arn = arn("ec2", f"vpc/{VPC}")
    subnet_arn = arn("ec2", "subnet/subnet-0a1b2c3d4e5f60718")
    pending_key = arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab")
    deleted_key = arn("kms", "key/2234abcd-12ab-34cd-56ef-1234567890ab")
    live_key = arn("kms", "key/3234abcd-12ab-34cd-56ef-1234567890ab")
    log_group = arn("logs", f"log-group:/aws/eks/{CLUSTER}/cluster")
    cluster = arn("eks", f"cluster/{CLUSTER}")
    expect_tagging(
        aws,
        [(r, STACK_TAGS) for r in (vpc_arn, subnet_arn, pending_key, deleted_key, live_key)]
        + [(log_group, STACK_TAGS), (cluster, STACK_TAGS)],
    )
    # EC2 lists tags only of what exists: the VPC is gone, the subnet is not.
    aws.expect(
        "ec2",
        "describe_tags",
        {
            "Tags": [
                {
                    "Key": "stack",
                    "Value": "e2e-1a2b3c",
                    "ResourceId": "subnet-0a1b2c3d4e5f60718",
                    "ResourceType": "subnet",
                }
            ]
        },
        {"Filters": [{"Name": "resource-id", "Values": [VPC, "subnet-0a1b2c3d4e5f60718"]}]},
    )
    aws.expect(
        "kms",
        "describe_key",
        {"KeyMetadata": {"KeyId": "1234abcd", "KeyState": "PendingDeletion"}},
        {"KeyId": pending_key},
    )
    aws.stubs["kms"].add_client_error(
        "describe_key", "NotFoundException", expected_params={"KeyId": deleted_key}
    )
    aws.expect(
        "kms",
        "describe_key",
        {"KeyMetadata": {"KeyId": "3234abcd", "KeyState": "Enabled"}},
        {"KeyId": live_key},
    )
    # The log group is gone: only a longer name with the same prefix is there.
    aws.expect(
        "logs",
        "describe_log_groups",
        {"logGroups": [{"logGroupName": f"/aws/eks/{CLUSTER}/cluster-old"}]},
        {"logGroupNamePrefix": f"/aws/eks/{CLUSTER}/cluster"},
    )

    found = leftovers.confirmed(aws.clients, leftovers.tagged(aws.clients.tagging, STACK_TAGS))

    assert [(f.kind, f.id, f.expected) for f in found] == [
        ("ec2:subnet", subnet_arn, ""),
        ("kms:key", pending_key, leftovers.KMS_PENDING_DELETION),
        ("kms:key", live_key, ""),
        ("eks:cluster", cluster, ""),
    ]
    assert [f.id for f in leftovers.unexpected(found)] == [subnet_arn, live_key, cluster]


def test_the_database_and_control_plane_log_groups_are_leftovers(aws):
    expect_log_groups(
        aws,
        eks=[f"/aws/eks/{CLUSTER}/cluster"],
        rds=[f"/aws/rds/instance/{CLUSTER}-comments/postgresql"],
    )

    found = leftovers.log_groups(aws.clients.logs, SCOPE)

    assert [(f.id.split(":log-group:")[1], f.expected) for f in found] == [
        (f"/aws/eks/{CLUSTER}/cluster", ""),
        (f"/aws/rds/instance/{CLUSTER}-comments/postgresql", ""),
    ]
    assert leftovers.unexpected(found) == found


def test_iam_roles_and_policies_are_found_by_the_stacks_prefix_only(aws):
    expect_iam(
        aws,
        roles=[f"{CLUSTER}-node-3f2a1b0", f"{CLUSTER}0-node-3f2a1b0", "platform-dev-node-1a2b3c4"],
        policies=[f"{CLUSTER}-load-balancer-controller-9c8b7a6", "unrelated"],
        profiles=(f"{CLUSTER}-nat-us-east-1a-5d4c3b2", "platform-dev-nat-us-east-1a-1a2b3c4"),
    )

    found = leftovers.iam_entities(aws.clients.iam, SCOPE)

    assert [f.id.split(":", 5)[5] for f in found] == [
        f"role/{CLUSTER}-node-3f2a1b0",
        f"instance-profile/{CLUSTER}-nat-us-east-1a-5d4c3b2",
        f"policy/{CLUSTER}-load-balancer-controller-9c8b7a6",
    ]


def test_one_resource_found_several_ways_is_reported_once(aws):
    volume_id = "vol-0prometheus000001"
    expect_tagging(aws, [(arn("ec2", f"volume/{volume_id}"), STACK_TAGS)])
    aws.expect(
        "ec2",
        "describe_tags",
        {"Tags": [{"Key": "stack", "Value": "e2e-1a2b3c", "ResourceId": volume_id}]},
        {"Filters": [{"Name": "resource-id", "Values": [volume_id]}]},
    )
    volume = {"VolumeId": volume_id, "CreateTime": STARTED + timedelta(minutes=30)}
    expect_volumes(aws, [volume], [], [], [volume])
    aws.expect("elbv2", "describe_load_balancers", {"LoadBalancers": []}, {})
    expect_interfaces(aws, [], [])
    expect_log_groups(aws, [], [])
    expect_iam(aws, [], [])

    found = leftovers.find(aws.clients, SCOPE)

    assert [(f.kind, f.found_by) for f in found] == [("ec2:volume", "stack tags")]


def test_the_control_plane_log_group_found_by_tags_and_by_name_is_reported_once(aws):
    name = f"/aws/eks/{CLUSTER}/cluster"
    expect_tagging(aws, [(arn("logs", f"log-group:{name}"), STACK_TAGS)])
    aws.expect(
        "logs",
        "describe_log_groups",
        {"logGroups": [{"logGroupName": name}]},
        {"logGroupNamePrefix": name},
    )
    expect_volumes(aws, [], [], [], [])
    aws.expect("elbv2", "describe_load_balancers", {"LoadBalancers": []}, {})
    expect_interfaces(aws, [], [])
    expect_log_groups(aws, eks=[name], rds=[])
    expect_iam(aws, [], [])

    found = leftovers.find(aws.clients, SCOPE)

    assert [(f.id, f.found_by) for f in found] == [(arn("logs", f"log-group:{name}"), "stack tags")]


def test_the_report_gives_type_id_and_tags_and_lists_what_is_expected_apart():
    found = [
        leftovers.Leftover(
            "ec2:volume",
            "vol-0prometheus000001",
            "tag ebs.csi.aws.com/cluster=true",
            {"kubernetes.io/created-for/pvc/namespace": "monitoring", "CSIVolumeName": "pvc-3f1d"},
        ),
        leftovers.Leftover(
            "kms:key", "arn:aws:kms:us-east-1:1:key/k", "stack tags", expected="pending deletion"
        ),
    ]

    text = leftovers.report(found)

    assert text.splitlines()[0] == "Leftovers after destroy: 1"
    volume_line = text.splitlines()[1]
    for part in (
        "ec2:volume",
        "vol-0prometheus000001",
        "found by tag ebs.csi.aws.com/cluster=true",
        "tags: CSIVolumeName=pvc-3f1d, kubernetes.io/created-for/pvc/namespace=monitoring",
    ):
        assert part in volume_line
    assert text.splitlines()[2] == "Expected to linger, ignored: 1"
    assert "arn:aws:kms:us-east-1:1:key/k" in text.splitlines()[3]
    assert "pending deletion" in text.splitlines()[3]


@pytest.mark.parametrize(
    ("resource_arn", "kind"),
    [
        ("arn:aws:ec2:us-east-1:1:volume/vol-1", "ec2:volume"),
        ("arn:aws:logs:us-east-1:1:log-group:/aws/eks/x/cluster", "logs:log-group"),
        ("arn:aws:rds:us-east-1:1:db:platform-e2e-1a2b3c-comments", "rds:db"),
        (
            "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/n/1",
            "elasticloadbalancing:loadbalancer",
        ),
        (
            "arn:aws:iam::1:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/AB",
            "iam:oidc-provider",
        ),
    ],
)
def test_the_kind_of_a_resource_comes_from_its_arn(resource_arn, kind):
    assert leftovers.arn_kind(resource_arn) == kind


def test_the_e2e_role_may_make_exactly_the_calls_of_a_search_that_finds_everything(aws):
    """Every branch of the search taken once: any call it makes that the role's policy lacks
    would fail the real run with AccessDenied; anything more is a permission it does not use."""
    key = arn("kms", "key/3234abcd-12ab-34cd-56ef-1234567890ab")
    log_group = f"/aws/eks/{CLUSTER}/cluster"
    expect_tagging(
        aws,
        [(r, STACK_TAGS) for r in (arn("ec2", "subnet/subnet-1"), key)]
        + [(arn("logs", f"log-group:{log_group}"), STACK_TAGS)],
    )
    aws.expect("ec2", "describe_tags", {"Tags": []})
    aws.expect("kms", "describe_key", {"KeyMetadata": {"KeyId": "3234abcd", "KeyState": "Enabled"}})
    aws.expect("logs", "describe_log_groups", {"logGroups": []})
    expect_volumes(aws, [], [], [], [])
    balancer = arn("elasticloadbalancing", "loadbalancer/net/k8s-edge-proxy/0a1b2c3d4e5f6071")
    aws.expect(
        "elbv2", "describe_load_balancers", {"LoadBalancers": [{"LoadBalancerArn": balancer}]}
    )
    aws.expect("elbv2", "describe_tags", {"TagDescriptions": [{"ResourceArn": balancer}]})
    expect_interfaces(aws, [], [])
    expect_log_groups(aws, [], [])
    expect_iam(aws, [], [])

    leftovers.find(aws.clients, SCOPE)

    (statement,) = json.loads(SEARCH_POLICY.read_text())["Statement"]
    assert statement["Effect"] == "Allow"
    assert set(statement["Action"]) == aws.calls
