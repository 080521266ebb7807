"""Settings, read once from the environment and validated before anything starts.

Every knob is an environment variable so the same image runs on a laptop, in CI and on
Kubernetes. Invalid values stop the process at start with a message naming the variable,
instead of failing later under traffic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

LOG_LEVELS = ("debug", "info", "warning", "error")
SQLITE_SYNC_MODES = ("NORMAL", "FULL")
POSTGRES_SCHEMES = ("postgresql", "postgres")
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - in a container the port must be reachable from outside
SECRET_VARIABLES = frozenset({"DATABASE_URL"})  # values never echoed in messages or logs


class SettingsError(ValueError):
    """One or more environment variables are invalid; the message lists all of them."""


def default_workers() -> int:
    """One worker per usable CPU: the service is CPU-bound and each worker is single-threaded."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def redact_url(url: str) -> str:
    """Return url with any password replaced, so it can be logged."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    except ValueError:
        return "<unparseable url>"


@dataclass(frozen=True)
class Settings:
    """Validated service settings (see README.md for the table)."""

    port: int = 8000
    host: str = ALL_INTERFACES
    workers: int = field(default_factory=default_workers)
    data_dir: Path = Path("data")
    database_url: str = ""
    log_level: str = "info"
    access_log: bool = True
    db_pool_size: int = 10
    db_timeout: float = 5.0
    db_startup_timeout: float = 30.0
    shutdown_timeout: int = 25
    drain_delay: float = 5.0
    keepalive_timeout: int = 5
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_header_bytes: int = 16384
    max_connections: int = 1000
    write_queue_max: int = 1000
    idempotency_window: int = 86400
    sqlite_synchronous: str = "NORMAL"
    list_cache_mb: int = 16
    metrics_dir: str = ""

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "comments.sqlite3"

    def public(self) -> dict[str, object]:
        """Settings safe to log: the database password is redacted."""
        return {
            "port": self.port,
            "host": self.host,
            "workers": self.workers,
            "backend": self.backend,
            "data_dir": str(self.data_dir),
            "database_url": redact_url(self.database_url),
            "log_level": self.log_level,
            "access_log": self.access_log,
            "db_pool_size": self.db_pool_size,
            "db_timeout": self.db_timeout,
            "shutdown_timeout": self.shutdown_timeout,
            "drain_delay": self.drain_delay,
            "keepalive_timeout": self.keepalive_timeout,
            "header_timeout": self.header_timeout,
            "body_timeout": self.body_timeout,
            "max_header_bytes": self.max_header_bytes,
            "max_connections": self.max_connections,
            "write_queue_max": self.write_queue_max,
            "idempotency_window": self.idempotency_window,
            "sqlite_synchronous": self.sqlite_synchronous,
            "list_cache_mb": self.list_cache_mb,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environ (default os.environ); raise SettingsError listing every
        invalid variable."""
        env = os.environ if environ is None else environ
        errors: list[str] = []

        def get(name: str, parse: Callable[[str], object], default: object) -> object:
            raw = env.get(name, "").strip()
            if raw == "":
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                shown = "<redacted>" if name in SECRET_VARIABLES else repr(raw)
                errors.append(f"{name}={shown}: {exc}")
                return default

        values = {
            "port": get("PORT", _int_in(1, 65535), 8000),
            "host": get("HOST", str, ALL_INTERFACES),
            "workers": get("WORKERS", _int_in(1, 64), None),
            "data_dir": get("DATA_DIR", _path, _path("data")),
            "database_url": get("DATABASE_URL", _database_url, ""),
            "log_level": get("LOG_LEVEL", _choice(LOG_LEVELS, str.lower), "info"),
            "access_log": get("ACCESS_LOG", _bool, True),
            "db_pool_size": get("DB_POOL_SIZE", _int_in(1, 100), 10),
            "db_timeout": get("DB_TIMEOUT", _float_in(0.1, 300), 5.0),
            "db_startup_timeout": get("DB_STARTUP_TIMEOUT", _float_in(0, 3600), 30.0),
            "shutdown_timeout": get("SHUTDOWN_TIMEOUT", _int_in(1, 3600), 25),
            "drain_delay": get("DRAIN_DELAY", _float_in(0, 600), 5.0),
            "keepalive_timeout": get("KEEPALIVE_TIMEOUT", _int_in(1, 3600), 5),
            "header_timeout": get("HEADER_TIMEOUT", _float_in(0.1, 600), 10.0),
            "body_timeout": get("BODY_TIMEOUT", _float_in(0.1, 600), 10.0),
            "max_header_bytes": get("MAX_HEADER_BYTES", _int_in(1024, 1048576), 16384),
            "max_connections": get("MAX_CONNECTIONS", _int_in(1, 100000), 1000),
            "write_queue_max": get("WRITE_QUEUE_MAX", _int_in(1, 1000000), 1000),
            "idempotency_window": get("IDEMPOTENCY_WINDOW", _int_in(1, 30 * 86400), 86400),
            "sqlite_synchronous": get(
                "SQLITE_SYNCHRONOUS", _choice(SQLITE_SYNC_MODES, str.upper), "NORMAL"
            ),
            "list_cache_mb": get("LIST_CACHE_MB", _int_in(0, 4096), 16),
            "metrics_dir": get("PROMETHEUS_MULTIPROC_DIR", str, ""),
        }
        if errors:
            raise SettingsError("invalid settings: " + "; ".join(errors))
        if values["workers"] is None:
            values["workers"] = default_workers()
        return cls(**values)  # type: ignore[arg-type]


_Number = TypeVar("_Number", int, float)


def _in_range(
    convert: Callable[[str], _Number], low: _Number, high: _Number, what: str
) -> Callable[[str], _Number]:
    message = f"must be {what} between {low} and {high}"

    def parse(raw: str) -> _Number:
        try:
            value = convert(raw)
        except ValueError:
            raise ValueError(message) from None
        if not low <= value <= high:
            raise ValueError(message)
        return value

    return parse


def _int_in(low: int, high: int) -> Callable[[str], int]:
    return _in_range(int, low, high, "an integer")


def _float_in(low: float, high: float) -> Callable[[str], float]:
    return _in_range(float, low, high, "a number of seconds")


def _choice(options: tuple[str, ...], norm: Callable[[str], str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = norm(raw)
        if value not in options:
            raise ValueError("must be one of " + ", ".join(options))
        return value

    return parse


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _path(raw: str) -> Path:
    return Path(raw).expanduser().resolve()


def _database_url(raw: str) -> str:
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ValueError("must be a postgresql:// URL (leave it empty for SQLite)")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("must name a host, e.g. postgresql://user:pass@db:5432/comments")
    return raw
