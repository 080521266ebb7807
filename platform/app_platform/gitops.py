"""GitOps: Argo CD, its route, and an ApplicationSet delivering every app directory of a repo."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import bcrypt
import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import Field

from app_platform import charts
from app_platform.edge import Route, http_route
from app_platform.options import (
    SECRET,
    AdminPassword,
    Options,
    OptionsError,
    Problem,
    component_inputs,
    matching,
)

NAMESPACE = "argocd"
# Argo CD rejects sessions older than the password's mtime: a fixed time keeps sessions across
# updates (revoke them by deleting `server.secretkey` from argocd-secret).
ADMIN_PASSWORD_MTIME = "2026-01-01T00:00:00Z"  # noqa: S105 (a timestamp)
# The Secret Argo CD reads the admin password hash from. The stack owns it, not the chart, so
# the hash is the only secret and every other Argo CD value shows in plans and previews. The
# server adds `server.secretkey` (its JWT signing key) itself on first start.
ADMIN_SECRET = "argocd-secret"  # noqa: S105 (the Secret's name)
ADMIN_SECRET_LABELS = {
    "app.kubernetes.io/name": ADMIN_SECRET,
    "app.kubernetes.io/part-of": "argocd",
}
# Stacks created before the stack owned this Secret had the chart make it; Helm deletes what
# leaves a chart unless the live object says keep, and this Secret must outlive that upgrade.
KEEP_ON_HELM_UPGRADE = {"helm.sh/resource-policy": "keep"}
RELEASE = "argocd"
# Object names start with this (e.g. Service `argocd-server`) instead of `argocd-argo-cd-`.
FULLNAME = "argocd"
SERVER_SERVICE = f"{FULLNAME}-server"
SERVER_PORT = 80
ARGOCD_HOST = "argocd"
PASSWORD_LENGTH = 24
BCRYPT_COST = 10
BCRYPT_SALT_BYTES = 16
IN_CLUSTER = "https://kubernetes.default.svc"
# Plain manifests in git cannot know the stack's domain or Gateway. Each app directory's
# kustomization takes them from a ConfigMap of this name (gitops/apps/hello-world shows how,
# with kustomize replacements); the ApplicationSet patches in this stack's values.
PLATFORM_CONFIG_MAP = "platform"
DEFAULT_PATH = "gitops/apps"
DEFAULT_REVISION = "main"
GIT_URL_PATTERN = re.compile(r"^(https://[^\s/]+/\S+|git@[^\s:]+:\S+|ssh://\S+)$")
GIT_URL_ACCEPTED = "a git repository URL (https://host/owner/repo.git or git@host:owner/repo.git)"
GIT_PATH_PATTERN = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
GIT_PATH_ACCEPTED = "a directory inside the repository, relative, without '..' (e.g. gitops/apps)"
GIT_REVISION_PATTERN = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")


def _inside(path: str) -> bool:
    return ".." not in path.split("/")


class GitOpsOptions(Options):
    """What Argo CD deploys, and its admin login."""

    repo_url: matching(GIT_URL_PATTERN, GIT_URL_ACCEPTED, empty=True) = Field(
        "",
        alias="gitopsRepoUrl",
        description="Git repository Argo CD watches; every directory under gitopsPath becomes "
        "an Argo CD application. Empty: this checkout's origin remote, as an https URL.",
    )
    path: matching(GIT_PATH_PATTERN, GIT_PATH_ACCEPTED, also=_inside) = Field(
        DEFAULT_PATH,
        alias="gitopsPath",
        description="Directory of the git repository whose subdirectories are app manifests "
        "(each delivered to the namespace of its name).",
    )
    revision: matching(GIT_REVISION_PATTERN, "a branch, tag or commit (e.g. main)") = Field(
        DEFAULT_REVISION,
        alias="gitopsRevision",
        description="Branch, tag or commit of gitopsRepoUrl that Argo CD deploys.",
    )
    admin_password: AdminPassword = Field(
        None,
        alias="argocdAdminPassword",
        description="Argo CD admin password (set it with --secret); empty: one is generated and "
        "exported as the secret output argocdAdminPassword.",
        json_schema_extra=SECRET,
    )


@dataclass(frozen=True)
class GitOpsArgs:
    """The options (with `repo_url` set), and what the edge gives: the domain, the Gateway and
    the labels its routes' namespaces need."""

    options: GitOpsOptions
    provider: k8s.Provider
    domain: str
    gateway_name: str
    gateway_namespace: str
    route_namespace_labels: dict[str, str]
    scheme: str = "http"
    # Gateway API CRDs and the monitoring stack (its CRDs decide which ServiceMonitors Argo CD
    # renders): wait for them.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.options.repo_url:
            raise OptionsError(
                [Problem("options.repo_url", "", "a git repository URL Argo CD can read")],
                "invalid GitOpsArgs",
            )


class GitOps(pulumi.ComponentResource):
    """Owns the argocd namespace, the Argo CD release (server plain HTTP behind the Gateway,
    on the workload nodes), the argocd-secret Secret holding the admin password's
    bcrypt hash (the only secret: the release's values are plain), its HTTPRoute at
    `argocd.<domain>`, and an ApplicationSet that makes one Application per directory under
    `path` of the git repository, deployed to the namespace of the directory's name.

    Gives `url`, `admin_password` (secret), `namespace` and `crds_ready` (resources to depend on
    before creating argoproj.io custom resources).
    """

    url: str
    admin_password: pulumi.Output[str]
    namespace: str
    crds_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: GitOpsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "app-platform:gitops:GitOps",
            name,
            {**component_inputs(args.options), "domain": args.domain},
            opts,
        )
        self._args = args
        self.namespace = NAMESPACE
        self.host = f"{ARGOCD_HOST}.{args.domain}"
        self.url = f"{args.scheme}://{self.host}"

        namespace = k8s.core.v1.Namespace(
            f"{name}-argocd",
            metadata={"name": NAMESPACE, "labels": args.route_namespace_labels},
            opts=self._opts(depends_on=list(args.depends_on)),
        )
        password, password_hash = self._admin_password(name)
        self.admin_password = pulumi.Output.secret(password)
        admin_secret = k8s.core.v1.Secret(
            f"{name}-argocd-secret",
            metadata={
                "name": ADMIN_SECRET,
                "namespace": NAMESPACE,
                "labels": ADMIN_SECRET_LABELS,
                "annotations": KEEP_ON_HELM_UPGRADE,
            },
            string_data={
                "admin.password": pulumi.Output.secret(password_hash),
                "admin.passwordMtime": ADMIN_PASSWORD_MTIME,
            },
            opts=self._opts(depends_on=[namespace]),
        )
        self.release = charts.release(
            f"{name}-argocd",
            charts.ARGO_CD,
            release_name=RELEASE,
            namespace=NAMESPACE,
            values=self.values(),
            opts=self._opts(depends_on=[namespace, admin_secret, *args.depends_on]),
        )
        self.crds_ready: list[pulumi.Resource] = [self.release]
        http_route(
            f"{name}-argocd-route",
            Route("argocd-server", NAMESPACE, self.host, SERVER_SERVICE, SERVER_PORT),
            gateway_name=args.gateway_name,
            gateway_namespace=args.gateway_namespace,
            opts=self._opts(depends_on=[self.release, *args.depends_on]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-apps",
            api_version="argoproj.io/v1alpha1",
            kind="ApplicationSet",
            metadata={"name": "apps", "namespace": NAMESPACE},
            spec=self.application_set_spec(),
            opts=self._opts(depends_on=self.crds_ready),
        )
        self.register_outputs(
            {"url": self.url, "admin_password": self.admin_password, "namespace": self.namespace}
        )

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **kwargs)

    def _admin_password(self, name: str) -> tuple[pulumi.Input[str], pulumi.Output[str]]:
        """The admin password and the bcrypt hash Argo CD wants, both stable across runs."""
        if self._args.options.admin_password is None:
            generated = random.RandomPassword(
                f"{name}-argocd-admin",
                length=PASSWORD_LENGTH,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            return generated.result, generated.bcrypt_hash
        # A salt kept in state: hashing the configured password again gives the same hash, so
        # an unchanged password never upgrades the release.
        salt = random.RandomId(
            f"{name}-argocd-admin-salt",
            byte_length=BCRYPT_SALT_BYTES,
            opts=pulumi.ResourceOptions(parent=self),
        )
        password_hash = pulumi.Output.all(self._args.options.admin_password, salt.hex).apply(
            lambda v: bcrypt_hash(v[0], bytes.fromhex(v[1]))
        )
        return self._args.options.admin_password, password_hash

    def values(self) -> dict[str, Any]:
        # On the workload nodes (cluster.ON_SYSTEM_NODES says why).
        return {
            "fullnameOverride": FULLNAME,
            "global": {"domain": self.host},
            "configs": {
                # TLS ends at the NLB (or nowhere, on a .test domain); the server speaks HTTP to
                # the Gateway instead of redirecting to its own self-signed HTTPS.
                "params": {"server.insecure": True},
                # The chart would write https://<global.domain>; this is the URL users open
                # (http unless a certificate is configured), which SSO and links are built on.
                "cm": {"url": self.url},
                # argocd-secret is the stack's own (ADMIN_SECRET).
                "secret": {"createSecret": False},
            },
            # Logins are the admin account only; no SSO provider is configured.
            "dex": {"enabled": False},
        }

    def platform_data(self) -> dict[str, str]:
        """What an app's manifests may need from the platform (the `platform` ConfigMap)."""
        return {
            "domain": self._args.domain,
            "gatewayName": self._args.gateway_name,
            "gatewayNamespace": self._args.gateway_namespace,
        }

    def application_set_spec(self) -> dict[str, Any]:
        args = self._args
        return {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {
                    "git": {
                        "repoURL": args.options.repo_url,
                        "revision": args.options.revision,
                        "directories": [{"path": f"{args.options.path}/*"}],
                    }
                }
            ],
            "template": {
                "metadata": {"name": "{{.path.basename}}"},
                "spec": {
                    "project": "default",
                    "source": {
                        "repoURL": args.options.repo_url,
                        "targetRevision": args.options.revision,
                        "path": "{{.path.path}}",
                        "kustomize": {
                            "patches": [
                                {
                                    "target": {"kind": "ConfigMap", "name": PLATFORM_CONFIG_MAP},
                                    "patch": json.dumps(
                                        [
                                            {
                                                "op": "replace",
                                                "path": "/data",
                                                "value": self.platform_data(),
                                            }
                                        ]
                                    ),
                                }
                            ]
                        },
                    },
                    "destination": {"server": IN_CLUSTER, "namespace": "{{.path.basename}}"},
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                        # The namespace may attach routes to the shared Gateway.
                        "managedNamespaceMetadata": {"labels": args.route_namespace_labels},
                    },
                },
            },
        }


def bcrypt_hash(password: str, salt: bytes) -> str:
    """bcrypt of `password` with a given 16-byte salt, in the `$2a$` form Argo CD reads."""
    # bcrypt's base64 is standard base64 over another alphabet, without padding.
    encoded = base64.b64encode(salt).decode().rstrip("=")
    salt_text = encoded.translate(
        str.maketrans(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        )
    )
    full_salt = f"$2a${BCRYPT_COST:02d}${salt_text}".encode()
    return bcrypt.hashpw(password.encode(), full_salt).decode()
