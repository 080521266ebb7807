"""Prometheus metrics, correct across worker processes.

Each worker is a separate process, so in-memory counters would only show one worker's share.
prometheus_client's multiprocess mode keeps every process's values in mmap'ed files under
PROMETHEUS_MULTIPROC_DIR (created and cleaned by the launcher) and sums them when /metrics is
scraped. The mode is chosen when prometheus_client is imported, so the launcher sets the
variable before any worker starts.
"""

from __future__ import annotations

import os

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
LATENCY = Histogram(
    "comments_http_request_duration_seconds",
    "Time from the request reaching the app to its response being handed to the server.",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
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

# Label lookups take a lock and build a key; cache the children since the label sets are few.
_children: dict[tuple[str, str, int], tuple[object, object]] = {}


def observe(method: str, route: str, status: int, seconds: float) -> None:
    """Record one finished request."""
    key = (method, route, status)
    pair = _children.get(key)
    if pair is None:
        pair = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        _children[key] = pair
    pair[0].inc()  # type: ignore[attr-defined]
    pair[1].observe(seconds)  # type: ignore[attr-defined]


def record_pool(size: int, idle: int) -> None:
    """Record one worker's connection pool: `size` connections open, `idle` of them unused."""
    DB_CONNECTIONS.labels("busy").set(size - idle)
    DB_CONNECTIONS.labels("idle").set(idle)


def render() -> bytes:
    """Prometheus text exposition of all workers' metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_exited(pid: int) -> None:
    """Drop a stopped worker's live gauges so in-progress sums only live workers."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
