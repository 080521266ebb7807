"""Run a Pulumi program offline, under Pulumi's mocks, and record what it registers.

No cloud account, no cluster and no Pulumi CLI are needed: the program's `__main__.py` runs in
this process against a mock engine that answers every resource and data-source call with
plausible values, and a recorder keeps each registered resource (type, name, parent, inputs,
dependencies) and the stack outputs. The tests assert on a `Recording`; `app_platform_tools.plan`
prints one.

Stack config is read the way the CLI reads it: `Pulumi.yaml` defaults, overridden by
`Pulumi.<stack>.yaml`. Encrypted (`secure:`) values cannot be decrypted without the CLI, so they
are replaced by a placeholder and treated as secrets.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import json
import runpy
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from app_platform import preflight
from app_platform.contract import OUTPUTS as CONTRACT_OUTPUTS
from app_platform_tools import secrets

ACCOUNT_ID = "123456789012"
SECRET_PLACEHOLDER = "offline-placeholder-secret"  # noqa: S105 (a stand-in, not a secret)
STACK_TYPE = "pulumi:pulumi:Stack"
# Zones the mock answers for a region; any other region gets a, b and c.
REGION_ZONES = {
    "us-east-1": ["a", "b", "c", "d", "e", "f"],
    "us-west-1": ["a", "c"],
    "eu-central-1": ["a", "b", "c"],
}
# The Route 53 hosted zones the mocked account has, by id, and which of them are private. A
# lookup by name finds the zone of that name here, or else a public zone of that name; a lookup
# by an id not here fails, as Route 53 does.
HOSTED_ZONES: dict[str, str] = {
    "Z0OFFLINEEXAMPLE": "example.com",
    "Z0OFFLINEPRIVATE": "internal.example.net",
}
PRIVATE_HOSTED_ZONES = frozenset({"Z0OFFLINEPRIVATE"})
# The NLB alias zone the mocked provider gives for any region (the real one is a table).
NLB_HOSTED_ZONE_ID = "Z26RNL4JYFTOTI"
# Where an offline run's Argo CD reads its apps when the checkout has no usable origin (a clone
# from a local path): `.invalid` never resolves, so nothing could ever clone it.
OFFLINE_GIT_ORIGIN = "https://git.offline.invalid/app-platform/app-platform.git"


def offline_stand_ins() -> preflight.StandIns:
    """What an offline run stands in for: the Docker daemon that builds app images (the mocks
    give each build a fake digest) and, when the checkout has no usable origin, the git
    repository Argo CD reads. Everything else the program checks is asked for real."""
    return preflight.StandIns(docker=True, git_origin=OFFLINE_GIT_ORIGIN)


# ---------------------------------------------------------------------------------------------
# Stack config, as the CLI would hand it to the program
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who the mocked AWS says runs the program (getCallerIdentity) and, for an assumed-role
    session, the role behind it with its path (getSessionContext), by session ARN."""

    arn: str = f"arn:aws:iam::{ACCOUNT_ID}:user/offline"
    session_issuers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class StackConfig:
    project: str
    values: dict[str, str]
    secret_keys: list[str]


def _config_string(value: Any) -> str:
    """The CLI hands the program every config value as a string, objects and lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def load_stack_config(
    project_dir: Path, stack: str, overrides: Mapping[str, Any] | None = None
) -> StackConfig:
    """Pulumi.yaml defaults, then Pulumi.<stack>.yaml, then `overrides` (full `ns:key` names)."""
    project_file = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    project = project_file["name"]

    def full_key(key: str) -> str:
        return key if ":" in key else f"{project}:{key}"

    values: dict[str, str] = {}
    for key, spec in (project_file.get("config") or {}).items():
        if isinstance(spec, dict) and "default" in spec:
            values[full_key(key)] = _config_string(spec["default"])
        elif isinstance(spec, dict) and "value" in spec:
            values[full_key(key)] = _config_string(spec["value"])

    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise FileNotFoundError(f"no stack file {stack_file.name} in {project_dir}")
    secret_keys: list[str] = []
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full_key(key)] = SECRET_PLACEHOLDER
            secret_keys.append(full_key(key))
        else:
            values[full_key(key)] = _config_string(value)
    for key, value in (overrides or {}).items():
        if value is None:
            values.pop(full_key(key), None)
        else:
            values[full_key(key)] = _config_string(value)
    return StackConfig(project, values, secret_keys)


# ---------------------------------------------------------------------------------------------
# The recording
# ---------------------------------------------------------------------------------------------


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: list[str]
    outputs: dict[str, Any] = field(default_factory=dict)
    # The URN of the provider the resource is managed by ("" for a default provider) and of the
    # resource it is deleted with: Pulumi orders deletes by both, as by dependencies and parents.
    provider: str = ""
    deleted_with: str = ""


@dataclass
class Output:
    value: Any
    secret: bool
    known: bool


@dataclass
class Recording:
    project: str
    stack: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Output] = field(default_factory=dict)

    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Resource:
        """The single resource of this type (and logical name, if given); fails otherwise."""
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_)]
            raise LookupError(f"expected one {type_} named {name!r}, found {len(found)}: {names}")
        return found[0]

    def children(self, parent: Resource) -> list[Resource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, ancestor: Resource) -> list[Resource]:
        found: list[Resource] = []
        for child in self.children(ancestor):
            found += [child, *self.descendants(child)]
        return found

    def depends_on(self, resource: Resource, other: Resource) -> bool:
        """Whether `resource` waits for `other`: a direct or transitive dependency, where waiting
        for a component means waiting for all of its children."""
        index = self.by_urn()
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn in seen or urn not in index:
                continue
            seen.add(urn)
            if urn == other.urn:
                return True
            todo += index[urn].dependencies
            todo += [child.urn for child in self.children(index[urn])]
        return False

    def count_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# The mock engine
# ---------------------------------------------------------------------------------------------


def _fake_id(prefix: str, name: str) -> str:
    return f"{prefix}-{hashlib.sha256(name.encode()).hexdigest()[:17]}"


def _kubeconfig(cluster_name: str) -> dict[str, Any]:
    server = f"https://{_fake_id('eks', cluster_name)}.gr7.us-east-1.eks.amazonaws.com"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": "aws"}}],
        "current-context": cluster_name,
        "users": [{"name": "aws", "user": {"exec": {"command": "aws"}}}],
    }


# Gives the outputs a resource type adds to its inputs: (mocks, resource name, inputs) -> outputs.
OutputHandler = Callable[["Mocks", str, dict], dict]


class Mocks(pulumi_mocks.Mocks):
    """Answers resource registrations and data-source calls with deterministic fake values.

    `new_resource` echoes the inputs and adds the outputs the programs read (ids, ARNs, names,
    the cluster's kubeconfig, a load balancer's hostname). Add a handler to `OUTPUTS` or `CALLS`
    when a component starts reading an output or data source this does not know yet.

    With `unknown_outputs` (the default in preview) those added outputs are unknown, as in the
    preview of a first deployment, where nothing exists yet: no kubeconfig, no role ARN, no load
    balancer hostname. Programs must preview all the same.
    """

    def __init__(
        self,
        region: str,
        unknown_outputs: bool = False,
        stack_references: Mapping[str, Mapping[str, Any]] | None = None,
        caller: Caller | None = None,
        outputs: Mapping[str, OutputHandler] | None = None,
    ):
        self.region = region
        # What each resource type adds to its inputs: `OUTPUTS`, plus or instead `outputs`.
        self.outputs = {**OUTPUTS, **(outputs or {})}
        self.unknown_outputs = unknown_outputs
        # Outputs of the stacks a StackReference may name, by fully qualified stack name; any
        # other name gets the outputs of a platform stack (`platform_stack_outputs`).
        self.stack_references = dict(stack_references or {})
        self.caller = caller or Caller()

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        handler = self.outputs.get(args.typ)
        extra = handler(self, args.name, args.inputs) if handler else {}
        if self.unknown_outputs:
            extra = {key: rpc.UNKNOWN for key in extra if key not in args.inputs}
        state = {**args.inputs, **extra}
        resource_id = state.pop("id", None) or _fake_id(
            args.typ.rsplit(":", 1)[-1].lower(), args.name
        )
        # An empty id is how the engine says "not created yet" in preview.
        return ("" if self.unknown_outputs else resource_id), state

    def call(self, args: pulumi_mocks.MockCallArgs) -> Any:
        handler = CALLS.get(args.token)
        return handler(self, args.args) if handler else {}


def _zones(mocks: Mocks, _args: dict) -> dict:
    letters = REGION_ZONES.get(mocks.region, ["a", "b", "c"])
    names = [f"{mocks.region}{letter}" for letter in letters]
    return {"names": names, "zoneIds": [f"use1-az{i + 1}" for i in range(len(names))]}


def _session_context(mocks: Mocks, args: dict) -> dict:
    arn = args["arn"]
    role = arn.split(":assumed-role/", 1)[-1].split("/", 1)[0]
    issuer = mocks.caller.session_issuers.get(arn, f"arn:aws:iam::{ACCOUNT_ID}:role/{role}")
    return {
        "arn": arn,
        "issuerArn": issuer,
        "issuerId": "AROAOFFLINE",
        "issuerName": issuer.rsplit("/", 1)[-1],
        "sessionName": arn.rsplit("/", 1)[-1],
    }


def _ecr_token(mocks: Mocks, _args: dict) -> dict:
    password = "offline-ecr-token"  # noqa: S105 (a stand-in, not a secret)
    return {
        "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
        "userName": "AWS",
        "password": password,
        "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{mocks.region}.amazonaws.com",
        "expiresAt": "2030-01-01T00:00:00Z",
    }


def _policy_document(_mocks: Mocks, args: dict) -> dict:
    return {"json": json.dumps({"Version": "2012-10-17", "Statement": args.get("statements", [])})}


def _hosted_zone(_mocks: Mocks, args: dict) -> dict | tuple[dict, list[tuple[str, str]]]:
    zone_id = args.get("zoneId")
    if zone_id:
        if zone_id not in HOSTED_ZONES:
            # How a provider says a data source found nothing: a failure the caller sees.
            return {}, [("zoneId", f"no matching Route 53 Hosted Zone found ({zone_id})")]
        name = HOSTED_ZONES[zone_id]
    else:
        name = args.get("name", "").rstrip(".")
        by_name = [z for z, n in HOSTED_ZONES.items() if n == name]
        zone_id = by_name[0] if by_name else _fake_id("Z", name).replace("-", "").upper()[:14]
    return {
        "zoneId": zone_id,
        "id": zone_id,
        "name": name,
        "privateZone": zone_id in PRIVATE_HOSTED_ZONES,
        "nameServers": [f"ns-{i}.awsdns-offline.net" for i in range(4)],
    }


CALLS: dict[str, Callable[[Mocks, dict], Any]] = {
    "aws:route53/getZone:getZone": _hosted_zone,
    "aws:lb/getHostedZoneId:getHostedZoneId": lambda m, a: {"id": NLB_HOSTED_ZONE_ID},
    "aws:index/getAvailabilityZones:getAvailabilityZones": _zones,
    "aws:index/getCallerIdentity:getCallerIdentity": lambda m, a: {
        "accountId": ACCOUNT_ID,
        "arn": m.caller.arn,
        "userId": "AIDAOFFLINE",
    },
    "aws:iam/getSessionContext:getSessionContext": _session_context,
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": _ecr_token,
    "aws:index/getRegion:getRegion": lambda m, a: {"name": m.region, "region": m.region},
    "aws:index/getPartition:getPartition": lambda m, a: {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
    },
    "aws:iam/getPolicyDocument:getPolicyDocument": _policy_document,
    "aws:eks/getAddonVersion:getAddonVersion": lambda m, a: {
        **a,
        "version": f"v1.0.0-eksbuild.1+{a['addonName']}-k8s{a['kubernetesVersion']}",
    },
}


def _eks_cluster(mocks: Mocks, name: str, inputs: dict) -> dict:
    cluster_name = inputs.get("name") or name
    kubeconfig = _kubeconfig(cluster_name)
    issuer = (
        f"oidc.eks.{mocks.region}.amazonaws.com/id/{_fake_id('oidc', cluster_name)[5:].upper()}"
    )
    return {
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        "oidcIssuer": issuer,
        "oidcProviderArn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{issuer}",
        "oidcProviderUrl": f"https://{issuer}",
        "clusterSecurityGroupId": _fake_id("sg", f"{cluster_name}-cluster"),
        "nodeSecurityGroupId": _fake_id("sg", f"{cluster_name}-cluster"),
        # The aws.eks.Cluster the component creates, as the reference the SDK hands over.
        "eksCluster": ChildResource(
            "aws:eks/cluster:Cluster",
            f"{name}-eksCluster",
            cluster_name,
            {"name": cluster_name, "arn": mocks.arn("eks", f"cluster/{cluster_name}")},
        ),
    }


def _service(mocks: Mocks, inputs: dict) -> dict:
    """A LoadBalancer Service gets the DNS name the AWS Load Balancer Controller would give it."""
    if (inputs.get("spec") or {}).get("type") != "LoadBalancer":
        return {}
    metadata = inputs.get("metadata") or {}
    name = f"{metadata.get('namespace', 'default')}/{metadata.get('name', '')}"
    suffix = hashlib.sha256(name.encode()).hexdigest()
    hostname = f"k8s-{suffix[:8]}-{suffix[8:18]}-{suffix[18:28]}.elb.{mocks.region}.amazonaws.com"
    return {"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}}


def _helm_release(inputs: dict) -> dict:
    return {
        "status": {
            "name": inputs.get("name"),
            "namespace": inputs.get("namespace"),
            "status": "deployed",
            "revision": 1,
            "chart": inputs.get("chart"),
            "version": inputs.get("version"),
        }
    }


def _random_password(name: str, inputs: dict) -> dict:
    # Deterministic stand-ins; a bcrypt hash has this shape ($2a$, cost, 53 characters).
    digest = hashlib.sha256(name.encode()).hexdigest()
    length = int(inputs.get("length") or 16)
    salted = hashlib.sha256(f"bcrypt:{name}".encode()).hexdigest()
    return {"result": (digest * 4)[:length], "bcryptHash": f"$2a$10${(salted * 2)[:53]}"}


def _ecr_repository(mocks: Mocks, name: str, inputs: dict) -> dict:
    repository = inputs.get("name") or name
    return {
        "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{mocks.region}.amazonaws.com/{repository}",
        "registryId": ACCOUNT_ID,
        "arn": mocks.arn("ecr", f"repository/{repository}"),
    }


def _docker_image(_mocks: Mocks, name: str, inputs: dict) -> dict:
    """A build that pushed: a digest that changes with the tags (which name the source)."""
    tags = inputs.get("tags") or []
    digest = "sha256:" + hashlib.sha256(json.dumps([name, tags]).encode()).hexdigest()
    return {
        "digest": digest,
        "ref": f"{tags[0]}@{digest}" if tags else "",
        "contextHash": hashlib.sha256(json.dumps(inputs.get("context")).encode()).hexdigest(),
    }


def _rds_instance(mocks: Mocks, name: str, inputs: dict) -> dict:
    identifier = inputs.get("identifier") or name
    address = f"{identifier}.{_fake_id('db', identifier)[3:15]}.{mocks.region}.rds.amazonaws.com"
    port = int(inputs.get("port") or 5432)
    return {
        "address": address,
        "endpoint": f"{address}:{port}",
        "port": port,
        "arn": mocks.arn("rds", f"db:{identifier}"),
    }


def _certificate(mocks: Mocks, name: str, inputs: dict) -> dict:
    """A certificate with the one DNS validation record ACM gives per name."""
    names = [inputs.get("domainName", ""), *(inputs.get("subjectAlternativeNames") or [])]
    options = [
        {
            "domainName": domain,
            "resourceRecordName": f"_{_fake_id('x', domain)[2:18]}.{domain.removeprefix('*.')}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{_fake_id('v', domain)[2:18]}.acm-validations.aws.",
        }
        for domain in names
    ]
    return {
        "arn": mocks.arn("acm", f"certificate/{_fake_id('c', name)[2:]}"),
        "domainValidationOptions": options,
        "status": "PENDING_VALIDATION",
    }


def _platform_fakes(prefix: str) -> dict[str, Any]:
    """A plausible value for each output of the platform contract, by output name."""
    return {
        "kubeconfig": json.dumps(_kubeconfig(prefix)),
        "gatewayName": "platform",
        "gatewayNamespace": "envoy-gateway-system",
        "proxyNamespace": "envoy-gateway-system",
        "monitoringNamespace": "monitoring",
        "domain": "app-platform.test",
        "urlScheme": "http",
        "routeNamespaceLabels": {"app-platform.io/gateway-routes": "allowed"},
        "vpcId": _fake_id("vpc", f"{prefix}-vpc"),
        "privateSubnetIds": [_fake_id("subnet", f"{prefix}-private-{i}") for i in range(3)],
        "nodeSecurityGroupId": _fake_id("sg", f"{prefix}-cluster"),
    }


# The contract outputs a StackReference reports as secrets.
SECRET_OUTPUTS = tuple(output.name for output in CONTRACT_OUTPUTS if output.secret)


def platform_stack_outputs(stack_name: str) -> dict[str, Any]:
    """Plausible outputs of the platform stack `stack_name` (`org/project/stack`): one value
    for each output of the platform contract, no more and no fewer."""
    fakes = _platform_fakes(f"platform-{stack_name.rsplit('/', 1)[-1]}")
    unknown = sorted(set(fakes) - {output.name for output in CONTRACT_OUTPUTS})
    missing = [output.name for output in CONTRACT_OUTPUTS if output.name not in fakes]
    if unknown or missing:
        raise LookupError(
            f"the fake platform stack is out of step with the platform contract: "
            f"no fake for {missing}, fakes for outputs it does not have {unknown}"
        )
    return {output.name: fakes[output.name] for output in CONTRACT_OUTPUTS}


def _stack_reference(mocks: Mocks, _name: str, inputs: dict) -> dict:
    stack_name = inputs.get("name", "")
    outputs = mocks.stack_references.get(stack_name) or platform_stack_outputs(stack_name)
    return {
        "outputs": dict(outputs),
        "secretOutputNames": [name for name in SECRET_OUTPUTS if name in outputs],
    }


OUTPUTS: dict[str, OutputHandler] = {
    "eks:index:Cluster": _eks_cluster,
    "aws:ec2/vpc:Vpc": lambda m, n, i: {"id": _fake_id("vpc", n), "arn": m.arn("ec2", f"vpc/{n}")},
    "aws:ec2/subnet:Subnet": lambda m, n, i: {"id": _fake_id("subnet", n)},
    "aws:ec2/securityGroup:SecurityGroup": lambda m, n, i: {"id": _fake_id("sg", n)},
    "aws:ec2/launchTemplate:LaunchTemplate": lambda m, n, i: {
        "id": _fake_id("lt", n),
        "latestVersion": 1,
    },
    "aws:iam/role:Role": lambda m, n, i: {
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{n}",
        "name": n,
    },
    "aws:iam/policy:Policy": lambda m, n, i: {"arn": f"arn:aws:iam::{ACCOUNT_ID}:policy/{n}"},
    "aws:kms/key:Key": lambda m, n, i: {
        "arn": m.arn("kms", f"key/{_fake_id('key', n)[4:]}"),
        "keyId": _fake_id("key", n)[4:],
    },
    "aws:cloudwatch/logGroup:LogGroup": lambda m, n, i: {"arn": m.arn("logs", f"log-group:{n}")},
    # An SQS queue's id is its URL.
    "aws:sqs/queue:Queue": lambda m, n, i: {
        "id": f"https://sqs.{m.region}.amazonaws.com/{ACCOUNT_ID}/{i.get('name') or n}",
        "arn": m.arn("sqs", i.get("name") or n),
    },
    "kubernetes:core/v1:Service": lambda m, n, i: _service(m, i),
    "kubernetes:helm.sh/v3:Release": lambda m, n, i: _helm_release(i),
    "random:index/randomPassword:RandomPassword": lambda m, n, i: _random_password(n, i),
    "random:index/randomId:RandomId": lambda m, n, i: {
        "hex": hashlib.sha256(n.encode()).hexdigest()[: 2 * int(i.get("byteLength") or 8)]
    },
    "aws:rds/instance:Instance": _rds_instance,
    "aws:ecr/repository:Repository": _ecr_repository,
    "docker-build:index:Image": _docker_image,
    "pulumi:pulumi:StackReference": _stack_reference,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:route53/record:Record": lambda m, n, i: {"fqdn": str(i.get("name", "")).rstrip(".")},
}


@dataclass(frozen=True)
class ChildResource:
    """A resource a mocked component creates inside itself and gives as an output (a resource
    reference): the monitor keeps it so the SDK can read it back by URN, as the engine would.
    It is not recorded: the program does not register it."""

    type: str
    name: str
    id: str
    state: dict[str, Any]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping what only the raw request carries: parent, dependencies,
    provider reference and deletedWith."""

    def __init__(self, mocks: Mocks, recording: Recording):
        super().__init__(mocks)
        self.recording = recording

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the engine does: the stack is every resource's root but not part of its type path.
        if parent.split("::")[2:3] == [STACK_TYPE]:
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request):  # noqa: N802 (the gRPC method name)
        # The mock monitor's own version rehydrates resource references among the inputs, which
        # starts tasks on this worker thread's event loop and breaks a second run in the same
        # process; reading the wire format directly needs none of that.
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = _plain(json_format.MessageToDict(request.object))
        resource_id, state = self.mocks.new_resource(
            pulumi_mocks.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=secrets.unwrap(inputs),
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom,
            )
        )
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        state = {key: self._reference(urn, value) for key, value in state.items()}
        self.recording.resources.append(
            Resource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=request.custom,
                inputs=inputs,
                dependencies=sorted(set(request.dependencies)),
                outputs={"id": resource_id, **state},
                provider=_provider_urn(request.provider),
                deleted_with=request.deletedWith,
            )
        )
        wire_state = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=wire_state)

    def _reference(self, parent: str, value: Any) -> Any:
        """`value`, with a ChildResource kept by URN and handed over as a resource reference."""
        if not isinstance(value, ChildResource):
            return value
        urn = self.make_urn(parent, value.type, value.name)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(
            urn, value.id, value.state
        )
        return {SIGNATURE_KEY: RESOURCE_SIGNATURE, "urn": urn, "id": value.id}


def _provider_urn(reference: str) -> str:
    """A provider reference is "<urn>::<id>"; the URN itself contains "::"."""
    return reference.rsplit("::", 1)[0] if reference else ""


# Markers of Pulumi's wire format for values that are not plain data.
SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (a wire marker)
RESOURCE_SIGNATURE = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIGNATURE = "d0e6a833031e9bbcd3f4e8bde6ca49a4"


def _plain(value: Any) -> Any:
    """Wire values as JSON-able data, read without rehydrating anything.

    Secrets become `{"__secret__": value}` (so a recording can tell and a plan can redact them),
    resource references `{"__resource__": urn}`, unknown values None.
    """
    if isinstance(value, dict):
        signature = value.get(SIGNATURE_KEY)
        if signature == SECRET_SIGNATURE:
            return secrets.mark(_plain(value.get("value")))
        if signature == RESOURCE_SIGNATURE:
            return {secrets.RESOURCE_KEY: value.get("urn")}
        if signature == OUTPUT_SIGNATURE:
            inner = _plain(value.get("value"))
            return secrets.mark(inner) if value.get("secret") else inner
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Structs carry every number as a float
    return value


# ---------------------------------------------------------------------------------------------
# Running a program
# ---------------------------------------------------------------------------------------------


def run(
    project_dir: str | Path = ".",
    stack: str = "dev",
    overrides: Mapping[str, Any] | None = None,
    *,
    preview: bool = False,
    recording: Recording | None = None,
    stand_ins: preflight.StandIns | None = None,
    stack_references: Mapping[str, Mapping[str, Any]] | None = None,
    caller: Caller | None = None,
    outputs: Mapping[str, OutputHandler] | None = None,
) -> Recording:
    """Run the program in `project_dir` for `stack` under mocks and return what it registered.

    `overrides` replace stack config values (`key` or `namespace:key`; None removes a key).
    Exceptions from the program (a `ConfigError`, say) propagate; pass your own `recording` to
    see what was registered before it was raised. `stand_ins` says what the run stands in for
    (default: `offline_stand_ins()`); its `used` lists what it did stand in for.
    `stack_references` gives the outputs of the stacks the program references, by fully
    qualified name (others get a fake platform stack's); `caller` is who AWS says runs it;
    `outputs` adds or replaces what resource types add to their inputs (`OUTPUTS`).
    """
    project_dir = Path(project_dir).resolve()
    config = load_stack_config(project_dir, stack, overrides)

    return run_function(
        program(project_dir),
        config,
        stack=stack,
        preview=preview,
        recording=recording,
        stand_ins=stand_ins or offline_stand_ins(),
        mocks=Mocks(
            config.values.get("aws:region", "us-east-1"),
            unknown_outputs=preview,
            stack_references=stack_references,
            caller=caller,
            outputs=outputs,
        ),
    )


def program(project_dir: Path) -> Callable[[], None]:
    """The Pulumi program in `project_dir`, run as the CLI runs it: its `__main__.py` as the
    main module, its folder first on the import path while it runs."""

    def main() -> None:
        sys.path.insert(0, str(project_dir))
        try:
            runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")
        finally:
            sys.path.remove(str(project_dir))

    return main


def run_function(
    program: Callable[[], None],
    config: StackConfig | None = None,
    *,
    stack: str = "test",
    preview: bool = False,
    recording: Recording | None = None,
    stand_ins: preflight.StandIns | None = None,
    mocks: Mocks | None = None,
) -> Recording:
    """Run `program` (any code that builds resources) under mocks and record it.

    Component tests use this to build one component with hand-written arguments. Pass your own
    `recording` to inspect what was registered even when the program raises. `stand_ins` (none
    by default) is what the program's preflight checks take instead of the real thing; `mocks`
    (default: plain ones for the config's region) what answers the program's calls.
    """
    config = config or StackConfig(
        project="test", values={"aws:region": "us-east-1"}, secret_keys=[]
    )
    recording = recording or Recording(project=config.project, stack=stack)
    # Pulumi keeps its runtime state in context variables: a fresh context per run keeps runs in
    # one process (a test session) from seeing each other's stacks.
    mocks = mocks or Mocks(config.values.get("aws:region", "us-east-1"), unknown_outputs=preview)
    contextvars.Context().run(_run, program, config, recording, mocks, preview, stand_ins)
    return recording


def _run(
    program: Callable[[], None],
    config: StackConfig,
    recording: Recording,
    mocks: Mocks,
    preview: bool,
    stand_ins: preflight.StandIns | None,
) -> None:
    # Pulumi's runtime uses the thread's current event loop; code that ran before (an asyncio
    # test, say) may have closed or unset it, so each run brings its own.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    preflight.use_stand_ins(stand_ins)
    pulumi.runtime.set_mocks(
        mocks,
        project=config.project,
        stack=recording.stack,
        preview=preview,
        monitor=RecordingMonitor(mocks, recording),
    )
    set_all_config(config.values, config.secret_keys)

    async def main() -> None:
        program()
        stack = get_root_resource()
        for name, value in getattr(stack, "outputs", {}).items():
            output = pulumi.Output.from_input(value)
            recording.outputs[name] = Output(
                value=_plain(await output.future(with_unknowns=True)),
                secret=await output.is_secret(),
                known=await output.is_known(),
            )

    try:
        _sync_await(run_pulumi_func(main))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def iter_tree(recording: Recording) -> Iterable[tuple[int, Resource]]:
    """Resources depth-first from the stack's top-level ones, with their depth."""
    by_parent: dict[str, list[Resource]] = {}
    urns = {r.urn for r in recording.resources}
    for r in recording.resources:
        by_parent.setdefault(r.parent if r.parent in urns else "", []).append(r)

    def walk(parent: str, depth: int) -> Iterable[tuple[int, Resource]]:
        for r in by_parent.get(parent, []):
            yield depth, r
            yield from walk(r.urn, depth + 1)

    yield from walk("", 0)
