"""The platform's policies as plain functions, so tests can drive them without the Pulumi engine.

Each rule takes `(resource_type, props, config)`: the resource's type token, its inputs as the
engine hands them to policies (camelCase names; a Kubernetes object's body: `metadata`, `spec`),
and the policy's config from the pack's config file. It returns one message per violation, and
an empty list when the resource complies or is not its concern. `__main__.py` wraps each rule in
a `ResourceValidationPolicy`.

Props are read through `Mapping`/`Sequence` only: during a preview the policy SDK hands them over
wrapped in proxies that raise on values not known yet (the engine then reports that the policy
could not run, and it runs again on `up`, when the values are known).

Multi-language components (`eks:index:Cluster`, `eks:index:ManagedNodeGroup`) reach policies
from a real engine without their inputs (the component's own registration carries none); their
children (`aws:eks/cluster:Cluster`, `aws:eks/nodeGroup:NodeGroup`) carry the settings, so rules
judge the children strictly and the components only on the inputs they do have, which is what
the offline recording shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Config = Mapping[str, Any]
Rule = Callable[[str, Mapping[str, Any], Config], list[str]]


@dataclass(frozen=True)
class StackResource:
    """One resource of the stack, as a stack rule sees it."""

    resource_type: str
    props: Mapping[str, Any]


# A stack rule judges resources together: `(resources, config)` -> one message per violation.
StackRule = Callable[[Sequence[StackResource], Config], list[str]]

MIN_SPOT_INSTANCE_TYPES = 3
DEFAULT_EDGE_NAMESPACE = "envoy-gateway-system"
ANYWHERE = ("0.0.0.0/0", "::/0")
# Tags that are moved to new images: a pod could run different code after any restart.
FLOATING_TAGS = frozenset(
    {"latest", "stable", "main", "master", "edge", "nightly", "dev", "develop", "head", "canary"}
)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
WORKLOADS = {
    DEPLOYMENT: ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
ROUTES = {
    f"kubernetes:gateway.networking.k8s.io/{version}:{kind}"
    for version in ("v1", "v1beta1", "v1alpha2")
    for kind in ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute")
}
INGRESSES = {"kubernetes:networking.k8s.io/v1:Ingress"}
# kube-prometheus-stack names its Services <fullname>-prometheus / -alertmanager and the
# operator adds prometheus-operated / alertmanager-operated; Grafana (<fullname>-grafana) and
# node-exporter (<release>-prometheus-node-exporter) are not matched.
MONITORING_SERVICE = re.compile(r"(^|-)(prometheus|alertmanager)(-operated)?$")
MONITORING_HOST_LABEL = re.compile(r"(^|-)(prometheus|alertmanager)($|-)")
MONITORING_PATH_SEGMENT = re.compile(r"(^|/)(prometheus|alertmanager)(/|$)")
# The chart values that publish Prometheus, Alertmanager (or Thanos Ruler, which serves the same
# alerting data) through an Ingress or a Gateway API route.
MONITORING_CHART_COMPONENTS = ("prometheus", "alertmanager", "thanosRuler")


def _get(value: Any, *path: str | int) -> Any:
    """`value[path[0]][path[1]]...`, or None when any step is missing or of another shape."""
    for step in path:
        if isinstance(step, int):
            if not _is_list(value) or step >= len(value):
                return None
        elif not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _items(value: Any) -> list[Any]:
    return list(value) if _is_list(value) else []


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _name(props: Mapping[str, Any]) -> str:
    return str(_get(props, "metadata", "name") or "?")


# ---------------------------------------------------------------------------------------------
# Spot capacity
# ---------------------------------------------------------------------------------------------


def spot_instance_diversity(
    resource_type: str, props: Mapping[str, Any], config: Config
) -> list[str]:
    """A spot node group spreads over at least 3 instance types, so one spot pool running dry or
    being reclaimed cannot take every node at once."""
    if resource_type not in ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup"):
        return []
    if str(props.get("capacityType", "")).upper() != "SPOT":
        return []
    minimum = int(config.get("minInstanceTypes", MIN_SPOT_INSTANCE_TYPES))
    types = {str(t) for t in _items(props.get("instanceTypes"))}
    if len(types) >= minimum:
        return []
    return [
        f"spot node group lists {len(types)} instance type(s) {sorted(types)}; list at least "
        f"{minimum} of one size so a spot reclaim of one type cannot take every node"
    ]


# ---------------------------------------------------------------------------------------------
# Load balancers only at the edge
# ---------------------------------------------------------------------------------------------


def _edge(config: Config) -> str:
    return str(config.get("edgeNamespace", DEFAULT_EDGE_NAMESPACE))


def _load_balancer_values(values: Any, path: str = "") -> Iterator[str]:
    """Paths in Helm values that ask for a Service of type LoadBalancer (`*.service.type`)."""
    if isinstance(values, Mapping):
        for key, value in values.items():
            here = f"{path}.{key}" if path else str(key)
            if (
                key == "type"
                and value == "LoadBalancer"
                and re.search(r"service$", path.split(".")[-1], re.IGNORECASE)
            ):
                yield here
            else:
                yield from _load_balancer_values(value, here)
    elif _is_list(values):
        for index, value in enumerate(values):
            yield from _load_balancer_values(value, f"{path}[{index}]")


def load_balancers_only_at_edge(
    resource_type: str, props: Mapping[str, Any], config: Config
) -> list[str]:
    """Only the edge (the Gateway's proxies) gets an internet-facing load balancer; everything
    else is reached through a route on the shared Gateway, which applies its policies."""
    edge = _edge(config)
    if resource_type == SERVICE:
        if _get(props, "spec", "type") != "LoadBalancer":
            return []
        namespace = _get(props, "metadata", "namespace") or "default"
        if namespace == edge:
            return []
        return [
            f"Service {namespace}/{_name(props)} is of type LoadBalancer outside the edge "
            f"namespace {edge}: use ClusterIP and attach an HTTPRoute to the shared Gateway"
        ]
    if resource_type == HELM_RELEASE:
        namespace = props.get("namespace") or "default"
        if namespace == edge:
            return []
        return [
            f"Helm release {props.get('name') or props.get('chart')} in namespace {namespace} "
            f"sets {path} = LoadBalancer outside the edge namespace {edge}: use ClusterIP and "
            f"a route on the shared Gateway"
            for path in _load_balancer_values(props.get("values"))
        ]
    return []


# ---------------------------------------------------------------------------------------------
# Plain HTTP only redirects once TLS is on
# ---------------------------------------------------------------------------------------------

GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
NLB_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-"
# The label Envoy Gateway puts on a Gateway's proxies, naming the Gateway.
OWNING_GATEWAY_LABEL = "gateway.envoyproxy.io/owning-gateway-name"


def _public_tls_services(resources: Sequence[StackResource]) -> Iterator[StackResource]:
    for resource in resources:
        if resource.resource_type != SERVICE or _get(resource.props, "spec", "type") != (
            "LoadBalancer"
        ):
            continue
        annotations = _get(resource.props, "metadata", "annotations") or {}
        public = annotations.get(f"{NLB_ANNOTATION}scheme") == "internet-facing"
        if public and f"{NLB_ANNOTATION}ssl-cert" in annotations:
            yield resource


def _number(value: Any) -> Any:
    """A port as a whole number: the engine hands every number over as a float."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _plain_ports(service: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The Service ports the NLB serves without TLS (with a certificate and no `ssl-ports`,
    the controller makes every port TLS)."""
    annotations = _get(service, "metadata", "annotations") or {}
    listed = annotations.get(f"{NLB_ANNOTATION}ssl-ports")
    if listed is None:
        return []
    tls = {part.strip() for part in str(listed).split(",")}
    return [
        port
        for port in _items(_get(service, "spec", "ports"))
        if str(_number(_get(port, "port"))) not in tls and str(_get(port, "name")) not in tls
    ]


def _routes_on(
    resources: Sequence[StackResource], gateway: Mapping[str, Any], listener: Mapping[str, Any]
) -> Iterator[Mapping[str, Any]]:
    """HTTPRoutes of the stack attached to this listener: those asking for it, of a namespace
    it takes (any, unless it takes its own namespace's only)."""
    name, namespace = _name(gateway), _get(gateway, "metadata", "namespace")
    same_only = (_get(listener, "allowedRoutes", "namespaces", "from") or "Same") == "Same"
    for resource in resources:
        if resource.resource_type != HTTP_ROUTE:
            continue
        route_namespace = _get(resource.props, "metadata", "namespace")
        if same_only and route_namespace != namespace:
            continue
        for ref in _items(_get(resource.props, "spec", "parentRefs")):
            if _get(ref, "name") != name or (_get(ref, "namespace") or route_namespace) != (
                namespace
            ):
                continue
            if _get(ref, "sectionName") not in (None, _get(listener, "name")):
                continue
            if _number(_get(ref, "port")) not in (None, _number(_get(listener, "port"))):
                continue
            yield resource.props
            break


def _only_redirects_to_https(route: Mapping[str, Any]) -> bool:
    rules = _items(_get(route, "spec", "rules"))
    return bool(rules) and all(
        not _items(_get(rule, "backendRefs"))
        and [_get(f, "type") for f in _items(_get(rule, "filters"))] == ["RequestRedirect"]
        and _get(rule, "filters", 0, "requestRedirect", "scheme") == "https"
        for rule in rules
    )


def _plain_listener_problems(
    resources: Sequence[StackResource], gateway: Mapping[str, Any], listener: Mapping[str, Any]
) -> Iterator[str]:
    what = f"Gateway {_name(gateway)} listener {_get(listener, 'name')} (plain port "
    what += f"{_number(_get(listener, 'port'))})"
    origin = _get(listener, "allowedRoutes", "namespaces", "from") or "Same"
    if origin != "Same":
        yield (
            f"{what} takes routes from other namespaces (from: {origin}): any of them, in any "
            "stack, could serve plain HTTP; take routes of its own namespace only (from: Same)"
        )
    for route in _routes_on(resources, gateway, listener):
        if not _only_redirects_to_https(route):
            yield (
                f"route {_get(route, 'metadata', 'namespace')}/{_name(route)} on {what} does "
                "more than redirect to https: attach it to the TLS listener (sectionName)"
            )


def plain_http_only_redirects(resources: Sequence[StackResource], config: Config) -> list[str]:
    """When a public load balancer serves TLS, its plain ports only redirect to https: each
    reaches a Gateway listener that takes routes of its own namespace only, and every route
    there answers with a redirect to https and nothing else."""
    gateways = [r.props for r in resources if r.resource_type == GATEWAY]
    problems: list[str] = []
    for service in _public_tls_services(resources):
        namespace = _get(service.props, "metadata", "namespace") or "default"
        owner = _get(service.props, "spec", "selector", OWNING_GATEWAY_LABEL)
        behind = [
            g
            for g in gateways
            if _get(g, "metadata", "namespace") == namespace and owner in (None, _name(g))
        ]
        for port in _plain_ports(service.props):
            number = _number(_get(port, "port"))
            listeners = [
                (g, listener)
                for g in behind
                for listener in _items(_get(g, "spec", "listeners"))
                if _number(_get(listener, "port")) == number
            ]
            if not listeners:
                problems.append(
                    f"Service {namespace}/{_name(service.props)} serves TLS but its port "
                    f"{number} is plain and reaches no Gateway listener of this stack that "
                    "could redirect it; list it in ssl-ports or drop it"
                )
            for gateway, listener in listeners:
                problems += _plain_listener_problems(resources, gateway, listener)
    return problems


# ---------------------------------------------------------------------------------------------
# Prometheus and Alertmanager never public
# ---------------------------------------------------------------------------------------------


def _monitoring_backend(name: Any) -> bool:
    return isinstance(name, str) and bool(MONITORING_SERVICE.search(name))


def _monitoring_host(host: Any) -> bool:
    return isinstance(host, str) and bool(MONITORING_HOST_LABEL.search(host.split(".")[0]))


def _monitoring_path(path: Any) -> bool:
    return isinstance(path, str) and bool(MONITORING_PATH_SEGMENT.search(path))


def _route_findings(props: Mapping[str, Any]) -> Iterator[str]:
    for host in _items(_get(props, "spec", "hostnames")):
        if _monitoring_host(host):
            yield f"hostname {host}"
    for rule in _items(_get(props, "spec", "rules")):
        for ref in _items(_get(rule, "backendRefs")):
            kind = _get(ref, "kind") or "Service"
            if kind == "Service" and _monitoring_backend(_get(ref, "name")):
                yield f"backend Service {_get(ref, 'name')}"
        for match in _items(_get(rule, "matches")):
            if _monitoring_path(_get(match, "path", "value")):
                yield f"path {_get(match, 'path', 'value')}"


def _ingress_findings(props: Mapping[str, Any]) -> Iterator[str]:
    default = _get(props, "spec", "defaultBackend", "service", "name")
    if _monitoring_backend(default):
        yield f"default backend Service {default}"
    for tls in _items(_get(props, "spec", "tls")):
        for host in _items(_get(tls, "hosts")):
            if _monitoring_host(host):
                yield f"TLS host {host}"
    for rule in _items(_get(props, "spec", "rules")):
        if _monitoring_host(_get(rule, "host")):
            yield f"host {_get(rule, 'host')}"
        for path in _items(_get(rule, "http", "paths")):
            service = _get(path, "backend", "service", "name")
            if _monitoring_backend(service):
                yield f"backend Service {service}"
            if _monitoring_path(_get(path, "path")):
                yield f"path {_get(path, 'path')}"


def _chart_findings(props: Mapping[str, Any]) -> Iterator[str]:
    chart = str(props.get("chart") or "")
    if "kube-prometheus-stack" not in chart:
        return
    values = props.get("values")
    for component in MONITORING_CHART_COMPONENTS:
        if _truthy(_get(values, component, "ingress", "enabled")):
            yield f"values {component}.ingress.enabled"
        routes = _get(values, component, "route")
        if isinstance(routes, Mapping):
            for route_name, route in routes.items():
                if _truthy(_get(route, "enabled")):
                    yield f"values {component}.route.{route_name}.enabled"


def no_public_monitoring(resource_type: str, props: Mapping[str, Any], config: Config) -> list[str]:
    """Prometheus and Alertmanager are never routed from the internet: they have no login, and
    their data and silences are the platform's own. Reach them with `kubectl port-forward`."""
    if resource_type in ROUTES:
        findings, what = list(_route_findings(props)), f"route {_name(props)}"
    elif resource_type in INGRESSES:
        findings, what = list(_ingress_findings(props)), f"Ingress {_name(props)}"
    elif resource_type == HELM_RELEASE:
        findings, what = list(_chart_findings(props)), f"Helm release {props.get('name') or '?'}"
    else:
        return []
    return [
        f"{what} exposes Prometheus or Alertmanager ({finding}); keep them private and use "
        f"kubectl port-forward"
        for finding in findings
    ]


# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------


def _pod_spec(resource_type: str, props: Mapping[str, Any]) -> Any:
    path = WORKLOADS.get(resource_type)
    return _get(props, *path) if path else None


def _containers(pod: Any, *, init: bool = True) -> Iterator[Any]:
    keys = ("containers", "initContainers") if init else ("containers",)
    for key in keys:
        yield from (c for c in _items(_get(pod, key)) if isinstance(c, Mapping))


def deployment_hardened(resource_type: str, props: Mapping[str, Any], config: Config) -> list[str]:
    """Every Deployment's containers have readiness and liveness probes, CPU and memory requests
    and a memory limit, and run as non-root (set on the pod or on every container)."""
    if resource_type != DEPLOYMENT:
        return []
    pod = _pod_spec(resource_type, props)
    if not isinstance(pod, Mapping):
        return [f"Deployment {_name(props)} has no pod template"]
    problems: list[str] = []
    pod_non_root = _get(pod, "securityContext", "runAsNonRoot")
    for container in _containers(pod, init=False):
        name = f"Deployment {_name(props)} container {container.get('name', '?')}"
        for probe in ("readinessProbe", "livenessProbe"):
            if not isinstance(container.get(probe), Mapping):
                problems.append(f"{name} has no {probe}")
        requests = _get(container, "resources", "requests")
        missing = [
            r for r in ("cpu", "memory") if not isinstance(requests, Mapping) or r not in requests
        ]
        if missing:
            problems.append(f"{name} has no resources.requests for {', '.join(missing)}")
        if "memory" not in (_get(container, "resources", "limits") or {}):
            problems.append(f"{name} has no resources.limits.memory")
    for container in _containers(pod):
        non_root = _get(container, "securityContext", "runAsNonRoot")
        if non_root is None:
            non_root = pod_non_root
        if non_root is not True:
            problems.append(
                f"Deployment {_name(props)} container {container.get('name', '?')} may run as "
                f"root: set securityContext.runAsNonRoot: true on the pod or the container"
            )
    if not list(_containers(pod, init=False)):
        problems.append(f"Deployment {_name(props)} has no containers")
    return problems


def floating_tag(image: str) -> str | None:
    """Why `image` is not pinned, or None when it names a digest or an explicit version."""
    if "@" in image:
        return None if re.search(r"@sha256:[0-9a-f]{64}$", image) else "a malformed digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "no tag (which means :latest)"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in FLOATING_TAGS:
        return f"the floating tag :{tag}"
    return None


def images_pinned(resource_type: str, props: Mapping[str, Any], config: Config) -> list[str]:
    """Workload images name a digest or an explicit version, never `:latest`, no tag or another
    moving tag: the same manifest must run the same code on every node and after every restart."""
    pod = _pod_spec(resource_type, props)
    if not isinstance(pod, Mapping):
        return []
    kind = resource_type.rsplit(":", 1)[-1]
    problems = []
    for container in _containers(pod):
        image = container.get("image")
        why = floating_tag(image) if isinstance(image, str) else None
        if why:
            problems.append(
                f"{kind} {_name(props)} container {container.get('name', '?')} image {image} has "
                f"{why}: use a version tag or a digest"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# Cluster endpoint
# ---------------------------------------------------------------------------------------------


def _open_to_anywhere(public: Any, cidrs: Any) -> list[str]:
    if public is False:
        return []
    listed = [str(c) for c in _items(cidrs)]
    # EKS opens a public endpoint without CIDRs to 0.0.0.0/0.
    return [c for c in listed if c in ANYWHERE] or ([] if listed else ["0.0.0.0/0 (the default)"])


def cluster_endpoint_restricted(
    resource_type: str, props: Mapping[str, Any], config: Config
) -> list[str]:
    """The EKS API endpoint is not open to the whole internet, unless the stack's policy config
    waives it (`allowPublicEndpointFromAnywhere: true`) for a throwaway stack."""
    if resource_type == "eks:index:Cluster":
        # Judge only what the component was given (see the module docstring).
        if "publicAccessCidrs" not in props and "endpointPublicAccess" not in props:
            return []
        public = props.get("endpointPublicAccess", True)
        cidrs = props.get("publicAccessCidrs")
    elif resource_type == "aws:eks/cluster:Cluster":
        vpc = props.get("vpcConfig")
        public = _get(vpc, "endpointPublicAccess")
        public = True if public is None else public
        cidrs = _get(vpc, "publicAccessCidrs")
    else:
        return []
    open_to = _open_to_anywhere(public, cidrs)
    if not open_to or _truthy(config.get("allowPublicEndpointFromAnywhere", False)):
        return []
    return [
        f"EKS cluster {props.get('name') or '?'} has its public API endpoint open to "
        f"{', '.join(open_to)}: list your own CIDRs in publicAccessCidrs, or waive this for a "
        f"throwaway stack with allowPublicEndpointFromAnywhere: true in its policy config"
    ]


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


def rds_encrypted_and_private(
    resource_type: str, props: Mapping[str, Any], config: Config
) -> list[str]:
    """RDS storage is encrypted at rest and the database has no public address."""
    name = props.get("identifier") or props.get("clusterIdentifier") or "?"
    problems = []
    if resource_type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
        # A replica inherits encryption from its source; the source is checked itself.
        replica = props.get("replicateSourceDb") or props.get("replicationSourceIdentifier")
        if not replica and not _truthy(props.get("storageEncrypted")):
            problems.append(f"RDS {name} does not set storageEncrypted: true")
    instances = ("aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance")
    if resource_type in instances and _truthy(props.get("publiclyAccessible")):
        problems.append(f"RDS {name} is publiclyAccessible: keep it in private subnets")
    return problems


# ---------------------------------------------------------------------------------------------
# The catalogue the pack is built from
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySpec:
    name: str
    rule: Rule | StackRule
    # JSON schema properties of the policy's config, with defaults.
    config: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return " ".join((self.rule.__doc__ or "").split())

    def defaults(self) -> dict[str, Any]:
        return {key: spec["default"] for key, spec in self.config.items() if "default" in spec}

    # A stack rule (StackRule) sees every resource at once; the others, one at a time.
    stack: bool = False

    def check(
        self, resource_type: str, props: Mapping[str, Any], config: Config | None = None
    ) -> list[str]:
        """The rule with the policy's defaults under the given config, as the pack runs it."""
        return self.rule(resource_type, props, {**self.defaults(), **(config or {})})  # type: ignore[call-arg]

    def check_stack(
        self, resources: Sequence[StackResource], config: Config | None = None
    ) -> list[str]:
        return self.rule(resources, {**self.defaults(), **(config or {})})  # type: ignore[call-arg]


POLICIES: list[PolicySpec] = [
    PolicySpec(
        "spot-instance-diversity",
        spot_instance_diversity,
        {"minInstanceTypes": {"type": "integer", "minimum": 1, "default": MIN_SPOT_INSTANCE_TYPES}},
    ),
    PolicySpec(
        "load-balancers-only-at-edge",
        load_balancers_only_at_edge,
        {"edgeNamespace": {"type": "string", "default": DEFAULT_EDGE_NAMESPACE}},
    ),
    PolicySpec("no-public-prometheus-or-alertmanager", no_public_monitoring),
    PolicySpec("deployment-hardened", deployment_hardened),
    PolicySpec("images-pinned", images_pinned),
    PolicySpec(
        "eks-endpoint-not-open-to-anywhere",
        cluster_endpoint_restricted,
        {"allowPublicEndpointFromAnywhere": {"type": "boolean", "default": False}},
    ),
    PolicySpec("rds-encrypted-and-private", rds_encrypted_and_private),
    PolicySpec("plain-http-only-redirects", plain_http_only_redirects, stack=True),
]
