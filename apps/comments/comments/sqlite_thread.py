"""A thread that owns one SQLite connection and runs the event loop's jobs in arrival order
(the reader of each worker; its writer is a process, sqlite_writer.py).

sqlite3 blocks, so its calls run off the event loop. An executor answers a request three
loop turns after its call returned (the executor's future is copied into an asyncio future,
which wakes the task that ran the batch, which wakes each request), and the next batch is
handed over a turn after that; under load a turn lasts a few milliseconds. Here a request
puts its job on a queue the thread waits on; the thread takes everything queued, runs it,
and one callback answers every job it ran: the request resumes a turn later. Jobs queued
while the thread is busy run together, so concurrent list reads share one batch.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .storage import RolledBackError

T = TypeVar("T")
# run(connection, items) -> one result or exception per item
Run = Callable[[sqlite3.Connection, list[Any]], Sequence[Any]]
Job = tuple[Run, Any, asyncio.Future[Any]]


def _call_each(conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]) -> list:
    results: list[Any] = []
    for work in works:
        try:
            results.append(work(conn))
        except Exception as exc:  # handed to the caller's future
            results.append(exc)
    return results


class SQLiteThread:
    def __init__(self, role: str, connect: Callable[[], sqlite3.Connection], max_batch: int):
        self.role = role
        self._connect = connect
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name=f"sqlite-{role}", daemon=True)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    def submit(self, run: Run, item: Any) -> asyncio.Future[Any]:
        """Queue `item` for run(connection, items): consecutive jobs of the same `run` go in
        one call. The future holds the item's result."""
        assert self._loop is not None, "start() first"
        future = self._loop.create_future()
        self._jobs.put((run, item, future))
        return future

    def call(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run work(connection) on the thread, after what is queued."""
        return self.submit(_call_each, work)

    async def stop(self) -> None:
        """Run what is queued, close the connection, end the thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        stopping = False
        while not stopping:
            jobs: list[Job] = []
            job = self._jobs.get()
            while job is not None:
                jobs.append(job)
                if len(jobs) == self._max_batch:
                    break
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
            stopping = job is None
            results: list[Any] = []
            for run, group in itertools.groupby(jobs, key=lambda job: job[0]):
                items = [item for _, item, _ in group]
                try:
                    conn = conn or self._connect()
                    results.extend(run(conn, items))
                except Exception as exc:  # answered to every job of the run
                    results.extend([exc] * len(items))
            if jobs:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._answer, jobs, results)
        if conn is not None:
            conn.close()

    def _answer(self, jobs: list[Job], results: list[Any]) -> None:
        for (_, _, future), result in zip(jobs, results, strict=True):
            if future.done():  # its request was cancelled (client gone)
                continue
            if isinstance(result, sqlite3.Error):
                # A statement or transaction that failed was rolled back as a whole.
                error = RolledBackError(f"sqlite {self.role} failed: {result}")
                error.__cause__ = result
                future.set_exception(error)
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
