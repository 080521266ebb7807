"""Prometheus metrics, correct across worker processes.

Each worker is a separate process, so in-memory counters would only show one worker's share.
prometheus_client's multiprocess mode keeps every process's values in mmap'ed files under
PROMETHEUS_MULTIPROC_DIR (created and cleaned by the launcher) and sums them when /metrics is
scraped. The mode is chosen when prometheus_client is imported, so the launcher sets the
variable before any worker starts.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "comments_http_requests",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
)
_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)
LATENCY = Histogram(
    "comments_http_request_duration_seconds",
    "Time from the request reaching the app to its response being handed to the server.",
    ["method", "route"],
    buckets=_BOUNDS,
)
IN_PROGRESS = Gauge(
    "comments_http_requests_in_progress",
    "Requests being handled right now, summed over live workers.",
    multiprocess_mode="livesum",
)
COMMENTS_CREATED = Counter(
    "comments_created",
    "Comments stored (acknowledged writes).",
)
DB_CONNECTIONS = Gauge(
    "comments_db_connections",
    "PostgreSQL connections open in the workers' pools, by state (busy, idle), summed over live"
    " workers; sampled every few seconds.",
    ["state"],
    multiprocess_mode="livesum",
)
LIST_CACHE_HITS = Counter(
    "comments_list_cache_hits",
    "Whole-list requests answered from the worker's list cache.",
)


class _LoopTotals:
    """This worker's request metrics, summed in plain numbers on the event loop and written
    to the shared metric files once per loop pass.

    Each write to prometheus_client's multiprocess files takes a lock, checks the process id
    and packs a double (about 1 µs), and a request made six of them: with metrics left out
    the service served 1.21x the requests at 0.86x the p99 (BENCHMARKS.md, "Bookkeeping
    once per loop pass"). A pass of a busy loop serves tens of requests with a few label
    sets, so they become a few writes per pass. What /metrics shows is at most one loop
    pass old (a few milliseconds under load); the worker that renders it writes its own
    totals first.
    """

    def __init__(self) -> None:
        self.in_progress = 0
        self.requests: dict[tuple[str, str, int], int] = {}
        # (method, route) -> observations per bucket (prometheus_client's order), then their sum
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.hits = 0
        self.created = 0
        self._scheduled = False

    def changed(self) -> None:
        """Write the totals at the start of the next loop pass (or now, without a loop)."""
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        IN_PROGRESS.set(self.in_progress)
        requests, self.requests = self.requests, {}
        for (method, route, status), count in requests.items():
            REQUESTS.labels(method, route, str(status)).inc(count)
        latency, self.latency = self.latency, {}
        for (method, route), counts in latency.items():
            _add_observations(LATENCY.labels(method, route), counts)
        if self.hits:
            LIST_CACHE_HITS.inc(self.hits)
            self.hits = 0
        if self.created:
            COMMENTS_CREATED.inc(self.created)
            self.created = 0


def _add_observations(child: Any, counts: list[float]) -> None:
    """Add counts[i] observations to bucket i of a Histogram child and counts[-1] to its sum:
    what that many observe() calls write, in one write per bucket. prometheus_client has no
    public call for it (checked against observe() in the tests, at the pinned version)."""
    child._sum.inc(counts[-1])
    for bucket, count in zip(child._buckets, counts, strict=False):
        if count:
            bucket.inc(count)


_totals = _LoopTotals()


def request_started() -> None:
    _totals.in_progress += 1
    _totals.changed()


def request_finished(method: str, route: str, status: int, seconds: float) -> None:
    """Record one finished request."""
    totals = _totals
    totals.in_progress -= 1
    key = (method, route, status)
    totals.requests[key] = totals.requests.get(key, 0) + 1
    counts = totals.latency.get(key[:2])
    if counts is None:
        counts = totals.latency[key[:2]] = [0] * (len(_BOUNDS) + 1)
    counts[bisect.bisect_left(_BOUNDS, seconds)] += 1  # the first bucket with seconds <= le
    counts[-1] += seconds
    totals.changed()


def list_cache_hit() -> None:
    _totals.hits += 1
    _totals.changed()


def comment_created() -> None:
    _totals.created += 1
    _totals.changed()


def record_pool(size: int, idle: int) -> None:
    """Record one worker's connection pool: `size` connections open, `idle` of them unused."""
    DB_CONNECTIONS.labels("busy").set(size - idle)
    DB_CONNECTIONS.labels("idle").set(idle)


def render() -> bytes:
    """Prometheus text exposition of all workers' metrics."""
    _totals.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_exited(pid: int) -> None:
    """Write the worker's last totals, then drop its live gauges so in-progress sums only
    live workers."""
    _totals.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
