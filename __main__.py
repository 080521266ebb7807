"""The stack: read config, build the platform (or find it, for an app stack), run the apps,
export what users need."""

import pulumi

from app_platform import config
from app_platform.app import App, AppArgs, PlatformRefs
from app_platform.stack import build_platform

settings = config.load()
if isinstance(settings, config.AppStackSettings):
    # An app stack: only its apps, on the platform stack it names.
    platform = PlatformRefs.from_stack_reference("platform", settings.platform_stack)
else:
    platform = build_platform(settings)

apps = [
    App(f"{settings.prefix}-{spec.name}", AppArgs(spec, platform, settings.prefix))
    for spec in settings.apps
]
pulumi.export(
    "appUrls", {app_spec.name: app.url for app_spec, app in zip(settings.apps, apps, strict=True)}
)
