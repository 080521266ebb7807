"""Pulumi components for an application platform on AWS EKS.

One component per concern: `Network`, `Cluster`, `Karpenter`, `Edge`, `Observability`,
`GitOps`, `Autoscaling`, and `App` for each service on the platform; `build_platform` wires the
platform ones together. `PlatformContract` is what an app gets from the platform, in the same
stack or from a platform stack's outputs (`PlatformContract.from_stack_reference`). Nothing
here exports stack outputs: a program exports what it chooses (`Platform.outputs()`,
`PlatformContract.outputs()`).

Everything named in `__all__` is the public API; other names may change between releases.
"""

from app_platform.apps import App, AppArgs
from app_platform.apps.spec import AlertThresholds, AppSpec, Cpu, HealthPaths, Memory, Metrics
from app_platform.autoscaling import Autoscaling, AutoscalingArgs
from app_platform.cluster import (
    Cluster,
    ClusterArgs,
    ClusterOptions,
    NodeGroupOptions,
    SpotGroupOptions,
)
from app_platform.contract import OUTPUTS as CONTRACT_OUTPUTS
from app_platform.contract import ContractOutput, PlatformContract
from app_platform.database import Database, DatabaseArgs, DatabaseSpec
from app_platform.edge import Edge, EdgeArgs, EdgeOptions
from app_platform.gitops import GitOps, GitOpsArgs, GitOpsOptions
from app_platform.image import AppImage, AppImageArgs
from app_platform.karpenter import Karpenter, KarpenterArgs, KarpenterOptions
from app_platform.network import Network, NetworkArgs, NetworkOptions
from app_platform.observability import (
    AlertReceivers,
    Observability,
    ObservabilityArgs,
    ObservabilityOptions,
    alerting,  # noqa: F401 (`from app_platform import alerting` keeps working)
)
from app_platform.options import Options, OptionsError
from app_platform.stack import Platform, build_platform

__version__ = "0.3.0"

__all__ = [
    "CONTRACT_OUTPUTS",
    "AlertReceivers",
    "AlertThresholds",
    "App",
    "AppArgs",
    "AppImage",
    "AppImageArgs",
    "AppSpec",
    "Autoscaling",
    "AutoscalingArgs",
    "Cluster",
    "ClusterArgs",
    "ClusterOptions",
    "ContractOutput",
    "Cpu",
    "Database",
    "DatabaseArgs",
    "DatabaseSpec",
    "Edge",
    "EdgeArgs",
    "EdgeOptions",
    "GitOps",
    "GitOpsArgs",
    "GitOpsOptions",
    "HealthPaths",
    "Karpenter",
    "KarpenterArgs",
    "KarpenterOptions",
    "Memory",
    "Metrics",
    "Network",
    "NetworkArgs",
    "NetworkOptions",
    "NodeGroupOptions",
    "Observability",
    "ObservabilityArgs",
    "ObservabilityOptions",
    "Options",
    "OptionsError",
    "Platform",
    "PlatformContract",
    "SpotGroupOptions",
    "build_platform",
]
