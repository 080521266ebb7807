"""Create and destroy order of the whole dev stack, computed from its recorded dependencies.

What `pulumi destroy` relies on (README, "Tear it all down"); each rule names what breaks:

a) Everything in the cluster (every object of its Kubernetes provider) and every node group is
   deleted before egress (NAT gateways or the NAT instance with its interface, address and
   security group, route tables and associations, internet gateway): the controllers in the
   private subnets call AWS APIs to delete load balancers and volumes.
b) Every node group is deleted before the policy attachments of its role.
c) The Load Balancer Controller (and its IAM policy) outlives every LoadBalancer Service; the EBS
   CSI driver (and its IAM policy) outlives every volume claim and every release making claims.
d) Every custom resource is created after, and deleted before, the release shipping its CRD.
e) Every claim a release's StatefulSets mount is a claim of the stack, deleted after the release
   and before the VolumeCleanup that deletes its volume, itself deleted before the driver; the
   StatefulSets retain the claims rather than own them (volumes.py). Every claim a Deployment
   of the stack mounts (an in-cluster database's) is deleted after it, and the same order holds.
f) A load balancer serving TLS is deleted before its certificate, the certificate's validation
   and validation records (ACM refuses to delete a certificate a listener uses); the DNS records
   naming the load balancer are deleted before it, so no name points at a deleted one.
g) Karpenter's NodePools, and then its EC2NodeClass, are deleted before the Karpenter release,
   the controller's role policies and Pod Identity association, the node role's policies and
   access entry, and the interruption queue: deleting them has the controller drain and
   terminate every instance it launched (NodeClaim and EC2NodeClass finalizers), which needs
   all of those. Egress outlives them by rule a).
h) Every Kubernetes object outside the Cluster and Karpenter components (the add-ons and the
   apps) is created after, and deleted before, every NodePool: a NodePool's deletion drains its
   nodes, and a pod that Pulumi has yet to delete, guarded by a PodDisruptionBudget, would have
   nowhere to go and hold the drain, and so the destroy, for the pool's grace period.

"Deleted before" means: in every order Pulumi may pick (tests/lifecycle.py). Each essential edge
is also taken away, through the component that makes it, to show that the check notices.
"""

import dataclasses

import pulumi
import pulumi_random as random
import pytest

from app_platform import (
    charts,
    cluster,
    edge,
    in_cluster_database,
    karpenter,
    network,
    observability,
    volumes,
)
from app_platform_tools import offline, secrets
from tests.lifecycle import Graph, label
from tests.test_stack_addons import CRD_SOURCES, custom_resources

RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_PROVIDER = "pulumi:providers:kubernetes"
NODE_GROUP = "eks:index:ManagedNodeGroup"
ADDON = "aws:eks/addon:Addon"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
CLEANUP = "pulumi-python:dynamic/volumes:VolumeCleanup"
EBS_CSI = cluster.EBS_CSI_ADDON
CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
KARPENTER_GROUPS = ("karpenter.sh", "karpenter.k8s.aws")
TLS_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"
# A stack that makes its own certificate and DNS records.
WITH_ZONE = {"hostedZone": "example.com", "domain": "dev.example.com"}
EGRESS = (
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/instance:Instance",
    "aws:ec2/networkInterface:NetworkInterface",
    "aws:ec2/eip:Eip",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
)
NETWORK = "app-platform:network:Network"
CLUSTER = "app-platform:cluster:Cluster"
KARPENTER = "app-platform:karpenter:Karpenter"
# A stack whose private subnets go out through a NAT instance.
WITH_NAT_INSTANCE = {"natGateways": "instance"}


def invariant_violations(recording: offline.Recording) -> list[str]:
    graph = Graph.of(recording)
    return [
        *egress_outlives_the_cluster(recording, graph),
        *node_groups_go_before_their_policies(recording, graph),
        *controllers_outlive_what_they_delete(recording, graph),
        *custom_resources_go_before_their_crds(recording, graph),
        *claims_are_the_stacks(recording, graph),
        *certificates_outlive_their_load_balancer(recording, graph),
        *karpenter_outlives_its_nodes(recording, graph),
        *workloads_go_before_the_node_pools(recording, graph),
    ]


def missing(rule: str, **selections: list) -> list[str]:
    """A rule over nothing would pass by itself: say so instead."""
    return [f"{rule}: found no {what}" for what, found in selections.items() if not found]


def egress_outlives_the_cluster(recording, graph):
    rule = "a) egress outlives the cluster"
    providers = {p.urn for p in recording.of_type(K8S_PROVIDER)}
    in_cluster = [r for r in recording.resources if r.provider in providers]
    node_groups = recording.of_type(NODE_GROUP)
    # The network's own: other security groups (the cluster's) are no part of egress.
    network = {r.urn for r in recording.descendants(recording.one(NETWORK))}
    egress = [r for type_ in EGRESS for r in recording.of_type(type_) if r.urn in network]
    return [
        *missing(rule, objects=in_cluster, node_groups=node_groups, egress=egress),
        *graph.not_deleted_before(rule, [*in_cluster, *node_groups], egress),
    ]


def role_policies(recording, role_arn) -> list[offline.Resource]:
    """The policy attachments and inline policies of the role with this ARN."""
    (role,) = [r for r in recording.of_type(ROLE) if r.outputs.get("arn") == role_arn]
    return [
        p
        for p in [*recording.of_type(ATTACHMENT), *recording.of_type(ROLE_POLICY)]
        if p.inputs.get("role") in (role.outputs["name"], role.outputs["id"])
    ]


def node_groups_go_before_their_policies(recording, graph):
    rule = "b) node groups go before their role's policies"
    found = missing(rule, node_groups=recording.of_type(NODE_GROUP))
    for group in recording.of_type(NODE_GROUP):
        policies = role_policies(recording, group.inputs["nodeRoleArn"])
        found += missing(rule, **{f"policies of {group.name}": policies})
        found += graph.not_deleted_before(rule, [group], policies)
    return found


def makes_claims(values) -> bool:
    """Whether chart values ask a StatefulSet or Deployment of the chart for a volume claim."""
    if isinstance(values, dict):
        persistence = values.get("persistence")
        if "volumeClaimTemplate" in values or (
            isinstance(persistence, dict) and persistence.get("enabled") is True
        ):
            return True
        return any(makes_claims(v) for v in values.values())
    if isinstance(values, list):
        return any(makes_claims(v) for v in values)
    return False


def release_values(release) -> dict:
    return secrets.unwrap(release.inputs.get("values") or {})


def ebs_csi_driver(recording) -> list[offline.Resource]:
    """The driver add-on and the policies of its Pod Identity role."""
    (driver,) = [a for a in recording.of_type(ADDON) if a.inputs["addonName"] == EBS_CSI]
    (identity,) = driver.inputs["podIdentityAssociations"]
    return [driver, *role_policies(recording, identity["roleArn"])]


def controllers_outlive_what_they_delete(recording, graph):
    rule_lb = "c) the load balancer controller outlives every LoadBalancer Service"
    rule_volumes = "c) the EBS CSI driver outlives every volume claim"
    services = [
        s
        for s in recording.of_type("kubernetes:core/v1:Service")
        if (s.inputs.get("spec") or {}).get("type") == "LoadBalancer"
    ]
    (controller,) = [
        r
        for r in recording.of_type(RELEASE)
        if r.inputs["chart"] == charts.AWS_LOAD_BALANCER_CONTROLLER.chart
    ]
    account = release_values(controller)["serviceAccount"]["annotations"]
    controller_policies = role_policies(recording, account["eks.amazonaws.com/role-arn"])
    claims = [
        *recording.of_type(PVC),
        *(r for r in recording.of_type(RELEASE) if makes_claims(release_values(r))),
    ]
    driver = ebs_csi_driver(recording)
    return [
        *missing(rule_lb, services=services),
        *missing(rule_volumes, claims=claims),
        *graph.not_deleted_before(rule_lb, services, [controller, *controller_policies]),
        *graph.not_deleted_before(rule_volumes, claims, driver),
    ]


def custom_resources_go_before_their_crds(recording, graph):
    rule = "d) custom resources go before the release shipping their CRD"
    found = list(custom_resources(recording))
    groups = {group for group, _ in found}
    # Karpenter's groups only where Karpenter is installed (not with the Cluster Autoscaler).
    installed = {r.name for r in recording.of_type(RELEASE)}
    expected = {group for group, release in CRD_SOURCES.items() if release in installed}
    expected |= set(CRD_SOURCES) - set(KARPENTER_GROUPS)
    messages = [f"{rule}: found no {g} resource" for g in sorted(expected - groups)]
    for group, resource in found:
        release = recording.one(RELEASE, CRD_SOURCES[group])
        messages += graph.not_deleted_before(rule, [resource], [release])
    return messages


def claims_are_the_stacks(recording, graph):
    rule = "e) claims are the stack's"
    driver = ebs_csi_driver(recording)
    messages = []
    for release in recording.of_type(RELEASE):
        values = release_values(release)
        if not makes_claims(values):
            continue
        if release.inputs["chart"] != charts.KUBE_PROMETHEUS_STACK.chart:
            messages.append(f"{rule}: {label(release)} makes claims the stack does not own")
            continue
        namespace = release.inputs["namespace"]
        for workload, (spec_key, storage_key, _) in observability.STATEFUL_WORKLOADS.items():
            spec = values.get(workload, {}).get(spec_key, {})
            retention = (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenDeleted")
            if spec.get(storage_key) and retention != "Retain":
                messages.append(f"{rule}: {workload}'s StatefulSet would delete its claims")
        for claim in observability.volume_claims(values):
            messages += claim_violations(recording, graph, rule, release, namespace, claim, driver)
    return messages + mounted_claims_are_the_stacks(recording, graph, rule, driver)


def mounted_claims_are_the_stacks(recording, graph, rule, driver):
    """The claims the stack's own Deployments mount: each goes after what mounts it, and its
    volume with a VolumeCleanup before the CSI driver."""
    messages = []
    for workload in recording.of_type("kubernetes:apps/v1:Deployment"):
        namespace = workload.inputs["metadata"]["namespace"]
        for volume in workload.inputs["spec"]["template"]["spec"].get("volumes", []):
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if name is None:
                continue
            where = {"name": name, "namespace": namespace}
            pvcs = [p for p in recording.of_type(PVC) if p.inputs["metadata"] == where]
            cleanups = [
                c
                for c in recording.of_type(CLEANUP)
                if c.inputs["namespace"] == namespace and name in c.inputs["claims"]
            ]
            messages += missing(rule, **{f"claim {namespace}/{name}": pvcs})
            messages += missing(rule, **{f"volume cleanup for {namespace}/{name}": cleanups})
            messages += graph.not_deleted_before(f"{rule}: workload before claim", [workload], pvcs)
            messages += graph.not_deleted_before(f"{rule}: claim before cleanup", pvcs, cleanups)
            messages += graph.not_deleted_before(f"{rule}: cleanup before driver", cleanups, driver)
    return messages


def claim_violations(recording, graph, rule, release, namespace, claim, driver):
    (pvc,) = [
        p
        for p in recording.of_type(PVC)
        if p.inputs["metadata"] == {"name": claim.name, "namespace": namespace}
    ] or [None]
    if pvc is None:
        return [f"{rule}: no claim {namespace}/{claim.name} for {label(release)}"]
    messages = []
    if pvc.inputs["spec"] != claim.spec:
        messages.append(f"{rule}: {label(pvc)} is not what the volume template asks for")
    cleanups = [
        c
        for c in recording.of_type(CLEANUP)
        if c.inputs["namespace"] == namespace and claim.name in c.inputs["claims"]
    ]
    messages += missing(rule, **{f"volume cleanup for {label(pvc)}": cleanups})
    messages += graph.not_deleted_before(f"{rule}: release before claim", [release], [pvc])
    messages += graph.not_deleted_before(f"{rule}: claim before cleanup", [pvc], cleanups)
    messages += graph.not_deleted_before(f"{rule}: cleanup before driver", cleanups, driver)
    return messages


def load_balancer_services(recording) -> list[offline.Resource]:
    return [
        s
        for s in recording.of_type("kubernetes:core/v1:Service")
        if (s.inputs.get("spec") or {}).get("type") == "LoadBalancer"
    ]


def certificates_outlive_their_load_balancer(recording, graph):
    rule = "f) the certificate and its validation outlive the TLS load balancer"
    rule_alias = "f) DNS records naming the load balancer go before it"
    tls = [
        s
        for s in load_balancer_services(recording)
        if TLS_ANNOTATION in (s.inputs["metadata"].get("annotations") or {})
    ]
    records = recording.of_type(RECORD)
    aliases = [r for r in records if r.inputs.get("aliases")]
    certificates = [
        *recording.of_type(CERTIFICATE),
        *recording.of_type(VALIDATION),
        *(r for r in records if not r.inputs.get("aliases")),
    ]
    messages = []
    if certificates:
        # A certificate of the stack's own must be used by a TLS load balancer.
        messages += missing(rule, **{"load balancer serving TLS": tls})
    messages += graph.not_deleted_before(rule, tls, certificates)
    messages += graph.not_deleted_before(rule_alias, aliases, load_balancer_services(recording))
    return messages


def karpenter_identities(recording, node_class) -> list[offline.Resource]:
    """The node role's policies and access entries, the controller's policies and its Pod
    Identity association."""
    (node_role,) = [
        r
        for r in recording.of_type(ROLE)
        if r.outputs.get("name") == node_class.inputs["spec"]["role"]
    ]
    node_arn = node_role.outputs["arn"]
    access = [e for e in recording.of_type(ACCESS_ENTRY) if e.inputs["principalArn"] == node_arn]
    associations = recording.of_type(POD_IDENTITY)
    controller = [p for a in associations for p in role_policies(recording, a.inputs["roleArn"])]
    return [*role_policies(recording, node_arn), *access, *associations, *controller]


def karpenter_outlives_its_nodes(recording, graph):
    rule = "g) Karpenter outlives the nodes it launched"
    pools, classes = recording.of_type(NODE_POOL), recording.of_type(NODE_CLASS)
    controller = [
        r for r in recording.of_type(RELEASE) if r.inputs["chart"] == charts.KARPENTER.chart
    ]
    if not (pools or classes or controller):
        return []  # nodeProvisioner clusterAutoscaler
    found = missing(rule, node_pools=pools, node_classes=classes, controller=controller)
    queue = [*recording.of_type(QUEUE), *recording.of_type(QUEUE_POLICY)]
    found += missing(rule, interruption_queue=queue)
    for node_class in classes:
        needed = [*controller, *karpenter_identities(recording, node_class), *queue]
        found += missing(rule, **{f"identities of {label(node_class)}": needed})
        found += graph.not_deleted_before(rule, [*pools, node_class], needed)
    found += graph.not_deleted_before(f"{rule}: pools before their class", pools, classes)
    return found


def workloads_go_before_the_node_pools(recording, graph):
    rule = "h) workloads go before the NodePools"
    pools = recording.of_type(NODE_POOL)
    if not pools:
        return []  # nodeProvisioner clusterAutoscaler
    providers = {p.urn for p in recording.of_type(K8S_PROVIDER)}
    owners = [*recording.of_type(CLUSTER), *recording.of_type(KARPENTER)]
    owned = {r.urn for owner in owners for r in recording.descendants(owner)}
    workloads = [r for r in recording.resources if r.provider in providers and r.urn not in owned]
    return [
        *missing(rule, workloads=workloads),
        *graph.not_deleted_before(rule, workloads, pools),
    ]


# --- The dev stack -------------------------------------------------------------------------


def test_the_dev_stack_keeps_every_lifecycle_rule(dev):
    assert invariant_violations(dev) == []


def test_the_cluster_autoscaler_stack_keeps_every_lifecycle_rule(dev_cluster_autoscaler):
    assert invariant_violations(dev_cluster_autoscaler) == []
    assert dev_cluster_autoscaler.of_type(NODE_POOL) == []


def nat_device(recording: offline.Recording) -> offline.Resource:
    """The private subnets' way out: the NAT gateway, or (dev's) the NAT instance."""
    (device,) = recording.of_type("aws:ec2/natGateway:NatGateway")[:1] or recording.of_type(
        "aws:ec2/instance:Instance"
    )
    return device


def test_karpenter_nodes_go_before_egress(dev):
    """Its instances drain and terminate while the controller can still reach AWS."""
    graph = Graph.of(dev)
    nat = nat_device(dev)
    for resource in [*dev.of_type(NODE_POOL), *dev.of_type(NODE_CLASS)]:
        assert graph.deleted_before(resource, nat), label(resource)


def test_waves_follow_every_edge_and_egress_is_not_deleted_first(dev):
    graph = Graph.of(dev)
    for urn, deps in graph.edges.items():
        for dep in deps:
            assert graph.create_wave[urn] > graph.create_wave[dep], (urn, dep)
            assert graph.delete_wave[urn] < graph.delete_wave[dep], (urn, dep)
    assert sum(len(w) for w in graph.waves(graph.delete_wave)) == len(dev.resources)
    first_deleted = {r.type for r in graph.waves(graph.delete_wave)[0]}
    assert not first_deleted & set(EGRESS)
    nlb = dev.one("kubernetes:core/v1:Service", "platform-dev-load-balancer")
    nat = nat_device(dev)
    assert graph.delete_wave[nlb.urn] < graph.delete_wave[nat.urn]


def test_envoy_gateway_goes_before_the_load_balancer_controller(dev):
    """Envoy Gateway makes Services of its own (ClusterIP today); whatever it makes, the
    controller that would own their load balancers outlives it."""
    graph = Graph.of(dev)
    controller = dev.one(RELEASE, "platform-dev-load-balancer-controller")
    assert graph.deleted_before(dev.one(RELEASE, "platform-dev-envoy-gateway"), controller)


def test_kubernetes_objects_reach_the_cluster_through_their_provider(dev):
    graph = Graph.of(dev)
    provider = dev.one(K8S_PROVIDER)
    objects = [r for r in dev.resources if r.provider == provider.urn]
    assert len(objects) > 30
    assert graph.deleted_before(provider, dev.one("eks:index:Cluster"))
    # Whatever else each one depends on, none outlives the provider it is deleted through.
    assert all(graph.deleted_before(r, provider) for r in objects)


def test_the_recording_keeps_each_resources_provider_and_deleted_with():
    def program():
        provider = random.Provider("explicit")
        first = random.RandomPassword("first", length=8)
        random.RandomPassword(
            "second",
            length=8,
            opts=pulumi.ResourceOptions(provider=provider, deleted_with=first),
        )

    recording = offline.run_function(program)
    first, second = recording.of_type("random:index/randomPassword:RandomPassword")
    assert first.provider == "" and first.deleted_with == ""
    assert second.provider == recording.one("pulumi:providers:random").urn
    assert second.deleted_with == first.urn
    assert Graph.of(recording).deleted_before(second, first)


def resource(name, parent="", deps=(), provider="", deleted_with="", custom=True):
    type_ = "test:index:Thing" if custom else "test:index:Component"
    return offline.Resource(
        urn=f"urn:pulumi:test::test::{type_}::{name}",
        type=type_,
        name=name,
        parent=parent,
        custom=custom,
        inputs={},
        dependencies=list(deps),
        provider=provider,
        deleted_with=deleted_with,
    )


def test_the_graph_reads_every_edge_pulumi_orders_by():
    component = resource("component", custom=False)
    child = resource("child", parent=component.urn)
    provider = resource("provider")
    user = resource("user", deps=[component.urn], provider=provider.urn)
    follower = resource("follower", deleted_with=user.urn)
    loner = resource("loner")
    recording = offline.Recording("test", "test", [component, child, provider, user, follower])
    recording.resources.append(loner)
    graph = Graph.of(recording)
    assert graph.deleted_before(user, child)  # a component dependency covers its children
    assert graph.deleted_before(child, component)  # children before their parent
    assert graph.deleted_before(user, provider)
    assert graph.deleted_before(follower, user)
    assert not graph.deleted_before(child, user)
    assert not graph.deleted_before(loner, user) and not graph.deleted_before(user, loner)
    assert graph.not_deleted_before("rule", [loner], [child, user]) == [
        "rule: Thing loner (delete wave 1) is not deleted before Thing child (wave 3), "
        "Thing user (wave 2)"
    ]


# --- Each essential edge taken away --------------------------------------------------------


def without_egress(monkeypatch):
    original = network.Network.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.egress_ready = []

    monkeypatch.setattr(network.Network, "__init__", init)


def without_node_policies(monkeypatch):
    original = cluster.Cluster._node_role
    monkeypatch.setattr(
        cluster.Cluster, "_node_role", lambda self, *args: (original(self, *args)[0], [])
    )


def without_load_balancer_controller(monkeypatch):
    """The release is installed, but what the Edge orders after it waits for an empty stand-in."""
    original = edge.Edge._load_balancer_controller

    def detached(self, name):
        original(self, name)
        return pulumi.ComponentResource(
            "test:lifecycle:Detached", f"{name}-detached", None, pulumi.ResourceOptions(parent=self)
        )

    monkeypatch.setattr(edge.Edge, "_load_balancer_controller", detached)


def without_storage_driver(monkeypatch):
    original = cluster.Cluster._block_storage
    monkeypatch.setattr(
        cluster.Cluster,
        "_block_storage",
        lambda self, *args: dataclasses.replace(original(self, *args), ready=[]),
    )


def without_claims_before_release(monkeypatch):
    """The claims are made, but the release does not wait for them."""
    original = observability.component.owned_claims

    def claims_not_given(*args, **kwargs):
        original(*args, **kwargs)
        return []

    monkeypatch.setattr(observability.component, "owned_claims", claims_not_given)


def without_claims_before_database(monkeypatch):
    """The in-cluster database's claim is made, but its server does not wait for it."""
    original = in_cluster_database.owned_claims

    def claims_not_given(*args, **kwargs):
        original(*args, **kwargs)
        return []

    monkeypatch.setattr(in_cluster_database, "owned_claims", claims_not_given)


def without_volume_cleanup(monkeypatch):
    """The claims wait for an empty stand-in instead of the cleanup (which the stand-in's own
    dependencies still order after the driver)."""
    monkeypatch.setattr(
        volumes,
        "VolumeCleanup",
        lambda name, **kwargs: pulumi.ComponentResource(
            "test:lifecycle:Detached", name, None, kwargs["opts"]
        ),
    )


def without_crd_release(monkeypatch):
    original = observability.Observability._edge_monitoring

    def edge_monitoring(self, name):
        kept, self.crds_ready = self.crds_ready, []
        try:
            original(self, name)
        finally:
            self.crds_ready = kept

    monkeypatch.setattr(observability.Observability, "_edge_monitoring", edge_monitoring)


def without_waiting_for_the_karpenter_controller(monkeypatch):
    """The controller is installed, but the node class waits for an empty stand-in."""
    original = karpenter.Karpenter._releases

    def detached(self, name, *args):
        crds, _ = original(self, name, *args)
        stand_in = pulumi.ComponentResource(
            "test:lifecycle:Detached", f"{name}-detached", None, pulumi.ResourceOptions(parent=self)
        )
        return crds, stand_in

    monkeypatch.setattr(karpenter.Karpenter, "_releases", detached)


def without_karpenter_node_access(monkeypatch):
    original = karpenter.Karpenter._node_role
    monkeypatch.setattr(
        karpenter.Karpenter, "_node_role", lambda self, *args: (original(self, *args)[0], [])
    )


def without_karpenter_controller_permissions(monkeypatch):
    original = karpenter.Karpenter._controller_identity

    def not_waited_for(self, *args):
        original(self, *args)
        return []

    monkeypatch.setattr(karpenter.Karpenter, "_controller_identity", not_waited_for)


@pytest.mark.parametrize(
    "take_away, expected",
    [
        (
            without_waiting_for_the_karpenter_controller,
            (
                "g)",
                "EC2NodeClass platform-dev-karpenter-node-class",
                "Release platform-dev-karpenter ",
            ),
        ),
        (
            without_karpenter_node_access,
            (
                "g)",
                "EC2NodeClass platform-dev-karpenter-node-class",
                "AccessEntry platform-dev-karpenter-node",
            ),
        ),
        (
            without_karpenter_controller_permissions,
            (
                "g)",
                "NodePool platform-dev-karpenter-spot",
                "PodIdentityAssociation platform-dev-karpenter-controller",
            ),
        ),
        (
            without_egress,
            ("a)", "ManagedNodeGroup platform-dev-system", "platform-dev-nat-us-east-1a"),
        ),
        (
            without_node_policies,
            ("b)", "ManagedNodeGroup platform-dev-system", "AmazonEKSWorkerNodePolicy"),
        ),
        (
            without_load_balancer_controller,
            (
                "c)",
                "Service platform-dev-load-balancer",
                "Release platform-dev-load-balancer-controller",
            ),
        ),
        (
            without_storage_driver,
            (
                "c)",
                "PersistentVolumeClaim platform-dev-prometheus-volume-0",
                "Addon platform-dev-aws-ebs-csi-driver",
            ),
        ),
        (
            without_claims_before_release,
            (
                "e)",
                "Release platform-dev-kube-prometheus-stack",
                "PersistentVolumeClaim platform-dev-prometheus-volume-0",
            ),
        ),
        (
            without_claims_before_database,
            (
                "e)",
                "Deployment platform-dev-comments-postgres-server",
                "PersistentVolumeClaim platform-dev-comments-postgres-data",
            ),
        ),
        (
            without_volume_cleanup,
            (
                "e)",
                "found no volume cleanup for",
                "PersistentVolumeClaim platform-dev-prometheus-volume-0",
            ),
        ),
        (
            without_crd_release,
            (
                "d)",
                "PodMonitor platform-dev-envoy-proxies",
                "Release platform-dev-kube-prometheus-stack",
            ),
        ),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_taking_an_essential_edge_away_is_reported(run_stack, monkeypatch, take_away, expected):
    take_away(monkeypatch)
    violations = invariant_violations(run_stack())
    assert any(all(part in message for part in expected) for message in violations), violations


def test_a_stack_with_a_hosted_zone_keeps_every_lifecycle_rule(run_stack):
    recording = run_stack(WITH_ZONE)
    assert invariant_violations(recording) == []
    graph = Graph.of(recording)
    nlb = recording.one("kubernetes:core/v1:Service", "platform-dev-load-balancer")
    for kept in [*recording.of_type(CERTIFICATE), *recording.of_type(VALIDATION)]:
        assert graph.deleted_before(nlb, kept), label(kept)
    (alias,) = [r for r in recording.of_type(RECORD) if r.inputs.get("aliases")]
    assert graph.deleted_before(alias, nlb)


def without_waiting_for_the_certificate(monkeypatch):
    """The certificate is made, but the NLB gets its ARN as plain text, not waiting for it."""
    original = edge.Edge._certificate

    def detached(self, name):
        original(self, name)
        self.certificate_ready = []
        return "arn:aws:acm:us-east-1:123456789012:certificate/detached"

    monkeypatch.setattr(edge.Edge, "_certificate", detached)


def test_taking_the_certificate_edge_away_is_reported(run_stack, monkeypatch):
    without_waiting_for_the_certificate(monkeypatch)
    violations = invariant_violations(run_stack(WITH_ZONE))
    expected = ("f)", "Service platform-dev-load-balancer", "CertificateValidation")
    assert any(all(part in message for part in expected) for message in violations), violations


# --- natGateways: instance -----------------------------------------------------------------


def test_a_stack_with_a_nat_instance_keeps_every_lifecycle_rule(run_stack):
    recording = run_stack(WITH_NAT_INSTANCE)
    assert invariant_violations(recording) == []
    graph = Graph.of(recording)
    instance = recording.one("aws:ec2/instance:Instance")
    interface = recording.one("aws:ec2/networkInterface:NetworkInterface")
    nlb = recording.one("kubernetes:core/v1:Service", "platform-dev-load-balancer")
    for group in recording.of_type(NODE_GROUP):
        assert graph.deleted_before(group, instance), label(group)
    assert graph.deleted_before(nlb, instance) and graph.deleted_before(instance, interface)


def without_the_nat_instance_in_egress(monkeypatch):
    """The NAT instance is made and routed to, but left out of what the cluster waits for."""
    original = network.nat_instance

    def instance_left_out(*args, **kwargs):
        nat = original(*args, **kwargs)
        kept = [r for r in nat.resources if r is not nat.instance]
        return dataclasses.replace(nat, resources=kept)

    monkeypatch.setattr(network, "nat_instance", instance_left_out)


@pytest.mark.parametrize(
    "take_away, expected",
    [
        (
            without_egress,
            ("a)", "ManagedNodeGroup platform-dev-system", "Instance platform-dev-nat"),
        ),
        (
            without_the_nat_instance_in_egress,
            ("a)", "ManagedNodeGroup platform-dev-system", "Instance platform-dev-nat-us-east-1a"),
        ),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_taking_the_nat_instance_edge_away_is_reported(run_stack, monkeypatch, take_away, expected):
    take_away(monkeypatch)
    violations = invariant_violations(run_stack(WITH_NAT_INSTANCE))
    assert any(all(part in message for part in expected) for message in violations), violations
