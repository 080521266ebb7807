"""Karpenter's interruption queue: EC2 and AWS Health events it acts on before AWS does.

Spot interruption warnings (two minutes ahead), rebalance recommendations, instance state
changes and scheduled maintenance reach an SQS queue through EventBridge; the controller reads
it (`settings.interruptionQueue`) and drains the node before the instance goes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

if TYPE_CHECKING:
    from app_platform.karpenter.component import KarpenterArgs

# Karpenter acts on an event within seconds; an older one describes an instance already gone.
MESSAGE_RETENTION_SECONDS = 300
# Rule name suffix -> EventBridge pattern.
INTERRUPTION_EVENTS = {
    "spot-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    },
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
    },
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "capacity-reservation": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}
SENDERS = ["events.amazonaws.com", "sqs.amazonaws.com"]


def queue_policy(queue_arn: str) -> str:
    """EventBridge (and SQS) may send; nothing may use the queue without TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowEventsToSend",
                    "Effect": "Allow",
                    "Principal": {"Service": SENDERS},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "DenyHTTP",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


class Interruption:
    """The Karpenter component's interruption queue and its rules (a part of Karpenter)."""

    def _interruption_queue(
        self, name: str, args: KarpenterArgs
    ) -> tuple[aws.sqs.Queue, list[pulumi.Resource]]:
        """The queue (named after the cluster, encrypted with SQS-managed keys), its policy,
        and one EventBridge rule and target per kind of event."""
        child = pulumi.ResourceOptions(parent=self)
        queue = aws.sqs.Queue(
            f"{name}-karpenter-interruption",
            name=args.cluster_name,
            message_retention_seconds=MESSAGE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        policy = aws.sqs.QueuePolicy(
            f"{name}-karpenter-interruption",
            queue_url=queue.id,
            policy=queue.arn.apply(queue_policy),
            opts=child,
        )
        wiring: list[pulumi.Resource] = [policy]
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-karpenter-{event}",
                name=f"{args.cluster_name}-karpenter-{event}",
                description=f"Karpenter interruption handling of cluster {args.cluster_name}",
                event_pattern=json.dumps(pattern),
                opts=child,
            )
            target = aws.cloudwatch.EventTarget(
                f"{name}-karpenter-{event}",
                rule=rule.name,
                arn=queue.arn,
                opts=child,
            )
            wiring += [rule, target]
        return queue, wiring
