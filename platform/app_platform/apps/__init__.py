"""Apps on the platform: `AppSpec` (what an app's owner writes, validated), `PlatformContract` (what
the platform gives), and the `App` component that renders one, in parts: workload, routing,
monitoring and database."""

from app_platform.apps.component import App, AppArgs
from app_platform.apps.spec import AlertThresholds, AppSpec, Cpu, HealthPaths, Memory, Metrics
from app_platform.contract import PlatformContract
from app_platform.database import DatabaseSpec

__all__ = [
    "AlertThresholds",
    "App",
    "AppArgs",
    "AppSpec",
    "Cpu",
    "DatabaseSpec",
    "HealthPaths",
    "Memory",
    "Metrics",
    "PlatformContract",
]
