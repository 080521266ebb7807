"""The NodePools: spot over broad instance families, and an on-demand fallback.

Karpenter tries the pool of higher weight first; the on-demand pool is used only when no spot
capacity of any allowed type can be had (or the spot pool is at its limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app_platform.cluster.nodes import NODE_POOL_LABEL, SPOT_POOL
from app_platform.karpenter.node_class import API_VERSION as NODE_CLASS_API_VERSION
from app_platform.karpenter.node_class import KIND as NODE_CLASS_KIND
from app_platform.karpenter.options import KarpenterOptions, PoolOptions

API_VERSION = "karpenter.sh/v1"
KIND = "NodePool"
ON_DEMAND_POOL = "on-demand"
# Read by the cost estimate: what the pool is expected to run on average, in vCPUs.
EXPECTED_VCPU_ANNOTATION = "app-platform.io/expected-vcpu"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
ARCH = "kubernetes.io/arch"
INSTANCE_CATEGORY = "karpenter.k8s.aws/instance-category"
INSTANCE_GENERATION = "karpenter.k8s.aws/instance-generation"
# Compute, general purpose and memory optimised: many types to choose spot capacity from.
INSTANCE_CATEGORIES = ["c", "m", "r"]
# Newer than the 5th generation (c6i, m7g, r8a, ...): Nitro, current prices and ENA express.
INSTANCE_GENERATION_ABOVE = 5
SPOT_WEIGHT = 100
ON_DEMAND_WEIGHT = 10
# One node at a time is disrupted on purpose (consolidation, drift, expiry): with every app
# spread over zones and its PodDisruptionBudget, the replicas on other nodes keep serving while
# one node drains. Spot reclaims are not voluntary and are not held back by it.
DISRUPTION_BUDGETS = [{"nodes": "1"}]
# A node draining longer than this is terminated anyway: a PodDisruptionBudget that cannot be
# met (one replica left) must not hold a destroy or an upgrade for ever. Ten minutes is far
# more than any app's grace period (40 s) and what an ordinary rolling drain needs.
TERMINATION_GRACE_PERIOD = "10m"
# Nodes are replaced after 30 days, so they pick up new AMIs and kernel patches.
EXPIRE_AFTER = "720h"
# EC2 reclaims a spot instance two minutes after its interruption warning; the warning takes
# some of that to reach the controller (EventBridge, SQS) and have the node tainted and drained.
SPOT_WARNING_SECONDS = 120
EVICTION_MARGIN_SECONDS = 30
# Kubernetes' default when a pod sets none.
DEFAULT_GRACE_SECONDS = 30


@dataclass(frozen=True)
class Pool:
    name: str
    capacity_type: str
    weight: int
    limits: PoolOptions


def pools(options: KarpenterOptions) -> list[Pool]:
    return [
        # Nodes keep the spot node group's label: what selected spot nodes still does.
        Pool(SPOT_POOL, "spot", SPOT_WEIGHT, options.spot),
        Pool(ON_DEMAND_POOL, "on-demand", ON_DEMAND_WEIGHT, options.on_demand),
    ]


def requirements(capacity_type: str, architectures: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"key": CAPACITY_TYPE, "operator": "In", "values": [capacity_type]},
        {"key": ARCH, "operator": "In", "values": list(architectures)},
        {"key": INSTANCE_CATEGORY, "operator": "In", "values": INSTANCE_CATEGORIES},
        {"key": INSTANCE_GENERATION, "operator": "Gt", "values": [str(INSTANCE_GENERATION_ABOVE)]},
    ]


def spot_reclaim_problem(pod_spec: dict[str, Any]) -> str | None:
    """Why a pod would be cut off by a spot reclaim, or None: its terminationGracePeriodSeconds
    (which includes the preStop hook) must end before the instance does, and its preStop must
    leave the app time to shut down."""
    grace = pod_spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    budget = SPOT_WARNING_SECONDS - EVICTION_MARGIN_SECONDS
    if grace > budget:
        return (
            f"terminationGracePeriodSeconds {grace} is more than the {budget} s a spot reclaim "
            f"leaves ({SPOT_WARNING_SECONDS} s of warning less {EVICTION_MARGIN_SECONDS} s "
            "to start the eviction)"
        )
    for container in pod_spec.get("containers", []):
        pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
        sleep = (pre_stop.get("sleep") or {}).get("seconds", 0)
        if sleep >= grace:
            return (
                f"container {container.get('name')}: a preStop sleep of {sleep} s leaves no "
                f"time to shut down within terminationGracePeriodSeconds {grace}"
            )
    return None


def node_pool_metadata(pool: Pool) -> dict[str, Any]:
    return {
        "name": pool.name,
        "annotations": {EXPECTED_VCPU_ANNOTATION: str(pool.limits.expected_vcpu)},
    }


def node_pool_spec(pool: Pool, options: KarpenterOptions, node_class: str) -> dict[str, Any]:
    return {
        "weight": pool.weight,
        "limits": {
            "cpu": str(pool.limits.cpu_limit),
            "memory": f"{pool.limits.memory_limit_gib}Gi",
        },
        "template": {
            "metadata": {"labels": {NODE_POOL_LABEL: pool.name}},
            "spec": {
                "nodeClassRef": {
                    "group": NODE_CLASS_API_VERSION.split("/")[0],
                    "kind": NODE_CLASS_KIND,
                    "name": node_class,
                },
                "requirements": requirements(pool.capacity_type, options.architectures),
                "expireAfter": EXPIRE_AFTER,
                "terminationGracePeriod": TERMINATION_GRACE_PERIOD,
            },
        },
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": options.consolidate_after,
            "budgets": DISRUPTION_BUDGETS,
        },
    }
