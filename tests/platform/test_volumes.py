"""The stack's volume claims: names the operator's StatefulSets mount, and the volume cleanup that
runs on destroy (against a fake EC2 API: nothing here reaches AWS)."""

import pytest
from botocore.exceptions import ClientError

from app_platform import observability, volumes

CLAIMS = ["data-db-0"]


class FakeEc2:
    """describe_volumes/delete_volume over a dict of volume id -> state; `detach` makes the
    attached volumes available at the next poll, as the CSI driver would."""

    def __init__(self, states: dict[str, str], delete_error: str | None = None):
        self.states = dict(states)
        self.delete_error = delete_error
        self.deleted: list[str] = []
        self.filters: list[dict] = []

    def get_paginator(self, operation: str) -> "FakeEc2":
        assert operation == "describe_volumes"
        return self

    def paginate(self, Filters: list[dict]) -> list[dict]:  # noqa: N803 (boto3's spelling)
        self.filters = Filters
        volumes = [{"VolumeId": v, "State": s} for v, s in self.states.items()]
        return [{"Volumes": volumes}]

    def delete_volume(self, VolumeId: str) -> None:  # noqa: N803
        self.deleted.append(VolumeId)
        self.states.pop(VolumeId)
        if self.delete_error:
            raise ClientError({"Error": {"Code": self.delete_error}}, "DeleteVolume")

    def detach(self) -> None:
        self.states = {v: "available" if s == "in-use" else s for v, s in self.states.items()}


class Clock:
    """Time that passes only when slept; `meanwhile` runs at each sleep."""

    def __init__(self, meanwhile=lambda: None):
        self.now = 0.0
        self.sleeps: list[float] = []
        self.meanwhile = meanwhile

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.meanwhile()


def cleanup(ec2, clock, timeout=60):
    volumes.delete_claim_volumes(
        ec2,
        cluster_name="platform-dev",
        namespace="monitoring",
        claims=CLAIMS,
        timeout_seconds=timeout,
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )


def test_detached_volumes_are_deleted_and_attached_ones_waited_for():
    ec2 = FakeEc2({"vol-1": "available", "vol-2": "in-use", "vol-3": "error"})
    cleanup(ec2, Clock(meanwhile=ec2.detach))  # the CSI driver detaches vol-2 meanwhile
    assert ec2.deleted == ["vol-1", "vol-3", "vol-2"]
    assert ec2.states == {}
    assert {f["Name"]: f["Values"] for f in ec2.filters} == {
        "tag:kubernetes.io/cluster/platform-dev": ["owned"],
        "tag:kubernetes.io/created-for/pvc/namespace": ["monitoring"],
        "tag:kubernetes.io/created-for/pvc/name": CLAIMS,
    }


def test_nothing_to_do_returns_at_once():
    clock = Clock()
    cleanup(FakeEc2({}), clock)
    assert clock.sleeps == []


def test_a_volume_the_driver_deleted_first_is_not_an_error():
    ec2 = FakeEc2({"vol-1": "available"}, delete_error="InvalidVolume.NotFound")
    cleanup(ec2, Clock())
    assert ec2.deleted == ["vol-1"]


def test_other_ec2_errors_stop_the_cleanup():
    ec2 = FakeEc2({"vol-1": "available"}, delete_error="UnauthorizedOperation")
    with pytest.raises(ClientError):
        cleanup(ec2, Clock())


def test_a_volume_still_attached_at_the_timeout_fails_destroy_naming_it():
    ec2 = FakeEc2({"vol-9": "in-use"})
    with pytest.raises(RuntimeError, match=r"vol-9 \(in-use\).*monitoring|monitoring.*vol-9"):
        cleanup(ec2, Clock(), timeout=30)
    assert ec2.deleted == []


def test_the_cleanup_is_never_replaced_and_refuses_another_account(monkeypatch):
    provider = volumes._VolumeCleanupProvider()
    olds = {"claims": CLAIMS, "namespace": "monitoring", "__provider": "a"}
    diff = provider.diff("id", olds, {**olds, "claims": [*CLAIMS, "more-0"], "__provider": "b"})
    assert (diff.changes, diff.replaces) == (True, [])
    assert provider.diff("id", olds, {**olds, "__provider": "b"}).changes is False

    class Session:
        def __init__(self, region_name):
            self.region_name = region_name

        def client(self, service):
            assert service == "sts"
            return type("Sts", (), {"get_caller_identity": lambda self: {"Account": "999"}})()

    monkeypatch.setattr(volumes.boto3, "Session", Session)
    props = {"region": "us-east-1", "accountId": "123456789012"}
    with pytest.raises(RuntimeError, match=r"999.*123456789012"):
        provider.delete("id", props)


def test_claims_are_named_as_the_operator_statefulsets_mount_them():
    template = {"spec": {"storageClassName": "gp3", "resources": {"requests": {"storage": "1Gi"}}}}
    values = {
        "prometheus": {
            "prometheusSpec": {"replicas": 2, "storageSpec": {"volumeClaimTemplate": template}}
        },
        "alertmanager": {
            "alertmanagerSpec": {
                "storage": {"volumeClaimTemplate": {**template, "metadata": {"name": "am"}}}
            }
        },
    }
    claims = observability.volume_claims(values)
    prometheus = "prometheus-kube-prometheus-stack-prometheus"
    assert [c.name for c in claims] == [
        f"{prometheus}-db-{prometheus}-0",
        f"{prometheus}-db-{prometheus}-1",
        "am-alertmanager-kube-prometheus-stack-alertmanager-0",
    ]
    assert all(c.spec == template["spec"] for c in claims)
    assert observability.volume_claims({"alertmanager": {"enabled": True}}) == []
