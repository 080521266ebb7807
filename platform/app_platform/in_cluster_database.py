"""InClusterDatabase: PostgreSQL as one pod in an app's namespace, for stacks where RDS costs
more than the data is worth (`database.inCluster`; the trade-offs are in its description)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from app_platform.cluster import ON_SYSTEM_NODES
from app_platform.database import PORT, DatabaseSpec, generated_password
from app_platform.volumes import BlockStorage, Claim, owned_claims

# PostgreSQL 17, the RDS pin's major version (database.ENGINE_VERSION), pinned by the digest of
# its multi-arch index (docker-library/repo-info, repos/postgres/remote/17.11-alpine.md).
IMAGE = (
    "docker.io/library/postgres:17.11-alpine"
    "@sha256:b0f9560a2de083e2cc7382e75f808c7381a32852a7ec49117deedb300e552b24"
)
# A high uid of no user of the image: its entrypoint gives initdb a passwd entry through
# nss_wrapper, and the volume is writable through fsGroup.
POSTGRES_UID = 10001
DATA_PATH = "/var/lib/postgresql/data"
# The root filesystem is read-only; the server writes only its socket directory and /tmp.
SOCKET_PATH = "/var/run/postgresql"
# A directory below the volume's root, which holds lost+found and so is not empty for initdb.
PGDATA = f"{DATA_PATH}/pgdata"
RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}
# Restarted only when it stops answering for a minute (a long checkpoint is not death).
LIVENESS = {"periodSeconds": 20, "failureThreshold": 3, "timeoutSeconds": 5}
# Inside the cluster the only way in is the NetworkPolicy; the server has no certificate.
URL_OPTIONS = "sslmode=disable"


@dataclass(frozen=True)
class InClusterDatabaseArgs:
    spec: DatabaseSpec
    # Database and user name (letters, digits and underscores).
    database_name: str
    # The app's namespace (created before this) and the labels of the pods that may connect.
    namespace: str
    client_labels: Mapping[str, str]
    storage: BlockStorage
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource] = ()


class InClusterDatabase(pulumi.ComponentResource):
    """Owns a generated password and the Secret holding it, a volume claim the stack owns (its
    EBS volume deleted on destroy, `volumes.VolumeCleanup`), a one-replica PostgreSQL
    Deployment on the system nodes (a spot reclaim cannot take it), its Service, and a
    NetworkPolicy that lets in only the app's pods.

    Gives what `Database` gives: `address`, `port`, `database_name`, `username` and `url`, a
    secret `postgresql://user:password@<name>-postgres.<namespace>.svc:5432/db`.
    """

    address: pulumi.Output[str]
    port: int
    database_name: str
    username: str
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: InClusterDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ):
        inputs = {"spec": args.spec.model_dump(mode="json"), "database_name": args.database_name}
        super().__init__("app-platform:database:InClusterDatabase", name, inputs, opts)
        self._args = args
        self.object_name = f"{args.namespace}-postgres"
        self.labels = {"app.kubernetes.io/name": self.object_name}
        self.database_name = self.username = args.database_name
        self.port = PORT
        password = generated_password(name, parent=self)
        secret = self._k8s(
            k8s.core.v1.Secret,
            f"{name}-credentials",
            string_data={"POSTGRES_PASSWORD": password.result},
        )
        claims = owned_claims(
            name,
            args.storage,
            args.namespace,
            [self._claim()],
            parent=self,
            provider=args.provider,
            depends_on=list(args.depends_on),
        )
        server = self._k8s(
            k8s.apps.v1.Deployment,
            f"{name}-server",
            spec=self._deployment_spec(),
            depends_on=[secret, *claims],
        )
        self._k8s(
            k8s.core.v1.Service,
            f"{name}-service",
            spec={"selector": self.labels, "ports": [{"name": "postgres", "port": PORT}]},
        )
        self._k8s(k8s.networking.v1.NetworkPolicy, f"{name}-ingress", spec=self._policy())
        self.address = pulumi.Output.from_input(f"{self.object_name}.{args.namespace}.svc")
        # The URL waits for the server, so the app starts once PostgreSQL is up.
        self.url = pulumi.Output.secret(
            pulumi.Output.all(password.result, server.metadata.name).apply(
                lambda v: (
                    f"postgresql://{self.username}:{v[0]}@{self.object_name}."
                    f"{args.namespace}.svc:{PORT}/{self.database_name}?{URL_OPTIONS}"
                )
            )
        )
        self.register_outputs({"address": self.address, "url": self.url})

    def _k8s(self, kind: type, resource_name: str, depends_on: Sequence[Any] = (), **fields):
        args = self._args
        return kind(
            resource_name,
            metadata={
                "name": self.object_name,
                "namespace": args.namespace,
                "labels": self.labels,
            },
            **fields,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.depends_on, *depends_on],
            ),
        )

    def _claim(self) -> Claim:
        return Claim(
            key="data",
            name=self.object_name,
            spec={
                "storageClassName": self._args.storage.storage_class_name,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{self._args.spec.storage_gib}Gi"}},
            },
        )

    def _deployment_spec(self) -> dict[str, Any]:
        env = {"POSTGRES_USER": self.username, "POSTGRES_DB": self.database_name, "PGDATA": PGDATA}
        ready = ["pg_isready", "-U", self.username, "-d", self.database_name]
        container = {
            "name": "postgres",
            "image": IMAGE,
            "imagePullPolicy": "Always",
            "env": [{"name": k, "value": v} for k, v in env.items()],
            # The password from the Secret, never in the pod spec.
            "envFrom": [{"secretRef": {"name": self.object_name}}],
            "ports": [{"name": "postgres", "containerPort": PORT}],
            "resources": RESOURCES,
            "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 10},
            "livenessProbe": {"exec": {"command": ready}, **LIVENESS},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [
                {"name": "data", "mountPath": DATA_PATH},
                {"name": "socket", "mountPath": SOCKET_PATH},
                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
            ],
        }
        return {
            "replicas": 1,
            # One volume, one writer: the old pod stops before the new one mounts it.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": self.labels},
            "template": {
                "metadata": {"labels": self.labels},
                "spec": {
                    **ON_SYSTEM_NODES,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": POSTGRES_UID,
                        "runAsGroup": POSTGRES_UID,
                        "fsGroup": POSTGRES_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": self.object_name}},
                        {"name": "socket", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        }

    def _policy(self) -> dict[str, Any]:
        return {
            "podSelector": {"matchLabels": self.labels},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": dict(self._args.client_labels)}}],
                    "ports": [{"port": PORT, "protocol": "TCP"}],
                }
            ],
        }
