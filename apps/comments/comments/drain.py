"""Graceful drain of a worker on SIGTERM.

Kubernetes sends SIGTERM while the pod's endpoint may still be in the load balancer's
rotation for a moment. So on the first SIGTERM the worker only starts *draining*: /readyz
answers 503 and every response carries `Connection: close` (clients reconnect, and reach
other pods once the endpoint is gone), while requests are still accepted and served. After
DRAIN_DELAY seconds it hands the signal to uvicorn, which stops accepting, finishes every
request in flight (up to SHUTDOWN_TIMEOUT) and runs the app's shutdown, which flushes queued
writes. A second SIGTERM or a SIGINT stops at once.

uvicorn installs its own signal handlers before the app starts, so install() (called from
the app's startup) wraps the handler uvicorn installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

log = logging.getLogger("comments.drain")


class Drain:
    def __init__(self) -> None:
        self.draining = False

    def install(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        forward = signal.getsignal(signal.SIGTERM)
        if not callable(forward):
            return  # not under uvicorn's handlers (e.g. a test calling startup directly)

        def handle(sig: int, frame: Any) -> None:
            if self.draining or delay <= 0:
                self.draining = True
                forward(sig, frame)
                return
            self.draining = True
            # A signal handler may interrupt the loop anywhere: schedule through the
            # thread-safe entry point.
            loop.call_soon_threadsafe(self._stop_later, loop, delay, forward, sig)

        signal.signal(signal.SIGTERM, handle)

    def _stop_later(
        self, loop: asyncio.AbstractEventLoop, delay: float, forward: Any, sig: int
    ) -> None:
        log.info("draining", extra={"drain_delay": delay})
        loop.call_later(delay, forward, sig, None)
