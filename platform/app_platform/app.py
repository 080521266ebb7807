"""Kept for existing imports: the App component now lives in `app_platform.apps`, and what the
platform gives an app is `app_platform.contract.PlatformContract` (`PlatformRefs` here, its old
name)."""

from app_platform.apps import App, AppArgs, AppSpec
from app_platform.apps.workload import PRE_STOP_SLEEP_SECONDS
from app_platform.contract import PlatformContract

PlatformRefs = PlatformContract

__all__ = ["PRE_STOP_SLEEP_SECONDS", "App", "AppArgs", "AppSpec", "PlatformRefs"]
