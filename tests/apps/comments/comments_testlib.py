"""Helpers for the comments API tests: HTTP client, server process, throwaway PostgreSQL.

A module of its own (not conftest.py) so test modules can import it by a name that no other
test directory uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import http.client
import itertools
import json as jsonlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

APP_DIR = Path(__file__).resolve().parents[3] / "apps" / "comments"

PG_PASSWORD = "pg-Secret-Pa55word-never-logged"
PG_USER = "comments_admin"
BACKENDS = ["sqlite", "postgres"]
_db_counter = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- HTTP helpers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    json: Any = None,
    conn: http.client.HTTPConnection | None = None,
    timeout: float = 30,
) -> Reply:
    """One HTTP request; json= sends a JSON body with Content-Type application/json."""
    hdrs = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()  # stdlib: also encodes ints beyond 64 bits
        hdrs.setdefault("Content-Type", "application/json")
    own = conn is None
    if conn is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        if own:
            conn.close()


# --------------------------------------------------------------------------- server process


@dataclass
class Server:
    """A `python -m comments` process in its own session (so the whole tree can be killed).
    Its output goes to a pipe, as in a container, copied to log_path as it arrives."""

    env: dict[str, str]
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _copier: threading.Thread | None = None

    def start(self, wait: bool = True) -> Server:
        self.port = int(self.env["PORT"])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "comments"],
            cwd=APP_DIR,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._copier = threading.Thread(
            target=self._copy_output, args=(self.proc.stdout,), daemon=True
        )
        self._copier.start()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if request(self.port, "GET", "/healthcheck", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.logs()}")

    def get(self, path: str, **kw: Any) -> Reply:
        return request(self.port, "GET", path, **kw)

    def post(self, path: str = "/api/comment/new", **kw: Any) -> Reply:
        return request(self.port, "POST", path, **kw)

    def _copy_output(self, out: Any) -> None:
        with out, open(self.log_path, "ab", buffering=0) as log:
            while chunk := out.read1(1 << 16):
                log.write(chunk)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (graceful) and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        self._reap_group()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the launcher and every worker at once, like a node or OOM kill."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._reap_group()

    def _reap_group(self) -> None:
        """Make sure no worker of this server outlives the test, and its output is copied."""
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._copier is not None:
            self._copier.join(10)  # the pipe ends when the last process holding it exits


# --------------------------------------------------------------------------- PostgreSQL


def pg_bindir() -> Path | None:
    """Directory with initdb/pg_ctl/postgres, or None when PostgreSQL is not installed."""
    candidates: list[str] = []
    if os.environ.get("COMMENTS_PG_BINDIR"):
        candidates.append(os.environ["COMMENTS_PG_BINDIR"])
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.CalledProcessError):
            pass
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        path = Path(candidate)
        if all((path / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """postgres refuses to run as root: pick the account to run it as, when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root but no 'postgres' or 'nobody' user to run PostgreSQL")


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port, password auth over TCP."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = _unprivileged_user()
        self.base = Path(tempfile.mkdtemp(prefix="comments-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        pwfile = self.base / "pwfile"
        pwfile.write_text(PG_PASSWORD + "\n")
        if self.user is not None:
            for path in (self.base, pwfile):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "HOME": str(self.base)}
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.base,
            timeout=120,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.base} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the admin user and return its rows."""
        import asyncpg

        async def run() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(self.url(database), timeout=10)
            try:
                return [tuple(r) for r in await conn.fetch(statement)]
            finally:
                await conn.close()

        return asyncio.run(run())

    def new_database(self) -> str:
        name = f"comments_test_{os.getpid()}_{next(_db_counter)}"
        self.sql(f"CREATE DATABASE {name}")
        return name

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def postgres_bindir_or_skip() -> Path:
    """The PostgreSQL binaries; skip the test when missing, or fail under
    COMMENTS_REQUIRE_POSTGRES=1 (CI), where a missing PostgreSQL must not pass silently."""
    bindir = pg_bindir()
    if bindir is None:
        message = (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via pg_config "
            "--bindir or /usr/lib/postgresql/*/bin"
        )
        if os.environ.get("COMMENTS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " and COMMENTS_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(
            message + "; skipping PostgreSQL tests (COMMENTS_REQUIRE_POSTGRES=1 makes this fail)"
        )
    return bindir


# --------------------------------------------------------------------------- server factories


class Backend:
    """Makes server environments for one backend; each call gets a fresh, empty store."""

    def __init__(self, name: str, tmp: Path, pg: PostgresServer | None) -> None:
        self.name = name
        self.tmp = tmp
        self.pg = pg

    def store_env(self) -> dict[str, str]:
        """Environment naming a new empty store (SQLite dir or PostgreSQL database)."""
        if self.pg is not None:
            return {"DATABASE_URL": self.pg.url(self.pg.new_database())}
        return {"DATA_DIR": tempfile.mkdtemp(dir=self.tmp, prefix="data-")}

    def server(self, store: dict[str, str] | None = None, **env: Any) -> Server:
        """A not-yet-started server; pass store= to reuse another server's store."""
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "DATA_DIR", "WORKERS", "PROMETHEUS_MULTIPROC_DIR")
        }
        base.update(
            {
                "PORT": str(free_port()),
                "HOST": "127.0.0.1",
                "WORKERS": "2",
                "LOG_LEVEL": "info",
                "SHUTDOWN_TIMEOUT": "20",
                "DRAIN_DELAY": "0",  # tests of the drain set their own
                "DB_STARTUP_TIMEOUT": "20",
                "TMPDIR": str(self.tmp),  # metrics dirs of killed servers stay in the test dir
            }
        )
        base.update(store if store is not None else self.store_env())
        base.update({k: str(v) for k, v in env.items()})
        log = Path(tempfile.mkstemp(dir=self.tmp, prefix="server-", suffix=".log")[1])
        return Server(env=base, log_path=log)


def metric(text: str, name: str, **labels: str) -> float:
    """Value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        if sample.split("{")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', sample))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def unique_id(prefix: str = "c") -> str:
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"
