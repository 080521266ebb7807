"""Database: a private RDS PostgreSQL instance for one app, reachable only from the cluster."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pydantic import Field, field_validator, model_validator

from app_platform.options import (
    OptionsError,
    Problem,
    StrictOptions,
    whole_number,
)

ENGINE = "postgres"
# Pinned to an exact minor that RDS offers (17.1-17.4 left standard support in May 2026 and were
# upgraded to 17.7+). Minor upgrades are deliberate changes here, not maintenance-window
# surprises: with automatic minor upgrades on, RDS would move ahead of the pin and every
# `pulumi up` would then try to go back.
ENGINE_VERSION = "17.7"
PORT = 5432
STORAGE_TYPE = "gp3"
PASSWORD_LENGTH = 32
# RFC 3986 unreserved characters only: the password sits inside DATABASE_URL unescaped, and RDS
# refuses '/', '@', '"' and spaces in master passwords.
PASSWORD_SPECIALS = "-_.~"  # noqa: S105 (a character set, not a password)
# RDS PostgreSQL 15+ requires TLS by default (rds.force_ssl = 1); say so in the URL as well, so a
# client never falls back to plain text.
URL_OPTIONS = "sslmode=require"
LOG_EXPORTS = ["postgresql", "upgrade"]
# RDS would create the exports' log groups itself, kept forever and left behind by destroy; the
# stack creates them first, so they expire and go with the database.
LOG_RETENTION_DAYS = 30
# Backups run in the small hours (UTC) and maintenance after them, away from working hours.
BACKUP_WINDOW = "03:00-04:00"
MAINTENANCE_WINDOW = "sun:04:30-sun:05:30"


DB_INSTANCE_CLASS_PATTERN = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
# RDS limits: gp3 storage 20-65536 GiB, automated backups kept 1-35 days (0 would turn them off).
# An EBS gp3 volume (inCluster) may be as small as 1 GiB.
MIN_STORAGE_GIB, MAX_STORAGE_GIB = 20, 65536
MIN_VOLUME_GIB = 1
MIN_BACKUP_DAYS, MAX_BACKUP_DAYS = 1, 35
# The keys that only mean something for RDS: refused with inCluster rather than ignored.
RDS_ONLY = (
    "instance_class",
    "max_storage_gib",
    "backup_retention_days",
    "deletion_protection",
    "final_snapshot",
    "multi_az",
)


StorageGib = whole_number(MIN_VOLUME_GIB, MAX_STORAGE_GIB)


class DatabaseSpec(StrictOptions):
    """What an app asks of its database (the `database` key of an app)."""

    instance_class: str = Field(
        "db.t4g.micro",
        alias="instanceClass",
        description="The RDS instance class.",
    )
    in_cluster: bool = Field(
        False,
        alias="inCluster",
        description="PostgreSQL as one pod in the app's namespace, on the system nodes, with a "
        "gp3 volume the stack owns, instead of RDS: about $14/month less, for a dev stack. No "
        "automated backups or point-in-time recovery, no standby (it stops while its node is "
        "replaced), no TLS inside the cluster (only the app's pods may connect), and upgrades "
        "are yours. The RDS keys (instanceClass, maxStorageGib, backupRetentionDays, "
        "deletionProtection, finalSnapshot, multiAz) are refused with it.",
    )
    storage_gib: StorageGib = Field(
        20,
        alias="storageGib",
        description="Storage to start with, in GiB: at least 20 on RDS, 1 in the cluster.",
    )
    max_storage_gib: StorageGib = Field(
        100, alias="maxStorageGib", description="Storage autoscaling grows up to this."
    )
    backup_retention_days: whole_number(MIN_BACKUP_DAYS, MAX_BACKUP_DAYS) = Field(
        7, alias="backupRetentionDays", description="Days automated backups are kept."
    )
    deletion_protection: bool = Field(
        True, alias="deletionProtection", description="RDS refuses to delete the instance."
    )
    final_snapshot: bool = Field(
        True, alias="finalSnapshot", description="A snapshot is taken before deletion."
    )
    multi_az: bool = Field(False, alias="multiAz", description="A standby in a second zone.")

    @field_validator("instance_class", mode="before")
    @classmethod
    def _instance_class(cls, value: Any) -> Any:
        if not isinstance(value, str) or not DB_INSTANCE_CLASS_PATTERN.fullmatch(value):
            raise ValueError("expected an RDS instance class such as db.t4g.micro")
        return value

    @model_validator(mode="after")
    def _fits_where_it_runs(self) -> Self:
        if self.in_cluster:
            problems = [
                Problem(
                    self.key(f),
                    getattr(self, f),
                    f"no value: an RDS setting, unused with {self.key('in_cluster')}",
                )
                for f in RDS_ONLY
                if f in self.model_fields_set
            ]
        elif self.storage_gib < MIN_STORAGE_GIB:
            accepted = (
                f"at least {MIN_STORAGE_GIB} on RDS "
                f"({self.key('in_cluster')}: at least {MIN_VOLUME_GIB})"
            )
            problems = [Problem(self.key("storage_gib"), self.storage_gib, accepted)]
        elif self.max_storage_gib < self.storage_gib:
            least = f"at least {self.key('storage_gib')} ({self.storage_gib})"
            problems = [Problem(self.key("max_storage_gib"), self.max_storage_gib, least)]
        else:
            problems = []
        if problems:
            raise OptionsError(problems)
        return self


@dataclass(frozen=True)
class DatabaseArgs:
    spec: DatabaseSpec
    # Database and user name (letters, digits and underscores).
    database_name: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    # Only members of this security group (the cluster's nodes, where pods run) may connect.
    client_security_group_id: pulumi.Input[str]


def generated_password(name: str, parent: pulumi.Resource) -> random.RandomPassword:
    """A database's password, generated once and kept in state (a secret)."""
    return random.RandomPassword(
        f"{name}-password",
        length=PASSWORD_LENGTH,
        special=True,
        override_special=PASSWORD_SPECIALS,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def sql_identifier(name: str) -> str:
    """A PostgreSQL/RDS identifier for an app name: `my-app` -> `my_app`."""
    identifier = re.sub(r"[^a-z0-9_]", "_", name.lower())
    return identifier if identifier[:1].isalpha() else f"app_{identifier}"


class Database(pulumi.ComponentResource):
    """Owns a DB subnet group over the private subnets, a security group open on 5432 only to
    the client security group, a generated master password, and an encrypted, backed-up RDS
    PostgreSQL instance with deletion protection and a final snapshot as configured.

    Gives `address`, `port`, `database_name`, `username` and `url`: a secret
    `postgresql://user:password@host:5432/db?sslmode=require`.
    """

    address: pulumi.Output[str]
    port: int
    database_name: str
    username: str
    url: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        inputs = {"spec": args.spec.model_dump(mode="json"), "database_name": args.database_name}
        super().__init__("app-platform:database:Database", name, inputs, opts)
        subnets, security_group = self._network(name, args)
        password = generated_password(name, parent=self)
        self.database_name = args.database_name
        self.username = args.database_name
        self.port = PORT
        instance = self._instance(name, args.spec, subnets, security_group, password)
        self.address = instance.address
        self.url = pulumi.Output.secret(
            pulumi.Output.format(
                "postgresql://{0}:{1}@{2}:{3}/{4}?{5}",
                self.username,
                password.result,
                instance.address,
                PORT,
                self.database_name,
                URL_OPTIONS,
            )
        )
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "database_name": self.database_name,
                "username": self.username,
                "url": self.url,
            }
        )

    def _network(
        self, name: str, args: DatabaseArgs
    ) -> tuple[aws.rds.SubnetGroup, aws.ec2.SecurityGroup]:
        """The private subnets it lives in, and a security group only the clients get through."""
        child = pulumi.ResourceOptions(parent=self)
        subnets = aws.rds.SubnetGroup(
            name,
            name=name,
            subnet_ids=args.subnet_ids,
            description=f"Private subnets of the {name} database",
            opts=child,
        )
        security_group = aws.ec2.SecurityGroup(
            name,
            vpc_id=args.vpc_id,
            description=f"PostgreSQL of {name}, reachable only from the cluster's nodes",
            tags={"Name": name},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-nodes",
            security_group_id=security_group.id,
            referenced_security_group_id=args.client_security_group_id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="PostgreSQL from the cluster's nodes",
            opts=child,
        )
        # No egress rule: the database never opens connections of its own.
        return subnets, security_group

    def _instance(
        self,
        name: str,
        spec: DatabaseSpec,
        subnets: aws.rds.SubnetGroup,
        security_group: aws.ec2.SecurityGroup,
        password: random.RandomPassword,
    ) -> aws.rds.Instance:
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{export}-logs",
                name=f"/aws/rds/instance/{name}/{export}",
                retention_in_days=LOG_RETENTION_DAYS,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for export in LOG_EXPORTS
        ]
        return aws.rds.Instance(
            name,
            identifier=name,
            engine=ENGINE,
            engine_version=ENGINE_VERSION,
            auto_minor_version_upgrade=False,
            instance_class=spec.instance_class,
            allocated_storage=spec.storage_gib,
            max_allocated_storage=spec.max_storage_gib,
            storage_type=STORAGE_TYPE,
            storage_encrypted=True,
            db_name=self.database_name,
            username=self.username,
            password=password.result,
            port=PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[security_group.id],
            publicly_accessible=False,
            multi_az=spec.multi_az,
            backup_retention_period=spec.backup_retention_days,
            backup_window=BACKUP_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            copy_tags_to_snapshot=True,
            deletion_protection=spec.deletion_protection,
            skip_final_snapshot=not spec.final_snapshot,
            final_snapshot_identifier=self._final_snapshot_name(name)
            if spec.final_snapshot
            else None,
            enabled_cloudwatch_logs_exports=LOG_EXPORTS,
            # Deleted after the instance, which would otherwise recreate them as it stops.
            opts=pulumi.ResourceOptions(parent=self, depends_on=log_groups),
        )

    def _final_snapshot_name(self, name: str) -> pulumi.Output[str]:
        """Unique per database: a stack destroyed twice must not collide with its old snapshot."""
        suffix = random.RandomId(
            f"{name}-final-snapshot", byte_length=4, opts=pulumi.ResourceOptions(parent=self)
        )
        return pulumi.Output.concat(name, "-final-", suffix.hex)
