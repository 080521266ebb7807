"""The service against its own /openapi.json: schemathesis, every check, coverage and fuzzing
phases, a fixed seed and a bounded example count, on a real server per backend."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from comments_testlib import Backend, Server

# Fixed, so a failure reproduces; bounded, so the run fits the test budget (~200 cases).
SEED = 1
MAX_EXAMPLES = 30


def schemathesis_command() -> list[str]:
    script = Path(sys.executable).with_name("schemathesis")
    if script.exists():
        return [str(script)]
    found = shutil.which("schemathesis")
    assert found, "schemathesis is not installed (tests/apps/comments/requirements.txt)"
    return [found]


def test_behaviour_matches_the_openapi_document(
    backend: Backend, started: list[Server], tmp_path: Path
) -> None:
    server = backend.server(WORKERS=1, ACCESS_LOG="false").start()
    started.append(server)
    result = subprocess.run(
        [
            *schemathesis_command(),
            "run",
            f"http://127.0.0.1:{server.port}/openapi.json",
            "--checks=all",
            "--phases=coverage,fuzzing",
            f"--seed={SEED}",
            f"--max-examples={MAX_EXAMPLES}",
            "--workers=1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "generated" in report and " failed" not in report.split("SUMMARY")[-1], report
    assert '"status":500' not in server.logs() and "unhandled error" not in server.logs()
