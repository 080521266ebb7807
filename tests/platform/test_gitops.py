"""GitOps: Argo CD behind the Gateway, its admin password, the ApplicationSet and hello-world."""

import json
from pathlib import Path

import bcrypt
import pytest
import yaml

from app_platform import gitops
from app_platform.options import OptionsError
from app_platform_tools import offline, plan, secrets
from tests.upstream import checks

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "kubernetes:helm.sh/v3:Release"
APPLICATION_SET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"
SECRET = "kubernetes:core/v1:Secret"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0e8c0a5b-7c1d-4c8e-9b51-3f1f1f1f1f1f"
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
    values = secrets.unwrap(release.inputs["values"])
    assert checks.unknown_values_keys("argo-cd", values) == []
    assert values["configs"]["params"]["server.insecure"] is True
    assert values["global"]["domain"] == "argocd.dev.app-platform.test"
    assert "nodeSelector" not in values["global"]


def admin_secret(recording):
    return recording.one(SECRET, "platform-dev-argocd-secret")


def without_secrets(value):
    """Recorded data with every Pulumi secret taken out: what plans and previews show."""
    return secrets.redact(value)


def test_only_the_password_hash_is_secret_every_other_setting_shows_in_plans(dev):
    values = argocd(dev).inputs["values"]
    assert secrets.SECRET_KEY not in json.dumps(values)
    assert values["configs"]["secret"] == {"createSecret": False}
    password_hash = secrets.unwrap(admin_secret(dev).inputs["stringData"])["admin.password"]
    assert password_hash.startswith("$2a$")
    visible = json.dumps(
        [without_secrets(r.inputs) for r in dev.resources]
        + [o.value for o in dev.outputs.values() if not o.secret]
    )
    assert password_hash not in visible
    # The offline plan (and the fork plan diff built on it) shows the values unredacted.
    (entry,) = [r for r in plan.to_json(dev)["resources"] if r["urn"] == argocd(dev).urn]
    assert entry["inputs"]["values"] == values


def test_argocd_reads_the_hash_from_the_stacks_own_argocd_secret(dev):
    secret = admin_secret(dev)
    metadata = secret.inputs["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("argocd-secret", "argocd")
    assert metadata["labels"]["app.kubernetes.io/part-of"] == "argocd"
    # Kept when an older stack's chart-made argocd-secret leaves the chart on upgrade.
    assert metadata["annotations"] == {"helm.sh/resource-policy": "keep"}
    data = secrets.unwrap(secret.inputs["stringData"])
    # The keys Argo CD 3.4 reads; it writes server.secretkey itself (FACTS.md 10).
    assert set(data) == {"admin.password", "admin.passwordMtime"}
    assert data["admin.passwordMtime"] == gitops.ADMIN_PASSWORD_MTIME
    assert secrets.SECRET_KEY in json.dumps(secret.inputs["stringData"])
    assert dev.depends_on(argocd(dev), secret)
    output = dev.outputs["argocdAdminPassword"]
    assert output.secret and output.value
    assert output.value not in json.dumps(secrets.unwrap(secret.inputs))


def test_configured_admin_password_is_hashed_and_exported_as_secret(with_password):
    data = secrets.unwrap(admin_secret(with_password).inputs["stringData"])
    assert bcrypt.checkpw(PASSWORD.encode(), data["admin.password"].encode())
    output = with_password.outputs["argocdAdminPassword"]
    assert output.secret and output.value == PASSWORD


@pytest.mark.parametrize("certificate", [None, CERTIFICATE])
def test_argocds_own_url_is_the_url_the_stack_serves(run_stack, dev, certificate):
    recording = run_stack({"certificateArn": certificate}) if certificate else dev
    url = argocd(recording).inputs["values"]["configs"]["cm"]["url"]
    assert url == recording.outputs["argocdUrl"].value
    assert url.startswith("https://" if certificate else "http://")


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


def test_options_default_to_the_repositorys_app_directory_on_main():
    options = gitops.GitOpsOptions()
    assert (options.repo_url, options.path, options.revision) == ("", "gitops/apps", "main")
    assert options.admin_password is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"repo_url": "github.com/x"},
            "'repo_url' = \"github.com/x\" is not valid: expected a git",
        ),
        ({"path": "a/../b"}, "'path' = \"a/../b\" is not valid: expected a directory inside"),
        ({"revision": "has space"}, "'revision' = \"has space\" is not valid"),
        ({"admin_password": "tiny"}, "'admin_password' = [secret] is not valid: expected at least"),
    ],
)
def test_options_built_in_code_refuse_what_config_refuses(given, expected):
    with pytest.raises(OptionsError) as raised:
        gitops.GitOpsOptions(**given)
    assert expected in str(raised.value)
    assert "tiny" not in str(raised.value)


def test_args_need_a_repository_to_read():
    with pytest.raises(OptionsError, match=r"'options\.repo_url' = \"\" is not valid"):
        gitops.GitOpsArgs(
            gitops.GitOpsOptions(),
            provider=None,
            domain="example.test",
            gateway_name="gw",
            gateway_namespace="edge",
            route_namespace_labels={},
        )


def test_the_component_records_its_options_and_keeps_the_password_secret(with_password):
    component = with_password.one("app-platform:gitops:GitOps")
    inputs = without_secrets(component.inputs)
    assert inputs["path"] == "gitops/apps" and inputs["revision"] == "main"
    assert inputs["admin_password"] == "[secret]"
    assert PASSWORD not in json.dumps(inputs)
