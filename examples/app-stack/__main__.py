"""podinfo on a platform stack: a whole app stack written against the library's public API.

The platform stack's outputs come through a StackReference as a `PlatformContract` (cluster
access, the shared Gateway, namespaces' labels, monitoring, network); `App` renders podinfo
onto it the way the platform renders every app.
"""

import pulumi

from app_platform import App, AppArgs, AppSpec, Cpu, HealthPaths, Memory, PlatformContract

NAME = "podinfo"
PORT = 9898  # podinfo serves its API, /healthz, /readyz and /metrics here
CPU = Cpu(request="50m", limit="200m")
MEMORY = Memory(request="64Mi", limit="128Mi")
HEALTH = HealthPaths(startup="/healthz", readiness="/readyz", liveness="/healthz")

config = pulumi.Config()
platform = PlatformContract.from_stack_reference("platform", config.require("platformStack"))
replicas = config.require_int("replicas")
spec = AppSpec(
    name=NAME,
    image=config.require("image"),
    port=PORT,
    min_replicas=replicas,
    max_replicas=replicas,
    cpu=CPU,
    memory=MEMORY,
    health_paths=HEALTH,
)
# Every resource name starts with <project>-<stack>.
prefix = f"{pulumi.get_project()}-{pulumi.get_stack()}"
app = App(prefix, AppArgs(spec, platform, prefix))

pulumi.export("url", app.url)
