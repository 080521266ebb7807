"""Structured logging: every record is one JSON object on one line on stdout.

Log shippers (Fluent Bit, CloudWatch, Loki) parse such lines without per-app rules. Secrets
never reach a record: settings are logged through Settings.public(), which redacts the
database password.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import logging.handlers
import os
import queue
import select
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

# Access lines are written at most this often (a line waits at most this long): a writer
# thread woken once per loop turn competed with the loop for the interpreter lock, which cost
# about a fifth of a worker's CPU on the write path.
ACCESS_LOG_FLUSH_SECONDS = 0.05
PIPE_BUF = 4096  # on Linux: a write of up to this many bytes to a pipe is never split
MAX_PENDING_CHUNKS = 10_000  # of access lines not yet written: then lines are dropped
CLOSE_TIMEOUT_SECONDS = 5.0  # to write what is pending at shutdown

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
    """One JSON line per request, written without the logging module and never blocking the
    event loop.

    The stdlib logging path (LogRecord, formatter, a flushed write per record) cost about a
    third of the throughput of a small request. Here the lines of ACCESS_LOG_FLUSH_SECONDS
    are collected and then written the way stdout allows (open_output):

    * a pipe (a container runtime, systemd): by the loop itself, in writes of at most
      PIPE_BUF bytes of whole lines, so the lines of workers sharing the pipe never
      interleave, through a non-blocking description of the pipe of this worker's own;
    * a regular file: in one write per flush, from a writer thread (a file write may wait
      for the disk; Linux keeps one write to a file whole);
    * anything else (a terminal): in PIPE_BUF chunks, from a writer thread.

    If stdout stops being read, at most MAX_PENDING_CHUNKS are kept and later lines dropped.
    """

    def __init__(self, fd: int = 1) -> None:
        self._out = open_output(fd)
        self._lines: list[bytes] = []
        self._pending = False
        self._pid = os.getpid()

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
        """Write, or hand over, the lines collected so far (never blocks)."""
        self._pending = False
        lines, self._lines = self._lines, []
        if lines:
            self._out.put(chunks(lines, self._out.chunk_bytes))

    def close(self) -> None:
        """Write what is pending (at shutdown, waiting at most a few seconds)."""
        self.flush()
        self._out.close()


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


def open_output(fd: int) -> _PipeOnLoop | _WriterThread:
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode):
        try:
            # A description of the pipe of our own: O_NONBLOCK on fd itself would reach every
            # process sharing it (the launcher, the other workers), which expect blocking writes.
            flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
            return _PipeOnLoop(os.open(f"/proc/self/fd/{fd}", flags))
        except OSError:
            pass  # no /proc: the thread below
    return _WriterThread(fd, whole=stat.S_ISREG(mode))


class _PipeOnLoop:
    """Writes chunks from the event loop: a write to a pipe either fits whole or fails at
    once (EAGAIN), and a full pipe keeps the rest until the loop sees it writable again.
    No thread: a writer thread took the interpreter lock from the loop once per chunk."""

    chunk_bytes: int | None = PIPE_BUF

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: collections.deque[bytes] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None  # watching for room in the pipe

    def put(self, chunks: list[bytes]) -> None:
        self._queue.extend(chunks)
        if self._loop is None:
            self._write()
        while len(self._queue) > MAX_PENDING_CHUNKS:
            self._queue.pop()  # the newest lines: the older ones are in the pipe already

    def _write(self) -> None:
        if self._write_now():
            self._stop_watching()
        elif self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_writer(self._fd, self._write)

    def _write_now(self) -> bool:
        """Write what the pipe takes now; True when nothing is left."""
        queue = self._queue
        while queue:
            try:
                written = os.write(self._fd, queue[0])
            except BlockingIOError:
                return False
            except OSError:  # stdout gone (closed pipe): never fail a request over a log line
                queue.clear()
                break
            if written < len(queue[0]):  # only a line longer than PIPE_BUF is split
                queue[0] = queue[0][written:]
            else:
                queue.popleft()
        return True

    def _stop_watching(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(self._fd)
        self._loop = None

    def close(self) -> None:
        self._stop_watching()
        deadline = time.monotonic() + CLOSE_TIMEOUT_SECONDS
        while not self._write_now() and (left := deadline - time.monotonic()) > 0:
            select.select([], [self._fd], [], left)
        os.close(self._fd)


class _WriterThread:
    """Writes chunks from a thread of its own, where the write may block."""

    def __init__(self, fd: int, whole: bool) -> None:
        self.chunk_bytes = None if whole else PIPE_BUF
        self._fd = fd
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def put(self, chunks: list[bytes]) -> None:
        for chunk in chunks[: MAX_PENDING_CHUNKS - self._chunks.qsize()]:
            self._chunks.put(chunk)

    def close(self) -> None:
        self._chunks.put(None)
        self._thread.join(CLOSE_TIMEOUT_SECONDS)

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            with contextlib.suppress(OSError):  # stdout gone: never fail a request over it
                while chunk:
                    chunk = chunk[os.write(self._fd, chunk) :]


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
