"""Print (or write) the /etc/hosts line for the platform's hosts.

    python -m app_platform_tools.hosts [--stack NAME] [--outputs FILE] [--write]

An NLB has DNS names, not fixed addresses (and its addresses can change), so the stack exports
the load balancer's hostname and this resolves it when run. It reads `pulumi stack output
--json` (run in the project directory, or pass `--outputs FILE` with that JSON), picks one IPv4
address of the NLB, and prints `<address> <host> <host> ...`. With `--write` it replaces the
line it wrote before in the hosts file (marked by a trailing comment) instead of appending
another one; writing /etc/hosts needs root (`sudo`).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOSTS_FILE = Path("/etc/hosts")
MARKER = "# app-platform"


def stack_outputs(stack: str | None, outputs_file: Path | None) -> dict[str, Any]:
    if outputs_file is not None:
        return json.loads(outputs_file.read_text())
    command = ["pulumi", "stack", "output", "--json"]
    if stack:
        command += ["--stack", stack]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def resolve(hostname: str) -> str:
    """One IPv4 address of `hostname` (the lowest, so repeated runs agree)."""
    infos = socket.getaddrinfo(hostname, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise LookupError(f"{hostname} has no IPv4 address yet")
    return addresses[0]


def _load_balancer(outputs: dict[str, Any]) -> str:
    hostname = outputs.get("loadBalancerHostname")
    if not hostname or not outputs.get("hostnames"):
        raise LookupError("the stack has no loadBalancerHostname/hostnames outputs: run pulumi up")
    return hostname


def hosts_line(outputs: dict[str, Any], address: str | None = None) -> str:
    names = outputs.get("hostnames") or []
    return f"{address or resolve(_load_balancer(outputs))} {' '.join(names)} {MARKER}"


def replace_line(text: str, line: str) -> str:
    """`text` of a hosts file with our earlier line (if any) replaced by `line`."""
    kept = [existing for existing in text.splitlines() if not existing.endswith(MARKER)]
    return "\n".join([*kept, line]) + "\n"


def main(argv: list[str] | None = None, resolver: Callable[[str], str] = resolve) -> int:
    """The command; `resolver` finds the load balancer's address (DNS unless told otherwise)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="stack to read (default: the selected stack)")
    parser.add_argument("--outputs", type=Path, help="JSON of `pulumi stack output --json`")
    parser.add_argument("--write", action="store_true", help=f"update {HOSTS_FILE} in place")
    parser.add_argument("--hosts-file", type=Path, default=HOSTS_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        outputs = stack_outputs(args.stack, args.outputs)
        line = hosts_line(outputs, resolver(_load_balancer(outputs)))
    except (LookupError, OSError, subprocess.CalledProcessError) as error:
        print(f"hosts: {error}", file=sys.stderr)
        return 1
    if args.write:
        args.hosts_file.write_text(replace_line(args.hosts_file.read_text(), line))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
