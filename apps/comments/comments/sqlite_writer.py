"""SQLite's writer for one worker, in a process of its own (`python -m comments.sqlite_writer`,
started by its worker: sqlite_store.WriterProcess).

A writer thread must take the interpreter lock from the event loop twice per commit (when it
wakes up and after its statement), and a busy loop hands it over only every few
milliseconds: under load those waits were a large part of a write's p99 (BENCHMARKS.md,
2026-12-08, later). In a process of its own the writer has an interpreter to itself. Its
worker sends it requests over a pipe; it runs everything that has arrived as one batch
(group commit), marks the lists it changed (list_cache.py) after the commit and answers.
It stops when its worker closes the pipe, having answered what it read, and ignores
SIGTERM and SIGINT, which a terminal or a container runtime may send the whole process
group: its worker decides when writing ends.

Messages, both ways: a 4-byte big-endian length, then an orjson array.
  requests  [n, "add", content_id, email, comment]
            [n, "keyed", content_id, email, comment, key, digest, now, cutoff]
            [n, "purge", before]
  answers   [[n, ok, value], ...] for one batch; value is None, a keyed write's first answer
            (digest, content_id) or, when not ok, the SQLite error (the statement or its
            transaction was rolled back).
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from .list_cache import SlotVersions
from .logs import setup_logging
from .settings import Settings
from .sqlite_store import (
    SQLITE_CLAIM_KEY,
    SQLITE_GET_KEY,
    SQLITE_INSERT_MANY,
    SQLITE_INSERT_ONE,
    SQLITE_PURGE_KEYS,
    frame,
    list_versions_path,
    retry_busy,
    sqlite_connect,
    unframe,
)

log = logging.getLogger("comments.storage")

# SQLite's own busy handler sleeps 1, 2, 5, 10 ms ... while another worker's writer holds
# the lock, which commits in a tenth of a millisecond; in a process of its own the writer
# can afford to look again this often instead (post p99 0.84 of the busy handler's, side
# by side: BENCHMARKS.md, 2026-12-08, later).
LOCK_POLL_SECONDS = 0.0001

T = TypeVar("T")


class Writer:
    """Runs one batch of requests in the writer process."""

    def __init__(self, settings: Settings) -> None:
        self.conn = sqlite_connect(settings)
        self.conn.execute("PRAGMA busy_timeout = 0")  # retry_busy waits instead
        self.timeout = settings.db_timeout
        self.versions = SlotVersions(list_versions_path(settings))

    def _when_unlocked(self, action: Callable[[], T]) -> T:
        return retry_busy(action, self.timeout, LOCK_POLL_SECONDS)

    def run(self, requests: list[list[Any]]) -> list[list[Any]]:
        adds = [r for r in requests if r[1] == "add"]
        answers = self._add_group(adds) if adds else []
        return answers + [self._one(r) for r in requests if r[1] != "add"]

    def _add_group(self, adds: list[list[Any]]) -> list[list[Any]]:
        """One transaction for all; rows a constraint refused are retried one by one, so
        they do not fail the others (a locked or failing disk would fail them alone too)."""
        try:
            self._insert(adds)
            return [[r[0], True, None] for r in adds]
        except sqlite3.OperationalError as exc:
            return [[r[0], False, str(exc)] for r in adds]
        except sqlite3.Error as exc:
            if len(adds) == 1:
                return [[adds[0][0], False, str(exc)]]
            log.warning("batch write failed, retrying one by one", extra={"error": str(exc)})
        answers = []
        for request in adds:
            try:
                self._insert([request])
                answers.append([request[0], True, None])
            except sqlite3.Error as exc:
                answers.append([request[0], False, str(exc)])
        return answers

    def _insert(self, adds: list[list[Any]]) -> None:
        # One statement is one (autocommit) transaction.
        rows = orjson.dumps([r[2:5] for r in adds])
        row_id = self._when_unlocked(
            lambda: self.conn.execute(SQLITE_INSERT_MANY, (rows,)).lastrowid
        )
        assert row_id is not None
        self.versions.mark([r[2] for r in adds], row_id)  # after the commit, before the answer

    def _one(self, request: list[Any]) -> list[Any]:
        try:
            if request[1] == "keyed":
                return [request[0], True, self._keyed(*request[2:])]
            self._when_unlocked(lambda: self.conn.execute(SQLITE_PURGE_KEYS, (request[2],)))
            return [request[0], True, None]
        except sqlite3.Error as exc:
            return [request[0], False, str(exc)]

    def _keyed(self, *args: Any) -> tuple[str, str] | None:
        content_id, email, comment, key, digest, now, cutoff = args
        conn = self.conn
        self._when_unlocked(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            row_id = None
            first = None
            if conn.execute(SQLITE_CLAIM_KEY, (key, digest, content_id, now, cutoff)).fetchone():
                row_id = conn.execute(SQLITE_INSERT_ONE, (content_id, email, comment)).lastrowid
            else:
                first = conn.execute(SQLITE_GET_KEY, (key,)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # A retry marks too: the answer it gets says the comment is stored, and the first
        # call's writer may have died between its commit and its mark.
        self.versions.mark([content_id], row_id)
        return first


def serve(fd_in: int, fd_out: int, writer: Writer) -> None:
    """Answer batches until the worker closes the pipe."""
    buffer = bytearray()
    while chunk := os.read(fd_in, 1 << 16):  # what has arrived: one batch
        buffer += chunk
        requests = list(unframe(buffer))
        if requests:
            out = memoryview(frame(writer.run(requests)))
            while out:
                out = out[os.write(fd_out, out) :]


def main() -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    serve(sys.stdin.fileno(), sys.stdout.fileno(), Writer(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
