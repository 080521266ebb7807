"""Kept for existing imports: the App component now lives in `app_platform.apps`."""

from app_platform.apps import App, AppArgs, AppSpec, PlatformRefs
from app_platform.apps.workload import PRE_STOP_SLEEP_SECONDS

__all__ = ["PRE_STOP_SLEEP_SECONDS", "App", "AppArgs", "AppSpec", "PlatformRefs"]
