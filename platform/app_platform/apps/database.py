"""The app's database, when the spec asks for one: a private RDS PostgreSQL `Database` in the
platform's network, or (`database.inCluster`) an `InClusterDatabase` in the app's namespace."""

from __future__ import annotations

import pulumi

from app_platform.apps.parts import Parts
from app_platform.database import Database, DatabaseArgs, sql_identifier
from app_platform.in_cluster_database import InClusterDatabase, InClusterDatabaseArgs


def database(parts: Parts) -> Database | InClusterDatabase | None:
    spec, platform = parts.spec, parts.platform
    if spec.database is None:
        return None
    if spec.database.in_cluster:
        return _in_cluster(parts)
    if (
        platform.vpc_id is None
        or platform.private_subnet_ids is None
        or platform.node_security_group_id is None
    ):
        raise ValueError(f"app {parts.app} wants a database: the platform must give the network")
    return Database(
        f"{parts.prefix}-{parts.app}",
        DatabaseArgs(
            spec=spec.database,
            database_name=sql_identifier(parts.app),
            vpc_id=platform.vpc_id,
            subnet_ids=platform.private_subnet_ids,
            client_security_group_id=platform.node_security_group_id,
        ),
        opts=pulumi.ResourceOptions(parent=parts.parent),
    )


def _in_cluster(parts: Parts) -> InClusterDatabase:
    storage = parts.platform.block_storage
    if storage is None:
        # An app stack reads the platform from stack outputs, which carry no storage.
        raise ValueError(
            f"apps.{parts.app}.database.inCluster needs the platform in the same stack (its EBS "
            "storage); in an app stack, use RDS"
        )
    return InClusterDatabase(
        f"{parts.name}-postgres",
        InClusterDatabaseArgs(
            spec=parts.spec.database,
            database_name=sql_identifier(parts.app),
            namespace=parts.app,
            client_labels=parts.selector,
            storage=storage,
            provider=parts.platform.provider,
            depends_on=[parts.namespace_resource] if parts.namespace_resource else [],
        ),
        opts=pulumi.ResourceOptions(parent=parts.parent),
    )
