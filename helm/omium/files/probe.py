"""Exec probes for the Omium processes that serve no HTTP health endpoint yet (stdlib only).

The chart mounts this file from a ConfigMap and runs it with the image's Python:

- ``probe.py live WORD...``: liveness. Some other process in the container runs ``omium`` with
  every WORD among its arguments (``live worker consensus``) and is neither a zombie nor stopped.
- ``probe.py ready DEP...``: readiness. Each dependency (kafka, postgres, redis, opensearch, aws)
  accepts a TCP connection at the address the process's ``OMIUM_*`` settings name; for Kafka one
  bootstrap server is enough.

It exits 0 when the check passes and 1, with the reason on stderr, when it does not. It cannot see
a process that runs but is stuck (a hung consumer): that needs the process's own health endpoint.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

TIMEOUT_S = 2.0
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}
DEAD_STATES = frozenset("ZTtXx")


def _processes() -> Iterator[tuple[int, list[str], str]]:
    """(pid, argv, state) of every process visible in /proc except this one."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # it ended meanwhile, or is a kernel thread
        yield int(entry), argv, state


def live(words: list[str]) -> int:
    """0 when an ``omium`` process whose arguments include ``words`` is running."""
    for pid, argv, state in _processes():
        runs_omium = any(os.path.basename(arg) == "omium" for arg in argv)
        if runs_omium and all(word in argv[1:] for word in words):
            if state in DEAD_STATES:
                print(f"omium process {pid} is in state {state}", file=sys.stderr)
                return 1
            return 0
    print(f"no omium process running {' '.join(words)}", file=sys.stderr)
    return 1


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit():
        return value.strip(), default_port
    return host.strip("[]"), int(port)


def _from_url(url: str) -> list[tuple[str, int]]:
    parts = urlsplit(url)
    if not parts.hostname:
        return []
    return [(parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme, 80))]


def addresses(dep: str, env: dict[str, str]) -> list[tuple[str, int]]:
    """The addresses one dependency is reached at, from the ``OMIUM_*`` settings in ``env``."""
    if dep == "kafka":
        servers = env.get("OMIUM_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092")
        return [_host_port(s.split("://")[-1], 9092) for s in servers.split(",") if s.strip()]
    if dep == "postgres":
        host = env.get("OMIUM_POSTGRES__HOST", "127.0.0.1")
        return [(host, int(env.get("OMIUM_POSTGRES__PORT", "5433")))]
    if dep == "redis":
        return _from_url(env.get("OMIUM_REDIS__URL", "redis://127.0.0.1:6380/0"))
    if dep == "opensearch":
        return _from_url(env.get("OMIUM_OPENSEARCH__URL", "http://127.0.0.1:9200"))
    if dep == "aws":
        # AWS's own endpoints are not worth a probe; an S3-compatible endpoint is.
        return _from_url(env.get("OMIUM_AWS__ENDPOINT_URL", ""))
    raise ValueError(f"unknown dependency {dep!r}")


def _reachable(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc}"


def ready(deps: list[str], env: dict[str, str]) -> int:
    """0 when every dependency in ``deps`` accepts a TCP connection (Kafka: any one server)."""
    failed = []
    for dep in deps:
        errors = [_reachable(host, port) for host, port in addresses(dep, env)]
        if errors and all(errors):
            failed.append(f"{dep} unreachable ({'; '.join(e for e in errors if e)})")
    for reason in failed:
        print(reason, file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    """Run the check named by ``argv[0]`` with the rest as its arguments."""
    if not argv or argv[0] not in ("live", "ready"):
        print("usage: probe.py live WORD... | probe.py ready DEP...", file=sys.stderr)
        return 2
    if argv[0] == "live":
        return live(argv[1:])
    try:
        return ready(argv[1:], dict(os.environ))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
