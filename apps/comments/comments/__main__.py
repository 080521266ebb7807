"""Launcher: `python -m comments` serves the API with production settings.

Order matters: settings are validated first (bad configuration stops here with a clear
message), then the schema is migrated once, then the metrics directory is prepared, and only
then are the worker processes started, each of which reads the same environment.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson

from .logs import logging_config, setup_logging
from .settings import Settings, SettingsError
from .storage import StorageUnavailableError, migrate

log = logging.getLogger("comments")


METRICS_DIR_PREFIX = "comments-metrics-"


def prepare_metrics_dir(configured: str) -> tuple[str, bool]:
    """Return (directory, created_by_us) for prometheus_client's multiprocess files.

    A configured directory is emptied (stale files from a previous run would be summed
    in); otherwise a private one is made under the temp dir (/tmp: writable even with a
    read-only root filesystem) and removed at exit.
    """
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path), False
    _remove_abandoned_metrics_dirs()
    path = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)
    _hold_lock(Path(path))
    return path, True


_held_locks: list[int] = []


def _hold_lock(directory: Path) -> None:
    """Keep an exclusive lock on directory/.lock for the life of this process: the kernel
    drops it however we die, which tells a later launcher the directory is abandoned."""
    fd = os.open(directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _held_locks.append(fd)


def _remove_abandoned_metrics_dirs() -> None:
    """Delete metrics dirs left by launchers that were killed (SIGKILL, OOM): an emptyDir
    at /tmp outlives container restarts and each dir holds several 1 MiB files."""
    for directory in Path(tempfile.gettempdir()).glob(METRICS_DIR_PREFIX + "*"):
        try:
            if time.time() - directory.stat().st_mtime < 60:
                continue  # possibly a launcher starting right now, before it took its lock
            fd = os.open(directory / ".lock", os.O_RDWR)
        except OSError:
            continue  # not ours, or being created right now
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its launcher is alive
        finally:
            os.close(fd)
        shutil.rmtree(directory, ignore_errors=True)
        log.info("removed abandoned metrics directory", extra={"path": str(directory)})


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(factory: str = "comments.app:create_app") -> int:
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown (single-worker mode); with
    # this handler that becomes a normal exit, so cleanup runs and the exit code is 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        line = {"level": "error", "logger": "comments", "msg": str(exc)}
        print(orjson.dumps(line).decode(), file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    log.info("starting", extra={"settings": settings.public()})

    try:
        applied = migrate(settings)
    except StorageUnavailableError as exc:
        log.error("cannot prepare the database", extra={"error": str(exc)})
        return 1
    log.info("schema ready", extra={"applied_migrations": applied})

    metrics_dir, created = prepare_metrics_dir(settings.metrics_dir)
    # Must be set before any worker imports prometheus_client (workers inherit it).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    import uvicorn  # imported late: prometheus_client must not be imported before the above

    from .protocol import BoundedHttpToolsProtocol

    status = 0
    try:
        uvicorn.run(
            factory,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http=BoundedHttpToolsProtocol,  # httptools with header/connection limits
            lifespan="on",
            access_log=False,  # our own JSON access line replaces it
            log_config=logging_config(settings.log_level),
            server_header=False,
            proxy_headers=False,
            timeout_keep_alive=settings.keepalive_timeout,
            timeout_graceful_shutdown=settings.shutdown_timeout,
        )
    except SystemExit as exc:  # uvicorn exits with 3 when a worker cannot start
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        if created:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("stopped", extra={"exit_code": status})
    return status


if __name__ == "__main__":
    sys.exit(main())
