"""Redis with its own config, port and data folder (not the Debian service on 6379)."""

from __future__ import annotations

import shutil

from omium.infra.localstack._component import Component, Launch, error_text, host_port
from omium.infra.localstack._errors import PrerequisiteError

_CONFIG = """\
# Written by `omium up` on every start; edit infra/localstack/_redis.py instead.
bind {host}
port {port}
protected-mode yes
# omium up manages the process (pid file, log redirection), so Redis must stay in the foreground.
daemonize no
supervised no
logfile ""
dir "{data}"
dbfilename dump.rdb
# Live state must survive `omium down`/`up`: append-only file plus periodic snapshots.
appendonly yes
appendfsync everysec
save 3600 1 300 100 60 10000
"""


class Redis(Component):
    """Live state, rate limits and fan-out."""

    name = "redis"
    marker = "redis-server"

    @property
    def _endpoint(self) -> tuple[str, int]:
        return host_port(self.settings.redis.url, 6379)

    @property
    def address(self) -> str:
        """``host:port``."""
        host, port = self._endpoint
        return f"{host}:{port}"

    def ports(self) -> list[tuple[str, int]]:
        """The TCP listener."""
        return [self._endpoint]

    def prepare(self) -> Launch:
        """Write ``redis.conf`` and describe the ``redis-server`` launch."""
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not shutil.which(server):
            raise PrerequisiteError("redis-server is not installed; run `make bootstrap`")
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        host, port = self._endpoint
        config = self.home / "redis.conf"
        config.write_text(_CONFIG.format(host=host, port=port, data=data))
        return Launch(cmd=[server, str(config)], cwd=self.home)

    def probe(self, timeout_s: float) -> str | None:
        """PING."""
        import redis

        client = redis.Redis.from_url(
            self.settings.redis.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            return error_text(exc)
        finally:
            client.close()
        return None
