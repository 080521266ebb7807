"""Structured logging: every record is one JSON object on one line on stdout.

Log shippers (Fluent Bit, CloudWatch, Loki) parse such lines without per-app rules. Secrets
never reach a record: settings are logged through Settings.public(), which redacts the
database password.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

_BASE_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; extra={...} keys become top-level fields."""

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            + f".{int(created % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _BASE_KEYS and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str) -> dict[str, Any]:
    """A dictConfig that uvicorn applies in every worker process (workers are spawned, so
    they do not inherit the launcher's logging setup)."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "comments.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": lvl},
        "loggers": {
            "uvicorn": {"level": lvl},
            "uvicorn.error": {"level": lvl},
            # Replaced by our own access line (comments.access), which carries the route
            # template and latency.
            "uvicorn.access": {"level": "WARNING", "propagate": False},
        },
    }


def setup_logging(level: str) -> None:
    """Configure logging in the current process."""
    import logging.config

    logging.config.dictConfig(logging_config(level))
