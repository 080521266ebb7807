"""Karpenter, the default node provisioner: its NodePools and EC2NodeClass, identities,
interruption queue, controller release and options."""

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from app_platform import charts, cluster, karpenter
from app_platform.cluster.nodes import IMDS_HOP_LIMIT, NODE_MANAGED_POLICIES
from app_platform.karpenter import node_pools
from app_platform.options import OptionsError
from app_platform_tools import offline, render, secrets
from tests.upstream import checks

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
GITOPS_APPS = Path(__file__).resolve().parents[2] / "gitops" / "apps"
POLICY_FIXTURE = checks.FIXTURES / "iam" / "karpenter-controller-v1.14.json"
# IAM's limit on all inline policies of one role together.
INLINE_POLICY_LIMIT = 10_240


def pool(recording, name):
    return recording.one(NODE_POOL, f"platform-dev-karpenter-{name}")


def controller(recording):
    return recording.one(RELEASE, "platform-dev-karpenter")


def requirement(spec, key):
    (found,) = [r for r in spec["template"]["spec"]["requirements"] if r["key"] == key]
    return found["operator"], found["values"]


# --- NodePools ----------------------------------------------------------------------------


def test_a_spot_pool_and_a_lighter_on_demand_fallback_over_broad_families(dev):
    spot, on_demand = pool(dev, "spot").inputs, pool(dev, "on-demand").inputs
    assert spot["spec"]["weight"] > on_demand["spec"]["weight"]
    for resource, capacity in ((spot, "spot"), (on_demand, "on-demand")):
        spec = resource["spec"]
        assert requirement(spec, "karpenter.sh/capacity-type") == ("In", [capacity])
        # The dev stack's choice; the default is amd64 and arm64 (test_the_defaults_...).
        assert requirement(spec, "kubernetes.io/arch") == ("In", ["arm64"])
        assert requirement(spec, "karpenter.k8s.aws/instance-category") == ("In", ["c", "m", "r"])
        assert requirement(spec, "karpenter.k8s.aws/instance-generation") == ("Gt", ["5"])
        assert spec["template"]["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": "default",
        }
    assert spot["spec"]["template"]["metadata"]["labels"] == {"node-pool": "spot"}
    assert on_demand["spec"]["template"]["metadata"]["labels"] == {"node-pool": "on-demand"}


def test_the_pools_carry_what_the_cost_estimate_reads(dev):
    """The cost estimate reads the annotation (a string), limits.cpu and the weight."""
    spot, on_demand = pool(dev, "spot").inputs, pool(dev, "on-demand").inputs
    annotation = karpenter.EXPECTED_VCPU_ANNOTATION
    assert annotation == "app-platform.io/expected-vcpu"
    assert spot["metadata"]["annotations"] == {annotation: "5"}  # Pulumi.dev.yaml's
    assert on_demand["metadata"]["annotations"] == {annotation: "0"}
    assert spot["spec"]["limits"] == {"cpu": "32", "memory": "128Gi"}
    assert on_demand["spec"]["limits"] == {"cpu": "16", "memory": "64Gi"}


def test_consolidation_budgets_and_a_bounded_drain(dev):
    for name in ("spot", "on-demand"):
        spec = pool(dev, name).inputs["spec"]
        assert spec["disruption"] == {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "1m",
            "budgets": [{"nodes": "1"}],
        }
        assert spec["template"]["spec"]["terminationGracePeriod"] == "10m"


def test_the_karpenter_key_sets_the_pools(run_stack):
    settings = {
        "architectures": ["arm64"],
        "spot": {"cpuLimit": 100, "memoryLimitGib": 400, "expectedVcpu": 12},
        "consolidateAfter": "5m",
    }
    recording = run_stack({"karpenter": settings})
    spot = pool(recording, "spot").inputs
    assert spot["metadata"]["annotations"][karpenter.EXPECTED_VCPU_ANNOTATION] == "12"
    assert spot["spec"]["limits"] == {"cpu": "100", "memory": "400Gi"}
    assert requirement(spot["spec"], "kubernetes.io/arch") == ("In", ["arm64"])
    assert spot["spec"]["disruption"]["consolidateAfter"] == "5m"
    # Keys not given keep their defaults.
    assert pool(recording, "on-demand").inputs["spec"]["limits"]["cpu"] == "16"


def test_a_pools_keys_not_given_keep_that_pools_defaults(parse_config):
    options = parse_config(karpenter={"onDemand": {"cpuLimit": 8}}).karpenter
    assert options.on_demand == karpenter.PoolOptions(
        cpu_limit=8, memory_limit_gib=64, expected_vcpu=0
    )
    assert options.spot.cpu_limit == 32
    assert karpenter.KarpenterOptions(spot={"expected_vcpu": 6}).spot.cpu_limit == 32


# --- EC2NodeClass ---------------------------------------------------------------------------


def test_the_node_class_launches_hardened_al2023_nodes_like_the_managed_ones(dev):
    spec = dev.one(NODE_CLASS).inputs["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == IMDS_HOP_LIMIT == 1
    (root,) = spec["blockDeviceMappings"]
    assert root["ebs"] == {
        "volumeSize": "20Gi",  # Pulumi.dev.yaml's nodeDiskSizeGib
        "volumeType": "gp3",
        "encrypted": True,
        "deleteOnTermination": True,
    }
    discovery = [{"tags": {"karpenter.sh/discovery": "platform-dev"}}]
    assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == discovery


def test_disk_size_and_ami_version_follow_config(run_stack):
    spec = run_stack({"nodeDiskSizeGib": 80, "karpenter": {"amiVersion": "v20260801"}}).one(
        NODE_CLASS
    )
    assert spec.inputs["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "80Gi"
    assert spec.inputs["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260801"}]


def test_nodes_have_a_role_of_their_own_with_an_ec2_linux_access_entry(dev):
    role_name = dev.one(NODE_CLASS).inputs["spec"]["role"]
    role = dev.one("aws:iam/role:Role", role_name)
    assert role.name == "platform-dev-karpenter-node"
    attached = sorted(
        a.inputs["policyArn"]
        for a in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role_name
    )
    assert attached == sorted(NODE_MANAGED_POLICIES)
    (entry,) = dev.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX"
    assert entry.inputs["principalArn"] == role.outputs["arn"]
    managed = dev.one("eks:index:ManagedNodeGroup", "platform-dev-system")
    assert managed.inputs["nodeRoleArn"] != role.outputs["arn"]


# --- The controller -------------------------------------------------------------------------


def test_controller_and_crds_are_pinned_and_the_crds_upgrade_with_the_pin(dev):
    crds = dev.one(RELEASE, "platform-dev-karpenter-crd").inputs
    release = controller(dev).inputs
    assert (crds["chart"], crds["version"]) == (
        "oci://public.ecr.aws/karpenter/karpenter-crd",
        "1.14.1",
    )
    assert (release["chart"], release["version"]) == (charts.KARPENTER.oci, "1.14.1")
    assert "repositoryOpts" not in release
    # The controller chart's crds/ (install-only) is skipped: the CRD chart owns them.
    assert release["skipCrds"] is True
    assert dev.depends_on(controller(dev), dev.one(RELEASE, "platform-dev-karpenter-crd"))


def test_controller_runs_on_the_system_nodes_wired_to_cluster_and_queue(dev):
    values = secrets.unwrap(controller(dev).inputs["values"])
    assert checks.unknown_values_keys("karpenter", values) == []
    assert values["nodeSelector"] == cluster.SYSTEM_NODE_SELECTOR
    assert cluster.SYSTEM_TOLERATIONS[0] in values["tolerations"]
    queue = dev.one("aws:sqs/queue:Queue")
    assert values["settings"] == {
        "clusterName": "platform-dev",
        "eksControlPlane": True,
        "interruptionQueue": queue.inputs["name"],
    }
    assert {"name": "AWS_REGION", "value": "us-east-1"} in values["controller"]["env"]


def test_controller_replicas_never_exceed_the_system_nodes(run_stack):
    values = controller(run_stack({"systemNodeCount": 1})).inputs["values"]
    assert values["replicas"] == 1
    values = controller(run_stack({"systemNodeCount": 3})).inputs["values"]
    assert values["replicas"] == 2


def test_controller_identity_is_pod_identity_for_its_service_account(dev):
    (association,) = dev.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    values = controller(dev).inputs["values"]
    assert association.inputs["namespace"] == controller(dev).inputs["namespace"] == "kube-system"
    assert association.inputs["serviceAccount"] == values["serviceAccount"]["name"]
    role = dev.one("aws:iam/role:Role", "platform-dev-karpenter-controller")
    assert association.inputs["roleArn"] == role.outputs["arn"]
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    association_and_policy = [
        association,
        dev.one("aws:iam/rolePolicy:RolePolicy", "platform-dev-karpenter-NodeLifecyclePolicy"),
    ]
    for needed in association_and_policy:
        assert dev.depends_on(controller(dev), needed), needed.name


# --- The controller policy ------------------------------------------------------------------


def _statements(documents):
    return {
        name: {
            s["Sid"]: {
                "effect": s["Effect"],
                "actions": sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"]),
                "conditions": sorted(
                    f"{op}:{key}" for op, keys in (s.get("Condition") or {}).items() for key in keys
                ),
            }
            for s in document["Statement"]
        }
        for name, document in documents.items()
    }


def test_the_policy_file_is_the_upstream_policy():
    """A bump of the pin shows every statement upstream added, dropped or changed."""
    kept = json.loads(karpenter.iam.POLICY_FILE.read_text())["policies"]
    upstream = json.loads(POLICY_FIXTURE.read_text())["policies"]
    expected = {
        name: {
            sid: {
                **statement,
                "conditions": [
                    c.replace("${ClusterName}", "${cluster_name}") for c in statement["conditions"]
                ],
            }
            for sid, statement in statements.items()
        }
        for name, statements in upstream.items()
    }
    assert _statements(kept) == expected


def test_the_controller_policy_is_filled_in_and_scoped_to_this_cluster(dev):
    policies = {
        p.name.removeprefix("platform-dev-karpenter-"): json.loads(p.inputs["policy"])
        for p in dev.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.startswith("platform-dev-karpenter-")
    }
    assert set(policies) == set(json.loads(POLICY_FIXTURE.read_text())["policies"])
    text = json.dumps(policies)
    assert "${" not in text and "None" not in text
    conditions = json.dumps(policies["NodeLifecyclePolicy"])
    assert '"aws:ResourceTag/kubernetes.io/cluster/platform-dev": "owned"' in conditions
    assert '"aws:RequestTag/eks:eks-cluster-name": "platform-dev"' in conditions
    assert '"aws:ResourceTag/karpenter.sh/nodepool": "*"' in conditions
    (pass_role,) = policies["IAMIntegrationPolicy"]["Statement"][:1]
    node_role = dev.one("aws:iam/role:Role", "platform-dev-karpenter-node")
    assert pass_role["Resource"] == node_role.outputs["arn"]
    queue = dev.one("aws:sqs/queue:Queue")
    assert policies["InterruptionPolicy"]["Statement"][0]["Resource"] == queue.outputs["arn"]
    inline = sum(
        len(p.inputs["policy"])
        for p in dev.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.startswith("platform-dev-karpenter-")
    )
    assert inline < INLINE_POLICY_LIMIT


def test_the_policy_depends_on_every_placeholder():
    filled = karpenter.controller_policies(
        partition="aws-cn",
        region="cn-north-1",
        account_id="111122223333",
        cluster_name="other",
        node_role_arn="arn:aws-cn:iam::111122223333:role/n",
        queue_arn="arn:aws-cn:sqs:cn-north-1:111122223333:other",
    )
    text = json.dumps(filled)
    for value in ("aws-cn", "cn-north-1", "111122223333", "kubernetes.io/cluster/other"):
        assert value in text
    assert "arn:aws:" not in text


# --- The interruption queue -----------------------------------------------------------------


def test_interruption_events_reach_an_encrypted_queue(dev):
    queue = dev.one("aws:sqs/queue:Queue")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    (policy,) = dev.of_type("aws:sqs/queuePolicy:QueuePolicy")
    allow, deny = json.loads(policy.inputs["policy"])["Statement"]
    assert allow["Principal"] == {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]}
    assert allow["Action"] == "sqs:SendMessage" and allow["Resource"] == queue.outputs["arn"]
    assert deny["Effect"] == "Deny"
    detail_types = {
        json.loads(rule.inputs["eventPattern"])["detail-type"][0]
        for rule in dev.of_type("aws:cloudwatch/eventRule:EventRule")
    }
    assert detail_types >= {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "AWS Health Event",
    }
    targets = dev.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == len(detail_types)
    assert {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]}


# --- Options and the node provisioner choice ------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"nodeProvisioner": "fargate"},
            "config 'nodeProvisioner' = \"fargate\" is not valid: expected karpenter or "
            "clusterAutoscaler",
        ),
        (
            {"karpenter": {"architectures": ["x86_64"]}},
            "config 'karpenter.architectures' = [\"x86_64\"] is not valid: expected amd64 or "
            "arm64, not ['x86_64']",
        ),
        (
            {"karpenter": {"spot": {"cpuLimit": -1, "memoryLimitGib": 1, "expectedVcpu": 0}}},
            "config 'karpenter.spot.cpuLimit' = -1 is not valid: expected a whole number",
        ),
        (
            {"karpenter": {"consolidateAfter": "soon"}},
            "config 'karpenter.consolidateAfter' = \"soon\" is not valid: expected a duration",
        ),
        ({"karpenter": {"amiVersion": "2026"}}, "config 'karpenter.amiVersion' = \"2026\""),
        ({"karpenter": {"spotLimit": 3}}, "expected only the keys architectures, spot, onDemand"),
    ],
)
def test_mistakes_name_the_key_the_value_and_what_is_accepted(config_error, changes, expected):
    assert expected in config_error(**changes)


def test_the_defaults_are_a_dev_stacks(parse_config):
    settings = parse_config()
    assert settings.cluster.node_provisioner == "karpenter"
    options = settings.karpenter
    assert options.architectures == ("arm64",)
    assert (options.spot.expected_vcpu, options.on_demand.expected_vcpu) == (5, 0)
    defaults = karpenter.KarpenterOptions()
    assert defaults.architectures == ("amd64", "arm64")
    assert (defaults.spot.expected_vcpu, defaults.on_demand.expected_vcpu) == (4, 0)


def test_options_from_code_name_fields():
    with pytest.raises(OptionsError) as raised:
        karpenter.KarpenterOptions(architectures=["sparc"])
    assert "'architectures' = [\"sparc\"] is not valid" in str(raised.value)


def test_the_component_gives_its_architectures_plainly():
    built = {}

    def program():
        component = karpenter.Karpenter(
            "t",
            karpenter.KarpenterArgs(
                karpenter.KarpenterOptions(architectures=["arm64"]),
                cluster_name="t",
                cluster_name_output=pulumi.Output.from_input("t"),
                region="us-east-1",
                provider=k8s.Provider("t"),
                system_node_count=1,
                node_disk_size_gib=40,
            ),
        )
        built["architectures"] = component.architectures

    recording = offline.run_function(program)
    assert built["architectures"] == ("arm64",)
    assert recording.one("app-platform:karpenter:Karpenter").inputs["architectures"] == ["arm64"]


# --- What runs on Karpenter's nodes ---------------------------------------------------------


def test_every_app_shuts_down_within_the_spot_warning(dev, podinfo):
    """A reclaimed spot node is gone two minutes after its warning: each app pod's preStop and
    shutdown (terminationGracePeriodSeconds counts both) fit, with time left to evict."""
    pods = [
        obj["spec"]["template"]["spec"]
        for recording in (dev, podinfo)
        for obj in render.manifests(recording)
        if obj["kind"] in ("Deployment", "StatefulSet")
    ]
    # The apps Argo CD deploys from the repository, too.
    pods += [
        obj["spec"]["template"]["spec"]
        for path in sorted(GITOPS_APPS.rglob("*.yaml"))
        for obj in yaml.safe_load_all(path.read_text())
        if obj and obj.get("kind") in ("Deployment", "StatefulSet")
    ]
    assert len(pods) >= 3
    for spec in pods:
        assert node_pools.spot_reclaim_problem(spec) is None
    slow = {**pods[0], "terminationGracePeriodSeconds": 120}
    assert "120" in node_pools.spot_reclaim_problem(slow)
    long_sleep = {
        **pods[0],
        "containers": [
            {**pods[0]["containers"][0], "lifecycle": {"preStop": {"sleep": {"seconds": 45}}}}
        ],
    }
    assert "preStop" in node_pools.spot_reclaim_problem(long_sleep)


def platform_releases(recording):
    pins = {pin.chart for pin in charts.ALL if pin is not charts.KARPENTER_CRD}
    return [r for r in recording.of_type(RELEASE) if r.inputs["chart"] in pins]


def node_selectors(values):
    if isinstance(values, dict):
        found = [values["nodeSelector"]] if isinstance(values.get("nodeSelector"), dict) else []
        return found + [s for v in values.values() for s in node_selectors(v)]
    if isinstance(values, list):
        return [s for v in values for s in node_selectors(v)]
    return []


# The releases that put pods on the system nodes (cluster.ON_SYSTEM_NODES says why), by the
# node provisioner; every other platform release runs on the workload nodes.
SYSTEM_RELEASES = {"load-balancer-controller", "kube-prometheus-stack"}
PROVISIONER_RELEASE = {"dev": "karpenter", "dev_cluster_autoscaler": "cluster-autoscaler"}


@pytest.mark.parametrize("stack", sorted(PROVISIONER_RELEASE))
def test_only_what_must_not_be_disrupted_runs_on_the_system_nodes(stack, request):
    recording = request.getfixturevalue(stack)
    pinned = set()
    for release in platform_releases(recording):
        selectors = node_selectors(secrets.unwrap(release.inputs["values"]))
        assert all(s == cluster.SYSTEM_NODE_SELECTOR for s in selectors), release.name
        if selectors:
            pinned.add(release.name.removeprefix("platform-dev-"))
    assert pinned == {*SYSTEM_RELEASES, PROVISIONER_RELEASE[stack]}


# Pods on every node: the VPC CNI, kube-proxy, the Pod Identity agent, the EBS CSI node plugin
# and node-exporter.
DAEMON_PODS = 5
# Replicas the charts and add-ons run when the values leave them out: CoreDNS (EKS add-on) 2,
# the EBS CSI controller 2, the Cluster Autoscaler 1; of kube-prometheus-stack, the operator,
# Prometheus and Alertmanager one each.
DEFAULT_REPLICAS = {"coredns": 2, "ebs-csi-controller": 2, "cluster-autoscaler": 1}
KPS_SYSTEM_PODS = 3
# EKS's recommended pod limit without prefix delegation (amazon-eks-ami's eni-max-pods.txt:
# ENIs x (IPv4 addresses per ENI - 1) + 2).
MAX_PODS = {"t4g.medium": 17, "t3.large": 35}


def release_values(recording) -> dict[str, dict]:
    """The platform releases' values, by release name without the stack's prefix."""
    return {
        r.name.removeprefix("platform-dev-"): secrets.unwrap(r.inputs["values"])
        for r in platform_releases(recording)
    }


def pinned_deployments(recording):
    """The stack's own Deployments (an app's in-cluster database) that select the system
    nodes: (name, replicas, pod spec)."""
    for workload in recording.of_type("kubernetes:apps/v1:Deployment"):
        spec = secrets.unwrap(workload.inputs["spec"])
        if spec["template"]["spec"].get("nodeSelector") == cluster.SYSTEM_NODE_SELECTOR:
            yield workload.name, spec.get("replicas", 1), spec["template"]["spec"]


def system_group(recording):
    (group,) = [g for g in recording.of_type("eks:index:ManagedNodeGroup") if "system" in g.name]
    return group


def system_pods(recording) -> dict[str, int]:
    """Pods one system node must hold, by what runs them, counted from the recorded values."""
    values = release_values(recording)
    pods = {"daemon sets": DAEMON_PODS, "kube-prometheus-stack": KPS_SYSTEM_PODS}
    pods |= {name: DEFAULT_REPLICAS[name] for name in ("coredns", "ebs-csi-controller")}
    pods["load-balancer-controller"] = values["load-balancer-controller"]["replicaCount"]
    if "karpenter" in values:
        pods["karpenter"] = values["karpenter"]["replicas"]
    else:
        pods["cluster-autoscaler"] = DEFAULT_REPLICAS["cluster-autoscaler"]
    pods |= {name: replicas for name, replicas, _ in pinned_deployments(recording)}
    return pods


@pytest.mark.parametrize("stack", sorted(PROVISIONER_RELEASE))
def test_the_dev_system_node_has_a_pod_slot_for_everything_pinned_to_it(stack, request):
    """One free slot is kept for a rolling update's extra pod."""
    recording = request.getfixturevalue(stack)
    group = system_group(recording)
    (instance_type,) = group.inputs["instanceTypes"]
    nodes = group.inputs["scalingConfig"]["desiredSize"]
    pods = system_pods(recording)
    # Nothing pinned is left out of the count (the placement test above names the releases).
    assert {*SYSTEM_RELEASES, PROVISIONER_RELEASE[stack]} <= set(pods)
    assert pods["platform-dev-comments-postgres-server"] == 1
    assert sum(pods.values()) <= MAX_PODS[instance_type] * nodes - 1, pods


# What the system node must hold besides pod slots: CPU and memory requests, in millicores and
# MiB. Add-on and DaemonSet defaults where our values set none: CoreDNS (EKS add-on) 100m/70Mi
# per replica; the EBS CSI controller and node plugins 10m/40Mi (chart 2.55.0 `controller.
# resources`, `node.resources`); kube-proxy 100m and the VPC CNI 25m (EKS add-ons, CPU only).
ADDON_REQUESTS = {"coredns": (2 * 100, 2 * 70), "ebs-csi-controller": (2 * 10, 2 * 40)}
DAEMON_REQUESTS = (100 + 25 + 10, 40)
# t4g.medium: 2 vCPU, 4 GiB. Allocatable as AL2023's nodeadm computes it: CPU less 6% of the
# first core and 1% of the second; memory as the kernel reports it (about 3.8 GiB) less
# 11 MiB per pod slot + 255 MiB for the kubelet, and the 100 MiB eviction threshold.
ALLOCATABLE = {"t4g.medium": (2000 - 60 - 10, 3800 - (11 * 17 + 255) - 100)}


def millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def mebibytes(quantity: str) -> int:
    return int(quantity[:-2]) * (1024 if quantity.endswith("Gi") else 1)


def system_requests(recording) -> dict[str, tuple[int, int]]:
    """CPU and memory the pods pinned to one system node request, by what runs them."""
    values = release_values(recording)
    karpenter, lbc = values["karpenter"], values["load-balancer-controller"]
    kps = values["kube-prometheus-stack"]
    requests = [
        ("karpenter", karpenter["controller"]["resources"], karpenter["replicas"]),
        ("load-balancer-controller", lbc["resources"], lbc["replicaCount"]),
        ("prometheus", kps["prometheus"]["prometheusSpec"]["resources"], 1),
        ("alertmanager", kps["alertmanager"]["alertmanagerSpec"]["resources"], 1),
        ("operator", kps["prometheusOperator"]["resources"], 1),
    ]
    for name, replicas, pod in pinned_deployments(recording):
        requests += [(name, c["resources"], replicas) for c in pod["containers"]]
    found = {
        name: (
            count * millicores(resources["requests"]["cpu"]),
            count * mebibytes(resources["requests"]["memory"]),
        )
        for name, resources, count in requests
    }
    return {**found, **ADDON_REQUESTS, "daemon sets": DAEMON_REQUESTS}


def test_the_dev_system_node_has_the_cpu_and_memory_its_pods_request(dev):
    cpu, memory = ALLOCATABLE[system_group(dev).inputs["instanceTypes"][0]]
    requests = system_requests(dev)
    assert "platform-dev-comments-postgres-server" in requests
    assert sum(c for c, _ in requests.values()) <= cpu, requests
    # A quarter of the memory stays free for what requests none (sidecars, exporters).
    assert sum(m for _, m in requests.values()) <= 0.75 * memory, requests


def test_the_policy_fixture_is_read_from_upstream():
    fixture = json.loads(POLICY_FIXTURE.read_text())
    assert fixture["source"]["repo"] == "aws/karpenter-provider-aws"
    assert Path(fixture["source"]["path"]).name == "cloudformation.yaml"
