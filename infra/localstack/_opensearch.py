"""OpenSearch 2.x from the integ-test zip, run as the service user (it refuses root)."""

from __future__ import annotations

import shutil

from omium.infra.localstack._component import Component, Launch, error_text, host_port, render
from omium.infra.localstack._dist import ensure_opensearch, java_home
from omium.infra.localstack._proc import chown_tree, ensure_traversable


class OpenSearch(Component):
    """Search read models; single-node discovery, plain HTTP on loopback."""

    name = "opensearch"
    # Matches the bin/opensearch wrapper and the JVM it execs into.
    marker = "opensearch"
    needs_service_user = True

    @property
    def _endpoint(self) -> tuple[str, int]:
        return host_port(self.settings.opensearch.url, 9200)

    @property
    def address(self) -> str:
        """The REST endpoint."""
        return self.settings.opensearch.url

    def ports(self) -> list[tuple[str, int]]:
        """HTTP and transport ports."""
        host, port = self._endpoint
        return [(host, port), (host, port + 100)]

    def prepare(self) -> Launch:
        """Unpack the distribution if needed, write config into the data folder."""
        dist = ensure_opensearch(self.paths)
        config, data, logs, tmp = (self.home / sub for sub in ("config", "data", "logs", "tmp"))
        for folder in (config, data, logs, tmp, config / "jvm.options.d"):
            folder.mkdir(parents=True, exist_ok=True)
        # The distribution's log4j2 setup is fine as is; it reads path.logs from our yml.
        if not (config / "log4j2.properties").exists():
            shutil.copy2(dist / "config" / "log4j2.properties", config / "log4j2.properties")
        host, port = self._endpoint
        render(
            "opensearch/opensearch.yml",
            config / "opensearch.yml",
            host=host,
            http_port=port,
            transport_port=port + 100,
            data=data,
            logs=logs,
        )
        render(
            "opensearch/jvm.options",
            config / "jvm.options",
            heap=self.settings.stack.opensearch_heap,
            tmp=tmp,
            data=data,
            logs=logs,
        )
        # The service user must own its folders (OpenSearch writes a keystore into config/).
        ensure_traversable(self.home, self.account)
        ensure_traversable(dist, self.account)
        if self.account is not None:
            for path in (self.home, config, data, logs, tmp):
                if path.stat().st_uid != self.account.uid:
                    chown_tree(path, self.account)
            chown_tree(config, self.account)
        jdk = str(java_home())
        return Launch(
            cmd=[str(dist / "bin" / "opensearch")],
            cwd=self.home,
            env={
                "OPENSEARCH_JAVA_HOME": jdk,
                "JAVA_HOME": jdk,
                "OPENSEARCH_PATH_CONF": str(config),
                "OPENSEARCH_TMPDIR": str(tmp),
            },
            account=self.account,
        )

    def probe(self, timeout_s: float) -> str | None:
        """``GET _cluster/health`` must say yellow or green."""
        import httpx

        try:
            response = httpx.get(
                f"{self.settings.opensearch.url.rstrip('/')}/_cluster/health", timeout=timeout_s
            )
            response.raise_for_status()
            health = response.json().get("status")
        except (httpx.HTTPError, ValueError) as exc:
            return error_text(exc)
        return None if health in ("yellow", "green") else f"cluster health {health}"
