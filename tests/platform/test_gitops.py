"""GitOps: Argo CD behind the Gateway, its admin password, the ApplicationSet and hello-world."""

import json
from pathlib import Path

import bcrypt
import pytest
import yaml

from app_platform import gitops, offline
from tests.upstream import checks

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "kubernetes:helm.sh/v3:Release"
APPLICATION_SET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
PASSWORD = "argo-admin-password-42"
HELLO = ROOT / "gitops/apps/hello-world"


def custom_resource(resource):
    return {key: resource.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}


def argocd(recording):
    return recording.one(RELEASE, "platform-dev-argocd")


@pytest.fixture(scope="module")
def with_password():
    return offline.run(ROOT, "dev", {"argocdAdminPassword": PASSWORD})


def test_argocd_is_pinned_and_its_values_known(dev):
    release = argocd(dev)
    assert (release.inputs["chart"], release.inputs["version"]) == ("argo-cd", "10.1.1")
    assert release.inputs["repositoryOpts"]["repo"] == "https://argoproj.github.io/argo-helm"
    values = offline.unwrap_secrets(release.inputs["values"])
    assert checks.unknown_values_keys("argo-cd", values) == []
    assert values["configs"]["params"]["server.insecure"] is True
    assert values["global"]["domain"] == "argocd.dev.app-platform.test"
    assert values["global"]["nodeSelector"] == {"node-pool": "system"}


def test_generated_admin_password_reaches_argocd_only_as_a_bcrypt_hash(dev):
    assert "__secret__" in argocd(dev).inputs["values"]
    values = offline.unwrap_secrets(argocd(dev).inputs["values"])
    assert values["configs"]["secret"]["argocdServerAdminPassword"].startswith("$2a$")
    output = dev.outputs["argocdAdminPassword"]
    assert output.secret and output.value
    assert output.value not in json.dumps(values)


def test_configured_admin_password_is_hashed_and_exported_as_secret(with_password):
    values = offline.unwrap_secrets(argocd(with_password).inputs["values"])
    password_hash = values["configs"]["secret"]["argocdServerAdminPassword"]
    assert bcrypt.checkpw(PASSWORD.encode(), password_hash.encode())
    output = with_password.outputs["argocdAdminPassword"]
    assert output.secret and output.value == PASSWORD


def test_bcrypt_hash_is_stable_for_one_salt():
    salt = bytes(range(16))
    first = gitops.bcrypt_hash("a-long-password", salt)
    assert first == gitops.bcrypt_hash("a-long-password", salt)
    assert first != gitops.bcrypt_hash("a-long-password", bytes(16))
    assert bcrypt.checkpw(b"a-long-password", first.encode())


def test_argocd_is_installed_after_the_monitoring_stack_and_routed(dev):
    assert dev.depends_on(argocd(dev), dev.one(RELEASE, "platform-dev-kube-prometheus-stack"))
    route = dev.one(HTTP_ROUTE, "platform-dev-argocd-route")
    assert checks.crd_errors(custom_resource(route)) == []
    spec = route.inputs["spec"]
    assert spec["hostnames"] == ["argocd.dev.app-platform.test"]
    assert spec["rules"][0]["backendRefs"] == [{"name": "argocd-server", "port": 80}]
    assert dev.depends_on(route, dev.one(RELEASE, "platform-dev-envoy-gateway"))
    assert dev.outputs["argocdUrl"].value == "http://argocd.dev.app-platform.test"


def test_application_set_delivers_every_app_directory(dev):
    application_set = dev.one(APPLICATION_SET)
    assert checks.crd_errors(custom_resource(application_set)) == []
    assert dev.depends_on(application_set, argocd(dev))
    spec = application_set.inputs["spec"]
    (generator,) = spec["generators"]
    assert generator["git"]["directories"] == [{"path": "gitops/apps/*"}]
    assert generator["git"]["revision"] == "main"
    template = spec["template"]["spec"]
    assert template["destination"]["namespace"] == "{{.path.basename}}"
    assert "CreateNamespace=true" in template["syncPolicy"]["syncOptions"]
    labels = template["syncPolicy"]["managedNamespaceMetadata"]["labels"]
    assert labels == {"app-platform.io/gateway-routes": "allowed"}
    (patch,) = template["source"]["kustomize"]["patches"]
    assert patch["target"] == {"kind": "ConfigMap", "name": "platform"}
    (operation,) = json.loads(patch["patch"])
    assert operation["value"] == {
        "domain": "dev.app-platform.test",
        "gatewayName": dev.outputs["gatewayName"].value,
        "gatewayNamespace": "envoy-gateway-system",
    }


def test_application_set_follows_config(run_stack):
    recording = run_stack(
        {
            "gitopsRepoUrl": "git@github.com:team/manifests.git",
            "gitopsPath": "clusters/dev",
            "gitopsRevision": "v2",
        }
    )
    spec = recording.one(APPLICATION_SET).inputs["spec"]
    git = spec["generators"][0]["git"]
    assert (git["repoURL"], git["revision"]) == ("git@github.com:team/manifests.git", "v2")
    assert git["directories"] == [{"path": "clusters/dev/*"}]
    assert spec["template"]["spec"]["source"]["repoURL"] == "git@github.com:team/manifests.git"


def manifests():
    kustomization = yaml.safe_load((HELLO / "kustomization.yaml").read_text())
    return kustomization, {
        doc["kind"]: doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((HELLO / name).read_text())
    }


def test_hello_world_is_hardened_and_pinned():
    _, objects = manifests()
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    image = container["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
    assert container["readinessProbe"] and container["livenessProbe"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_hello_world_route_gets_the_stacks_host_and_gateway():
    """Apply the ApplicationSet's patch and the kustomization's replacements as kustomize would."""
    kustomization, objects = manifests()
    data = {
        "domain": "dev.app-platform.test",
        "gatewayName": "platform-dev-public",
        "gatewayNamespace": "envoy-gateway-system",
    }
    route = objects["HTTPRoute"]
    for replacement in kustomization["replacements"]:
        value = data[replacement["source"]["fieldPath"].split(".", 1)[1]]
        (target,) = replacement["targets"]
        assert target["select"] == {"kind": "HTTPRoute", "name": route["metadata"]["name"]}
        (field_path,) = target["fieldPaths"]
        *parents, last = [int(p) if p.isdigit() else p for p in field_path.split(".")]
        node = route
        for part in parents:
            node = node[part]
        options = target.get("options")
        if options:
            parts = node[last].split(options["delimiter"])
            parts[options["index"]] = value
            value = options["delimiter"].join(parts)
        node[last] = value
    assert route["spec"]["hostnames"] == ["hello.dev.app-platform.test"]
    assert route["spec"]["parentRefs"] == [
        {"name": "platform-dev-public", "namespace": "envoy-gateway-system"}
    ]
    assert route["spec"]["rules"][0]["backendRefs"][0]["port"] == 80
    assert checks.crd_errors(route) == []
    platform = yaml.safe_load((HELLO / "platform.yaml").read_text())
    assert set(platform["data"]) == set(data)  # every key the ApplicationSet patches in


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"gitopsRepoUrl": "github.com/x"}, "'gitopsRepoUrl' = \"github.com/x\" is not valid"),
        ({"gitopsPath": "../etc"}, "'gitopsPath' = \"../etc\" is not valid"),
        ({"gitopsPath": "/abs"}, "a directory inside the repository"),
        ({"gitopsRevision": "has space"}, "'gitopsRevision' = \"has space\" is not valid"),
        ({"argocdAdminPassword": "tiny"}, "'argocdAdminPassword' = [secret] is not valid"),
    ],
)
def test_gitops_config_mistakes_are_refused(config_error, changes, expected):
    message = config_error(**changes)
    assert expected in message
    assert "tiny" not in message
