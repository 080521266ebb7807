"""Structured logging: every record is one JSON object on one line on stdout.

Log shippers (Fluent Bit, CloudWatch, Loki) parse such lines without per-app rules. Secrets
never reach a record: settings are logged through Settings.public(), which redacts the
database password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from select import PIPE_BUF  # a write of up to this many bytes to a pipe is never split
from typing import Any

import orjson

# Access lines are handed to the writer thread at most this often: each hand-over wakes the
# thread, which then competes with the event loop for the GIL (measured: once per loop turn
# cost about a fifth of a worker's CPU on the write path). A line waits at most this long.
ACCESS_LOG_FLUSH_SECONDS = 0.05
MAX_PENDING_CHUNKS = 10_000  # of access lines not yet written: then lines are dropped

_BASE_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; extra={...} keys become top-level fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": utc_timestamp(record.created),
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


_second: tuple[int, str] = (-1, "")  # the last second formatted, shared by all threads


def utc_timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-01-31T12:00:00.123Z. The seconds part is
    formatted once per second: strftime per access line was 2-3 % of a worker's time."""
    global _second
    second = int(created)
    formatted = _second
    if formatted[0] != second:
        formatted = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{formatted[1]}.{int(created % 1 * 1000):03d}Z"


class AccessLog:
    """One JSON line per request, written without the logging module and off the loop.

    The stdlib logging path (LogRecord, formatter, a flushed write per record) cost about a
    third of the throughput of a small request. Here the lines of ACCESS_LOG_FLUSH_SECONDS
    are collected on the loop and handed to a writer thread, so a slow reader of stdout
    never blocks the loop. To a pipe (a container runtime) or a terminal it writes them in
    os.write calls of at most PIPE_BUF bytes of whole lines, so lines from several workers
    sharing the pipe never interleave; to a regular file in one write per flush, which
    Linux keeps whole (measured: mixed p99 0.86 of chunked writes, BENCHMARKS.md). If
    stdout stops being read, at most MAX_PENDING_CHUNKS are kept and later lines dropped.
    """

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        self._chunk_bytes = None if stat.S_ISREG(os.fstat(fd).st_mode) else PIPE_BUF
        self._lines: list[bytes] = []
        self._pending = False
        self._pid = os.getpid()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_chunks, name="access-log", daemon=True)
        self._writer.start()

    def write(self, fields: dict[str, Any]) -> None:
        now = time.time()
        entry = {
            "ts": utc_timestamp(now),
            "level": "info",
            "logger": "comments.access",
            "msg": "request",
            "pid": self._pid,
            **fields,
        }
        self._lines.append(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_later(ACCESS_LOG_FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand the lines collected so far to the writer thread (never blocks)."""
        self._pending = False
        lines, self._lines = self._lines, []
        if not lines:
            return
        for chunk in chunks(lines, self._chunk_bytes):
            if self._chunks.qsize() < MAX_PENDING_CHUNKS:
                self._chunks.put(chunk)

    def close(self) -> None:
        """Write what is pending and stop the writer thread (at shutdown)."""
        self.flush()
        self._chunks.put(None)
        self._writer.join(5)

    def _write_chunks(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            # stdout gone (e.g. closed pipe): never fail a request over a log line
            with contextlib.suppress(OSError):
                while chunk:
                    chunk = chunk[os.write(self._fd, chunk) :]


def chunks(lines: list[bytes], size: int | None) -> list[bytes]:
    """The lines joined into chunks of at most `size` bytes of whole lines (one if None)."""
    if size is None:
        return [b"".join(lines)]
    out: list[bytes] = []
    start = length = 0
    for n, line in enumerate(lines):
        if length and length + len(line) > size:
            out.append(b"".join(lines[start:n]))
            start, length = n, 0
        length += len(line)
    out.append(b"".join(lines[start:]))
    return out


def logging_off_the_loop() -> Callable[[], None]:
    """Route every log record through a queue to the configured handlers on a thread of
    their own, so a log line never blocks the event loop. Returns the function that writes
    what is queued and puts the handlers back (at shutdown, when the loop is idle)."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    root.handlers = [logging.handlers.QueueHandler(records)]
    listener.start()

    def restore() -> None:
        listener.stop()
        root.handlers = handlers

    return restore


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
