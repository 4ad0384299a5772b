"""Tell `make test` which PostgreSQL and Redis to use, as `NAME=value` lines for `env`.

Outside CI an unreachable service is reported and replaced (SQLite; tests that need Redis
are skipped). In CI (CI=true) both are mandatory: an unreachable one fails the run here.

With no DATABASE_URL given, a PostgreSQL of this machine is reached through its Unix socket
when it has one (libpq's default directory), else over TCP: the suite makes some 90,000
queries, and the loopback's TCP costs the fast loop about 7% of its time more than the socket.
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlparse

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/dmp"
# No host: libpq's default, the socket in /var/run/postgresql on Debian.
LOCAL_SOCKET_DATABASE = "postgres://postgres@/dmp"
LOCAL_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def socket_listening(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as unix:
            unix.settimeout(2)
            unix.connect(path)
            return True
    except OSError:
        return False


def main() -> int:
    ci = os.environ.get("CI", "").lower() == "true"
    database = os.environ.get("DATABASE_URL", "")
    if not database:
        database = LOCAL_SOCKET_DATABASE if socket_listening(LOCAL_SOCKET) else DEFAULT_DATABASE
    redis = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    lines = []
    for name, url, port in (("DATABASE_URL", database, 5432), ("REDIS_URL", redis, 6379)):
        if url == LOCAL_SOCKET_DATABASE or reachable(url, port):
            lines.append(f"{name}={url}")
        elif ci:
            print(f"CI: {name} {url} is not reachable; it is mandatory in CI.", file=sys.stderr)
            return 1
        else:
            print(f"warning: {name} {url} is not reachable; running without it.", file=sys.stderr)
            lines.append(f"{name}=sqlite:///:memory:" if name == "DATABASE_URL" else f"{name}=")
    print(" ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
