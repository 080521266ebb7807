"""The app's database: a private PostgreSQL `Database` in the platform's network, when the spec
asks for one."""

from __future__ import annotations

import pulumi

from app_platform.apps.parts import Parts
from app_platform.database import Database, DatabaseArgs, sql_identifier


def database(parts: Parts) -> Database | None:
    spec, platform = parts.spec, parts.platform
    if spec.database is None:
        return None
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
