"""Karpenter: the node provisioner of the workload nodes.

One part a module: options, iam (the node role and the controller's identity), interruption
(the SQS queue and EventBridge rules), node_class (the EC2NodeClass), node_pools (spot and
on-demand fallback); `Karpenter` (component) puts them together.
"""

from app_platform.karpenter.component import Karpenter, KarpenterArgs
from app_platform.karpenter.iam import controller_policies
from app_platform.karpenter.node_pools import EXPECTED_VCPU_ANNOTATION
from app_platform.karpenter.options import KarpenterOptions, KarpenterSettings, PoolOptions

__all__ = [
    "EXPECTED_VCPU_ANNOTATION",
    "Karpenter",
    "KarpenterArgs",
    "KarpenterOptions",
    "KarpenterSettings",
    "PoolOptions",
    "controller_policies",
]
