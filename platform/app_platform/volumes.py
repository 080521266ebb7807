"""EBS-backed volume claims the stack owns, so that `pulumi destroy` leaves no volume behind.

A StatefulSet makes the claims of its volume templates itself, and Helm does not delete them; a
volume then outlives the stack, or is deleted in the background while destroy removes the CSI
driver that would delete it. Instead, for every claim such a StatefulSet will mount:

1. The stack creates the claim: a PersistentVolumeClaim of the name the StatefulSet looks for
   (`<template>-<statefulset>-<ordinal>`; the StatefulSet controller uses a claim of that name
   when it exists). The release that makes the StatefulSet depends on it, so on destroy the
   release goes first, then Pulumi deletes the claim and waits until it is gone, which the
   `kubernetes.io/pvc-protection` finalizer holds until no pod mounts it.
2. A claim gone, its volume is released and the CSI driver detaches and deletes it (reclaim
   policy Delete), in the background: nothing Pulumi waits for. `VolumeCleanup` closes that gap.
   Every claim depends on it and it depends on the driver, so it is deleted after the claims and
   before the driver; its delete returns only once the EBS volumes of those claims are gone. It
   deletes those already detached itself (the driver may be slower) and waits for the others,
   which the driver, still running, detaches. If any is left after `VOLUME_DELETE_TIMEOUT`, it
   fails naming them: destroy stops with the driver, the nodes and egress still up, and can be
   run again, rather than leaking the volume.

The volumes are found by the tags the driver puts on every volume it creates (the cluster tag,
and the claim's namespace and name): the Cluster configures the driver to set them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from botocore.exceptions import ClientError
from pulumi import dynamic

# How long destroy waits for a claim to go: the pod mounting it may take its whole termination
# grace period to stop (Prometheus: 600 s, prometheus-operator pkg/prometheus/common.go).
CLAIM_DELETE_TIMEOUT = "20m"
# How long destroy then waits for the claims' volumes to be detached and deleted, and how often
# it looks. Detaching follows the pod's end within a minute or two.
VOLUME_DELETE_TIMEOUT_SECONDS = 900
VOLUME_POLL_SECONDS = 10
# Volumes in these states can be deleted at once; "in-use" ones wait for the driver to detach
# them, "creating" and "deleting" ones for EC2.
DELETABLE_STATES = ("available", "error")
# Tags the EBS CSI driver puts on the volumes it creates (pkg/driver/constants.go of
# kubernetes-sigs/aws-ebs-csi-driver): the first with `--k8s-tag-cluster-id`, the others with the
# provisioner's `--extra-create-metadata`.
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
CLAIM_NAMESPACE_TAG = "kubernetes.io/created-for/pvc/namespace"
CLAIM_NAME_TAG = "kubernetes.io/created-for/pvc/name"
# EC2 error codes that mean "try again" or "already done" while a volume is deleted.
_GONE = "InvalidVolume.NotFound"
_STILL_ATTACHED = "VolumeInUse"


@dataclass(frozen=True)
class BlockStorage:
    """What the Cluster gives a component that keeps data on EBS volumes."""

    storage_class_name: str
    cluster_name: str
    region: str
    # The CSI driver and the StorageClass: claims are created after and deleted before them.
    ready: Sequence[pulumi.Resource]


@dataclass(frozen=True)
class Claim:
    """A claim a StatefulSet will mount: `key` names its Pulumi resource, `name` the object."""

    key: str
    name: str
    spec: dict[str, Any]


def owned_claims(
    name: str,
    storage: BlockStorage,
    namespace: str,
    claims: Sequence[Claim],
    *,
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> list[k8s.core.v1.PersistentVolumeClaim]:
    """The claims, as objects of the stack, and the `VolumeCleanup` that deletes their volumes.

    A release mounting them depends on the returned claims."""
    if not claims:
        return []
    cleanup = VolumeCleanup(
        f"{name}-volume-cleanup",
        cluster_name=storage.cluster_name,
        region=storage.region,
        namespace=namespace,
        claims=[claim.name for claim in claims],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(storage.ready)),
    )
    return [
        k8s.core.v1.PersistentVolumeClaim(
            f"{name}-{claim.key}",
            metadata={"name": claim.name, "namespace": namespace},
            spec=claim.spec,
            opts=pulumi.ResourceOptions(
                parent=parent,
                provider=provider,
                depends_on=[cleanup, *storage.ready, *depends_on],
                custom_timeouts=pulumi.CustomTimeouts(delete=CLAIM_DELETE_TIMEOUT),
            ),
        )
        for claim in claims
    ]


class VolumeCleanup(dynamic.Resource, module="volumes", name="VolumeCleanup"):
    """Nothing while the stack lives; on delete, the EBS volumes of `claims` deleted (see the
    module docstring for why and when)."""

    def __init__(
        self,
        resource_name: str,
        *,
        cluster_name: str,
        region: str,
        namespace: str,
        claims: list[str],
        opts: pulumi.ResourceOptions,
    ):
        # The account the stack deploys to: delete refuses to look in another one.
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=opts.parent))
        super().__init__(
            _VolumeCleanupProvider(),
            resource_name,
            {
                "clusterName": cluster_name,
                "region": region,
                "accountId": account_id.account_id,
                "namespace": namespace,
                "claims": claims,
                "timeoutSeconds": VOLUME_DELETE_TIMEOUT_SECONDS,
            },
            opts,
        )


class _VolumeCleanupProvider(dynamic.ResourceProvider):
    # Nothing secret is captured; the plan and previews may show it.
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(f"{props['clusterName']}/{props['namespace']}", props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        # Never replaced: a replacement would delete the volumes of a running stack.
        changed = any(olds.get(key) != news.get(key) for key in news if key != "__provider")
        return dynamic.DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # The credentials of whoever runs `pulumi destroy` (the default AWS chain).
        session = boto3.Session(region_name=props["region"])
        account = session.client("sts").get_caller_identity()["Account"]
        if account != props["accountId"]:
            raise RuntimeError(
                f"the AWS credentials in use are for account {account}, the stack is in "
                f"{props['accountId']}: set AWS_PROFILE (or the credentials) to that account"
            )
        delete_claim_volumes(
            session.client("ec2"),
            cluster_name=props["clusterName"],
            namespace=props["namespace"],
            claims=props["claims"],
            timeout_seconds=props["timeoutSeconds"],
        )


def claim_volume_filters(cluster_name: str, namespace: str, claims: list[str]) -> list[dict]:
    """EC2 DescribeVolumes filters matching the volumes the driver made for these claims."""
    return [
        {"Name": f"tag:{CLUSTER_TAG_PREFIX}{cluster_name}", "Values": ["owned"]},
        {"Name": f"tag:{CLAIM_NAMESPACE_TAG}", "Values": [namespace]},
        {"Name": f"tag:{CLAIM_NAME_TAG}", "Values": list(claims)},
    ]


def delete_claim_volumes(
    ec2: Any,
    *,
    cluster_name: str,
    namespace: str,
    claims: list[str],
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Delete every detached volume of the claims, wait for the others; fail after the timeout.

    `ec2` is a boto3 EC2 client (or anything with its describe_volumes/delete_volume)."""
    deadline = clock() + timeout_seconds
    filters = claim_volume_filters(cluster_name, namespace, claims)
    while True:
        volumes = [
            volume
            for page in ec2.get_paginator("describe_volumes").paginate(Filters=filters)
            for volume in page["Volumes"]
            if volume["State"] != "deleted"
        ]
        if not volumes:
            return
        for volume in volumes:
            if volume["State"] in DELETABLE_STATES:
                _delete_volume(ec2, volume["VolumeId"])
        if clock() >= deadline:
            left = ", ".join(f"{v['VolumeId']} ({v['State']})" for v in volumes)
            raise RuntimeError(
                f"EBS volumes of claims {claims} in namespace {namespace} still exist after "
                f"{timeout_seconds:.0f} s: {left}. Destroy stopped before the EBS CSI driver; "
                "find out what still uses them and run it again."
            )
        sleep(VOLUME_POLL_SECONDS)


def _delete_volume(ec2: Any, volume_id: str) -> None:
    try:
        ec2.delete_volume(VolumeId=volume_id)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in (_GONE, _STILL_ATTACHED):
            raise
