"""The stack: read config, build the platform (or find it, for an app stack), run the apps,
export what users need. Every stack output is exported here."""

import pulumi

from app_platform import App, AppArgs, PlatformContract, build_platform, config

# The GitOps example Argo CD deploys from gitops/apps/hello-world, served at hello.<domain>.
HELLO_WORLD_HOST = "hello"

settings = config.load()
if isinstance(settings, config.AppStackSettings):
    # An app stack: only its apps, on the platform stack it names.
    contract = PlatformContract.from_stack_reference("platform", settings.platform_stack)
else:
    platform = build_platform(settings)
    contract = platform.contract
    domain = settings.edge.domain
    hostnames = sorted(
        [
            *platform.hostnames,
            f"{HELLO_WORLD_HOST}.{domain}",
            *(f"{app.name}.{domain}" for app in settings.apps),
        ]
    )
    for name, value in {**platform.outputs(), **contract.outputs()}.items():
        pulumi.export(name, value)
    pulumi.export("helloUrl", f"{platform.edge.scheme}://{HELLO_WORLD_HOST}.{domain}")
    pulumi.export("hostnames", hostnames)
    # An NLB has DNS names, not fixed addresses: `python -m app_platform_tools.hosts` resolves
    # one when it writes /etc/hosts.
    pulumi.export(
        "hostsLine",
        platform.edge.load_balancer_hostname.apply(
            lambda lb: f"<address of {lb}> {' '.join(hostnames)}"
        ),
    )

apps = [
    App(f"{settings.prefix}-{spec.name}", AppArgs(spec, contract, settings.prefix))
    for spec in settings.apps
]
pulumi.export(
    "appUrls", {app_spec.name: app.url for app_spec, app in zip(settings.apps, apps, strict=True)}
)
